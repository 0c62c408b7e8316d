"""SemFi training (paper 4.1): frozen Wan2.1-I2V, only the Mixture-of-LoRA learns, Wan's flow-matching loss.

Each optimizer step takes one global batch of a single scale and size (ScaleBatchSampler); that step trains the
universal LoRA and that scale's expert. Every rank takes its share of the same batch, padded so that every
rank runs the same number of micro-batches and exactly one synchronised backward per step, even on a short
last batch (a padding clip has loss weight 0). Multi-GPU runs go through `accelerate launch`.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sfi_bench.models.semfi.distributed import StepCounter, make_accelerator, rank_share, strategy
from sfi_core.constants import FRAME_COUNTS

STATE_FILE = "trainer_state.json"  # written last: a checkpoint folder without it is incomplete


@dataclass
class TrainConfig:
    manifest: Path | list[str]  # a clips manifest, or WebDataset shards (tar paths, patterns, an index)
    out: Path
    weights: str | None = None  # Wan2.1-I2V diffusers folder or cached HF id; None: the weights table
    weights_dir: Path | None = None
    captions: Path | None = None
    cache: Path | None = None  # latent cache folder (semfi.cache): encode once, then no decoding per epoch
    epochs: int = 1
    max_steps: int | None = None  # stop early (tests, smoke runs); the LR schedule still spans all epochs
    global_batch: int = 32
    micro_batch: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0  # the cosine ends at lr * min_lr_ratio
    height: int = 480  # the area each clip is fitted to (sfi_core.resize), as at inference
    width: int = 832
    shift: float = 5.0  # timestep shift of the training noise schedule (Wan/DiffSynth training default)
    rank: int = 16
    alpha: float = 16.0
    scales: tuple[int, ...] = FRAME_COUNTS
    mixed_precision: str = "bf16"  # bf16: frozen base in bf16, adapters and their math in fp32 | no: all fp32
    gradient_checkpointing: bool = True
    max_sequence_length: int = 512
    save_every: int = 500
    keep_checkpoints: int = 0  # delete all but the latest K checkpoints (7.0 GiB each at 14B); 0: keep all
    sample_every: int = 500  # 0: never
    sample_steps: int = 30
    log_every: int = 1
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


class SemFiTrainer:
    """Loads the backbone once, attaches (or resumes) the MoL, and runs the training loop."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.counter = StepCounter()
        self.accelerator = self.pipe = self.mol = self.optimizer = self.scheduler = None
        self.model = self.dataset = self.cache = None
        self.total_steps = self.steps_per_epoch = 0
        self.metrics_path = Path(config.out) / "metrics.jsonl"

    @property
    def step(self) -> int:
        return self.counter.step

    # ----- setup -------------------------------------------------------------------------------------------
    def setup(self) -> None:
        import torch

        from sfi_bench.models.semfi.flow import warmup_cosine
        from sfi_bench.models.semfi.model import load_wan_pipeline
        from sfi_bench.models.semfi.mol import MixtureOfLoRA, MoLConfig
        from sfi_bench.models.semfi.pipeline import semfi_pipeline_class
        from sfi_core.weights import resolve_folder

        cfg = self.config
        if cfg.mixed_precision not in ("bf16", "no"):
            raise ValueError(f"mixed_precision must be bf16 or no, got {cfg.mixed_precision!r}")
        self.accelerator = make_accelerator()
        folder = resolve_folder("wan2.1-i2v-14b-480p", cfg.weights_dir, cfg.weights)
        base_dtype = torch.bfloat16 if cfg.mixed_precision == "bf16" else torch.float32
        self.pipe = load_wan_pipeline(
            semfi_pipeline_class(), folder, str(self.accelerator.device), base_dtype
        )
        transformer = self.pipe.transformer
        for module in (transformer, self.pipe.vae, self.pipe.text_encoder, self.pipe.image_encoder):
            module.requires_grad_(False)
        torch.manual_seed(cfg.seed)  # the LoRA A matrices start random: the same run starts the same
        self.mol = MixtureOfLoRA.attach(
            transformer,
            MoLConfig(rank=cfg.rank, alpha=cfg.alpha, scales=tuple(cfg.scales), base_model=str(folder)),
        )
        if cfg.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        self.optimizer = torch.optim.AdamW(self._all_lora_params(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.dataset = self._make_dataset()
        if len(self.dataset) == 0:
            raise ValueError(f"{cfg.manifest} has no usable clips at scales {cfg.scales}")
        self.steps_per_epoch = len(self.batches(0))
        self.total_steps = self.steps_per_epoch * cfg.epochs
        # Not passed to prepare(): accelerate would step it once per process per step.
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, cfg.warmup_steps, self.total_steps, cfg.min_lr_ratio)
        )
        self.model, self.optimizer = self.accelerator.prepare(transformer, self.optimizer)
        self._resume()
        if cfg.cache is not None:
            self._fill_cache()
        if self.accelerator.is_main_process:
            Path(cfg.out).mkdir(parents=True, exist_ok=True)
            (Path(cfg.out) / "train_config.json").write_text(json.dumps(cfg.record(), indent=2))

    def _make_dataset(self):
        """A manifest (DIR/train.parquet) or WebDataset shards from `sfi-data export` (sfi_core.dataset_shards)."""
        from sfi_core.dataset_shards import make_clip_dataset

        cfg = self.config
        sources = list(cfg.manifest) if isinstance(cfg.manifest, (list, tuple)) else [cfg.manifest]
        return make_clip_dataset(
            sources, size=(cfg.height, cfg.width), scales=cfg.scales, captions_path=cfg.captions
        )

    def _all_lora_params(self) -> list:
        params = self.mol.parameters()
        for param in params:
            param.requires_grad_(True)
        return params

    def _fill_cache(self) -> None:
        from sfi_bench.models.semfi.cache import LatentCache

        cfg = self.config
        self.cache = LatentCache(
            cfg.cache,
            {
                "manifest": str(cfg.manifest),
                "area": [cfg.height, cfg.width],
                "max_sequence_length": cfg.max_sequence_length,
                "base_model": self.mol.config.base_model,
                "dtype": cfg.mixed_precision,
            },
        )
        if self.accelerator.is_main_process:
            self.cache.check_settings()
        self.accelerator.wait_for_everyone()
        acc = self.accelerator
        mine = list(range(acc.process_index, len(self.dataset), acc.num_processes))
        self.cache.fill(self.pipe, self.dataset, mine, cfg.micro_batch, cfg.max_sequence_length, acc.device)
        acc.wait_for_everyone()
        self._encoders_to("cpu")  # the epoch reads the cache: UMT5 (~11 GB), CLIP and the VAE leave the GPU

    def _encoders_to(self, device) -> None:
        for module in (self.pipe.text_encoder, self.pipe.image_encoder, self.pipe.vae):
            module.to(device)

    # ----- checkpoints (semfi.checkpoint): LoRA, optimizer, schedule, step, RNG; never the frozen base ---------
    def checkpoint_dir(self) -> Path:
        return Path(self.config.out) / "checkpoints"

    def checkpoints(self) -> list[Path]:
        """The complete checkpoints, oldest first. step_N.tmp may hold a state file too (a crash between
        writing it and the rename): never one of them."""
        done = [
            p
            for p in self.checkpoint_dir().glob("step_*")
            if p.name.removeprefix("step_").isdigit() and (p / STATE_FILE).is_file()
        ]
        return sorted(done, key=lambda p: int(p.name.removeprefix("step_")))

    def latest_checkpoint(self) -> Path | None:
        done = self.checkpoints()
        return done[-1] if done else None

    def _resume(self) -> None:
        from sfi_bench.models.semfi import checkpoint

        latest = self.latest_checkpoint()
        if latest is not None:
            saved = checkpoint.read(latest, self.mol, self.optimizer, self.accelerator.process_index)
            self.scheduler.load_state_dict(saved["scheduler"])
            self.counter.load_state_dict(saved["counter"])

    def save_checkpoint(self) -> Path:
        """Written under a temporary name by every rank, then renamed by rank 0: a crash leaves no half."""
        from sfi_bench.models.semfi import checkpoint

        acc = self.accelerator
        final = self.checkpoint_dir() / f"step_{self.step:07d}"
        tmp = final.with_name(final.name + ".tmp")
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        acc.wait_for_everyone()
        tmp.mkdir(parents=True, exist_ok=True)
        schedule = {"scheduler": self.scheduler.state_dict(), "counter": self.counter.state_dict()}
        checkpoint.write(tmp, self.mol, self.optimizer, schedule, acc.process_index, acc.is_main_process)
        acc.wait_for_everyone()
        if acc.is_main_process:
            (tmp / STATE_FILE).write_text(json.dumps({"step": self.step, "config": self.config.record()}))
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
            if self.config.keep_checkpoints:  # only after the new one is complete
                for old in self.checkpoints()[: -self.config.keep_checkpoints]:
                    shutil.rmtree(old)
        acc.wait_for_everyone()
        return final

    # ----- one step ----------------------------------------------------------------------------------------
    def encode(self, indices: list[int]) -> dict:
        from sfi_bench.models.semfi.cache import encode_items

        if self.cache is not None:
            return self.cache.read(
                [self.dataset.rows[i]["clip_id"] for i in indices], self.accelerator.device
            )
        items = [self.dataset[i] for i in indices]
        return encode_items(self.pipe, items, self.config.max_sequence_length, self.accelerator.device)

    def batch_loss(self, indices: list[int], positions: list[int], step: int):
        """Per-clip losses of clips `indices`, with the noise of their batch positions at `step`."""
        import torch

        from sfi_bench.models.semfi.flow import draw_noise, item_generator, per_sample_loss

        encoded = self.encode(indices)
        draws = [
            draw_noise(
                tuple(encoded["x0"].shape[1:]), self.config.shift, item_generator(self.config.seed, step, p)
            )
            for p in positions
        ]
        noise = torch.stack([d[0] for d in draws]).to(encoded["x0"].device)
        sigmas = torch.cat([d[1] for d in draws]).to(encoded["x0"].device)
        return per_sample_loss(self.model, encoded, noise, sigmas, self.mol.transformer.dtype)

    def train_step(self, indices: list[int]) -> tuple[float, int]:
        """One optimizer step on one global batch of one scale; returns (mean loss, expert scale)."""
        import torch

        acc = self.accelerator
        scale = self.mol.activate(self.dataset.num_frames[indices[0]])
        self._all_lora_params()  # peft freezes inactive adapters on switch; DDP wants a fixed trainable set
        self.model.train()
        chunks = rank_share(len(indices), acc.num_processes, acc.process_index, self.config.micro_batch)
        # DDP averages gradients over ranks: weight world/B per real clip gives the mean over the global batch.
        weight = acc.num_processes / len(indices)
        total = torch.zeros((), device=acc.device)
        for i, chunk in enumerate(chunks):
            real = [p if p is not None else 0 for p in chunk]  # a padding slot re-uses clip 0 at weight 0
            losses = self.batch_loss([indices[p] for p in real], real, self.step)
            weights = torch.tensor([weight if p is not None else 0.0 for p in chunk], device=losses.device)
            loss = (losses * weights).sum()
            if i < len(chunks) - 1:
                with acc.no_sync(self.model):
                    acc.backward(loss)
            else:
                acc.backward(loss)
            total += loss.detach() / acc.num_processes
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(acc.reduce(total, reduction="sum")), scale

    # ----- evaluation & samples ----------------------------------------------------------------------------
    def fixed_loss(self, indices: list[int], step: int = 10**6) -> float:
        """The loss on given clips with fixed noise: comparable before and after training."""
        import torch

        self.mol.activate(self.dataset.num_frames[indices[0]])
        self.model.eval()
        with torch.no_grad():
            return float(self.batch_loss(indices, list(range(len(indices))), step).mean())

    def write_sample(self, index: int = 0) -> Path | None:
        """A video from the current adapters for one clip (first/last/caption of the dataset)."""
        import torch

        from sfi_bench.models.semfi.cache import to_uint8_images
        from sfi_bench.models.semfi.pipeline import SamplerSettings, sample_first_last
        from sfi_core.video import encode_video

        if not self.accelerator.is_main_process:
            return None
        item = self.dataset[index]
        first, last = (to_uint8_images(item[key][None])[0] for key in ("first_frame", "last_frame"))
        settings = SamplerSettings(
            steps=self.config.sample_steps,
            height=self.config.height,
            width=self.config.width,
            max_sequence_length=self.config.max_sequence_length,
        )
        self.mol.activate(item["num_frames"])
        self.model.eval()
        self._encoders_to(self.accelerator.device)
        with torch.inference_mode():
            frames, _ = sample_first_last(
                self.pipe, first, last, item["caption"], item["num_frames"], 0, settings
            )
        if self.cache is not None:
            self._encoders_to("cpu")
        path = Path(self.config.out) / "samples" / f"step_{self.step:07d}_{item['clip_id']}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        encode_video(frames, path, fps=16.0)
        return path

    # ----- loop --------------------------------------------------------------------------------------------
    def log(self, record: dict) -> None:
        if self.accelerator.is_main_process:
            with open(self.metrics_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record) + "\n")

    def batches(self, epoch: int) -> list[list[int]]:
        from sfi_core.dataset import ScaleBatchSampler

        # One sampler for all ranks (num_replicas=1): every rank sees the same global batch and scale.
        sampler = ScaleBatchSampler(
            self.dataset, self.config.global_batch, shuffle=True, seed=self.config.seed
        )
        sampler.set_epoch(epoch)
        return list(sampler)

    def train(self) -> dict:
        cfg = self.config
        stop = self.total_steps if cfg.max_steps is None else min(cfg.max_steps, self.total_steps)
        running: dict[int, list[float]] = defaultdict(list)
        while self.step < stop:
            epoch, offset = divmod(self.step, self.steps_per_epoch)
            batch = self.batches(epoch)[offset]
            lr = self.scheduler.get_last_lr()[0]
            started = time.perf_counter()
            loss, scale = self.train_step(batch)
            elapsed = time.perf_counter() - started
            self.counter.step += 1
            running[scale].append(loss)
            if self.step % cfg.log_every == 0 or self.step == stop:
                self.log(
                    {
                        "step": self.step,
                        "epoch": epoch,
                        "scale": scale,
                        "expert": f"expert_{scale}",
                        "loss": loss,
                        f"loss/{scale}": loss,
                        "loss_mean_by_scale": {
                            str(s): sum(v[-50:]) / len(v[-50:]) for s, v in running.items()
                        },
                        "lr": lr,
                        "step_time_s": elapsed,
                        "clips_per_s": len(batch) / elapsed,
                        "frames_per_s": len(batch) * scale / elapsed,
                    }
                )
            if cfg.save_every and (self.step % cfg.save_every == 0 or self.step == stop):
                self.save_checkpoint()
            if cfg.sample_every and self.step % cfg.sample_every == 0:
                self.write_sample()
        self.accelerator.wait_for_everyone()
        final = self.mol.save(Path(cfg.out) / "adapters", write=self.accelerator.is_main_process)
        return {
            "steps": self.step,
            "total_steps": self.total_steps,
            "adapters": str(final),
            "metrics": str(self.metrics_path),
            "steps_per_epoch": self.steps_per_epoch,
            "processes": self.accelerator.num_processes,
            "strategy": strategy(self.accelerator, self.model),
            "epochs": math.ceil(stop / self.steps_per_epoch),
        }

    def close(self) -> None:
        """After a finished run, drop the model, then end the process group: a group a sharded model still
        holds at interpreter exit aborted 2 in 25 finished FSDP2 runs here. Not after an error (it waits
        for every rank)."""
        if self.accelerator is None:
            return
        self.accelerator.wait_for_everyone()
        self.model = self.optimizer = self.scheduler = self.mol = self.pipe = self.cache = None
        self.accelerator.free_memory()  # its references to the prepared model and optimizer, then gc
        self.accelerator.end_training()  # trackers, then destroy_process_group
        self.accelerator = None

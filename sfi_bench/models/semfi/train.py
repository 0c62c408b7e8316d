"""SemFi training (paper 4.1): frozen Wan2.1-I2V, only the Mixture-of-LoRA learns, Wan's flow-matching loss.

Each optimizer step takes one global batch of a single scale (ScaleBatchSampler); that step trains the
universal LoRA and that scale's expert. Every rank takes its share of the same batch, so all ranks route to
the same expert; accumulation fills the global batch. Multi-GPU runs go through `accelerate launch`.
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

from sfi_core.constants import FRAME_COUNTS


@dataclass
class TrainConfig:
    manifest: Path
    out: Path
    weights: str | None = None  # Wan2.1-I2V diffusers folder or cached HF id; None: the weights table
    weights_dir: Path | None = None
    captions: Path | None = None
    epochs: int = 1
    max_steps: int | None = None  # stop early (tests, smoke runs)
    global_batch: int = 32
    micro_batch: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup_steps: int = 0
    height: int = 480
    width: int = 832
    shift: float = 5.0  # timestep shift of the training noise schedule (Wan/DiffSynth training default)
    rank: int = 16
    alpha: float = 16.0
    scales: tuple[int, ...] = FRAME_COUNTS
    mixed_precision: str = "bf16"  # bf16 | no
    gradient_checkpointing: bool = True
    max_sequence_length: int = 512
    save_every: int = 500
    sample_every: int = 500  # 0: never
    sample_steps: int = 30
    log_every: int = 1
    num_workers: int = 2
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(self).items()}


def flow_matching_sigmas(batch: int, shift: float, generator, device) -> Any:
    """Noise levels sigma in (0, 1): uniform, then shifted toward noise as Wan's sampler schedule is."""
    import torch

    u = torch.rand(batch, generator=generator).to(device)
    return shift * u / (1 + (shift - 1) * u)


def flow_matching_target(x0, noise):
    """Wan predicts the velocity d x_t / d sigma of x_t = (1 - sigma) x0 + sigma noise."""
    return noise - x0


def noisy_latents(x0, noise, sigmas):
    s = sigmas.view(-1, 1, 1, 1, 1).to(x0)
    return (1 - s) * x0 + s * noise


def to_uint8_images(images) -> list:
    """(B, 3, H, W) float [0, 1] -> list of uint8 (H, W, 3) arrays, what the CLIP processor gets at inference."""
    import numpy as np
    import torch

    arrays = (images.clamp(0, 1) * 255).round().to("cpu", dtype=torch.uint8).numpy()
    return [np.ascontiguousarray(a.transpose(1, 2, 0)) for a in arrays]


class SemFiTrainer:
    """Loads the backbone once, attaches (or resumes) the MoL, and runs the training loop."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.step = 0
        self.accelerator = None
        self.pipe = None
        self.mol = None
        self.optimizer = None
        self.model = None
        self.dataset = None
        self.metrics_path = Path(config.out) / "metrics.jsonl"

    # ----- setup -------------------------------------------------------------------------------------------
    def setup(self) -> None:
        import torch
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        from sfi_bench.models.semfi.model import load_wan_pipeline
        from sfi_bench.models.semfi.mol import MixtureOfLoRA, MoLConfig
        from sfi_bench.models.semfi.pipeline import semfi_pipeline_class
        from sfi_core.dataset import SFIClipDataset
        from sfi_core.weights import resolve_folder

        cfg = self.config
        if cfg.global_batch % cfg.micro_batch:
            raise ValueError(
                f"global_batch {cfg.global_batch} is not a multiple of micro_batch {cfg.micro_batch}"
            )
        # Experts not routed to in a step get no gradient: DDP must allow unused parameters.
        self.accelerator = Accelerator(
            mixed_precision=cfg.mixed_precision,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
        )
        if cfg.global_batch % self.accelerator.num_processes:
            raise ValueError(
                f"global_batch {cfg.global_batch} does not split over "
                f"{self.accelerator.num_processes} processes"
            )
        folder = resolve_folder("wan2.1-i2v-14b-480p", cfg.weights_dir, cfg.weights)
        base_dtype = torch.bfloat16 if cfg.mixed_precision == "bf16" else torch.float32
        device = str(self.accelerator.device)
        self.pipe = load_wan_pipeline(semfi_pipeline_class(), folder, device, base_dtype)
        transformer = self.pipe.transformer
        for module in (transformer, self.pipe.vae, self.pipe.text_encoder, self.pipe.image_encoder):
            module.requires_grad_(False)
        self.mol = MixtureOfLoRA.attach(
            transformer,
            MoLConfig(rank=cfg.rank, alpha=cfg.alpha, scales=tuple(cfg.scales), base_model=str(folder)),
        )
        for param in self.mol.parameters():
            param.data = param.data.float()  # adapters train in float32; the frozen base may be bf16
        if cfg.gradient_checkpointing:
            transformer.enable_gradient_checkpointing()
        self.optimizer = torch.optim.AdamW(self._all_lora_params(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.dataset = SFIClipDataset(
            cfg.manifest, size=(cfg.height, cfg.width), scales=cfg.scales, captions_path=cfg.captions
        )
        if len(self.dataset) == 0:
            raise ValueError(f"{cfg.manifest} has no usable clips at scales {cfg.scales}")
        self._resume()
        self.model, self.optimizer = self.accelerator.prepare(transformer, self.optimizer)
        if self.accelerator.is_main_process:
            Path(cfg.out).mkdir(parents=True, exist_ok=True)
            (Path(cfg.out) / "train_config.json").write_text(json.dumps(cfg.record(), indent=2))

    def _all_lora_params(self) -> list:
        params = self.mol.parameters()
        for param in params:
            param.requires_grad_(True)
        return params

    # ----- checkpoints -------------------------------------------------------------------------------------
    def checkpoint_dir(self) -> Path:
        return Path(self.config.out) / "checkpoints"

    def latest_checkpoint(self) -> Path | None:
        done = [p for p in self.checkpoint_dir().glob("step_*") if (p / "state.json").is_file()]
        return max(done, key=lambda p: int(p.name.removeprefix("step_"))) if done else None

    def _resume(self) -> None:
        import torch
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        latest = self.latest_checkpoint()
        if latest is None:
            return
        for name in self.mol.config.adapter_names:
            set_peft_model_state_dict(
                self.mol.transformer,
                load_file(latest / "adapters" / f"{name}.safetensors"),
                adapter_name=name,
            )
        self.optimizer.load_state_dict(
            torch.load(latest / "optimizer.pt", map_location="cpu", weights_only=True)
        )
        self.step = json.loads((latest / "state.json").read_text())["step"]

    def save_checkpoint(self) -> Path | None:
        """Adapters + optimizer + step, written to a temporary folder and renamed (a crash leaves no half)."""
        import torch

        self.accelerator.wait_for_everyone()
        if not self.accelerator.is_main_process:
            return None
        final = self.checkpoint_dir() / f"step_{self.step:07d}"
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.mol.save(tmp / "adapters")
        torch.save(self.optimizer.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps({"step": self.step}))
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        return final

    # ----- one step ----------------------------------------------------------------------------------------
    def encode_batch(self, items: list[dict]) -> dict:
        """Frozen encoders: target latents, conditioning (mask + guidance latents), text and summed CLIP."""
        import torch

        from sfi_bench.models.semfi.conditioning import condition_latents, encode_video, summed_clip_embeds

        num_frames = {item["num_frames"] for item in items}
        if len(num_frames) != 1:
            raise ValueError(f"a batch must hold one scale, got frame counts {sorted(num_frames)}")
        (n,) = num_frames
        device = self.accelerator.device
        frames = torch.stack([item["frames"] for item in items]).to(device)  # (B, N, 3, H, W)
        first = torch.stack([item["first_frame"] for item in items]).to(device)
        last = torch.stack([item["last_frame"] for item in items]).to(device)
        with torch.no_grad():
            x0 = encode_video(self.pipe.vae, frames.permute(0, 2, 1, 3, 4) * 2 - 1)
            condition = condition_latents(self.pipe.vae, first * 2 - 1, last * 2 - 1, n)
            text, _ = self.pipe.encode_prompt(
                [item["caption"] for item in items],
                do_classifier_free_guidance=False,
                max_sequence_length=self.config.max_sequence_length,
                device=device,
            )
            image = summed_clip_embeds(
                self.pipe.image_encoder,
                self.pipe.image_processor,
                to_uint8_images(first),
                to_uint8_images(last),
            )
        return {"x0": x0, "condition": condition, "text": text, "image": image, "num_frames": n}

    def loss(self, encoded: dict, generator) -> Any:
        import torch
        import torch.nn.functional as F

        x0 = encoded["x0"]
        noise = torch.randn(x0.shape, generator=generator).to(x0)
        sigmas = flow_matching_sigmas(x0.shape[0], self.config.shift, generator, x0.device)
        x_t = noisy_latents(x0, noise, sigmas)
        dtype = self.mol.transformer.dtype
        with self.accelerator.autocast():
            prediction = self.model(
                hidden_states=torch.cat([x_t, encoded["condition"]], dim=1).to(dtype),
                timestep=sigmas * 1000,
                encoder_hidden_states=encoded["text"].to(dtype),
                encoder_hidden_states_image=encoded["image"].to(dtype),
                return_dict=False,
            )[0]
        return F.mse_loss(prediction.float(), flow_matching_target(x0, noise).float())

    def train_step(self, indices: list[int], generator) -> tuple[float, int]:
        """One optimizer step on one global batch of one scale; returns (mean loss, expert scale)."""
        acc = self.accelerator
        mine = indices[acc.process_index :: acc.num_processes]
        scale = self.mol.activate(self.dataset.num_frames[indices[0]])
        self._all_lora_params()  # peft freezes inactive adapters on switch; DDP wants a fixed trainable set
        self.model.train()
        chunks = [mine[i : i + self.config.micro_batch] for i in range(0, len(mine), self.config.micro_batch)]
        total = 0.0
        for i, chunk in enumerate(chunks):
            encoded = self.encode_batch([self.dataset[j] for j in chunk])
            loss = self.loss(encoded, generator) * len(chunk) / len(mine)
            if i < len(chunks) - 1:
                with acc.no_sync(self.model):
                    acc.backward(loss)
            else:
                acc.backward(loss)
            total += float(loss.detach())
        lr = self.current_lr()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total, scale

    def current_lr(self) -> float:
        if self.config.warmup_steps and self.step < self.config.warmup_steps:
            return self.config.lr * (self.step + 1) / self.config.warmup_steps
        return self.config.lr

    # ----- evaluation & samples ----------------------------------------------------------------------------
    def fixed_loss(self, indices: list[int], seed: int = 1234) -> float:
        """The loss on given clips with fixed noise: comparable before and after training."""
        import torch

        self.mol.activate(self.dataset.num_frames[indices[0]])
        self.model.eval()
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            return float(self.loss(self.encode_batch([self.dataset[i] for i in indices]), generator))

    def write_sample(self, index: int = 0) -> Path | None:
        """A video from the current adapters for one clip (first/last/caption of the dataset)."""
        from sfi_bench.models.semfi.pipeline import SamplerSettings, sample_first_last
        from sfi_core.video import encode_video

        if not self.accelerator.is_main_process:
            return None
        item = self.dataset[index]
        first, last = (
            to_uint8_images(item["first_frame"][None])[0],
            to_uint8_images(item["last_frame"][None])[0],
        )
        settings = SamplerSettings(
            steps=self.config.sample_steps,
            height=self.config.height,
            width=self.config.width,
            max_sequence_length=self.config.max_sequence_length,
        )
        self.mol.activate(item["num_frames"])
        self.model.eval()
        import torch

        with torch.inference_mode():
            frames, _ = sample_first_last(
                self.pipe, first, last, item["caption"], item["num_frames"], 0, settings
            )
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
        import torch

        cfg = self.config
        per_epoch = len(self.batches(0))
        total_steps = (
            per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * cfg.epochs)
        )
        running: dict[int, list[float]] = defaultdict(list)
        while self.step < total_steps:
            epoch, offset = divmod(self.step, per_epoch)
            batch = self.batches(epoch)[offset]
            generator = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step)
            started = time.perf_counter()
            loss, scale = self.train_step(batch, generator)
            elapsed = time.perf_counter() - started
            self.step += 1
            running[scale].append(loss)
            if self.step % cfg.log_every == 0 or self.step == total_steps:
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
                        "lr": self.optimizer.param_groups[0]["lr"],
                        "step_time_s": elapsed,
                        "clips_per_s": len(batch) / elapsed,
                        "frames_per_s": len(batch) * scale / elapsed,
                    }
                )
            if cfg.save_every and (self.step % cfg.save_every == 0 or self.step == total_steps):
                self.save_checkpoint()
            if cfg.sample_every and self.step % cfg.sample_every == 0:
                self.write_sample()
        self.accelerator.wait_for_everyone()
        final = None
        if self.accelerator.is_main_process:
            final = self.mol.save(Path(cfg.out) / "adapters")
        return {
            "steps": self.step,
            "total_steps": total_steps,
            "adapters": str(final) if final else None,
            "metrics": str(self.metrics_path),
            "steps_per_epoch": per_epoch,
            "epochs": math.ceil(total_steps / per_epoch),
        }

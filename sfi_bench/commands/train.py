"""`sfi-bench train` (SemFi Mixture-of-LoRA training) and `sfi-bench make-tiny-wan` (tiny random Wan folders)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sfi_bench.app import app
from sfi_core.constants import FRAME_COUNTS

console = Console()


@app.command("train")
def train_command(
    manifest: Annotated[
        list[str],
        typer.Argument(
            help="Training clips: a manifest (e.g. DIR/train.parquet), or WebDataset shards of "
            "`sfi-data export` (SHARDS/train-{000000..000012}.tar, the tar files, or SHARDS/train-index.json)."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run folder: checkpoints/, adapters/, metrics.jsonl.")
    ],
    weights: Annotated[
        str | None,
        typer.Option(help="Wan2.1-I2V-14B-480P folder (diffusers or the official layout) or cached HF id."),
    ] = None,
    weights_dir: Annotated[Path | None, typer.Option(help="Folder holding weight folders.")] = None,
    captions: Annotated[
        Path | None, typer.Option(help="Captions parquet (default: captions.parquet beside).")
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(
            help="Latent cache folder: VAE/UMT5/CLIP outputs encoded once (resumable), no decoding per epoch."
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Passes over the manifest (paper: 1).")] = 1,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many optimizer steps.")] = None,
    global_batch: Annotated[int, typer.Option(help="Clips per optimizer step, all ranks (paper: 32).")] = 32,
    micro_batch: Annotated[
        int, typer.Option(help="Clips per forward; the rest is gradient accumulation.")
    ] = 1,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (paper: 1e-4).")] = 1e-4,
    warmup_steps: Annotated[int, typer.Option(help="Linear warm-up steps, then a cosine decay.")] = 100,
    min_lr_ratio: Annotated[float, typer.Option(help="The cosine ends at lr * this.")] = 0.0,
    height: Annotated[
        int, typer.Option(help="Area height: each clip keeps its aspect at height*width pixels (paper: 480).")
    ] = 480,
    width: Annotated[int, typer.Option(help="Area width (paper: 832).")] = 832,
    rank: Annotated[int, typer.Option(help="LoRA rank of all 7 adapters (paper: 16).")] = 16,
    scale: Annotated[list[int] | None, typer.Option("--scale", help="Expert scales (default: S).")] = None,
    mixed_precision: Annotated[
        str, typer.Option(help="bf16: frozen base in bf16, LoRA in fp32; no: all fp32.")
    ] = "bf16",
    gradient_checkpointing: Annotated[bool, typer.Option(help="Recompute activations in backward.")] = True,
    max_sequence_length: Annotated[int, typer.Option(help="UMT5 tokens per caption.")] = 512,
    save_every: Annotated[
        int, typer.Option(help="Checkpoint every K steps (resume picks the latest).")
    ] = 500,
    keep_checkpoints: Annotated[
        int, typer.Option(help="Delete all but the latest K checkpoints (0: keep all; 7.0 GiB each at 14B).")
    ] = 0,
    sample_every: Annotated[int, typer.Option(help="Write a sample video every K steps (0: never).")] = 500,
    sample_steps: Annotated[int, typer.Option(help="Sampler steps of those sample videos.")] = 30,
    seed: Annotated[int, typer.Option(help="Batch order and noise seed.")] = 0,
    cache_only: Annotated[
        bool, typer.Option(help="Fill --cache and stop (a separate, resumable encoding pass).")
    ] = False,
) -> None:
    """Train SemFi's MoL on a frozen Wan2.1-I2V. Multi-GPU: `accelerate launch --config_file
    configs/accelerate/fsdp2_8gpu.yaml $(which sfi-bench) train ...` (docs/semfi.md)."""
    from sfi_bench.models.semfi.train import SemFiTrainer, TrainConfig
    from sfi_core.weights import WeightsMissingError

    config = TrainConfig(
        manifest=manifest,
        out=out,
        weights=weights,
        weights_dir=weights_dir,
        captions=captions,
        cache=cache,
        epochs=epochs,
        max_steps=max_steps,
        global_batch=global_batch,
        micro_batch=micro_batch,
        lr=lr,
        warmup_steps=warmup_steps,
        min_lr_ratio=min_lr_ratio,
        height=height,
        width=width,
        rank=rank,
        alpha=float(rank),
        scales=tuple(scale) if scale else FRAME_COUNTS,
        mixed_precision=mixed_precision,
        gradient_checkpointing=gradient_checkpointing,
        max_sequence_length=max_sequence_length,
        save_every=save_every,
        keep_checkpoints=keep_checkpoints,
        sample_every=sample_every,
        sample_steps=sample_steps,
        seed=seed,
    )
    if cache_only and cache is None:
        console.print("[red]--cache-only needs --cache DIR (where the encoded clips go)[/]")
        raise typer.Exit(2)
    trainer = SemFiTrainer(config)
    try:
        trainer.setup()
    except (WeightsMissingError, ValueError, FileNotFoundError) as err:
        console.print(f"[red]{err}[/]")
        raise typer.Exit(2) from err
    main_process = trainer.accelerator.is_main_process
    if cache_only:
        trainer.close()
        if main_process:
            console.print(f"cached {len(trainer.dataset)} clips in {cache}")
        return
    if trainer.step and main_process:
        console.print(f"resumed from step {trainer.step}")
    summary = trainer.train()
    trainer.close()
    if main_process:
        console.print(
            f"trained {summary['steps']} steps on {summary['processes']} processes "
            f"({summary['strategy']}); "
            f"adapters in {summary['adapters']}; "
            f"log in {summary['metrics']}"
        )


@app.command("make-tiny-wan")
def make_tiny_wan_command(
    folder: Annotated[Path, typer.Argument(help="Where to write the diffusers folder.")],
    flf2v: Annotated[
        bool, typer.Option(help="A first-last-frame (FLF2V) transformer instead of I2V.")
    ] = False,
    adapters: Annotated[
        bool, typer.Option(help="Also write random SemFi adapters in FOLDER/semfi_mol.")
    ] = True,
    seed: Annotated[int, typer.Option(help="Weight seed.")] = 0,
) -> None:
    """Write a tiny random-weight Wan2.1 folder (real architecture) for demos and tests: no download."""
    from sfi_bench.models.semfi.tiny import TINY_HEIGHT, TINY_WIDTH, TinyWanConfig, save_tiny_semfi

    save_tiny_semfi(folder, TinyWanConfig(flf2v=flf2v, seed=seed), adapters=adapters)
    model = "wan-flf2v" if flf2v else "semfi"
    console.print(
        f"wrote {folder}. Try: sfi-bench run --model {model} --weights {folder} --clips CLIPS --out OUT "
        f"--option height={TINY_HEIGHT} --option width={TINY_WIDTH} --option steps=2 "
        f"--option max_sequence_length=16"
    )

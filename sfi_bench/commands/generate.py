"""`sfi-bench generate`: one sample from two images and a prompt, no manifest (same models, weights, options)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sfi_bench.app import app
from sfi_core.cli_errors import fail

console = Console()


def read_rgb(path: Path):
    """An image file as uint8 RGB (H, W, 3); a missing or unreadable file is a one-line error."""
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if image is None:
        console.print(f"[red]cannot read the image {path}: give a PNG or JPEG file[/]")
        raise typer.Exit(2)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@app.command("generate")
def generate_command(
    first: Annotated[Path, typer.Option("--first", help="First frame (PNG/JPEG).")],
    last: Annotated[Path, typer.Option("--last", help="Last frame, same size as the first.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output video (.mp4); a .json beside records settings.")
    ],
    frames: Annotated[
        int, typer.Option("--frames", "-n", help="N: frames in the output, endpoints included.")
    ],
    prompt: Annotated[str, typer.Option(help="What happens between the two frames.")] = "",
    model: Annotated[str, typer.Option("--model", "-m", help="A name from `sfi-bench models`.")] = "semfi",
    weights: Annotated[str | None, typer.Option(help="Weights file/folder for the model.")] = None,
    weights_dir: Annotated[Path | None, typer.Option(help="Folder holding weight files.")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="Model option KEY=VALUE (repeatable), as for `run`.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto (GPU when there is one), cpu or cuda.")] = "auto",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    fps: Annotated[float, typer.Option(help="Frame rate written into the video.")] = 16.0,
) -> None:
    """Interpolate N frames between --first and --last; the video has the first image's size."""
    from sfi_bench.commands.run import parse_options
    from sfi_bench.models import SFIRequest, make_model
    from sfi_bench.testset import resize_frames
    from sfi_core.video import encode_video
    from sfi_core.weights import WeightsMissingError

    first_image, last_image = read_rgb(first), read_rgb(last)
    if first_image.shape != last_image.shape:
        console.print(
            f"[red]{first} is {first_image.shape[1]}x{first_image.shape[0]} but {last} is "
            f"{last_image.shape[1]}x{last_image.shape[0]}: give two images of one size[/]"
        )
        raise typer.Exit(2)
    options = parse_options(option)
    if weights_dir:
        options.setdefault("weights_dir", str(weights_dir))
    request = SFIRequest(
        clip_id=out.stem,
        first_frame=first_image,
        last_frame=last_image,
        prompt=prompt,
        num_frames=frames,
        seed=seed,
    )
    try:
        sfi_model = make_model(model, device=device, weights=weights, **options)
        sfi_model.load()
        result = sfi_model.generate(request)
    except (WeightsMissingError, ValueError, FileNotFoundError) as err:
        fail(str(err))
    video = result.frames
    height, width = first_image.shape[:2]
    if video.shape[1:3] != (height, width):
        video = resize_frames(video, height, width)  # back to the input's size, once
    out.parent.mkdir(parents=True, exist_ok=True)
    encode_video(video, out, fps=fps)
    record = {"model": model, "first": str(first), "last": str(last), "prompt": prompt, "num_frames": frames}
    out.with_suffix(".json").write_text(json.dumps(record | {"info": result.info}, indent=2, default=str))
    console.print(f"wrote {out} ({len(video)} frames, {width}x{height})")

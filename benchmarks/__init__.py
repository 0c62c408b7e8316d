"""`make bench`: every benchmarks/bench_*.py module's main(), each printing ratios against a baseline run in the same process."""

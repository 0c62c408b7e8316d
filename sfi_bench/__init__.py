"""sfi_bench: SFIBench (paper section 3.3.2) — run SFI models on test clips, score them, rank them."""

__version__ = "0.1.0"

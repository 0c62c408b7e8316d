"""SemFi (paper section 3.2) and the Wan2.1 FLF2V baseline: conditioning, Mixture-of-LoRA, sampling, training."""

from sfi_bench.models.semfi.model import SemFiModel, WanFLF2VModel

__all__ = ["SemFiModel", "WanFLF2VModel"]

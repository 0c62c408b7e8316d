"""`semfi` and `wan-flf2v` for sfi-bench: Wan2.1 first+last-frame generation behind the SFIModel contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult
from sfi_bench.models.semfi.pipeline import (
    SamplerSettings,
    generated_length,
    sample_first_last,
    semfi_pipeline_class,
)
from sfi_core.device import resolve_device
from sfi_core.weights import WeightsMissingError, resolve_folder

ADAPTERS_SUBFOLDER = "semfi_mol"  # where make-tiny-wan and `sfi-bench train` put adapters next to a model
_LOAD_OPTIONS = ("adapters", "dtype", "cpu_offload", "weights_dir")
_TRUE = {"1", "true", "yes", "on"}


def pick_dtype(name: str | None, device: str):
    """bf16 on GPU (Wan's inference precision), float32 on CPU unless asked otherwise."""
    import torch

    if name is None:
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    dtypes = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }
    if name not in dtypes:
        raise ValueError(f"unknown dtype {name!r}; use one of {sorted(dtypes)}")
    return dtypes[name]


def component_dtypes(dtype) -> dict:
    """Per-component load dtypes: the VAE and the CLIP image encoder in float32 (as Wan runs them), the rest
    (transformer, UMT5) in `dtype`. Loading them in float32 directly keeps every fp32 checkpoint value;
    loading in bf16 and casting up afterwards would not."""
    import torch

    return {"vae": torch.float32, "image_encoder": torch.float32, "default": dtype}


def load_wan_pipeline(pipeline_class, folder: Path, device: str, dtype, cpu_offload: bool = False):
    """A Wan I2V/FLF2V folder, diffusers or official layout -> pipeline on `device`, each component in its
    own dtype; the transformer is read tensor by tensor in `dtype` (wan_official.load_pipeline)."""
    from sfi_bench.models.semfi.wan_official import load_pipeline

    # Straight onto the GPU tensor by tensor (no host copy of the 14B transformer), unless offloading.
    direct = device if device.startswith("cuda") and not cpu_offload else None
    pipe = load_pipeline(pipeline_class, folder, component_dtypes(dtype), device=direct)
    pipe.set_progress_bar_config(disable=True)
    if cpu_offload:
        # Each component moves to the GPU only while it runs (memory: not yet measured at 14B).
        pipe.enable_model_cpu_offload(device=device if device.startswith("cuda") else None)
    else:
        pipe.to(device)
    return pipe


class _WanFirstLastModel(SFIModel):
    """Shared loading/sampling; subclasses choose the pipeline, the checkpoint and the expected transformer."""

    weights_name: ClassVar[str] = ""
    default_settings: ClassVar[dict[str, Any]] = {}
    requirements = (
        "weights: Wan2.1 folder, diffusers or official layout (~70-80 GB on disk; bf16 in memory)",
        "GPU (memory not yet measured), or cpu_offload=true",
    )

    def __init__(self, device: str = "auto", weights: str | None = None, **options: Any) -> None:
        super().__init__(device=device, weights=weights, **options)
        sampler_options = {k: v for k, v in options.items() if k not in _LOAD_OPTIONS}
        self.settings = SamplerSettings.from_options(sampler_options, **self.default_settings)
        self.pipe = None
        self.folder: Path | None = None

    def _pipeline_class(self):
        raise NotImplementedError

    def _check_transformer(self, transformer) -> None:
        raise NotImplementedError

    def load(self) -> None:
        if self.pipe is not None:
            return
        weights_dir = self.options.get("weights_dir")
        self.folder = resolve_folder(
            self.weights_name, Path(weights_dir) if weights_dir else None, self.weights
        )
        self.device = resolve_device(self.device)
        dtype = pick_dtype(self.options.get("dtype"), self.device)
        cpu_offload = str(self.options.get("cpu_offload", "false")).lower() in _TRUE
        self.pipe = load_wan_pipeline(self._pipeline_class(), self.folder, self.device, dtype, cpu_offload)
        self._check_transformer(self.pipe.transformer)
        self.dtype = str(dtype).removeprefix("torch.")

    def _before_sample(self, num_frames: int) -> dict[str, Any]:
        return {}

    def generate(self, request: SFIRequest) -> SFIResult:
        import torch

        if self.pipe is None:
            self.load()
        routing = self._before_sample(request.num_frames)
        with torch.inference_mode():
            frames, info = sample_first_last(
                self.pipe,
                request.first_frame,
                request.last_frame,
                request.prompt,
                request.num_frames,
                request.seed,
                self.settings,
            )
        info |= routing | {"model": self.name, "weights": str(self.folder), "dtype": self.dtype}
        return SFIResult(frames=frames, info=info)


class SemFiModel(_WanFirstLastModel):
    name = "semfi"
    version = "1.0"
    description = "SemFi: Wan2.1-I2V-14B with first+last conditioning (summed CLIP) and Mixture-of-LoRA"
    weights_name = "wan2.1-i2v-14b-480p"
    requirements = _WanFirstLastModel.requirements + ("weights: SemFi MoL adapters (semfi-mol)",)

    def __init__(self, device: str = "auto", weights: str | None = None, **options: Any) -> None:
        super().__init__(device=device, weights=weights, **options)
        self.mol = None
        self.adapters: Path | None = None

    def _pipeline_class(self):
        return semfi_pipeline_class()

    def _check_transformer(self, transformer) -> None:
        if transformer.config.pos_embed_seq_len is not None:
            raise ValueError(
                f"{self.folder} holds a first-last-frame (FLF2V) transformer; SemFi is built on the "
                f"Wan2.1 I2V model (one image's CLIP tokens). Use --model wan-flf2v for this folder."
            )

    def _adapter_folder(self) -> Path | None:
        """adapters=DIR, else <weights>/semfi_mol, else the weights table; adapters=none runs the bare backbone."""
        explicit = self.options.get("adapters")
        if explicit is not None and str(explicit).lower() == "none":
            return None
        if explicit is None and self.folder is not None and (self.folder / ADAPTERS_SUBFOLDER).is_dir():
            explicit = self.folder / ADAPTERS_SUBFOLDER
        weights_dir = self.options.get("weights_dir")
        try:
            return resolve_folder("semfi-mol", Path(weights_dir) if weights_dir else None, explicit)
        except WeightsMissingError as err:
            raise WeightsMissingError(
                f"{err}\nTo run the backbone without adapters, pass adapters=none."
            ) from err

    def load(self) -> None:
        if self.pipe is not None:
            return
        super().load()
        from sfi_bench.models.semfi.mol import MixtureOfLoRA

        self.adapters = self._adapter_folder()
        if self.adapters is not None:
            # peft places each LoRA layer on its base layer's device; the adapters stay float32.
            self.mol = MixtureOfLoRA.load(self.pipe.transformer, self.adapters)

    def _before_sample(self, num_frames: int) -> dict[str, Any]:
        if self.mol is None:
            return {"expert": None, "adapters": None}
        generated = generated_length(num_frames, self.settings)
        scale = self.mol.activate(generated)
        return {
            "expert": scale,
            "expert_routed_by": f"{generated} frames generated",
            "active_adapters": self.mol.active_adapters(),
            "adapters": str(self.adapters),
        }


class WanFLF2VModel(_WanFirstLastModel):
    name = "wan-flf2v"
    version = "1.0"
    description = (
        "Wan2.1-FLF2V-14B-720P: official first-last-frame model (2 x 257 CLIP tokens + position embedding)"
    )
    weights_name = "wan2.1-flf2v-14b-720p"
    # Wan2.1 generate.py's FLF2V defaults (shift 16, 50 steps, its negative prompt); the paper compares at
    # 480x832 (Table A1), so the area stays 480x832 unless overridden.
    default_settings = {"task": "flf2v"}

    def _pipeline_class(self):
        from diffusers import WanImageToVideoPipeline

        return WanImageToVideoPipeline

    def _check_transformer(self, transformer) -> None:
        if transformer.config.pos_embed_seq_len is None:
            raise ValueError(
                f"{self.folder} holds a single-image I2V transformer (no CLIP position embedding "
                f"for two frames); wan-flf2v needs Wan2.1-FLF2V. Use --model semfi for this folder."
            )

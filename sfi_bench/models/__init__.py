"""The lazy model registry: "name" -> "module:Class"; a backend is imported only when asked for."""

from __future__ import annotations

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult
from sfi_core.registry import Registry, UnknownNameError

# Add models here; the module is imported only when the model is used.
MODEL_REGISTRY: dict[str, str] = {
    "semfi": "sfi_bench.models.semfi:SemFiModel",
    "wan-flf2v": "sfi_bench.models.semfi:WanFLF2VModel",
    "film": "sfi_bench.models.film:FilmModel",
    "gi": "sfi_bench.models.official:GenerativeInbetweeningModel",
    "fcvg": "sfi_bench.models.official:FCVGModel",
    "rife": "sfi_bench.models.rife:RifeModel",
    "flow-warp": "sfi_bench.models.flow_warp:FlowWarpModel",
    "linear": "sfi_bench.models.simple:LinearModel",
    "repeat": "sfi_bench.models.simple:RepeatModel",
}


class UnknownModelError(UnknownNameError):
    pass


MODELS: Registry[type[SFIModel]] = Registry("model", SFIModel, MODEL_REGISTRY, UnknownModelError)

# The model class registered as a name, and an instance of it.
model_class = MODELS.get
make_model = MODELS.create


__all__ = ["MODELS", "MODEL_REGISTRY", "SFIModel", "SFIRequest", "SFIResult", "make_model", "model_class"]

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


def model_class(name: str) -> type[SFIModel]:
    return MODELS.get(name)


def make_model(name: str, **kwargs) -> SFIModel:
    return model_class(name)(**kwargs)


__all__ = ["MODELS", "MODEL_REGISTRY", "SFIModel", "SFIRequest", "SFIResult", "make_model", "model_class"]

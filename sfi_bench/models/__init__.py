"""The lazy model registry: "name" -> "module:Class"; a backend is imported only when asked for."""

from __future__ import annotations

import difflib
import importlib

from sfi_bench.models.base import SFIModel, SFIRequest, SFIResult

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


class UnknownModelError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def model_class(name: str) -> type[SFIModel]:
    if name not in MODEL_REGISTRY:
        close = difflib.get_close_matches(name, MODEL_REGISTRY, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownModelError(f"unknown model {name!r}.{hint} Known: {', '.join(sorted(MODEL_REGISTRY))}")
    module_name, _, class_name = MODEL_REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_model(name: str, **kwargs) -> SFIModel:
    return model_class(name)(**kwargs)


__all__ = ["MODEL_REGISTRY", "SFIModel", "SFIRequest", "SFIResult", "make_model", "model_class"]

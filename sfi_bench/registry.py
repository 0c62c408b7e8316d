"""Lazy "name" -> "module:Class" lookup shared by the model and metric registries (lm-eval style)."""

from __future__ import annotations

import difflib
import importlib


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists close matches and every known name."""

    def __str__(self) -> str:
        return str(self.args[0])


def lazy_lookup(
    registry: dict[str, str], name: str, kind: str, error: type[UnknownNameError] = UnknownNameError
):
    """Import and return the class registered as `name`; only that backend's module is imported."""
    if name not in registry:
        close = difflib.get_close_matches(name, registry, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise error(f"unknown {kind} {name!r}.{hint} Known: {', '.join(sorted(registry))}")
    module_name, _, class_name = registry[name].partition(":")
    return getattr(importlib.import_module(module_name), class_name)

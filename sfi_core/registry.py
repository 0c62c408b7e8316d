"""One registry type for models, metrics, pipeline steps and scene detectors (lm-eval style).

An entry is either an object or a lazy "module:attr" string, imported on first lookup, so a heavy
backend is loaded only when asked for. A lookup checks the entry against the registry's base type and
an unknown name answers with close matches and every known name.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """An unknown registry name; the message lists close matches and every known name."""

    def __str__(self) -> str:
        return str(self.args[0])


class Registry(Generic[T]):
    def __init__(
        self,
        kind: str,
        base: type | None = None,
        entries: dict[str, T | str] | None = None,
        error: type[UnknownNameError] = UnknownNameError,
    ) -> None:
        self.kind = kind
        self.base = base
        self.error = error
        self._entries: dict[str, T | str] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    def register(self, name: str, entry: T | str) -> None:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def target(self, name: str) -> T | str:
        """The raw entry (a "module:attr" string stays a string): for listings that must not import."""
        self._check_name(name)
        return self._entries[name]

    def get(self, name: str) -> T:
        self._check_name(name)
        entry = self._entries[name]
        if isinstance(entry, str) and ":" in entry:
            module_name, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module_name), attr)
        if self.base is not None and not _is_a(entry, self.base):
            raise TypeError(f"{self.kind} {name!r} is {entry!r}, not a {self.base.__name__}")
        return entry  # type: ignore[return-value]

    __getitem__ = get

    def create(self, name: str, *args, **kwargs):
        """An instance of the class registered as `name` (for registries of classes)."""
        return self.get(name)(*args, **kwargs)  # type: ignore[operator]

    def _check_name(self, name: str) -> None:
        if name not in self._entries:
            close = difflib.get_close_matches(name, list(self._entries), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise self.error(f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(sorted(self._entries))}")


def _is_a(entry: object, base: type) -> bool:
    return (isinstance(entry, type) and issubclass(entry, base)) or isinstance(entry, base)

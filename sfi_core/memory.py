"""Hand freed heap pages back to the operating system between shards.

A long run of small shards (decode, encode, a part file written through Arrow on the system allocator)
frees most of what it allocates, but glibc's malloc returns only the top of its heap on its own: pages
freed in the middle stay in the process, so the driver's resident set grew with the number of shards
(the cut of 10,000 tiny videos: +89 MiB during the stage, against +51 MiB for 100; with the pages handed
back after the shards, +61 MiB; see docs/performance.md). `malloc_trim(0)` releases every free page of
every arena. It costs about 2 ms on a 200 MiB heap here, so it runs at most once per `MIN_INTERVAL_S`.
Elsewhere than glibc (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import time

MIN_INTERVAL_S = 0.5

_last = 0.0
_trim = None


def _load_trim():
    global _trim
    if _trim is None:
        _trim = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                _trim = libc.malloc_trim
                _trim.argtypes, _trim.restype = [ctypes.c_size_t], ctypes.c_int
            except (OSError, AttributeError):  # not glibc
                _trim = False
    return _trim


def release_freed_memory(force: bool = False) -> bool:
    """Return the heap's free pages to the OS (at most every MIN_INTERVAL_S unless `force`); True if it ran."""
    global _last
    trim = _load_trim()
    now = time.monotonic()
    if not trim or (not force and now - _last < MIN_INTERVAL_S):
        return False
    _last = now
    trim(0)
    return True

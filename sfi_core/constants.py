"""The one place for the frame-count set S, the manifest statuses and the frame readers."""

from __future__ import annotations

# Paper eq. (2)/(3): the expert LoRA scales and the clip lengths cut from every kept video.
FRAME_COUNTS: tuple[int, ...] = (5, 9, 17, 33, 65, 81)
# f_max in section 3.3.1: the longest clip.
F_MAX: int = max(FRAME_COUNTS)

# Every manifest row carries one of these.
STATUS_OK = "ok"
STATUS_REJECTED = "rejected"
STATUS_ERROR = "error"
STATUSES: tuple[str, ...] = (STATUS_OK, STATUS_REJECTED, STATUS_ERROR)

# How frames are fetched: "pyav" (pts-exact seeking, skips frames nothing refers to; measured faster
# than decord for first/last and centre ranges), "decord", or "auto" (decord, PyAV where it fails).
READERS: tuple[str, ...] = ("pyav", "decord", "auto")
DEFAULT_READER = "pyav"

"""Video I/O with PyAV, one module per concept, imported in dependency order (no module imports one
that imports it back):

- `container`: open a file, its video stream, the reference sequential decode (`decoded`, `decode_all`)
- `probing` (`probe`): frame rate, frame count (stored, counted from packets, or decoded), size, codec
- `timeline`: where frame i lies in a stream's timestamps, and back
- `fetch`: frames at given positions (`read_frames`), seeking only where it can prove the frames right
- `encode`: uint8 RGB frames to a file

Frame indices are 0-based positions in presentation order (see `Timeline`), at a constant or a
variable frame rate. For a virtual segment (scene splitting) `offset` is added, so stages address a
segment's frames as if it were its own file. Every name below is importable from `sfi_core.video`.
"""

from sfi_core.video.container import (
    STILL_FORMATS,
    VideoError,
    check_readable,
    codec_threads,
    cpu_budget,
    decode_all,
    decoded,
    demuxed,
    frame_converter,
    is_empty,
    open_container,
    set_codec_threads,
    sniff_video,
    stream_rate,
    video_stream,
)
from sfi_core.video.encode import encode_video, even_size
from sfi_core.video.fetch import FALLBACKS, FramesPastEnd, read_frames
from sfi_core.video.probing import ProbeResult, count_packets, frame_count, probe
from sfi_core.video.timeline import Timeline

__all__ = [
    "FALLBACKS",
    "STILL_FORMATS",
    "FramesPastEnd",
    "ProbeResult",
    "Timeline",
    "VideoError",
    "check_readable",
    "codec_threads",
    "count_packets",
    "cpu_budget",
    "decode_all",
    "decoded",
    "demuxed",
    "encode_video",
    "even_size",
    "frame_converter",
    "frame_count",
    "is_empty",
    "open_container",
    "probe",
    "read_frames",
    "set_codec_threads",
    "sniff_video",
    "stream_rate",
    "video_stream",
]

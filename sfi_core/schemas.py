"""The Parquet schemas of every manifest, defined once, with a schema version."""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1.2"  # 1.1: reason_code, threshold_warning; 1.2: categories.parquet, category on the split

# Every reject and error row carries one of these next to its human `reason`: summaries, the card and
# plots group by the code, which stays the same whatever numbers or file names the reason holds.
REASON_CODES: dict[str, str] = {
    "file_not_found": "the input path does not exist",
    "unreadable_file": "a directory, an empty file, a dangling link or a file without read permission",
    "not_a_video": "no container FFmpeg can open, or no video stream in it",
    "probe_failed": "the container opened, but its frame rate or frame count could not be read",
    "segment_out_of_range": "a scene segment's frame range lies outside its source",
    "fps_too_high": "meta filter: fps above max_fps",
    "too_few_frames": "meta filter: fewer frames than min_frames (f_max)",
    "too_many_frames": "meta filter: more frames than max_frames (4 f_max)",
    "decode_failed": "frames the stage needs could not be decoded (truncated or corrupt file?)",
    "score_failed": "the scoring networks failed on this video's frames",
    "similarity_low": "first/last similarity below the low threshold (unrelated endpoints)",
    "similarity_high": "first/last similarity above the high threshold (near-identical endpoints)",
    "flow_low": "first/last flow score below the low threshold (next to no motion)",
    "flow_high": "first/last flow score above the high threshold (too much motion)",
    "hard_cut": "a hard cut (shot change) inside the clip",
    "segment_write_failed": "re-encoding a scene segment to its own file failed",
    "http_NNN": "caption: the server's last answer was HTTP status NNN (http_429, http_500...)",
    "timeout": "caption: the last request timed out",
    "connection_failed": "caption: no server could be reached",
    "bad_reply": "caption: the reply was empty or malformed",
    "export_failed": "export: a shard could not be written (or was missing on disk and is redone)",
    "unexpected_error": "an exception the stage did not expect; the reason holds its type and text",
}
REASON_CODE_DOC = "stable code of the reason (see the table of reason codes), null when ok"


def _field(name: str, type_: pa.DataType, doc: str = "") -> pa.Field:
    """A column with its description kept in the schema (and so in every Parquet file)."""
    return pa.field(name, type_, metadata={"doc": doc} if doc else None)


# One row per input video (or virtual segment), rejects and unreadable inputs included.
VIDEOS = pa.schema(
    [
        _field("schema_version", pa.string(), "version of this schema"),
        _field("video_id", pa.string(), "deterministic id of the input (stem + hash of its absolute path)"),
        _field("source", pa.string(), "the input as the user named it"),
        _field("path", pa.string(), "relative to the dataset root"),
        _field("segment_start", pa.int64(), "virtual segment: first source frame (null: whole file)"),
        _field("segment_end", pa.int64(), "virtual segment: one past the last source frame"),
        _field("status", pa.string(), "ok | rejected | error"),
        _field(
            "stage", pa.string(), "where the verdict was reached: discover, probe, meta, score, threshold"
        ),
        _field("reason", pa.string(), "human-readable, null when ok"),
        _field("reason_code", pa.string(), REASON_CODE_DOC),
        _field("file_size_bytes", pa.int64(), "size of the file on disk"),
        _field("fps", pa.float64(), "frames per second"),
        _field("num_frames", pa.int64(), "frames"),
        _field("frame_count_source", pa.string(), "container | packets | decode"),
        _field("width", pa.int32(), "pixels"),
        _field("height", pa.int32(), "pixels"),
        _field("rotation", pa.int32(), "display rotation in degrees"),
        _field("duration_s", pa.float64(), "seconds"),
        _field("codec", pa.string(), "video codec name (FFmpeg's)"),
        _field("pix_fmt", pa.string(), "pixel format"),
        _field("similarity", pa.float64(), "first/last frame similarity (cosine)"),
        _field("similarity_backend", pa.string(), "clip:<model>/<checkpoint> or hsv-hist-cosine"),
        _field(
            "flow_score", pa.float64(), "mean L2 norm of the first->last optical flow, px at the work size"
        ),
        _field("flow_backend", pa.string(), "raft:<model>, opencv-dis or opencv-farneback"),
        _field("flow_work_size", pa.string(), "'WxH' at which the flow magnitude is measured"),
        _field("similarity_low", pa.float64(), "low similarity threshold used (null: open)"),
        _field("similarity_high", pa.float64(), "high similarity threshold used (null: open)"),
        _field("flow_low", pa.float64(), "low flow threshold used (null: open)"),
        _field("flow_high", pa.float64(), "high flow threshold used (null: open)"),
        _field("threshold_mode", pa.string(), "how the bounds were chosen, e.g. 'quantile 0.05-0.95'"),
        _field(
            "threshold_warning",
            pa.string(),
            "why the bounds may mislead (quantiles of a small corpus), or null",
        ),
    ]
)

# One row per single-shot segment (DIR/scenes.parquet); an unreadable source gets one error row.
SEGMENTS = pa.schema(
    [
        _field("schema_version", pa.string(), "version of this schema"),
        _field("segment_id", pa.string(), "<video_id>_f<start>-<end>"),
        _field("video_id", pa.string(), "the source's id (discover.video_id_for)"),
        _field("source", pa.string(), "the input as the user named it"),
        _field("path", pa.string(), "the source file, relative to the dataset root"),
        _field("segment_start", pa.int64(), "first source frame"),
        _field("segment_end", pa.int64(), "one past the last source frame"),
        _field("num_frames", pa.int64(), "frames"),
        _field("fps", pa.float64(), "frames per second"),
        _field("shot_index", pa.int32(), "which detected shot of the source (0-based)"),
        _field("window_index", pa.int32(), "which window of that shot (0 unless the shot was split)"),
        _field("status", pa.string(), "ok | error"),
        _field("reason", pa.string(), "human-readable reason, null when ok"),
        _field("reason_code", pa.string(), REASON_CODE_DOC),
        _field("detector", pa.string(), "PySceneDetect detector (content, adaptive, histogram, hash)"),
        _field("detector_threshold", pa.float64(), "the detector's threshold"),
        _field("min_scene_len", pa.int32(), "shortest scene the detector may report, frames"),
        _field("source_frames", pa.int64(), "frames decoded from the whole source"),
        _field("segment_path", pa.string(), "re-encoded segment file (null: virtual)"),
    ]
)

# One row per cut clip.
CLIPS = pa.schema(
    [
        _field("schema_version", pa.string(), "version of this schema"),
        _field("clip_id", pa.string(), "{video_id}_{num_frames:02d}"),
        _field("video_id", pa.string(), "deterministic id of the input (stem + hash of its absolute path)"),
        _field("num_frames", pa.int32(), "frames"),
        _field("start_frame", pa.int64(), "first frame, index into the source file"),
        _field("end_frame", pa.int64(), "last frame (inclusive), index into the source file"),
        _field("fps", pa.float64(), "frames per second"),
        _field("width", pa.int32(), "pixels"),
        _field("height", pa.int32(), "pixels"),
        _field("status", pa.string(), "ok | rejected | error"),
        _field("reason", pa.string(), "human-readable reason, null when ok"),
        _field("reason_code", pa.string(), REASON_CODE_DOC),
        _field("clip_path", pa.string(), "relative to the dataset root"),
        _field("first_frame_path", pa.string(), "lossless PNG, the benchmark's condition image"),
        _field(
            "last_frame_path", pa.string(), "lossless PNG of the last frame, relative to the dataset root"
        ),
        _field("similarity", pa.float64(), "first/last frame similarity (cosine)"),
        _field("similarity_backend", pa.string(), "clip:<model>/<checkpoint> or hsv-hist-cosine"),
        _field(
            "flow_score", pa.float64(), "mean L2 norm of the first->last optical flow, px at the work size"
        ),
        _field("flow_backend", pa.string(), "raft:<model>, opencv-dis or opencv-farneback"),
        _field("max_frame_diff", pa.float64(), "largest consecutive-frame difference (hard-cut check)"),
        _field("encoder", pa.string(), "e.g. 'libx264 crf=18 preset=medium yuv420p'"),
    ]
)


# The first columns of a per-clip request's row (a caption, a category): which clip, and how it went.
_CLIP_REQUEST = [
    _field("schema_version", pa.string(), "version of this schema"),
    _field("clip_id", pa.string(), "{video_id}_{num_frames:02d}"),
    _field("video_id", pa.string(), "deterministic id of the input (stem + hash of its absolute path)"),
    _field("num_frames", pa.int32(), "frames"),
    _field("status", pa.string(), "ok | error"),
    _field("reason", pa.string(), "why the last attempt failed, null when ok"),
    _field("reason_code", pa.string(), REASON_CODE_DOC),
]

# One row per captioned clip (DIR/captions.parquet), failures kept with their reason.
CAPTIONS = pa.schema(
    _CLIP_REQUEST
    + [
        _field("caption", pa.string(), "the dense caption, null when it failed"),
        _field("model", pa.string(), "the captioning model"),
        _field("prompt_version", pa.string(), "version of the caption prompt file"),
        _field("api_base", pa.string(), "the server that answered (or failed last)"),
        _field("frames_sent", pa.int32(), "frames sent to the model"),
        _field("max_side", pa.int32(), "longest side of the frames sent, px"),
        _field("prompt_tokens", pa.int64(), "tokens in the request (images included)"),
        _field("completion_tokens", pa.int64(), "tokens in the reply"),
        _field("total_tokens", pa.int64(), "prompt + completion tokens"),
        _field("latency_s", pa.float64(), "of the successful (or last) request"),
        _field("attempts", pa.int32(), "requests made for this caption, retries included"),
        _field("finish_reason", pa.string(), "the server's finish reason (stop, length...)"),
        _field("created_at", pa.string(), "ISO 8601, UTC"),
    ]
)

# One row per captioned clip (DIR/categories.parquet): its content category (paper Fig. 3a).
CATEGORIES = pa.schema(
    _CLIP_REQUEST
    + [
        _field("category", pa.string(), "one name of sfi_core.categories.NAMES, null when it failed"),
        _field("category_source", pa.string(), "taxonomy-v<N> (keyword rule) or llm:<model>"),
        _field("caption_sha1", pa.string(), "sha1 of the caption it was read from (a new caption: redo)"),
        _field("api_base", pa.string(), "llm: the server that answered (or failed last)"),
        _field("attempts", pa.int32(), "llm: requests made, retries included"),
        _field("reply", pa.string(), "llm: the server's reply, as sent"),
    ]
)

# One row per exported shard (the export's ledger, DEST/.sfi-export/): written, or why not.
EXPORT_SHARDS = pa.schema(
    [
        _field("schema_version", pa.string(), "version of this schema"),
        _field("shard", pa.string(), "the tar's path relative to DEST, e.g. train-000000.tar"),
        _field("split", pa.string(), "train | test"),
        _field("status", pa.string(), "ok | error"),
        _field("reason", pa.string(), "why it was not written, null when ok"),
        _field("reason_code", pa.string(), REASON_CODE_DOC),
        _field("samples", pa.int64(), "clips in the shard"),
        _field("bytes", pa.int64(), "size of the tar"),
        _field("sha256", pa.string(), "of the tar's bytes"),
        _field("first_key", pa.string(), "WebDataset key of its first sample"),
        _field("last_key", pa.string(), "WebDataset key of its last sample"),
    ]
)

# The SFIBench split (DIR/test.parquet, DIR/train.parquet): the clip columns plus caption and category.
SPLIT = pa.schema(
    list(CLIPS)
    + [
        _field("split", pa.string(), "test | train"),
        _field("caption", pa.string(), "the caption, null when the clip has none"),
        _field("category", pa.string(), "content category (categories.parquet, else the taxonomy)"),
        _field("category_source", pa.string(), "taxonomy-v<N> or llm:<model>"),
    ]
)


# Keys rows carry between two stages of one run and never write: the streamed filter's fetch stage
# hands the score stage the decoded (first, last) uint8 RGB frames under FRAMES (to_table refuses it).
FRAMES = "_first_last_frames"
IN_FLIGHT = {FRAMES: "fetch -> score: the decoded first and last frame of the row's video"}


def describe(schema: pa.Schema, name: str) -> str:
    """A Markdown table of the schema's columns: name, type, description."""
    lines = [f"### {name}", "", "| column | type | meaning |", "|---|---|---|"]
    for field in schema:
        doc = (field.metadata or {}).get(b"doc", b"").decode()
        doc = doc.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"| `{field.name}` | {field.type} | {doc} |")
    return "\n".join(lines)


# Manifest file -> schema, in pipeline order (manifests/README.md is generated from this).
MANIFESTS = {
    "scenes.parquet": SEGMENTS,
    "videos.parquet": VIDEOS,
    "clips.parquet": CLIPS,
    "captions.parquet": CAPTIONS,
    "categories.parquet": CATEGORIES,
    "test.parquet / train.parquet": SPLIT,
}


def manifests_markdown() -> str:
    intro = (
        "# Manifest schemas\n\n"
        f"Schema version {SCHEMA_VERSION}. Generated from `sfi_core/schemas.py` by `python -m sfi_core.schemas`"
        " (a test checks it is current). Every manifest lies at the dataset root and every path in it is"
        " relative to that folder. The descriptions are also stored in each Parquet file's schema"
        " (field metadata `doc`). `example/` holds the manifests of `make demo`.\n"
    )
    tables = "\n\n".join(describe(schema, f"`{file}`") for file, schema in MANIFESTS.items())
    codes = ["### Reason codes", "", "| `reason_code` | meaning |", "|---|---|"]
    codes += [f"| `{code}` | {meaning} |" for code, meaning in REASON_CODES.items()]
    flight = ["### Keys that never reach a manifest", "", "| key | what |", "|---|---|"]
    flight += [f"| `{key}` | {meaning} |" for key, meaning in IN_FLIGHT.items()]
    return intro + "\n" + tables + "\n\n" + "\n".join(codes) + "\n\n" + "\n".join(flight) + "\n"


def empty_row(schema: pa.Schema) -> dict:
    return {name: None for name in schema.names} | {"schema_version": SCHEMA_VERSION}


def to_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    """Rows to a table of exactly `schema`; unknown keys are an error, missing ones are null."""
    names = set(schema.names)
    for row in rows:
        extra = set(row) - names
        if extra:
            raise KeyError(f"columns not in the schema: {sorted(extra)}")
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.table(columns, schema=schema)


if __name__ == "__main__":
    print(manifests_markdown(), end="")

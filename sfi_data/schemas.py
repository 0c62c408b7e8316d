"""The Parquet schemas of every manifest, defined once, with a schema version."""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1.0"

STATUS_OK = "ok"
STATUS_REJECTED = "rejected"
STATUS_ERROR = "error"

# One row per input video (or virtual segment), rejects and unreadable inputs included.
VIDEOS = pa.schema(
    [
        ("schema_version", pa.string()),
        ("video_id", pa.string()),
        ("source", pa.string()),  # the input as the user named it
        ("path", pa.string()),  # relative to the dataset root
        ("segment_start", pa.int64()),  # virtual segment: first source frame (null: whole file)
        ("segment_end", pa.int64()),  # virtual segment: one past the last source frame
        ("status", pa.string()),  # ok | rejected | error
        ("stage", pa.string()),  # where the verdict was reached: discover, probe, meta, score, threshold
        ("reason", pa.string()),  # human-readable, null when ok
        ("file_size_bytes", pa.int64()),
        ("fps", pa.float64()),
        ("num_frames", pa.int64()),
        ("frame_count_source", pa.string()),  # container | packets | decode
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("rotation", pa.int32()),
        ("duration_s", pa.float64()),
        ("codec", pa.string()),
        ("pix_fmt", pa.string()),
        ("similarity", pa.float64()),
        ("similarity_backend", pa.string()),
        ("flow_score", pa.float64()),
        ("flow_backend", pa.string()),
        ("flow_work_size", pa.string()),  # "WxH" at which the flow magnitude is measured
        ("similarity_low", pa.float64()),
        ("similarity_high", pa.float64()),
        ("flow_low", pa.float64()),
        ("flow_high", pa.float64()),
        ("threshold_mode", pa.string()),  # how the bounds were chosen, e.g. "quantile 0.05-0.95"
    ]
)

# One row per single-shot segment (DIR/scenes.parquet); an unreadable source gets one error row.
SEGMENTS = pa.schema(
    [
        ("schema_version", pa.string()),
        ("segment_id", pa.string()),  # <video_id>_f<start>-<end>
        ("video_id", pa.string()),  # the source's id (discover.video_id_for)
        ("source", pa.string()),  # the input as the user named it
        ("path", pa.string()),  # the source file, relative to the dataset root
        ("segment_start", pa.int64()),  # first source frame
        ("segment_end", pa.int64()),  # one past the last source frame
        ("num_frames", pa.int64()),
        ("fps", pa.float64()),
        ("shot_index", pa.int32()),  # which detected shot of the source (0-based)
        ("window_index", pa.int32()),  # which window of that shot (0 unless the shot was split)
        ("status", pa.string()),  # ok | error
        ("reason", pa.string()),
        ("detector", pa.string()),
        ("detector_threshold", pa.float64()),
        ("min_scene_len", pa.int32()),
        ("source_frames", pa.int64()),  # frames decoded from the whole source
        ("segment_path", pa.string()),  # re-encoded segment file (null: virtual)
    ]
)

# One row per cut clip.
CLIPS = pa.schema(
    [
        ("schema_version", pa.string()),
        ("clip_id", pa.string()),
        ("video_id", pa.string()),
        ("num_frames", pa.int32()),
        ("start_frame", pa.int64()),  # first frame, index into the source file
        ("end_frame", pa.int64()),  # last frame (inclusive), index into the source file
        ("fps", pa.float64()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("status", pa.string()),  # ok | rejected | error
        ("reason", pa.string()),
        ("clip_path", pa.string()),  # relative to the dataset root
        ("first_frame_path", pa.string()),  # lossless PNG, the benchmark's condition image
        ("last_frame_path", pa.string()),
        ("similarity", pa.float64()),
        ("similarity_backend", pa.string()),
        ("flow_score", pa.float64()),
        ("flow_backend", pa.string()),
        ("max_frame_diff", pa.float64()),  # largest consecutive-frame difference (hard-cut check)
        ("encoder", pa.string()),  # e.g. "libx264 crf=18 preset=medium yuv420p"
    ]
)


# One row per captioned clip (DIR/captions.parquet), failures kept with their reason.
CAPTIONS = pa.schema(
    [
        ("schema_version", pa.string()),
        ("clip_id", pa.string()),
        ("video_id", pa.string()),
        ("num_frames", pa.int32()),
        ("status", pa.string()),  # ok | error
        ("reason", pa.string()),  # why the last attempt failed, null when ok
        ("caption", pa.string()),
        ("model", pa.string()),
        ("prompt_version", pa.string()),
        ("api_base", pa.string()),  # the server that answered (or failed last)
        ("frames_sent", pa.int32()),
        ("max_side", pa.int32()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("latency_s", pa.float64()),  # of the successful (or last) request
        ("attempts", pa.int32()),
        ("finish_reason", pa.string()),
        ("created_at", pa.string()),  # ISO 8601, UTC
    ]
)

# The SFIBench split (DIR/test.parquet, DIR/train.parquet): the clip columns plus the caption.
SPLIT = pa.schema(list(CLIPS) + [pa.field("split", pa.string()), pa.field("caption", pa.string())])


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

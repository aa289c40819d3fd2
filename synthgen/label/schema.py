"""The ``meas_*`` columns the label stage adds, with their Arrow types (see synthgen.contract).

Kept in one list so every shard has every column, in this order, whichever labellers ran: a
labeller that is not configured leaves its columns null instead of leaving them out, so shards
from different configurations still concatenate and query alike.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

F32S = pa.list_(pa.float32())
STR, F64, I32 = pa.string(), pa.float64(), pa.int32()

MEAS_FIELDS: list[pa.Field] = [
    pa.field("meas_error", STR),
    # detection
    pa.field("meas_face_count", I32),
    pa.field("meas_face_box", F32S),
    pa.field("meas_face_conf", F64),
    pa.field("meas_detect_labeler", STR),
    # landmarks and identity
    pa.field("meas_landmarks_68", F32S),
    pa.field("meas_landmarks_labeler", STR),
    pa.field("meas_landmarks_478", F32S),
    pa.field("meas_mesh_labeler", STR),
    pa.field("meas_identity_embedding", F32S),
    pa.field("meas_identity_labeler", STR),
    # head pose and gaze (synthgen.geometry conventions, degrees, camera frame)
    pa.field("meas_head_yaw", F64),
    pa.field("meas_head_pitch", F64),
    pa.field("meas_head_roll", F64),
    pa.field("meas_head_pose_labeler", STR),
    pa.field("meas_gaze_yaw", F64),
    pa.field("meas_gaze_pitch", F64),
    pa.field("meas_gaze_vector", F32S),
    pa.field("meas_gaze_zone", STR),
    pa.field("meas_eye_openness", F64),
    pa.field("meas_gaze_labeler", STR),
    # demographics and expression
    pa.field("meas_age", F64),
    pa.field("meas_age_group", STR),
    pa.field("meas_age_conf", F64),
    pa.field("meas_age_labeler", STR),
    pa.field("meas_gender", STR),
    pa.field("meas_gender_conf", F64),
    pa.field("meas_gender_labeler", STR),
    pa.field("meas_expression", STR),
    pa.field("meas_expression_probs", F32S),
    pa.field("meas_expression_conf", F64),
    pa.field("meas_expression_labeler", STR),
    # quality
    pa.field("meas_quality_sharpness", F64),
    pa.field("meas_quality_exposure", F64),
    pa.field("meas_quality_clipped", F64),
    pa.field("meas_quality_brisque", F64),
    pa.field("meas_quality_face_size", F64),
    pa.field("meas_quality_labeler", STR),
    pa.field("meas_phash", STR),
    # eye opening (driver-monitoring conditions, docs/conditions.md)
    pa.field("meas_ear", F32S),
    pa.field("meas_ear_labeler", STR),
]
MEAS_SCHEMA = pa.schema(MEAS_FIELDS)
MEAS_NAMES = frozenset(MEAS_SCHEMA.names)


def meas_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Rows of ``meas_*`` dicts -> a table with every MEAS column, nulls where a value is missing."""
    cols = {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in MEAS_FIELDS}
    return pa.table(cols, schema=MEAS_SCHEMA)

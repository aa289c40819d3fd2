"""The row contract: one row per image, shared by every stage, shard and reader.

Images are ``struct{bytes: binary, path: string}`` holding PNG bytes: the Hugging Face
``datasets`` Image layout, so ``datasets``, polars, DuckDB and pyarrow read shards as they are.

Column families:
- identity of the row: ``sample_id``, ``source`` (synthetic/real), ``dataset``, ``dataset_version``,
  ``split``, ``generator``, ``generator_version``, ``seed``, ``width``, ``height``, ``prompt``;
- ``image``, ``control_image`` (the face-mesh control map; null for real rows);
- ``req_*``: requested attributes (from the SceneSpec) and exact geometric labels computed by
  the generator (landmarks, pupils, face box, gaze vector, gaze zone);
- ``meas_*``: measured by the labellers (added by ``label``), each group with ``meas_<group>_labeler``
  and a confidence ``meas_<group>_conf`` where the model gives one;
- ``accepted`` and ``reject_reasons`` (added by ``curate``; every reject has at least one reason).

Geometry conventions (pixels of the output image, origin top-left, x right, y down):
- ``req_landmarks_68``: 68 (x, y) pairs flattened, iBUG-300W order (36-41 subject's right eye).
- ``req_landmarks_478``: MediaPipe face-mesh order, 468 mesh points then 10 iris points.
- ``req_pupils``: (x, y) of the subject's right pupil, then the left one.
- ``req_face_box``: x0, y0, x1, y1.
- ``req_camera_matrix``: the 3x3 pinhole intrinsics (row-major, pixels) the image was made with,
  so measurements (head pose) use the same calibrated camera.
- ``req_gaze_vector``: unit vector in the camera frame (x right, y down, z away from the camera):
  ``(-cos(pitch) sin(yaw), -sin(pitch), -cos(pitch) cos(yaw))`` (the MPIIGaze/ETH-XGaze convention).
"""

from __future__ import annotations

import typing
from typing import Any, Literal

import pyarrow as pa

from synthgen.spec import SEQUENCE_FIELDS, SceneSpec

IMAGE_TYPE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
FLOATS = pa.list_(pa.float32())

BASE_FIELDS: list[pa.Field] = [
    pa.field("sample_id", pa.string(), nullable=False),
    pa.field("source", pa.string()),
    pa.field("dataset", pa.string()),
    pa.field("dataset_version", pa.string()),
    pa.field("split", pa.string()),
    pa.field("generator", pa.string()),
    pa.field("generator_version", pa.string()),
    pa.field("seed", pa.int64()),
    pa.field("image", IMAGE_TYPE),
    pa.field("control_image", IMAGE_TYPE),
    pa.field("width", pa.int32()),
    pa.field("height", pa.int32()),
    pa.field("prompt", pa.string()),
]

GEOMETRY_FIELDS: list[pa.Field] = [
    pa.field("req_landmarks_68", FLOATS),
    pa.field("req_landmarks_478", FLOATS),
    pa.field("req_pupils", FLOATS),
    pa.field("req_face_box", FLOATS),
    pa.field("req_gaze_vector", FLOATS),
    pa.field("req_gaze_zone", pa.string()),
    pa.field("req_camera_matrix", FLOATS),
]

# --- driver-monitoring conditions and sequences (docs/conditions.md) ---------------------------------
# Sequence placement: a clip is the rows sharing ``sequence_id`` (empty for single images), ordered by
# ``frame_index``; ``t_ms`` is the frame's time; ``sequence_events`` the clip's planned events (JSON of
# synthgen.dsm.ClipEvents). Exact labels of the conditions, computed from the rendered geometry:
# - ``req_landmarks_68_visible`` / ``req_landmarks_478_visible``: per point, False when an occluder
#   (or an IR-blocking lens in NIR) lies in front of it in the renderer's depth test;
# - ``req_landmarks_68_self_occluded`` / ``req_landmarks_478_self_occluded``: per point, True when the
#   face itself lies in front of it (the far eye and cheek behind the nose on a turned head, the iris
#   under a closing lid); a point shows in the image when it is visible and not self-occluded;
# - ``req_occluder_box``: x0, y0, x1, y1 of the occluder's visible pixels (empty when none);
#   ``req_occluder_mask``: PNG of those pixels (255 = occluder), null when none;
# - ``req_eye_aperture_mm``: right, left lid-margin distance in mm at the lid centres;
# - ``req_ear``: right, left eye-aspect ratio of the exact 68 landmarks (Soukupova & Cech 2016);
# - ``req_visible_enough``: the rule of synthgen.dsm.visible_enough; ``req_illuminance_lux``: nominal.
# ``req_facial_hair`` (a SceneSpec column) holds what the backend drew or prompted, with the
# request ``identity`` resolved by the procedural renderer to the identity's own ``stubble`` or ``none``.
CONDITION_FIELDS: list[pa.Field] = [
    pa.field("sequence_id", pa.string()),
    pa.field("frame_index", pa.int32()),
    pa.field("t_ms", pa.float64()),
    pa.field("sequence_events", pa.string()),
    pa.field("req_landmarks_68_visible", pa.list_(pa.bool_())),
    pa.field("req_landmarks_478_visible", pa.list_(pa.bool_())),
    pa.field("req_landmarks_68_self_occluded", pa.list_(pa.bool_())),
    pa.field("req_landmarks_478_self_occluded", pa.list_(pa.bool_())),
    pa.field("req_occluder_box", FLOATS),
    pa.field("req_occluder_mask", IMAGE_TYPE),
    pa.field("req_eye_aperture_mm", FLOATS),
    pa.field("req_ear", FLOATS),
    pa.field("req_visible_enough", pa.bool_()),
    pa.field("req_illuminance_lux", pa.float64()),
]
# --- meas_* columns ------------------------------------------------------------------------------
# One list, so every shard has every column, in this order, whichever labellers ran: a labeller
# that is not configured leaves its columns null instead of leaving them out, so shards from
# different configurations still concatenate and query alike. The label stage fills them; real
# data importers and curation read them.
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


CURATION_FIELDS: list[pa.Field] = [
    pa.field("accepted", pa.bool_()),
    pa.field("reject_reasons", pa.list_(pa.string())),
]


def _arrow_type(annotation: Any) -> pa.DataType:
    if typing.get_origin(annotation) is Literal or annotation is str:
        return pa.string()
    if annotation is bool:
        return pa.bool_()
    if annotation is int:
        return pa.int64()
    if annotation is float:
        return pa.float64()
    raise TypeError(f"no arrow type for {annotation!r}")


def req_fields() -> list[pa.Field]:
    """``req_*`` columns, derived from SceneSpec so the two never drift apart."""
    skip = {"sample_id", "index", "seed", "split", *SEQUENCE_FIELDS}
    fields = [
        pa.field(f"req_{name}", _arrow_type(f.annotation))
        for name, f in SceneSpec.model_fields.items()
        if name not in skip
    ]
    fields += [pa.field("req_age_group", pa.string()), pa.field("req_eyes_open", pa.bool_())]
    return fields


def generated_schema() -> pa.Schema:
    """Schema of a shard written by ``generate`` (before labelling and curation)."""
    return pa.schema(BASE_FIELDS + req_fields() + GEOMETRY_FIELDS + CONDITION_FIELDS)


def published_schema() -> pa.Schema:
    """Schema of a published shard: generated columns, every ``meas_*`` column (null where a
    labeller did not run), then curation. One schema whatever ran, so versions stay comparable."""
    return pa.schema(BASE_FIELDS + req_fields() + GEOMETRY_FIELDS + CONDITION_FIELDS + MEAS_FIELDS
                     + CURATION_FIELDS)


def hf_image_metadata(schema: pa.Schema) -> dict[bytes, bytes]:
    """Schema metadata that makes Hugging Face ``datasets`` decode the image columns as images.

    ``datasets`` reads features from the ``huggingface`` key and infers the columns it does not
    name, so only the image columns are declared."""
    import json

    feats = {f.name: {"_type": "Image"} for f in schema if f.type == IMAGE_TYPE}
    return {b"huggingface": json.dumps({"info": {"features": feats}}).encode()}


def image_struct(png: bytes | None, path: str | None) -> dict[str, Any] | None:
    return None if png is None else {"bytes": png, "path": path}


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Order and cast the contract's columns first, keep any extra columns after them."""
    cols, fields = [], []
    for f in schema:
        if f.name in table.column_names:
            cols.append(table.column(f.name).cast(f.type))
        else:
            cols.append(pa.nulls(table.num_rows, f.type))
        fields.append(f)
    for name in table.column_names:
        if name not in schema.names:
            cols.append(table.column(name))
            fields.append(table.schema.field(name))
    return pa.Table.from_arrays(cols, schema=pa.schema(fields))

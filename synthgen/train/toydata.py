"""A small published dataset in the row contract, for tests, benchmarks and trying the stage out.

Images are crops of scikit-image's astronaut photo (a real face, public domain) with drawn eyes
whose pupils move with the requested gaze and a mouth whose curve follows the expression, rotated
by the head roll: enough signal that a model can learn something in a few steps, with exact
labels. Every fourth image is single-channel (like near-infrared frames) to exercise grey PNGs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from synthgen.contract import BASE_FIELDS, CURATION_FIELDS, conform, image_struct
from synthgen.images import encode_png
from synthgen.io import atomic_path
from synthgen.vocab import EXPRESSIONS, GENDERS, age_group


def _base_face(size: int) -> np.ndarray:
    from skimage import data

    img = data.astronaut()[30:250, 140:360]  # the face and shoulders
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def _zone(yaw: float, pitch: float) -> str:
    """A coarse stand-in for the cabin geometry: enough to give the zone head a learnable target."""
    if pitch < -20:
        return "lap"
    if pitch < -8:
        return "instrument_cluster" if yaw > -10 else "infotainment"
    if yaw > 25:
        return "left_window" if pitch < 5 else "left_mirror"
    if yaw < -25:
        return "right_window" if pitch < 5 else "right_mirror"
    return "rearview_mirror" if pitch > 12 else "windshield"


def render(size: int, base: np.ndarray, yaw: float, pitch: float, roll: float, expression: str,
           age: float, gender: str = "female") -> np.ndarray:
    img = base.copy()
    s = size / 256
    if gender == "male":  # a dark chin patch: a learnable stand-in for a beard
        cv2.rectangle(img, (int(100 * s), int(195 * s)), (int(156 * s), int(215 * s)), (40, 30, 25), -1)
    for cx in (100, 156):
        c = (int(cx * s), int(110 * s))
        cv2.ellipse(img, c, (int(18 * s), int(10 * s)), 0, 0, 360, (245, 245, 245), -1)
        p = (int(c[0] - yaw / 45 * 12 * s), int(c[1] - pitch / 30 * 6 * s))
        cv2.circle(img, p, max(1, int(5 * s)), (20, 20, 20), -1)
    k = EXPRESSIONS.index(expression)
    curve = int((k - 3) * 4 * s)
    cv2.ellipse(img, (int(128 * s), int(175 * s)), (int(30 * s), max(1, abs(curve))), 0,
                0 if curve >= 0 else 180, 180 if curve >= 0 else 360, (150, 30, 40), max(1, int(3 * s)))
    grey_hair = int(np.clip(age * 2.5, 0, 220))
    cv2.rectangle(img, (0, 0), (size - 1, int(30 * s)), (grey_hair,) * 3, -1)
    rot = cv2.getRotationMatrix2D((size / 2, size / 2), roll, 1.0)
    return cv2.warpAffine(img, rot, (size, size), borderMode=cv2.BORDER_REFLECT)


def write_toy_dataset(version_dir: str | Path, n: dict[str, int] | None = None, size: int = 96,
                      seed: int = 0, row_group_size: int = 16, with_meas: bool = True,
                      reject_every: int = 7, source: str = "synthetic") -> Path:
    """Write ``split=<s>/part-00000.parquet`` under ``version_dir``; identities never span splits.

    ``reject_every``: every k-th row is rejected (0 = none), so curation is visible to readers.
    """
    n = n or {"train": 48, "val": 16, "test": 16}
    version_dir = Path(version_dir)
    rng = np.random.default_rng(seed)
    base = _base_face(size)
    identity = 0
    for split, count in n.items():
        rows = []
        for i in range(count):
            if i % 4 == 0:
                identity += 1
            yaw, pitch = float(rng.uniform(-40, 40)), float(rng.uniform(-25, 25))
            hy, hp, hr = float(rng.uniform(-30, 30)), float(rng.uniform(-20, 20)), float(rng.uniform(-15, 15))
            age = float(rng.uniform(1, 85))
            expr = EXPRESSIONS[int(rng.integers(len(EXPRESSIONS)))]
            gender = GENDERS[identity % 2]  # per identity, outside the RNG stream
            img = render(size, base, yaw, pitch, hr, expr, age, gender)
            lighting = "nir" if i % 4 == 3 else "rgb"
            if lighting == "nir":
                img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
            sid = f"{split}-{i:05d}"
            accepted = not (reject_every and i % reject_every == reject_every - 1)
            row = {
                "sample_id": sid, "source": source, "dataset": "toy", "dataset_version": "toy",
                "split": split, "generator": "toy", "generator_version": "1", "seed": seed,
                "image": image_struct(encode_png(img), f"{sid}.png"), "width": size, "height": size,
                "req_identity": identity, "req_age": age, "req_age_group": age_group(age),
                "req_expression": expr, "req_gaze_yaw": yaw, "req_gaze_pitch": pitch,
                "req_gaze_zone": _zone(yaw, pitch), "req_head_yaw": hy, "req_head_pitch": hp,
                "req_head_roll": hr, "req_lighting": lighting, "req_gender": gender,
                "accepted": accepted, "reject_reasons": [] if accepted else ["low_quality"],
            }
            if with_meas:
                row |= {"meas_age": age + float(rng.normal(0, 3)), "meas_expression": expr,
                        "meas_gender": gender if i % 5 else None,  # some readings missing (masked)
                        "meas_gaze_yaw": None, "meas_gaze_pitch": None}
            rows.append(row)
        table = pa.Table.from_pylist(rows)
        schema = pa.schema(BASE_FIELDS + CURATION_FIELDS)
        with atomic_path(version_dir / f"split={split}" / "part-00000.parquet") as tmp:
            pq.write_table(conform(table, schema), tmp, row_group_size=row_group_size, compression="zstd")
    return version_dir

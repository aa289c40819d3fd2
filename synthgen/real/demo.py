"""A small offline DEMO real reference, assembled at run time from real face photos that ship
inside installed packages (no download, no data in the repository):

- scikit-image ``astronaut.png`` (public domain, one face);
- scikit-image ``lfw_subset.npy``: the 100 LFW faces (25x25 grey; the 100 non-faces are left out),
  upscaled and given a replicated margin so the detectors see a whole face;
- insightface ``data/images/t1.jpg``, a group photo, cropped around each face that dlib finds.

107 images is far too few and too unlike in-cabin footage to judge a data set by: reports name
it as a demo. Use ``synthgen real import-*`` on real data for real decisions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pyarrow as pa

from synthgen.errors import DataError
from synthgen.images import encode_png
from synthgen.io import stable_hash, write_json_atomic
from synthgen.real.rows import REAL_SCHEMA, label_table, write_real

DEMO_NAME = "demo"
DEMO_FILE = "demo.parquet"
LFW_FACES = 100  # lfw_subset.npy holds 100 faces then 100 non-faces
LFW_SIDE = 128
# LFW crops end at the face's edges; detectors need context around a face (MediaPipe found 0/40
# tight crops and 31/40 with this margin of replicated border).
LFW_MARGIN = 64
BUILD_VERSION = 2


def _astronaut() -> list[tuple[str, np.ndarray]]:
    from skimage import data

    return [("skimage/astronaut.png", np.ascontiguousarray(data.astronaut()))]


def _lfw() -> list[tuple[str, np.ndarray]]:
    from skimage import data

    faces = data.lfw_subset()[:LFW_FACES]
    out = []
    for i, f in enumerate(faces):
        grey = np.clip(f * 255.0, 0, 255).astype(np.uint8)
        big = cv2.resize(grey, (LFW_SIDE, LFW_SIDE), interpolation=cv2.INTER_CUBIC)
        big = cv2.copyMakeBorder(big, *(LFW_MARGIN,) * 4, cv2.BORDER_REPLICATE)
        out.append((f"skimage/lfw_subset.npy#{i:03d}", np.ascontiguousarray(np.repeat(big[:, :, None], 3, axis=2))))
    return out


def _group_photo() -> list[tuple[str, np.ndarray]]:
    import dlib
    import insightface

    path = Path(os.path.dirname(insightface.__file__)) / "data" / "images" / "t1.jpg"
    bgr = cv2.imread(str(path))
    if bgr is None:
        raise DataError("insightface's t1.jpg is missing", where=str(path), fix="reinstall insightface")
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    boxes = sorted(((b.left(), b.top(), b.right(), b.bottom()) for b in dlib.get_frontal_face_detector()(rgb, 1)))
    out = []
    h, w = rgb.shape[:2]
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)  # 2x the face box
        a, b = int(max(0, cx - half)), int(max(0, cy - half))
        c, d = int(min(w, cx + half)), int(min(h, cy + half))
        out.append((f"insightface/t1.jpg#face{i}", np.ascontiguousarray(rgb[b:d, a:c])))
    return out


def demo_images() -> list[tuple[str, np.ndarray]]:
    """(source path, RGB image) of every demo face, in a fixed order."""
    return _astronaut() + _lfw() + _group_photo()


def demo_table(images: list[tuple[str, np.ndarray]]) -> pa.Table:
    rows: list[dict[str, Any]] = []
    for path, img in images:
        rows.append({
            "sample_id": "real-demo-" + stable_hash({"path": path}),
            "source": "real",
            "dataset": DEMO_NAME,
            "split": "test",
            "image": {"bytes": encode_png(img), "path": path},
            "width": int(img.shape[1]),
            "height": int(img.shape[0]),
        })
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in REAL_SCHEMA}, schema=REAL_SCHEMA)


def _fingerprint(params: Any, label: bool) -> str:
    return stable_hash({"version": BUILD_VERSION, "label": params.label.model_dump(mode="json") if label else None})


def build_demo_reference(params: Any, out_dir: Path | None = None, progress: bool = True, label: bool = True) -> Path:
    """Path of the demo reference Parquet, built (and labelled) when missing or made with other
    label params. ``params`` is the full synthgen Params."""
    out_dir = Path(out_dir) if out_dir is not None else Path(params.data_dir) / "real" / DEMO_NAME
    path, meta = out_dir / DEMO_FILE, out_dir / "demo.json"
    fp = _fingerprint(params, label)
    if path.exists() and meta.exists():
        import json

        try:
            if json.loads(meta.read_text()).get("fingerprint") == fp:
                return path
        except (OSError, ValueError):
            pass
    table = demo_table(demo_images())
    if label:
        table = label_table(table, params.label, progress)
    write_real(table, path)
    write_json_atomic(meta, {"fingerprint": fp, "rows": table.num_rows, "demo": True,
                             "sources": ["scikit-image astronaut.png", "scikit-image lfw_subset.npy (100 faces)",
                                         "insightface data/images/t1.jpg (faces cropped)"]})
    return path

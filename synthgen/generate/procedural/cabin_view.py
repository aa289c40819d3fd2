"""The cabin behind the occupant, seen from the chosen camera: seats, headrests, windows, pillars.

Why geometry rather than a backdrop picture: the background must move with the camera position
(a rear-view-mirror camera sees the side window, an instrument-cluster camera sees the roof) and
detectors need a contrasting, structured surround (a plain background cost the Haar detector 24
points in the prototype measurements). Surfaces are flat-shaded planar quads from
synthgen.cabin's frame, clipped at the near plane and filled far to near.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from synthgen import cabin
from synthgen.generate.procedural.raster import clip_polygon_near, project


def _box_front(x0: float, x1: float, y0: float, y1: float, z: float) -> np.ndarray:
    return np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], float)


def _side(x: float, z0: float, z1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([[x, y0, z0], [x, y0, z1], [x, y1, z1], [x, y1, z0]], float)


@lru_cache(maxsize=8)
def _surfaces(seat: str) -> tuple[tuple[str, np.ndarray], ...]:
    """(material, quad in cabin coordinates) for the whole cabin."""
    out: list[tuple[str, np.ndarray]] = []
    out.append(("roof", np.array([[-0.85, -0.40, -1.6], [0.85, -0.40, -1.6], [0.85, -0.40, 0.6], [-0.85, -0.40, 0.6]])))
    out.append(("floor", np.array([[-0.85, 0.9, -1.6], [0.85, 0.9, -1.6], [0.85, 0.9, 0.9], [-0.85, 0.9, 0.9]])))
    out.append(("rear_window", _box_front(-0.65, 0.65, -0.33, 0.02, -1.45)))
    out.append(("trim", _box_front(-0.85, 0.85, 0.02, 0.9, -1.45)))
    for sx in (-1.0, 1.0):
        x = sx * 0.82
        out.append(("window", _side(x, -0.50, 0.55, -0.30, 0.12)))
        out.append(("window", _side(x, -1.35, -0.62, -0.28, 0.10)))
        out.append(("pillar", _side(x, -0.62, -0.50, -0.40, 0.9)))
        out.append(("pillar", _side(x, -1.6, -1.35, -0.40, 0.9)))
        out.append(("door", _side(x, -1.6, 0.6, 0.12, 0.9)))
        out.append(("pillar", np.array([[x, -0.40, 0.45], [x * 0.97, -0.40, 0.62], [x * 0.97, 0.12, 0.95], [x, 0.12, 0.60]])))
    # Rear bench and the two front seats (headrest + backrest) behind each occupant.
    out.append(("seat", _box_front(-0.70, 0.70, -0.02, 0.55, -1.0)))
    for s in ("driver", "passenger"):
        x = cabin.SEAT_X[s]
        out.append(("seat", _box_front(x - 0.26, x + 0.26, 0.10, 0.85, -0.27)))
        out.append(("headrest", _box_front(x - 0.135, x + 0.135, -0.13, 0.07, -0.22)))
        out.append(("seat_side", _side(x - 0.135, -0.30, -0.22, -0.13, 0.07)))
        out.append(("seat_side", _side(x + 0.135, -0.30, -0.22, -0.13, 0.07)))
    return tuple(out)


MATERIALS_RGB = {
    "roof": (0.30, 0.29, 0.27), "floor": (0.03, 0.03, 0.03), "rear_window": (0.55, 0.62, 0.70),
    "trim": (0.06, 0.06, 0.06), "window": (0.60, 0.68, 0.78), "pillar": (0.12, 0.12, 0.12),
    "door": (0.08, 0.08, 0.085), "seat": (0.05, 0.05, 0.055), "headrest": (0.07, 0.07, 0.075),
    "seat_side": (0.04, 0.04, 0.045),
}
MATERIALS_NIR = {
    "roof": 0.40, "floor": 0.05, "rear_window": 0.20, "trim": 0.12, "window": 0.28, "pillar": 0.25,
    "door": 0.18, "seat": 0.22, "headrest": 0.30, "seat_side": 0.18,
}


@lru_cache(maxsize=32)
def _layout(camera: str, seat: str, k_key: tuple[float, ...], shape: tuple[int, int]
            ) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Surface-index image (H, W) uint8 (0 = nothing), the surfaces' materials and distances.
    Cached per camera/seat/size: only the colours change between scenes."""
    k = np.array(k_key).reshape(3, 3)
    polys = []
    for mat, quad in _surfaces(seat):
        pc = clip_polygon_near(cabin.to_camera(camera, seat, quad))
        if len(pc) >= 3:
            polys.append((float(np.linalg.norm(pc, axis=1).mean()), mat, pc))
    polys.sort(key=lambda p: -p[0])
    ids = np.zeros(shape, np.uint8)
    for i, (_, _, pc) in enumerate(polys, start=1):
        px = np.round(project(pc, k) * 16).astype(np.int32)
        cv2.fillPoly(ids, [px], i, cv2.LINE_8, shift=4)
    ids.setflags(write=False)
    return ids, tuple(p[1] for p in polys), np.array([p[0] for p in polys])


def draw_cabin(camera: str, seat: str, k: np.ndarray, shape: tuple[int, int], nir: bool,
               tint: np.ndarray, face_distance: float) -> np.ndarray:
    """Linear-light background (H, W, 3) float32. ``tint`` varies the upholstery per scene;
    NIR surfaces fall off with distance from the camera's illuminator."""
    ids, mats, dists = _layout(camera, seat, tuple(np.asarray(k, float).ravel().tolist()), tuple(shape))
    palette = np.empty((len(mats) + 1, 3), np.float32)
    palette[0] = 0.02 if nir else 0.05
    for i, (mat, dist) in enumerate(zip(mats, dists, strict=True), start=1):
        if nir:
            palette[i] = MATERIALS_NIR[mat] * min(1.0, (face_distance / dist) ** 2) * 1.6
        else:
            c = np.array(MATERIALS_RGB[mat])
            palette[i] = c * tint if mat in ("seat", "headrest", "seat_side", "door") else c
    return np.take(palette, ids, axis=0)

"""Face-mesh control maps in the style face-mesh ControlNets were trained on.

Reproduces the annotator of CrucibleAI/ControlNetMediaPipeFace (``laion_face_common.py``,
``generate_annotation``): on a black image, MediaPipe's ``draw_landmarks`` draws the contour
connections of FACEMESH_FACE_OVAL, _LEFT_EYE, _LEFT_EYEBROW, _RIGHT_EYE, _RIGHT_EYEBROW and _LIPS
as 2-pixel ``cv2.line`` segments, then ``draw_pupils`` paints a 4x4 square
(``[y-2:y+2, x-2:x+2]``) on landmarks 468 and 473. The annotator draws into a buffer it treats as
BGR and flips the channels at the end, so its DrawingSpec colours appear reversed in the RGB
result; the RGB colours below are the ones that end up in its training images.
Pixel positions follow MediaPipe's ``_normalized_to_pixel_coordinates`` (floor of x * width, points
outside the image skipped) applied to our exact landmark positions.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

THICKNESS = 2
PUPIL_HALFWIDTH = 2

# (connection set name, DrawingSpec colour in the annotator) -> RGB in the final image = reversed.
_SPEC = (
    ("FACEMESH_FACE_OVAL", (10, 200, 10)),
    ("FACEMESH_LEFT_EYE", (180, 200, 10)),
    ("FACEMESH_LEFT_EYEBROW", (180, 220, 10)),
    ("FACEMESH_RIGHT_EYE", (10, 200, 180)),
    ("FACEMESH_RIGHT_EYEBROW", (10, 220, 180)),
    ("FACEMESH_LIPS", (10, 180, 10)),
)
_PUPILS = ((468, (10, 200, 250)), (473, (250, 200, 10)))


@lru_cache(maxsize=1)
def _connections() -> list[tuple[int, int, tuple[int, int, int]]]:
    """(start, end, RGB) per edge, in the annotator's dict order (later regions overwrite earlier)."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    spec: dict[tuple[int, int], tuple[int, int, int]] = {}
    for name, bgr in _SPEC:
        for edge in getattr(fmc, name):
            spec[edge] = bgr[::-1]
    return [(a, b, col) for (a, b), col in spec.items()]


def _pixels(pts: np.ndarray, w: int, h: int) -> list[tuple[int, int] | None]:
    rel = pts / np.array([w, h])
    ok = ((rel >= 0.0) & (rel <= 1.0)).all(1)
    ij = np.minimum(np.floor(rel * [w, h]).astype(int), [w - 1, h - 1]).tolist()
    return [tuple(p) if o else None for p, o in zip(ij, ok.tolist(), strict=True)]


def draw_control(landmarks_478: np.ndarray, width: int, height: int) -> np.ndarray:
    """HxWx3 uint8 RGB control map from 478 landmark pixel positions."""
    img = np.zeros((height, width, 3), np.uint8)
    pts = _pixels(np.asarray(landmarks_478, float), width, height)
    for a, b, col in _connections():
        pa, pb = pts[a], pts[b]
        if pa is not None and pb is not None:
            cv2.line(img, pa, pb, col, THICKNESS)
    hw = PUPIL_HALFWIDTH
    for idx, bgr in _PUPILS:
        x, y = landmarks_478[idx] / np.array([width, height])
        if 0 <= x < 1.0 and 0 <= y < 1.0:
            px, py = int(width * x), int(height * y)
            img[max(py - hw, 0) : py + hw, max(px - hw, 0) : px + hw] = bgr[::-1]
    return img

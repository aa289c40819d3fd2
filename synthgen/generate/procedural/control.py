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
def _connections() -> tuple[tuple[np.ndarray, tuple[int, int, int]], ...]:
    """The edges in the annotator's dict order (later regions overwrite earlier), as runs of
    consecutive edges of one RGB colour: (edges (E, 2) landmark indices, colour) per run."""
    from mediapipe.python.solutions import face_mesh_connections as fmc

    spec: dict[tuple[int, int], tuple[int, int, int]] = {}
    for name, bgr in _SPEC:
        for edge in getattr(fmc, name):
            spec[edge] = bgr[::-1]
    runs: list[tuple[list[tuple[int, int]], tuple[int, int, int]]] = []
    for edge, col in spec.items():
        if runs and runs[-1][1] == col:
            runs[-1][0].append(edge)
        else:
            runs.append(([edge], col))
    return tuple((np.array(edges, np.int64), col) for edges, col in runs)


def draw_control(landmarks_478: np.ndarray, width: int, height: int) -> np.ndarray:
    """HxWx3 uint8 RGB control map from 478 landmark pixel positions. Each run of same-coloured
    edges is one ``cv2.polylines`` call of 2-point lines, drawn in order as the annotator's
    per-edge ``cv2.line`` calls draw them (a Python call per edge was most of this map's cost)."""
    img = np.zeros((height, width, 3), np.uint8)
    rel = np.asarray(landmarks_478, float) / np.array([width, height])
    ok = ((rel >= 0.0) & (rel <= 1.0)).all(1)
    ij = np.minimum(np.floor(rel * [width, height]).astype(np.int32), [width - 1, height - 1]).astype(np.int32)
    for edges, col in _connections():
        keep = edges[ok[edges[:, 0]] & ok[edges[:, 1]]]
        if len(keep):
            cv2.polylines(img, list(ij[keep]), False, col, THICKNESS)
    hw = PUPIL_HALFWIDTH
    for idx, bgr in _PUPILS:
        x, y = landmarks_478[idx] / np.array([width, height])
        if 0 <= x < 1.0 and 0 <= y < 1.0:
            px, py = int(width * x), int(height * y)
            img[max(py - hw, 0) : py + hw, max(px - hw, 0) : px + hw] = bgr[::-1]
    return img

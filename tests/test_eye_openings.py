"""The eye openings: what fills the lid opening where the eyeball does not reach."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthgen.generate.procedural import model as fm
from synthgen.generate.procedural.raster import project
from synthgen.generate.procedural.renderer import Scene, _Frame
from synthgen.spec import SceneSpec


def _opening(sc: Scene, k: np.ndarray, shape: tuple[int, int], side: int) -> np.ndarray:
    """The lid opening of one eye (exact mesh contour), shrunk by one pixel so edge samples that
    the lid's own triangles take do not count."""
    ids = fm.R_EYE_UPPER + fm.R_EYE_LOWER[::-1][1:-1]
    if side:
        ids = [int(fm.load_model().mirror[i]) for i in ids]
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(project(sc.verts[ids], k) * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)
    return cv2.erode(mask, np.ones((3, 3), np.uint8)).astype(bool)


@pytest.mark.parametrize("pitch", [-25.0, 0.0, 20.0])
def test_eye_layer_fills_the_whole_lid_opening_with_pink_tissue_at_the_corners(pitch: float) -> None:
    """After the face mesh the lid openings are holes; the eye layer must cover every sample in
    them, so the skull behind never shows as skin-coloured wedges at the canthi. Looking ahead or
    up, the samples nearest each corner are the eyeball's surroundings (caruncle, conjunctiva):
    clearly redder than the sclera (R/G of the sclera's albedo is 1.11; skin here is under 1.45).
    Looking down, the eyeball's white may reach the corners, so only the coverage is checked."""
    spec = SceneSpec(sample_id="s", index=0, seed=3, identity=0, identity_seed=12, age=35, gender="male",
                     skin_tone=3, gaze_pitch=pitch, camera="instrument_cluster")
    sc = Scene(spec, 256, 256, 2, 0.42)
    frame = _Frame(sc, spec)
    frame.draw_face()
    holes = [_opening(sc, frame.k, frame.shape, side) for side in (0, 1)]
    assert all((frame.free & h).sum() > 50 for h in holes)  # the face layer leaves the openings open
    frame.draw_eyes()
    skin_rg = float(frame.skin[0] / frame.skin[1])
    assert skin_rg < 1.45
    for side, hole in enumerate(holes):
        assert not (frame.free & hole).any()
        if pitch < 0:
            continue
        ys, xs = np.nonzero(hole)
        pts = np.stack([xs, ys], 1).astype(float)
        corner_ids = (33, 133) if side == 0 else tuple(int(fm.load_model().mirror[i]) for i in (33, 133))
        for c in project(sc.verts[list(corner_ids)], frame.k):
            near = np.argsort(np.linalg.norm(pts - c, axis=1))[:12]
            rgb = frame.canvas[ys[near], xs[near]]
            assert np.median(rgb[:, 0] / np.maximum(rgb[:, 1], 1e-6)) > 1.5

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
    them, so the skull behind never shows as skin-coloured wedges at the canthi. At every gaze the
    inner corner shows the caruncle and the outer angle a little conjunctiva (they lie in front of
    the globe): the samples within 3 mm of the inner corner (at least 3), and the 3 nearest the outer one, are
    clearly redder than the sclera (R/G of the sclera's albedo is 1.11; skin here is under 1.45)."""
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
        ys, xs = np.nonzero(hole)
        pts = np.stack([xs, ys], 1).astype(float)
        corner_ids = (33, 133) if side == 0 else tuple(int(fm.load_model().mirror[i]) for i in (33, 133))
        outer, inner = project(sc.verts[list(corner_ids)], frame.k)
        d_in = np.linalg.norm(pts - inner, axis=1)
        in_reach = int((d_in < 0.1 * np.linalg.norm(inner - outer)).sum())  # 3 mm round the inner corner
        near_sets = (np.argsort(np.linalg.norm(pts - outer, axis=1))[:3],  # the outer angle's few samples
                     np.argsort(d_in)[:max(in_reach, 3)])
        for near in near_sets:
            rgb = frame.canvas[ys[near], xs[near]]
            assert np.median(rgb[:, 0] / np.maximum(rgb[:, 1], 1e-6)) > 1.5


def test_upper_lid_keeps_its_cover_of_the_iris_and_the_canthi_stay_as_the_eye_looks_up_or_down() -> None:
    """Real upper lids follow the eye (lid-globe coordination): the margin keeps the same cover of
    the iris's top edge from 30 degrees down to 25 up, so no white shows above the iris looking
    down (that is lid retraction, a sign of thyroid eye disease, not a normal eye); at rest it
    covers the iris's top edge in an 8-12 mm high fissure. The canthi are
    tied to the orbit and do not move; the margin next to them moves far less than its middle.
    Checked in head-local metres on the exact geometry (the mesh vertices the labels come from)."""
    covers, lids, near_corner, corners, fissures = [], [], [], [], []
    for pitch in (-30.0, -15.0, 0.0, 15.0, 25.0):
        spec = SceneSpec(sample_id="s", index=0, seed=3, identity=0, identity_seed=12, age=35, gender="male",
                         skin_tone=3, gaze_pitch=pitch, camera="instrument_cluster")
        v = Scene(spec, 256, 256, 2, 0.42).local
        iris_top = v[fm.R_PUPIL + 1: fm.R_PUPIL + 5, 1].min()  # image y grows downwards
        covers.append(v[159, 1] - iris_top)
        lids.append(v[159, 1])
        near_corner.append(v[246, 1])
        corners.append(v[[33, 133], 1])
        fissures.append(v[145, 1] - v[159, 1])
    assert max(covers) - min(covers) < 0.0003, np.round(np.array(covers) * 1000, 2)
    # at rest: the lid over the iris's top edge (by 1-2 mm in most adults), an 8-12 mm fissure
    assert 0.0002 < covers[2] < 0.002 and 0.008 < fissures[2] < 0.012, (covers[2], fissures[2])
    assert lids[0] - lids[2] > 0.004  # looking 30 degrees down the margin drops over 4 mm
    assert abs(near_corner[0] - near_corner[2]) < 0.5 * (lids[0] - lids[2])
    np.testing.assert_allclose(corners, [corners[2]] * len(corners), atol=1e-9)

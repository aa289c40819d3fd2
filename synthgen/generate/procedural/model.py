"""The face model: a mean face on MediaPipe's 478-point topology plus blendshape-like modes.

Why this shape: the mesh's vertices *are* MediaPipe's landmarks, so the renderer's 478-point
labels, its 68-point labels (a fixed vertex subset) and the face-mesh control map are exact. The
mean shape is measured from real photos (scripts/build_face_mesh.py), and expressions, identities,
age and eyelids are smooth vertex displacements in the head-local frame (metres; x towards the
subject's left, y down, the face looking along -z; origin between the pupils).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from synthgen.errors import DataError

ASSET = Path(__file__).parent / "assets" / "face_mesh.npz"

# MediaPipe contour vertex chains (subject's right side; the left side is found by the mirror map).
R_EYE_UPPER = [33, 246, 161, 160, 159, 158, 157, 173, 133]
R_EYE_LOWER = [33, 7, 163, 144, 145, 153, 154, 155, 133]
R_BROW_UPPER = [70, 63, 105, 66, 107]
R_BROW_LOWER = [46, 53, 52, 65, 55]
LIP_OUTER_UPPER = [61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291]
LIP_OUTER_LOWER = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291]
LIP_INNER_UPPER = [78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308]
LIP_INNER_LOWER = [78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308]
NOSE_TIP, CHIN, FOREHEAD = 1, 152, 10
R_PUPIL, L_PUPIL = 468, 473

EYEBALL_RADIUS = 0.012
EYEBALL_BEHIND_PUPIL = 0.0095  # eyeball centre behind the pupil plane
IRIS_RADIUS = 0.0059
N_MESH = 468


@dataclass(frozen=True)
class FaceModel:
    vertices: np.ndarray  # (478, 3) mean face
    triangles: np.ndarray  # (T, 3)
    lm68: np.ndarray  # (68,)
    mirror: np.ndarray  # (478,)
    iris_ring_dirs: np.ndarray  # (2, 4, 2) unit in-plane directions of MediaPipe's iris points 1..4
    uv: np.ndarray  # (468, 2) texture coordinates in [0, 1]

    def left(self, idx: list[int]) -> list[int]:
        """The subject's-left counterparts of right-side vertex indices."""
        return [int(self.mirror[i]) for i in idx]


@lru_cache(maxsize=1)
def load_model() -> FaceModel:
    """Load the committed mesh asset (once per process)."""
    if not ASSET.exists():
        raise DataError(
            "the face mesh asset is missing", where=str(ASSET),
            fix="run `.venv/bin/python scripts/build_face_mesh.py` to rebuild it",
        )
    d = np.load(ASSET)
    v = d["vertices"].astype(np.float64)
    dirs = []
    for c in (R_PUPIL, L_PUPIL):
        off = v[c + 1 : c + 5, :2] - v[c, :2]
        dirs.append(off / np.linalg.norm(off, axis=1, keepdims=True))
    xy = v[:N_MESH, :2]
    lo, hi = xy.min(0), xy.max(0)
    span = (hi - lo).max() * 1.04
    uv = (xy - (lo + hi) / 2) / span + 0.5
    return FaceModel(v, d["triangles"].astype(np.int32), d["lm68"].astype(np.int64),
                     d["mirror"].astype(np.int64), np.array(dirs), uv)


def _gauss(v: np.ndarray, centre: np.ndarray, sigma: float) -> np.ndarray:
    return np.exp(-((v - centre) ** 2).sum(-1) / (2 * sigma**2))


@dataclass(frozen=True)
class Regions:
    """Smooth per-vertex weights of facial regions, computed once from the mean face."""

    jaw: np.ndarray  # 0 above the mouth line, 1 at the chin
    lower_lip: np.ndarray
    upper_lip: np.ndarray
    corner_r: np.ndarray
    corner_l: np.ndarray
    brow_r: np.ndarray
    brow_l: np.ndarray
    inner_brow: np.ndarray
    cheeks: np.ndarray
    lid_upper: np.ndarray  # weight of the upper lid closing (1 at the lid margin)
    lid_lower: np.ndarray
    nose: np.ndarray
    lower_face: np.ndarray  # below the eyes, fading in
    side: np.ndarray  # |x| normalised


@lru_cache(maxsize=1)
def regions() -> Regions:
    m = load_model()
    v = m.vertices[:N_MESH]
    y_mouth = v[[61, 291, 13, 14], 1].mean()
    y_chin = v[CHIN, 1]
    jaw = np.clip((v[:, 1] - y_mouth) / (y_chin - y_mouth), 0, 1) ** 0.7
    jaw[v[:, 1] < y_mouth] = 0.0
    lower_lip = np.zeros(N_MESH)
    lower_lip[[i for i in LIP_INNER_LOWER[1:-1] + LIP_OUTER_LOWER[1:-1]]] = 1.0
    jaw = np.maximum(jaw, lower_lip)
    # Everything between the inner upper lip and the chin within the mouth's width moves with the
    # jaw: otherwise the lower lip's middle ring stays behind and an open mouth shows a stretched
    # lip band instead of the mouth cavity.
    iu = v[LIP_INNER_UPPER]
    order = np.argsort(iu[:, 0])
    y_in = np.interp(v[:, 0], iu[order, 0], iu[order, 1])
    x_c = abs(v[61, 0])
    in_mouth = np.clip((x_c - np.abs(v[:, 0])) / 0.006, 0, 1)
    jaw_lip = np.clip((v[:, 1] - y_in) / 0.0015, 0, 1) * in_mouth * (v[:, 1] < y_chin)
    jaw = np.maximum(jaw, jaw_lip)
    upper_lip = np.maximum.reduce([_gauss(v, v[i], 0.006) for i in LIP_OUTER_UPPER[2:-2] + [0]])
    upper_lip[[LIP_INNER_UPPER + LIP_OUTER_UPPER]] = 1.0
    upper_lip[[61, 291, 78, 308]] = 0.5
    corner_r, corner_l = _gauss(v, v[61], 0.012), _gauss(v, v[291], 0.012)
    brow_r = np.maximum.reduce([_gauss(v, v[i], 0.012) for i in R_BROW_UPPER + R_BROW_LOWER])
    brow_l = np.maximum.reduce([_gauss(v, v[m.mirror[i]], 0.012) for i in R_BROW_UPPER + R_BROW_LOWER])
    inner_brow = _gauss(v, v[55], 0.012) + _gauss(v, v[m.mirror[55]], 0.012)
    cheeks = _gauss(v, v[50], 0.018) + _gauss(v, v[m.mirror[50]], 0.018)
    lid_upper = np.zeros(N_MESH)
    lid_lower = np.zeros(N_MESH)
    for side in (lambda i: i, lambda i: int(m.mirror[i])):
        up = [side(i) for i in R_EYE_UPPER[1:-1]]
        lo = [side(i) for i in R_EYE_LOWER[1:-1]]
        c = v[up + lo].mean(0)
        near = ((v[:, :2] - c[:2]) ** 2).sum(-1) < 0.022**2
        above = v[:, 1] < c[1]
        d_up = np.sqrt(((v[:, None, :2] - v[None, up, :2]) ** 2).sum(-1)).min(1)
        w = np.exp(-(d_up**2) / (2 * 0.0045**2)) * (near & above)
        w[up] = 1.0
        lid_upper = np.maximum(lid_upper, w)
        lid_lower[lo] = 1.0
    nose = _gauss(v, v[NOSE_TIP], 0.015)
    lower_face = np.clip((v[:, 1] - 0.01) / 0.06, 0, 1)
    side_w = np.abs(v[:, 0]) / np.abs(v[:, 0]).max()
    return Regions(jaw, lower_lip, upper_lip, corner_r, corner_l, brow_r, brow_l, inner_brow,
                   cheeks, lid_upper, lid_lower, nose, lower_face, side_w)


def _lower_lid_y(v: np.ndarray, up: list[int], lo: list[int]) -> np.ndarray:
    """Height of the lower lid under each upper-lid vertex (linear in x along the lower contour)."""
    lx, ly = v[lo, 0], v[lo, 1]
    order = np.argsort(lx)
    return np.interp(v[up, 0], lx[order], ly[order])


# Rest lid positions (metres moved down from the measured mean face's) once the eyeball sits at
# canthal height. 0.8.1, by anatomy: the upper lid covers about 1 mm of the iris's top edge, the
# lower lid sits at its bottom edge (0.8 mm over it) and the fissure is 10.1 mm high (adults: 8-12).
# 0.6.0 to 0.8.0 rested the upper lid 1.5 mm above the iris (white showing above it, a startled
# look) in a fissure of 11.6 mm, a trade-off made when the lids followed a share of the pupil's
# travel: a narrower opening then read less vertical gaze. With lids that follow the iris's edges
# (below) the anatomical rest reads more of it, by the tuned and the held-out reader alike (300
# default-plan renders: slope 0.19 -> 0.25 by the mesh's iris, 0.21 -> 0.30 by the standalone iris
# network; docs/procedural.md has the whole before/after).
UPPER_LID_REST = 0.0028
LOWER_LID_REST = 0.0035
# The upper lid follows the iris's top edge itself (``iris_edge_drops``); the lower lid follows this
# share of the bottom edge's travel, looking down and looking up (about half the upper lid's
# excursion looking down, as measured in real lids). Up to 0.8.0 both lids followed a fixed share
# of the pupil's travel (0.8 and 0.3): looking 30 degrees down, the upper lid lagged the iris top by
# 1.4 mm (white showing above the iris, which real eyes show only with lid retraction) and the
# lower lid hid the iris's lower half.
LOWER_LID_FOLLOW_DOWN = 0.5
LOWER_LID_FOLLOW_UP = 0.3


def iris_edge_drops(gaze_pitch_local: float) -> tuple[float, float]:
    """How far (metres, image-down positive) the iris's top and bottom edges move when the eye turns
    from straight ahead to ``gaze_pitch_local`` degrees (positive up): the top edge moves further
    than the pupil looking down (the iris disc tilts), the bottom edge less."""
    theta = np.radians(-np.clip(gaze_pitch_local, -35, 35))
    along, tilt = EYEBALL_BEHIND_PUPIL * np.sin(theta), IRIS_RADIUS * (1 - np.cos(theta))
    return float(along + tilt), float(along - tilt)


@lru_cache(maxsize=1)
def _upper_lid_follow_weight() -> np.ndarray:
    """The upper lid's weight (``regions().lid_upper``) times a parabola across each eye's width,
    1 at the middle and 0 at both canthi: the canthi are tied to the orbit by their tendons, so
    the lid margin follows the eye most in its middle and not at all at the corners (its arch
    flattens looking down). Without it the margin moved as one, right up to the corners."""
    m = load_model()
    v = m.vertices[:N_MESH]
    w = regions().lid_upper.copy()
    for side in (lambda i: i, lambda i: int(m.mirror[i])):
        xs = v[[side(R_EYE_UPPER[0]), side(R_EYE_UPPER[-1])], 0]
        lo, hi = float(xs.min()), float(xs.max())
        near = (v[:, 0] > lo - 0.02) & (v[:, 0] < hi + 0.02) & (np.abs(v[:, 1] - v[side(R_EYE_UPPER[0]), 1]) < 0.03)
        t = np.clip((v[:, 0] - lo) / (hi - lo), 0, 1)
        w[near] *= 4 * t[near] * (1 - t[near])
    return w


@lru_cache(maxsize=1)
def _lower_lid_weight() -> np.ndarray:
    """Smooth weight of the lower lids (1 on the lid margin, fading over ~5 mm below it)."""
    m = load_model()
    v = m.vertices[:N_MESH]
    w_all = np.zeros(N_MESH)
    for side in (lambda i: i, lambda i: int(m.mirror[i])):
        up = [side(i) for i in R_EYE_UPPER[1:-1]]
        lo = [side(i) for i in R_EYE_LOWER[1:-1]]
        c = v[up + lo].mean(0)
        near = ((v[:, :2] - c[:2]) ** 2).sum(-1) < 0.022**2
        below = v[:, 1] > c[1]
        d_lo = np.sqrt(((v[:, None, :2] - v[None, lo, :2]) ** 2).sum(-1)).min(1)
        w = np.exp(-(d_lo**2) / (2 * 0.0045**2)) * (near & below)
        w[lo] = 1.0
        # The canthi stay put: fade the weight out towards both eye corners.
        corners = v[[side(R_EYE_LOWER[0]), side(R_EYE_LOWER[-1])], 0]
        w *= np.clip(np.abs(v[:, 0, None] - corners[None, :]).min(1) / 0.005, 0, 1)
        w_all = np.maximum(w_all, w)
    return w_all


def landmark_labels(px: np.ndarray) -> dict[str, list[float]]:
    """The point labels of 478 projected landmark pixels: both landmark sets, the pupils, and the
    face box (the mesh's extent)."""
    mesh = px[:N_MESH]
    return {
        "req_landmarks_68": px[load_model().lm68].ravel().astype(float).tolist(),
        "req_landmarks_478": px.ravel().astype(float).tolist(),
        "req_pupils": px[[R_PUPIL, L_PUPIL]].ravel().astype(float).tolist(),
        "req_face_box": [float(mesh[:, 0].min()), float(mesh[:, 1].min()),
                         float(mesh[:, 0].max()), float(mesh[:, 1].max())],
    }


# Face width against an adult's by age (bizygomatic breadth, sexes pooled, after Farkas's North
# American growth norms): the face grows later than the cranium, which is already 0.9 of its adult
# size at 6 when the face is 0.85.
_FACE_GROWTH_AGES = (0.0, 1.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0)
_FACE_GROWTH = (0.65, 0.72, 0.82, 0.85, 0.87, 0.90, 0.93, 0.96, 0.98, 1.0)


def face_growth(age: float) -> float:
    """The face's size against an adult's (1 from 18): the mesh, lids and iris points scale by it
    about the mid-eye point, while the cranium scales by ``head_scale``. Why: up to renderer 0.8.2
    a child's face mesh stayed adult-sized inside a smaller skull, a face too large for its head,
    which is the opposite of a child's proportions (and its interpupillary distance was an adult's)."""
    return float(np.interp(age, _FACE_GROWTH_AGES, _FACE_GROWTH))


# Shoulder (biacromial) breadth against an adult's, after children's anthropometric surveys (about
# 22 cm at 2, 26 at 6, 30 at 10, 35 at 14 against an adult's 38): the body grows far more than the head.
_BODY_GROWTH_AGES = (0.0, 2.0, 6.0, 10.0, 14.0, 18.0)
_BODY_GROWTH = (0.50, 0.58, 0.68, 0.79, 0.92, 1.0)


def body_scale(age: float) -> float:
    """Torso size against an adult's (1 from 18): the torso and the seat belt on it scale by it.
    Why: up to renderer 0.8.5 they scaled by ``head_scale`` (0.875 at 6), so a child sat in an
    almost adult torso under its small head."""
    return float(np.interp(age, _BODY_GROWTH_AGES, _BODY_GROWTH))


def head_scale(age: float) -> float:
    """Head size against an adult's: children's heads are smaller (0.8 at birth, adult from 16)."""
    return 1.0 if age >= 16 else 0.8 + 0.2 * age / 16


def eyeball_centre_heights(v: np.ndarray) -> tuple[float, float]:
    """Height (y) of each eyeball's centre: the midpoint of that eye's corners. Why: in a real eye
    the centre of rotation lies on the line between the canthi; the measured mean face has its
    iris points about 2 mm above it, which made a geometric gaze reader see every eye looking up."""
    m = load_model()
    r = float(v[[33, 133], 1].mean())
    left = float(v[[int(m.mirror[33]), int(m.mirror[133])], 1].mean())
    return r, left


def pose_eyelids(v: np.ndarray, gaze_pitch_local: float) -> np.ndarray:
    """Move both lids to their rest positions for an eyeball at canthal height and make them follow
    vertical gaze as real lids do: the upper lid margin keeps its cover of the iris's top edge
    (lid-globe coordination), most in its middle and not at the canthi; the lower lid moves about
    half as far looking down and a little looking up. This lid motion is a large part of what
    landmark models see of vertical gaze."""
    r = regions()
    out = v.copy()
    top, bottom = iris_edge_drops(gaze_pitch_local)
    lower = (LOWER_LID_FOLLOW_DOWN if bottom > 0 else LOWER_LID_FOLLOW_UP) * bottom
    out[:N_MESH, 1] += r.lid_upper * UPPER_LID_REST + _upper_lid_follow_weight() * top
    out[:N_MESH, 1] += _lower_lid_weight() * (LOWER_LID_REST + lower)
    return out


def close_eyelids(v: np.ndarray, openness: float, gaze_pitch_local: float) -> np.ndarray:
    """Pose the lids for the gaze (``pose_eyelids``), then lower the upper lids towards the lower
    lids: ``openness`` 1 keeps them posed, 0 closes them onto the lower lid."""
    m = load_model()
    r = regions()
    v = pose_eyelids(v, gaze_pitch_local)
    out = v.copy()
    for side in (lambda i: i, lambda i: int(m.mirror[i])):
        up = [side(i) for i in R_EYE_UPPER[1:-1]]
        lo = [side(i) for i in R_EYE_LOWER[1:-1]]
        target = _lower_lid_y(v, up, lo) - 0.0004
        drop = np.maximum(target - v[up, 1], 0.0) * (1.0 - openness)
        # Spread each lid vertex's drop to its neighbourhood by weight (nearest lid vertex in x).
        eye_c = v[up + lo].mean(0)
        sel = np.flatnonzero((r.lid_upper > 0) & (np.abs(v[:N_MESH, 0] - eye_c[0]) < 0.025))
        nearest = np.abs(v[sel, 0][:, None] - v[up, 0][None, :]).argmin(1)
        out[sel, 1] += r.lid_upper[sel] * drop[nearest]
    return out


@dataclass(frozen=True)
class IdentityShape:
    """Per-identity shape parameters (drawn from identity_seed), in relative units."""

    width: float
    length: float
    jaw: float
    nose_len: float
    nose_width: float
    nose_depth: float
    lips: float
    eyes: float
    chin: float
    cheeks: float
    brow_ridge: float
    eye_spacing: float  # metres each eye moves outwards
    eye_height: float  # metres the eyes and brows move down
    mouth_width: float
    brow_height: float  # metres the brows move up
    canthal_tilt: float  # radians, outer corners up


# Correlations between the anthropometric modes (width, length, jaw, nose length, nose width,
# chin), after Farkas-style head and face measurements: broad faces have broad jaws and noses,
# long faces long noses and chins.
_CORR = np.array([
    [1.0, 0.2, 0.5, 0.1, 0.4, 0.1],
    [0.2, 1.0, 0.2, 0.5, 0.1, 0.5],
    [0.5, 0.2, 1.0, 0.1, 0.3, 0.3],
    [0.1, 0.5, 0.1, 1.0, 0.2, 0.3],
    [0.4, 0.1, 0.3, 0.2, 1.0, 0.1],
    [0.1, 0.5, 0.3, 0.3, 0.1, 1.0],
])
_CHOL = np.linalg.cholesky(_CORR)


def identity_shape(identity_seed: int, gender: str) -> IdentityShape:
    """Shape parameters of one identity. Spreads are about those of adult anthropometry (face
    width and length sd ~5-7 %, interpupillary distance sd ~3.5 mm, nose and lips 15-30 %),
    with the main proportions correlated (``_CORR``). Why this wide: with the spreads of 0.5.0
    (half these) dlib's embedding told same from different identities only at ROC AUC 0.63."""
    rng = np.random.default_rng([identity_seed, 1])
    n = rng.normal(size=16)
    c = _CHOL @ n[:6]
    male = 1.0 if gender == "male" else -1.0
    return IdentityShape(
        width=0.06 * c[0] + 0.015 * male,
        length=0.055 * c[1] + 0.015 * male,
        jaw=0.14 * c[2] + 0.06 * male,
        nose_len=0.14 * c[3] + 0.04 * male,
        nose_width=0.18 * c[4] + 0.05 * male,
        nose_depth=0.2 * n[6] + 0.05 * male,
        lips=0.28 * n[7] - 0.08 * male,
        eyes=0.09 * n[8] - 0.02 * male,
        chin=0.2 * c[5] + 0.05 * male,
        cheeks=0.2 * n[9],
        brow_ridge=0.18 * n[10] + 0.25 * male,
        eye_spacing=0.0012 * n[11],
        eye_height=0.0025 * n[12],
        mouth_width=0.07 * n[13],
        brow_height=0.002 * n[14],
        canthal_tilt=0.06 * n[15],
    )


def chin_weight(mesh: np.ndarray, jaw: np.ndarray) -> np.ndarray:
    """Per vertex, how far a longer chin moves it (0 at and above the lower lip's lowest point, 1 at
    the chin), within the jaw region. Why not the jaw's own weight: that weight holds the lower lip
    at 1 (the lip rides on the jaw when the mouth opens), so an identity's chin length parted or
    crushed its closed lips, from 3.8 mm of overlap to 5.0 mm apart at rest (renderer <= 0.8.1),
    and the jowls' sag parted the lips' sides by up to 3.5 mm at 80, so more than half of the
    neutral faces showed their teeth, which expression readers take for a smile."""
    y_lip = float(mesh[LIP_OUTER_LOWER, 1].max())
    y_chin = float(mesh[CHIN, 1])
    below = np.clip((mesh[:, 1] - y_lip) / max(y_chin - y_lip, 1e-6), 0, 1) ** 0.7
    return np.asarray(below * (jaw > 0))


def shape_face(identity_seed: int, gender: str, age: float) -> np.ndarray:
    """Neutral face (478, 3) of one identity at one age, pupils kept at their mean positions so the
    eyeballs stay consistent with the lids. A new array each call (callers pose it in place); the
    shape itself is computed once per identity and age, which repeat across a plan."""
    return _shaped_face(identity_seed, gender, age).copy()


@lru_cache(maxsize=256)
def _shaped_face(identity_seed: int, gender: str, age: float) -> np.ndarray:
    m = load_model()
    r = regions()
    s = identity_shape(identity_seed, gender)
    v = m.vertices.copy()
    mesh = v[:N_MESH]
    eye_c = mesh[[33, 133, 362, 263]].mean(0)
    # Global proportions.
    mesh[:, 0] *= 1.0 + s.width
    mesh[:, 1] = np.where(mesh[:, 1] > 0, mesh[:, 1] * (1.0 + s.length), mesh[:, 1])
    # Jaw width grows towards the chin; chin length. Within the mouth's width both move only what
    # is below the lower lip: the jaw's own weight holds the lower lip at 1, so a wider jaw slid the
    # lower lip's sides past the upper's by up to 3 mm (0.7 mm median; renderer <= 0.8.5). Beyond
    # the mouth's corners the jaw keeps its own weight, so the jaw line still varies as much.
    below = chin_weight(mesh, r.jaw)
    lateral = np.clip((np.abs(mesh[:, 0]) - abs(float(mesh[61, 0]))) / 0.01, 0, 1)
    mesh[:, 0] *= 1.0 + s.jaw * (r.jaw * lateral + below * (1 - lateral)) * r.side
    mesh[:, 1] += 0.008 * s.chin * below
    # Nose.
    mesh[:, 1] += 0.01 * s.nose_len * r.nose
    mesh[:, 0] *= 1.0 + s.nose_width * r.nose
    mesh[:, 2] -= 0.012 * s.nose_depth * r.nose
    # Lips thickness: move lip contours away from the mouth line.
    lip_y = mesh[[13, 14], 1].mean()
    lipw = np.zeros(N_MESH)
    lipw[LIP_OUTER_UPPER[1:-1] + LIP_OUTER_LOWER[1:-1]] = 1.0
    mesh[:, 1] += 0.002 * s.lips * lipw * np.sign(mesh[:, 1] - lip_y)
    # Cheeks fullness and brow ridge protrusion.
    mesh[:, 2] -= 0.004 * s.cheeks * r.cheeks
    mesh[:, 2] -= 0.003 * s.brow_ridge * (r.brow_r + r.brow_l)
    # Age: children have a shorter lower face and rounder cheeks; elders sag a little.
    if age < 18:
        k = (18 - age) / 18
        lower = np.clip((mesh[:, 1] - eye_c[1]) / 0.1, 0, 1)
        mesh[:, 1] -= 0.028 * k * lower * np.clip(mesh[:, 1] - eye_c[1], 0, None) / 0.1
        mesh[:, 0] *= 1.0 + 0.06 * k * lower
        mesh[:, 2] -= 0.004 * k * r.cheeks
    elif age > 45:
        # Sagging: jowls and cheeks drop, the lips thin, the nose lengthens.
        k = min((age - 45) / 35, 1.0)
        mesh[:, 1] += 0.011 * k * chin_weight(mesh, r.jaw) * r.side  # below the lips: they stay closed
        mesh[:, 1] += 0.006 * k * r.cheeks
        mesh[:, 2] += 0.003 * k * r.cheeks  # cheeks lose their fullness
        mesh[:, 1] += 0.002 * k * r.nose
        lip_y = mesh[[13, 14], 1].mean()
        mesh[:, 1] -= 0.0015 * k * lipw * np.sign(mesh[:, 1] - lip_y)
    # Mouth width (corners in or out), brow height.
    mesh[:, 0] += s.mouth_width * 0.025 * np.sign(mesh[:, 0]) * (r.corner_r + r.corner_l)
    mesh[:, 1] -= s.brow_height * (r.brow_r + r.brow_l)
    # Children: larger eyes (the eye reaches adult size early), a smaller, shorter nose, fuller lips.
    kid = float(np.clip((16 - age) / 13, 0, 1))
    eyes = s.eyes + 0.22 * kid
    if kid > 0:
        base = mesh[[2, 98, 327]].mean(0)
        small = _gauss(m.vertices[:N_MESH], m.vertices[NOSE_TIP], 0.02)
        mesh -= (0.28 * kid * small)[:, None] * (mesh - base)
        mesh[:, 1] += 0.0015 * kid * lipw * np.sign(mesh[:, 1] - mesh[[13, 14], 1].mean())
    # Eye size and canthal tilt: scale and turn the lids about each eye centre (pupils stay).
    for j, side in enumerate((lambda i: i, lambda i: int(m.mirror[i]))):
        idx = [side(i) for i in R_EYE_UPPER + R_EYE_LOWER]
        c = mesh[idx].mean(0)
        mesh[idx, :2] = c[:2] + (mesh[idx, :2] - c[:2]) * (1.0 + eyes)
        tilt = s.canthal_tilt * (1.0 if j == 0 else -1.0)
        dx = mesh[idx, 0] - c[0]
        mesh[idx, 1] += tilt * dx
    v[:N_MESH] = mesh
    # The iris points follow the eye width scaling in x.
    v[N_MESH:, 0] *= 1.0 + s.width
    # Eye spacing and height: move each eye's region (lids, socket, brow, iris points) as a whole.
    for j, c in enumerate((R_PUPIL, L_PUPIL)):
        w = np.exp(-((v[:, :2] - v[c, :2]) ** 2).sum(-1) / (2 * 0.014**2))
        w[c : c + 5] = 1.0
        w[(R_PUPIL if j == 1 else L_PUPIL) : (R_PUPIL if j == 1 else L_PUPIL) + 5] = 0.0
        v[:, 0] += w * s.eye_spacing * np.sign(v[c, 0])  # outwards for both eyes
        v[:, 1] += w * s.eye_height
    v *= face_growth(age)  # about the mid-eye point, the head-local origin
    v.setflags(write=False)  # cached: shape_face hands out copies
    return v

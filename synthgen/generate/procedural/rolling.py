"""Rolling-shutter exposure: the sensor reads its rows one after another while the head, the eyes
and the lids keep moving.

Row ``y`` of an ``H``-row image is exposed at ``t_ms + (y / (H - 1) - 1/2) * readout_ms``: the first
row half a readout before the spec's own time, the last row half a readout after it. The spec's
rates (``head_yaw_rate`` ... in degrees per second, ``eye_openness_rate`` per second) say how it
moves, linearly, over that window. Why whole renders at a few instants and not an image warp: a
head turning in front of a static cabin skews only where the head is, its near and far parts
move by different amounts, and a blink changes the lids, not the pixels' positions; no warp of
one image gets those right, K renders of the posed scene do. Each output row is blended from the
two renders whose instants bracket its exposure time. Labels follow the pixels: a landmark lies
where the row that imaged it was exposed (solved along its K positions), the face box spans those
landmarks, and the control map is drawn from them.

This module composes; it never draws: the renderer draws the instants it lists (``sub_specs``)
and hands it their linear canvases and labels, so the renderer stays the one place that draws.
The whole frame takes the middle instant's exposure and sensor noise, as one readout does.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from synthgen.generate.procedural import model as fm
from synthgen.generate.procedural.conditions import occluder_labels, point_labels
from synthgen.generate.procedural.model import landmark_labels
from synthgen.geometry import head_rotation
from synthgen.spec import MOTION_RATES, SceneSpec, field_bounds

# Sub-exposures: one per DEG_PER_SUB degrees (or 0.1 of lid travel) moved during the readout, at
# least 3, at most MAX_SUBS. Why 1 degree: a head 0.6 m from a 256-px crop moves about 2 px per
# degree of yaw, so neighbouring renders differ by about 2 px and the row blend between them stays
# sharp; beyond 9 renders the cost outgrows what a sensor effect should cost. The count is odd, so
# the middle render is the spec's own instant and gives the labels that rows do not move.
DEG_PER_SUB = 1.0
LID_PER_SUB = 0.1
MAX_SUBS = 9
# The head's turning point in head-local metres (x right, y down, z back, origin between the
# eyes): the upper cervical joints, about 10 cm below and 8 cm behind the eyes of an adult.
NECK_PIVOT = np.array([0.0, 0.10, 0.08])


def is_rolling(spec: SceneSpec) -> bool:
    """True when the spec asks for a rolling readout and something moves during it."""
    return spec.readout_ms > 0 and any(getattr(spec, rate) != 0 for rate in MOTION_RATES.values())


def sub_count(spec: SceneSpec) -> int:
    """How many instants the readout is rendered at (see DEG_PER_SUB)."""
    s = spec.readout_ms / 1000.0
    travel = max(abs(getattr(spec, rate)) * s / (LID_PER_SUB if field == "eye_openness" else DEG_PER_SUB)
                 for field, rate in MOTION_RATES.items())
    n = min(max(math.ceil(travel) + 1, 3), MAX_SUBS)
    return n + 1 - n % 2  # odd: the middle instant is the spec's own time


def sub_specs(spec: SceneSpec) -> list[SceneSpec]:
    """The spec at ``sub_count`` instants from the first row's exposure to the last one's, each a
    global-shutter spec (readout 0) with the motion applied and clipped to the spec's bounds."""
    out = []
    for tau in np.linspace(-0.5, 0.5, sub_count(spec)):
        dt = float(tau) * spec.readout_ms / 1000.0
        moved = {f: float(np.clip(getattr(spec, f) + getattr(spec, rate) * dt, *field_bounds(f)))  # stay in bounds
                 for f, rate in MOTION_RATES.items()}
        out.append(spec.model_copy(update={**moved, "readout_ms": 0.0}))
    return out


def head_shifts(spec: SceneSpec, subs: list[SceneSpec]) -> list[np.ndarray]:
    """Per sub-exposure (``sub_specs(spec)``), how far (camera-frame metres) the head stands off
    its posed place. The renderer turns a head about the mid-eye point, which a face-tracking crop
    makes right for one instant; inside one readout the crop stays put while a real head turns
    about the neck, so its face sweeps sideways: the pivot stays fixed, ``R_t n + eye_t = R_0 n + eye_0``."""
    pivot = NECK_PIVOT * fm.head_scale(spec.age)
    r0 = head_rotation(spec.head_yaw, spec.head_pitch, spec.head_roll)
    return [(r0 - head_rotation(s.head_yaw, s.head_pitch, s.head_roll)) @ pivot for s in subs]


def row_position(height: int, k: int) -> np.ndarray:
    """Per output row, its exposure instant as a fractional index into the K sub-exposures (row 0
    is sub-exposure 0, the last row sub-exposure K-1)."""
    return np.arange(height, dtype=np.float64) / max(height - 1, 1) * (k - 1)


def _lerp(stack: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``stack`` (K x N x ...) at a fractional index into its first axis for each of its N entries
    (``u``, length N): ``a + w (b - a)``, so an entry whose two neighbours agree is that value exactly."""
    k0 = np.minimum(np.floor(u).astype(int), stack.shape[0] - 2)
    w = (u - k0).reshape((len(u),) + (1,) * (stack.ndim - 2))
    idx = np.arange(len(u))
    a, b = stack[k0, idx], stack[k0 + 1, idx]
    return np.asarray(a + w.astype(stack.dtype) * (b - a), stack.dtype)


def blend_rows(canvases: list[np.ndarray]) -> np.ndarray:
    """Each row linearly between the two sub-exposures that bracket its instant (linear light, so
    the sensor integrates what it saw)."""
    return _lerp(np.stack(canvases).astype(np.float32), row_position(canvases[0].shape[0], len(canvases)))


def point_instants(ys: np.ndarray, height: int) -> np.ndarray:
    """For P points seen at rows ``ys`` (K x P) in the K sub-exposures, the fractional sub-exposure
    index at which the point lies on the row being read out then. The row read at index u is
    ``u / (K-1) * (H-1)``; along each point's piecewise-linear path the first crossing is taken,
    else (a point off the image, or moving faster than the readout) the index where it is closest."""
    k = ys.shape[0]
    read = np.arange(k)[:, None] / max(k - 1, 1) * (height - 1)
    f = ys - read  # K x P: > 0 while the point is below the row being read
    out = np.full(ys.shape[1], np.nan)
    for j in range(k - 1):
        a, b = f[j], f[j + 1]
        cross = np.isnan(out) & (np.sign(a) != np.sign(b)) | (np.isnan(out) & (a == 0))
        t = np.where(b != a, a / np.where(b != a, a - b, 1.0), 0.0)
        out = np.where(cross, j + np.clip(t, 0, 1), out)
    nearest = np.abs(f).argmin(0).astype(float)
    return np.where(np.isnan(out), nearest, out)


def _compose_mask(masks: list[np.ndarray | None]) -> np.ndarray | None:
    """Occluder mask rows from the sub-exposure nearest each row's instant (None: no occluder shows
    at any instant)."""
    shown = [m for m in masks if m is not None]
    if not shown:
        return None
    full = np.stack([m if m is not None else np.zeros_like(shown[0]) for m in masks])
    nearest = np.rint(row_position(full.shape[1], len(full))).astype(int)
    return full[nearest, np.arange(full.shape[1])]


def _decode_mask(struct: Any) -> np.ndarray | None:
    if not struct:
        return None
    return np.asarray(cv2.imdecode(np.frombuffer(struct["bytes"], np.uint8), cv2.IMREAD_GRAYSCALE))


def compose_labels(spec: SceneSpec, subs: list[dict[str, Any]], height: int) -> tuple[dict[str, Any], np.ndarray]:
    """Labels of the rolling readout from the sub-exposures' labels (in instant order, an odd count)
    and the 478 landmark pixels they hold. Labels that do not move with rows (requested gaze and
    zone, intrinsics, aperture, lux) come from the middle instant: the spec's own."""
    k = len(subs)
    pts = np.stack([np.asarray(s["req_landmarks_478"], float).reshape(-1, 2) for s in subs])  # K x P x 2
    u = point_instants(pts[:, :, 1], height)
    px = _lerp(pts, u)
    instant = np.rint(u).astype(int)  # each point's flags from the instant its row was read at
    vis = np.stack([np.asarray(s["req_landmarks_478_visible"], bool) for s in subs])
    visible = vis[instant, np.arange(vis.shape[1])]
    occ = np.stack([np.asarray(s["req_landmarks_478_self_occluded"], bool) for s in subs])
    self_occluded = occ[instant, np.arange(occ.shape[1])]
    mask = _compose_mask([_decode_mask(s.get("req_occluder_mask")) for s in subs])
    labels = {**subs[k // 2], **landmark_labels(px), **point_labels(visible, px, self_occluded),
              **occluder_labels(mask, spec.sample_id)}
    return labels, px

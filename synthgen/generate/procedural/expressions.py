"""Facial expressions as FACS action tables: which vertices move, along which axis, how far.

Each expression is a list of ``Action`` rows (a named weight field, an axis, metres), plus a jaw
opening and an eye widening. Why a table and not code: the magnitudes are what gets tuned and
measured (docs/procedural.md has the before/after figures per renderer version), and a table
keeps each change to one number with its action unit beside it.

Why these magnitudes: expression classifiers see the face at about 48-64 pixels (2-3 mm per
pixel), so each action moves its landmarks several millimetres. The combinations follow the FACS
prototypes (EMFACS): anger AU4+5/7+23, sadness AU1+4+15+17, disgust AU4+9+10+15+17, surprise
AU1+2+5+26, fear AU1+2+4+5+20+26, happiness AU6+12.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from synthgen.generate.procedural.model import (
    CHIN,
    LIP_OUTER_LOWER,
    LIP_OUTER_UPPER,
    N_MESH,
    _gauss,
    load_model,
    regions,
)

X, Y, Z = 0, 1, 2


@dataclass(frozen=True)
class ExpressionRegions:
    """Finer weights than ``Regions`` for the facial actions that expression models key on (FACS
    action units): the glabella (brow lowerer), outer brows, lip contours, chin boss, nose wings."""

    inner: np.ndarray  # inner brow heads (1 near the midline end of each brow)
    outer: np.ndarray  # outer brow tails
    upper_lip_outer: np.ndarray  # upper lip's outer contour and the philtrum above it
    lower_lip_outer: np.ndarray
    chin: np.ndarray  # chin boss (mentalis)
    nose_wings: np.ndarray
    mouth: np.ndarray  # whole mouth area incl. corners, for horizontal squeeze/stretch


@lru_cache(maxsize=1)
def expression_regions() -> ExpressionRegions:
    m = load_model()
    v = m.vertices[:N_MESH]

    def both(i: int, sigma: float) -> np.ndarray:
        return _gauss(v, v[i], sigma) + _gauss(v, v[m.mirror[i]], sigma)

    inner = np.maximum(both(55, 0.009), both(107, 0.009))
    outer = np.maximum(both(70, 0.011), both(105, 0.011))
    ulo = np.maximum.reduce([_gauss(v, v[i], 0.004) for i in LIP_OUTER_UPPER[1:-1]])
    ulo = np.maximum(ulo, _gauss(v, v[164], 0.005) * 0.6)
    llo = np.maximum.reduce([_gauss(v, v[i], 0.004) for i in LIP_OUTER_LOWER[1:-1]])
    chin = _gauss(v, v[CHIN] * [1, 0.9, 1] + [0, 0.006, 0], 0.014)
    wings = both(98, 0.008)
    mouth = _gauss(v, v[[13, 14]].mean(0), 0.022)
    return ExpressionRegions(inner, outer, ulo, llo, chin, wings, mouth)


@lru_cache(maxsize=1)
def fields() -> dict[str, tuple[np.ndarray, ...]]:
    """The named weight fields actions move, each a product of factors (multiplied left to right
    after the magnitude). ``_apart`` fields carry the side's sign: a positive x move along them
    pushes both sides away from the midline, a negative one draws them together."""
    r, x = regions(), expression_regions()
    v = load_model().vertices[:N_MESH]
    sx = np.sign(v[:, 0])
    brows = r.brow_r + r.brow_l
    corners = r.corner_r + r.corner_l
    lips_x = v[:, 0] / 0.03  # -1 .. 1 across the mouth
    return {
        "brows": (brows,),
        "brows_apart": (sx, brows, 1 - r.side),
        "inner_brows": (x.inner,),
        "inner_brows_apart": (sx, x.inner),
        "outer_brows": (x.outer,),
        "corners": (corners,),
        "corners_apart": (sx, corners),
        "corners_stretch": (r.corner_l - r.corner_r,),
        "corners_round": (sx, corners, np.abs(lips_x).clip(0, 1)),
        "upper_lip_outer": (x.upper_lip_outer,),
        "upper_lip_mid": (r.upper_lip, 1 - corners),
        "lower_lip_outer": (x.lower_lip_outer,),
        "lower_lip_mid": (x.lower_lip_outer, 1 - corners),
        "chin": (x.chin,),
        "nose": (r.nose,),
        "nose_wings": (x.nose_wings,),
        "nose_wings_apart": (sx, x.nose_wings),
        "cheeks": (r.cheeks,),
        "lower_lids": (r.lid_lower,),
    }


@dataclass(frozen=True)
class Action:
    field: str  # a key of fields()
    axis: int  # X (towards the subject's left), Y (down) or Z (away from the camera)
    metres: float  # signed move at weight 1


@dataclass(frozen=True)
class Prototype:
    actions: tuple[Action, ...]
    jaw_open: float = 0.0  # metres at the chin
    widen: float = 0.0  # >0 raises the upper lids, <0 narrows the eyes (see widen_eyes)


def _a(field: str, axis: int, metres: float) -> Action:
    return Action(field, axis, metres)


PROTOTYPES: dict[str, Prototype] = {
    "neutral": Prototype(()),
    "happiness": Prototype((
        _a("corners", Y, -0.0065),  # AU12: corners up and out
        _a("corners_stretch", X, 0.0055),
        _a("corners", Z, 0.002),
        _a("cheeks", Y, -0.003),  # AU6: cheeks raised
        _a("cheeks", Z, -0.002),
        _a("lower_lids", Y, -0.0012),
    ), jaw_open=0.004, widen=-0.25),
    "sadness": Prototype((
        _a("inner_brows", Y, -0.010),  # AU1: inner brow heads up
        _a("inner_brows_apart", X, -0.002),  # AU4: drawn together
        _a("outer_brows", Y, 0.003),  # outer tails down: the oblique brow
        _a("corners", Y, 0.009),  # AU15: corners down
        _a("corners_apart", X, -0.002),
        _a("lower_lip_mid", Y, -0.003),  # AU17: lower lip pushed up
        _a("lower_lip_outer", Z, -0.002),
        _a("chin", Y, -0.004),  # AU17: chin boss up
        _a("chin", Z, -0.003),
    ), widen=-0.6),  # drooping upper lids
    "surprise": Prototype((
        _a("brows", Y, -0.011),  # AU1+2: whole brows up
        _a("inner_brows", Y, -0.002),
        _a("corners_round", X, -0.009),  # round mouth: corners in
        _a("upper_lip_outer", Y, -0.0015),
        _a("lower_lids", Y, 0.002),
    ), jaw_open=0.02, widen=1.2),  # AU26, AU5
    "fear": Prototype((
        _a("brows", Y, -0.008),  # AU1+2
        _a("inner_brows", Y, -0.004),
        _a("inner_brows_apart", X, -0.003),  # AU4: drawn together
        _a("corners_stretch", X, 0.008),  # AU20: lips stretched sideways
        _a("corners", Y, 0.002),
        _a("corners", Z, 0.002),
        _a("lower_lip_mid", Y, 0.003),  # AU16+25: lower lip pulled down, lower teeth show
    ), jaw_open=0.011, widen=1.2),
    "disgust": Prototype((
        _a("upper_lip_outer", Y, -0.003),  # AU10: upper lip raised, uncovering the upper teeth
        _a("upper_lip_mid", Y, -0.0046),
        _a("nose", Y, -0.0049),  # AU9: nose wrinkled up, wings drawn up and out
        _a("nose_wings", Y, -0.0078),
        _a("nose_wings_apart", X, 0.002),
        _a("brows", Y, 0.010),  # AU4: brows lowered and drawn together
        _a("inner_brows_apart", X, -0.002),
        _a("cheeks", Y, -0.006),  # AU6/9: cheeks raised, lower lids pushed up
        _a("lower_lids", Y, -0.0015),
        _a("corners", Y, 0.010),  # AU15: corners down
        _a("corners_apart", X, 0.0015),
        _a("lower_lip_mid", Y, -0.0083),  # AU17: lower lip pushed up, its rim drawn in
        _a("lower_lip_outer", Z, 0.004),
        _a("chin", Y, -0.0043),
    ), jaw_open=0.0009, widen=-1.2),  # narrowed eyes
    "anger": Prototype((
        _a("brows", Y, 0.010),  # AU4: brows lowered and drawn together, inner heads lowest
        _a("inner_brows", Y, 0.011),
        _a("outer_brows", Y, -0.002),
        _a("brows_apart", X, -0.005),
        _a("inner_brows", Z, -0.002),
        _a("upper_lip_outer", Y, 0.0025),  # AU23/24: lips pressed thin, corners down
        _a("lower_lip_outer", Y, -0.0025),
        _a("corners", Y, 0.004),
        _a("corners_apart", X, -0.002),
        _a("chin", Y, -0.003),
        _a("nose_wings_apart", X, 0.0025),  # flared nostrils
        _a("nose_wings", Y, -0.002),
        _a("lower_lids", Y, -0.0015),  # AU7: lower lids tightened
    ), widen=0.4),
}
EXPRESSION_MODES = tuple(PROTOTYPES)


def expression_offsets(expression: str, intensity: float) -> tuple[np.ndarray, float, float]:
    """Vertex displacements (468, 3) for an expression, plus (jaw opening in metres, eye widening
    in [-1.2, 1.2]: >0 raises the upper lid, <0 narrows the eye), all scaled by ``intensity``."""
    proto = PROTOTYPES.get(expression)
    if proto is None:
        raise ValueError(f"unknown expression {expression!r}")
    f = fields()
    d = np.zeros((N_MESH, 3))
    for act in proto.actions:
        move: float | np.ndarray = act.metres
        for factor in f[act.field]:
            move = move * factor
        d[:, act.axis] += move
    return d * intensity, proto.jaw_open * intensity, proto.widen * intensity


def open_jaw(v: np.ndarray, amount: float) -> np.ndarray:
    """Drop the jaw (lower lip and chin) by ``amount`` metres at the chin, rotating slightly back."""
    if amount <= 0:
        return v
    r = regions()
    out = v.copy()
    out[:N_MESH, 1] += amount * r.jaw * 1.1
    out[:N_MESH, 2] += amount * 0.35 * r.jaw
    return out


def widen_eyes(v: np.ndarray, widen: float) -> np.ndarray:
    """Raise (>0) or lower (<0) the upper lids a little, for surprise/fear vs. squinting."""
    if widen == 0:
        return v
    r = regions()
    out = v.copy()
    out[:N_MESH, 1] -= 0.0022 * widen * r.lid_upper
    out[:N_MESH, 1] += 0.0008 * min(widen, 0.0) * r.lid_lower
    return out

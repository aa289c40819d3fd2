"""Eye states on top of ``eye_openness`` (squint, closed, yawn) and the exact eye-aperture label.

Why a separate step: the renderer poses lids from ``eye_openness`` and the jaw from the expression;
an eye state only changes those three numbers before posing, so every label computed from the posed
mesh (landmarks, aperture, EAR) stays exact.
"""

from __future__ import annotations

import numpy as np

from synthgen.generate.procedural import model as fm
from synthgen.vocab import EYE_STATE_OPENNESS

YAWN_JAW_M = 0.032  # jaw drop at the chin for a full yawn (about 3 cm)
SQUINT_OPENNESS = EYE_STATE_OPENNESS["squint"]
YAWN_OPENNESS = EYE_STATE_OPENNESS["yawn"]

# Lid-margin centres: MediaPipe 159 (upper) and 145 (lower) on the subject's right eye.
_UPPER, _LOWER = 159, 145


def adjust(eye_state: str, openness: float, jaw: float, widen: float) -> tuple[float, float, float]:
    """(openness, jaw opening in metres, eye widening) after applying ``eye_state``."""
    if eye_state == "open":
        return openness, jaw, widen
    if eye_state == "closed":
        return 0.0, jaw, min(widen, 0.0)
    if eye_state == "squint":
        return openness * SQUINT_OPENNESS, jaw, min(widen, -0.8)
    if eye_state == "yawn":
        return openness * YAWN_OPENNESS, max(jaw, YAWN_JAW_M), min(widen, -0.5)
    raise ValueError(f"unknown eye state {eye_state!r}")


def aperture_mm(local: np.ndarray) -> list[float]:
    """Vertical lid-margin distance (mm) at the centre of the right and the left eye, measured on the
    posed head-local mesh (so head pose and camera do not change it)."""
    m = fm.load_model()
    out = []
    for up, lo in ((_UPPER, _LOWER), (int(m.mirror[_UPPER]), int(m.mirror[_LOWER]))):
        out.append(round(max(float(local[lo, 1] - local[up, 1]), 0.0) * 1000.0, 3))
    return out

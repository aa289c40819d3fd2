"""Curation that understands driver-monitoring conditions (docs/conditions.md).

The exact condition labels decide which checks can apply to a row:
- a face that is not visible enough by the rule (synthgen.dsm.visible_enough) is expected to be
  missed by a detector: ``no_face`` is not a reject for it (such rows teach "cannot see"), and a
  mask, cap or hand that leaves the eyes free keeps ``no_face`` a real failure;
- the expression check needs the mouth: rows with half or more of the mouth points hidden, or a
  yawn requested, skip it;
- the gaze check needs open, visible eyes: a requested closure (eye_openness with the eye state
  under half open), or an eye hidden by an occluder or an IR-blocking lens, skips it;
- the head-pose check needs enough of the face: rows not visible enough skip it;
- frames of a clip are meant to be alike: near-duplicate clustering leaves clip frames out, so
  curation never cuts holes in a sequence by similarity.
Each skip is counted in the filter's notes. The ``conditions`` filter adds one reason of its own,
``eye_state_mismatch``: the measured eye-aspect ratio contradicts the requested aperture.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from synthgen.curate.base import FILTERS, FilterResult
from synthgen.curate.config import CurateParams
from synthgen.vocab import EYE_STATE_OPENNESS

_MOUTH = list(range(48, 68))
_EYES = list(range(36, 48))
# Requested apertures (mm, mean of both eyes) that count as closed / open for eye_state_mismatch,
# and the measured EAR each must not contradict (open renders measure about 0.28, closed 0.03).
CLOSED_MM, OPEN_MM = 2.5, 7.0
EAR_OPEN, EAR_CLOSED = 0.18, 0.12


def _visibility(frame: pl.DataFrame) -> list[list[bool] | None]:
    if "req_landmarks_68_visible" not in frame.columns:
        return [None] * frame.height
    return frame.get_column("req_landmarks_68_visible").to_list()


def mouth_hidden(frame: pl.DataFrame) -> np.ndarray:
    """Half or more of the 20 mouth points hidden (False where visibility is unknown)."""
    return np.array([v is not None and len(v) == 68 and sum(not v[i] for i in _MOUTH) >= 10
                     for v in _visibility(frame)], bool)


def eyes_hidden(frame: pl.DataFrame) -> np.ndarray:
    """Any eye point hidden (False where visibility is unknown)."""
    return np.array([v is not None and len(v) == 68 and not all(v[i] for i in _EYES)
                     for v in _visibility(frame)], bool)


def not_visible_enough(frame: pl.DataFrame) -> np.ndarray:
    """The rule says the face is not visible enough (False where the label is absent: real data)."""
    if "req_visible_enough" not in frame.columns:
        return np.zeros(frame.height, bool)
    return (frame.get_column("req_visible_enough").fill_null(True) == False).to_numpy().astype(bool)  # noqa: E712


def requested_state(frame: pl.DataFrame, name: str) -> list[str | None]:
    return frame.get_column(name).to_list() if name in frame.columns else [None] * frame.height


def effective_closed(frame: pl.DataFrame) -> np.ndarray:
    """eye_openness x the eye state's factor under one half (closed, or a deep squint)."""
    if "req_eye_state" not in frame.columns or "req_eye_openness" not in frame.columns:
        return np.zeros(frame.height, bool)
    o = frame.get_column("req_eye_openness").cast(pl.Float64).fill_null(1.0).to_numpy()
    f = np.array([EYE_STATE_OPENNESS.get(s or "open", 1.0) for s in requested_state(frame, "req_eye_state")])
    return o * f < 0.5


def yawning(frame: pl.DataFrame) -> np.ndarray:
    return np.array([s == "yawn" for s in requested_state(frame, "req_eye_state")], bool)


def sequence_ids(frame: pl.DataFrame) -> np.ndarray:
    """Each row's clip id ('' for single images)."""
    if "sequence_id" not in frame.columns:
        return np.array([""] * frame.height, object)
    return np.array([s or "" for s in frame.get_column("sequence_id").to_list()], object)


def _mean_list(frame: pl.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(frame.height, np.nan)
    return np.array([np.mean(v) if v else np.nan for v in frame.get_column(name).to_list()], float)


class ConditionMismatch:
    """Requested vs measured eye opening: a requested closed eye measured open, or the reverse."""

    name, kind, reasons = "conditions", "row", ("eye_state_mismatch",)

    def __init__(self, params: CurateParams) -> None:
        pass

    def apply(self, frame: pl.DataFrame, prior: list[list[str]]) -> FilterResult:
        ap = _mean_list(frame, "req_eye_aperture_mm")
        ear = _mean_list(frame, "meas_ear")
        ok = ~np.isnan(ap) & ~np.isnan(ear) & ~eyes_hidden(frame)
        with np.errstate(invalid="ignore"):
            bad = ok & (((ap < CLOSED_MM) & (ear > EAR_OPEN)) | ((ap >= OPEN_MM) & (ear < EAR_CLOSED)))
        return FilterResult({"eye_state_mismatch": bad})


FILTERS.register(ConditionMismatch.name)(ConditionMismatch)

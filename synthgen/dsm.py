"""Driver-state-monitoring rules as pure functions: eye-aspect ratio, the "visible enough" rule, and
the events of a clip (blinks, eye closures, PERCLOS, glances, long distraction, visual-attention time
sharing) computed from per-frame states.

Why one module for both sides: the planner derives a clip's *planned* events from the per-frame
states it asks the renderer for, and a benchmark or a customer derives *measured* events from
per-frame measurements with the very same functions, so the two can only differ by what was measured.

Thresholds follow Euro NCAP's Safe Driving / Driver State Monitoring protocol (2023+):
- long distraction: one glance away from the driving task of >= 3 s;
- visual-attention time sharing (VATS): glances away summing to >= 10 s within any 30 s window;
- eye closure: a blink is shorter than 0.5 s; a microsleep lasts 0.5 s to under 3 s; sleep 3 s or
  more; unresponsive 6 s or more.
Glances to the windshield and the mirrors belong to the driving task (``DRIVING_ZONES``); every other
cabin zone is "away".
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

DRIVING_ZONES = frozenset({"windshield", "rearview_mirror", "left_mirror", "right_mirror"})
LONG_DISTRACTION_MS = 3000.0
VATS_WINDOW_MS = 30000.0
VATS_AWAY_MS = 10000.0
BLINK_MAX_MS = 500.0
SLEEP_MS = 3000.0
UNRESPONSIVE_MS = 6000.0
# Metres of head travel from which a glance counts as reached by a body lean (the protocol's third
# movement type, beside head and eye movement).
LEAN_MIN = 0.05
# An eye counts as closed below this fraction of its open aperture (PERCLOS "P80": 80% closed).
CLOSED_OPENNESS = 0.2
# A blink frame: the lids more than half closed (what a frame-rate EAR detector can see).
BLINK_OPENNESS = 0.5

# iBUG-68 indices of the eyes: p1..p6 as in Soukupova & Cech (2016), subject's right eye first.
_EYES_68 = ((36, 37, 38, 39, 40, 41), (42, 43, 44, 45, 46, 47))


def eye_aspect_ratio(lm68: np.ndarray) -> tuple[float, float]:
    """EAR of the right and the left eye from 68 landmarks (68, 2): (|p2-p6| + |p3-p5|) / (2 |p1-p4|)."""
    p = np.asarray(lm68, float).reshape(68, 2)
    out = []
    for e in _EYES_68:
        p1, p2, p3, p4, p5, p6 = (p[i] for i in e)
        width = float(np.linalg.norm(p1 - p4))
        out.append((float(np.linalg.norm(p2 - p6)) + float(np.linalg.norm(p3 - p5))) / max(2.0 * width, 1e-9))
    return out[0], out[1]


def visible_enough(visible68: Sequence[bool]) -> bool:
    """The rule: a face is visible enough for driver monitoring when at least one eye shows all six
    of its points and at least 30% of the 68 points are visible (the eyes and brows alone are 32%).
    A mask, a hand at the mouth or a cap that leave the eyes free pass; IR-blocking glasses in NIR,
    a hand rubbing one eye while the other is hidden, or a phone covering the face do not."""
    v = np.asarray(visible68, bool)
    if v.shape != (68,):
        raise ValueError(f"visible68 needs 68 flags, got {v.shape}")
    one_eye = any(v[list(e)].all() for e in _EYES_68)
    return bool(one_eye and v.mean() >= 0.3)


# --- events -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Closure:
    """A run of frames with the eyes closed (blink, microsleep, sleep)."""

    kind: str  # blink | microsleep | sleep | unresponsive
    onset_frame: int
    n_frames: int
    onset_ms: float
    duration_ms: float


@dataclass(frozen=True)
class Glance:
    target: str
    start_frame: int
    n_frames: int
    start_ms: float
    duration_ms: float
    away: bool
    movement: str  # owl (head turns) | lizard (eyes only) | lean (the body leans) | none (on the road)


@dataclass(frozen=True)
class Alert:
    kind: str  # long_distraction | time_sharing
    start_ms: float  # when the distraction began
    alert_ms: float  # when the rule is met


@dataclass
class ClipEvents:
    fps: float
    frames: int
    closures: list[Closure] = field(default_factory=list)
    perclos: list[dict[str, float]] = field(default_factory=list)
    glances: list[Glance] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    @property
    def blinks(self) -> list[Closure]:
        return [c for c in self.closures if c.kind == "blink"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "ClipEvents":
        d = json.loads(text)
        return cls(
            fps=d["fps"], frames=d["frames"], closures=[Closure(**c) for c in d["closures"]],
            perclos=d["perclos"], glances=[Glance(**g) for g in d["glances"]],
            alerts=[Alert(**a) for a in d["alerts"]],
        )


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of every run of True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends, strict=True)]


def closures(openness: Sequence[float], fps: float, threshold: float = BLINK_OPENNESS) -> list[Closure]:
    """Runs of frames with openness (1 open, 0 closed; or EAR / open EAR) below ``threshold``,
    classified by duration (a run of n frames lasts n / fps)."""
    dt = 1000.0 / fps
    out = []
    for s, n in _runs(np.asarray(openness, float) < threshold):
        dur = n * dt
        kind = ("blink" if dur < BLINK_MAX_MS else "microsleep" if dur < SLEEP_MS
                else "sleep" if dur < UNRESPONSIVE_MS else "unresponsive")
        out.append(Closure(kind, s, n, s * dt, dur))
    return out


def perclos(openness: Sequence[float], fps: float, window_s: float = 60.0) -> list[dict[str, float]]:
    """PERCLOS (share of time with the eyes at least 80% closed) per consecutive window; a clip
    shorter than one window gets one value over the whole clip."""
    o = np.asarray(openness, float)
    n = max(1, int(round(window_s * fps)))
    dt = 1000.0 / fps
    out = []
    for s in range(0, max(len(o), 1), n):
        w = o[s : s + n]
        if len(w) == 0:
            break
        out.append({"start_ms": s * dt, "end_ms": (s + len(w)) * dt,
                    "perclos": float(np.mean(w <= CLOSED_OPENNESS))})
    return out


def glances(zones: Sequence[str], fps: float, head_yaw: Sequence[float] | None = None,
            gaze_yaw: Sequence[float] | None = None, body_lean: Sequence[float] | None = None) -> list[Glance]:
    """Runs of frames with the same gaze zone. Movement type: lean when the body leans at least
    ``LEAN_MIN`` during the glance, else from the head's share of the turn away from the clip's
    first (forward) frame: owl when the head makes at least half of it, else lizard."""
    z = list(zones)
    dt = 1000.0 / fps
    out: list[Glance] = []
    s = 0
    for i in range(1, len(z) + 1):
        if i == len(z) or z[i] != z[s]:
            away = z[s] not in DRIVING_ZONES
            movement = "none"
            if away and head_yaw is not None and gaze_yaw is not None:
                hy = np.asarray(head_yaw, float)
                gy = np.asarray(gaze_yaw, float)
                turn = np.median(gy[s:i]) - gy[0]
                head = np.median(hy[s:i]) - hy[0]
                movement = "owl" if abs(turn) > 1e-6 and head / turn >= 0.5 else "lizard"
            if away and body_lean is not None and max(body_lean[s:i]) >= LEAN_MIN:
                movement = "lean"
            out.append(Glance(z[s], s, i - s, s * dt, (i - s) * dt, away, movement))
            s = i
    return out


def alerts(gl: Sequence[Glance], fps: float, frames: int) -> list[Alert]:
    """Long distraction (one glance away >= 3 s) and time sharing (glances away summing >= 10 s
    inside a 30 s window; after an alert the count starts again)."""
    out = [Alert("long_distraction", g.start_ms, g.start_ms + LONG_DISTRACTION_MS)
           for g in gl if g.away and g.duration_ms >= LONG_DISTRACTION_MS]
    dt = 1000.0 / fps
    away = np.zeros(frames, bool)
    for g in gl:
        if g.away:
            away[g.start_frame : g.start_frame + g.n_frames] = True
    win = int(round(VATS_WINDOW_MS / dt))
    need = int(np.ceil(VATS_AWAY_MS / dt - 1e-9))
    csum = np.concatenate([[0], np.cumsum(away)])
    i, reset = 0, 0
    while i < frames:
        lo = max(reset, i + 1 - win)
        if away[i] and csum[i + 1] - csum[lo] >= need:
            first = lo + int(np.flatnonzero(away[lo : i + 1])[0])
            out.append(Alert("time_sharing", first * dt, (i + 1) * dt))
            reset = i + 1
        i += 1
    return sorted(out, key=lambda a: (a.alert_ms, a.kind))


def clip_events(openness: Sequence[float], zones: Sequence[str], fps: float,
                head_yaw: Sequence[float] | None = None, gaze_yaw: Sequence[float] | None = None,
                perclos_window_s: float = 60.0, body_lean: Sequence[float] | None = None) -> ClipEvents:
    """All events of one clip from its per-frame states (frame order)."""
    gl = glances(zones, fps, head_yaw, gaze_yaw, body_lean)
    return ClipEvents(
        fps=float(fps), frames=len(zones), closures=closures(openness, fps),
        perclos=perclos(openness, fps, perclos_window_s), glances=gl, alerts=alerts(gl, fps, len(zones)),
    )

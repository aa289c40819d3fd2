"""``plan.kind: sequence``: clips of N frames at a frame rate, driven by a driver behaviour model.

Each clip is one person in one cabin set-up (the clip's first spec, drawn like a single image), and
its frames vary what a driver varies over seconds:
- blinks at 12 + 2 (KSS - 1) per minute, lasting about 150 ms when alert and up to 350 ms at KSS 9
  (lognormal; Schleicher et al. 2008 report longer, more frequent blinks with sleepiness), and a
  slight lid droop with sleepiness;
- road fixations with small saccades every 0.4-1.5 s, and a slow head sway;
- glances away to the cabin's gaze zones (synthgen.cabin) at ``glance_rate_per_min``, dwelling a
  lognormal 1 s typically and 3-4.5 s one time in five, reached by head movement ("owl": the head
  makes 80% of the turn, in 0.25 s plus 1 s per 150 degrees) or by the eyes alone ("lizard", the head moving only as far as
  the eyes cannot reach), or, with ``sequence.lean_share``, by a body lean of 10-20 cm towards the
  target (``cabin.lean_to_reach``: the cabin centre for inboard targets, the door for that side's mirror
  and window, forward for the cluster and the lap; the head making half of the rest of the turn);
- microsleeps (0.6-2.5 s closures with a head nod) from KSS 7, yawns (4-6 s, 0.3 (KSS - 4) per
  minute) from KSS 5;
- phone use: a call at the ear, or a phone held up and looked at.
Every random choice comes from a generator seeded by (seed, purpose, clip), so clip ``c`` is the same
whatever ``n`` is. The clip's planned events are computed from its per-frame states with
synthgen.dsm (stored as JSON in ``sequence_events``), by the rules a measured clip is judged by.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from synthgen import cabin, dsm
from synthgen.errors import ConfigError
from synthgen.geometry import gaze_angles
from synthgen.io import stable_hash
from synthgen.ncap import forward_angles
from synthgen.plan.config import PlanParams
from synthgen.plan.sampling import HEAD_SHARE, Identity, id_values, lean_toward, plan_identities, sample_spec
from synthgen.spec import CONDITION_DEFAULTS, MOTION_RATES, SceneSpec, field_bounds
from synthgen.vocab import EYE_STATE_OPENNESS, GAZE_ZONES

_CLIP, _FRAME_SEED, _LEAN = 5, 6, 7
HEAD_TURN_S = 0.25
# Every cabin zone but the road ahead is a glance target (a new zone joins the clips by itself).
AWAY_TARGETS = tuple(z for z in GAZE_ZONES if z != "windshield")


@dataclass
class Timeline:
    """Per-frame states of one clip (camera-frame degrees)."""

    t: np.ndarray  # seconds
    gaze_yaw: np.ndarray
    gaze_pitch: np.ndarray
    head_yaw: np.ndarray
    head_pitch: np.ndarray
    head_roll: np.ndarray
    openness: np.ndarray
    eye_state: list[str]
    occluder: list[str]
    body_lean: np.ndarray  # metres per frame (0 outside leans)
    lean_to: list[str] = field(default_factory=list)  # per frame, where the lean goes ("centre" outside leans)
    glances: list[dict[str, object]] = field(default_factory=list)  # planned: target, start, end, movement


def _min_jerk(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(np.asarray(x, float), 0.0, 1.0)
    return x**3 * (10 - 15 * x + 6 * x**2)


def _ramp(t: np.ndarray, start: float, end: float, move_s: float) -> np.ndarray:
    """0 -> 1 -> 0 over a glance from ``start`` to ``end``: a minimum-jerk move of ``move_s``
    seconds there and back (cut short when the glance is shorter than the move)."""
    there = _min_jerk((t - start) / move_s)
    back = (1.0 - _min_jerk((t - end) / move_s)) * _min_jerk((end - start) / move_s)
    return np.where(t < start, 0.0, np.where(t < end, there, back))


def _poisson_times(rng: np.random.Generator, rate_per_min: float, duration_s: float, start: float = 0.0) -> list[float]:
    out: list[float] = []
    if rate_per_min <= 0:
        return out
    t = start + rng.exponential(60.0 / rate_per_min)
    while t < duration_s:
        out.append(float(t))
        t += rng.exponential(60.0 / rate_per_min)
    return out


def _reachable_targets(camera: str, seat: str, rng: np.random.Generator) -> list[tuple[str, float, float]]:
    out = []
    for z in AWAY_TARGETS:
        try:
            yaw, pitch = cabin.gaze_angles_toward(z, camera, seat, rng)
        except ConfigError:
            continue
        out.append((z, yaw, pitch))
    return out


def _lean_glance(zone: str, camera: str, seat: str, share: float, rng: np.random.Generator | None
                 ) -> tuple[float, float, float, str] | None:
    """(lean metres, gaze yaw, gaze pitch, where the lean goes) when this glance is reached by a body
    lean: a target some lean reaches (``cabin.lean_to_reach``), drawn with probability ``share``; the
    gaze aims from the leaned eye point. None otherwise (also when the camera cannot see the eyes
    turned to it from there)."""
    if rng is None or share <= 0 or cabin.lean_to_reach(zone, seat) is None or rng.random() >= share:
        return None
    try:
        return lean_toward(zone, camera, seat, rng)
    except ConfigError:
        return None


def _blinks(t: np.ndarray, kss: int, dur: float, sleeps: list[tuple[float, float]],
            rng: np.random.Generator) -> np.ndarray:
    """Lid closure (0 open .. 1 closed) per frame from blinks: a renewal process with a refractory
    0.3 s after each blink, then an exponential wait sized so that the rate outside microsleeps is
    12 + 2 (KSS - 1) per minute; each blink closes over 40% of its length, stays shut 20%, reopens."""
    closure = np.zeros(len(t))
    blink_ms = 150.0 + 25.0 * (kss - 1)
    rate = 12.0 + 2.0 * (kss - 1)
    mean_wait = max(60.0 / rate - 0.3 - blink_ms / 1000.0, 0.2)
    s = rng.uniform(0.0, 60.0 / rate)
    while s < dur:
        d = float(np.clip(rng.lognormal(np.log(blink_ms / 1000.0), 0.25), 0.08, 0.45))
        asleep = [b for a, b in sleeps if a - 0.3 < s + d and s < b + 0.3]
        if asleep:
            s = max(asleep) + 0.3 + rng.exponential(mean_wait)
            continue
        x = (t - s) / d
        prof = np.where(x < 0.4, x / 0.4, np.where(x < 0.6, 1.0, (1.0 - x) / 0.4))
        closure = np.maximum(closure, np.where((x >= 0) & (x < 1), prof, 0.0))
        s = s + d + 0.3 + rng.exponential(mean_wait)
    return closure


def behaviour(camera: str, seat: str, kss: int, frames: int, fps: float, rng: np.random.Generator,
              glance_rate_per_min: float, phone_probability: float, max_eye_yaw: float,
              max_eye_pitch: float, lean_share: float = 0.0, lean_rng: np.random.Generator | None = None
              ) -> Timeline:
    """Sample one clip's per-frame states. Leans are drawn from ``lean_rng`` only, so clips planned
    with ``lean_share`` 0 are the clips planned before leans existed."""
    dur = frames / fps
    t = np.arange(frames) / fps
    kss = max(int(kss), 1)
    fy, fp = forward_angles(camera, seat)

    # Road fixations with small saccades (steps), and a slow head sway.
    gy = np.full(frames, fy)
    gp = np.full(frames, fp)
    ts = 0.0
    while ts < dur:
        nxt = ts + rng.uniform(0.4, 1.5)
        sel = (t >= ts) & (t < nxt)
        gy[sel] = fy + rng.uniform(-4, 4)
        gp[sel] = fp + rng.uniform(-2, 2)
        ts = nxt
    phase = rng.uniform(0, 2 * np.pi, 3)
    hy = fy + 2.0 * np.sin(2 * np.pi * t / 7.0 + phase[0])
    hp = fp + 1.5 * np.sin(2 * np.pi * t / 5.0 + phase[1])
    hr = 1.5 * np.sin(2 * np.pi * t / 9.0 + phase[2])
    occluder = ["none"] * frames
    glances: list[dict[str, object]] = []
    lean = np.zeros(frames)
    lean_to = np.full(frames, "centre", dtype=object)

    def glance(start: float, end: float, yaw: float, pitch: float, movement: str, target: str,
               lean_m: float = 0.0, to: str = "centre") -> None:
        sel = (t >= start) & (t < end)
        gy[sel], gp[sel] = yaw, pitch
        # The head turns smoothly (minimum jerk, 0.25 s plus 1 s per 150 degrees: peak speeds stay
        # under 200 deg/s): by HEAD_SHARE of the turn for an owl glance or a lean (the body carries
        # the head as it turns), and for a lizard glance only as far as the eyes cannot reach on
        # their own.
        shares = []
        for delta, lim in ((yaw - fy, max_eye_yaw), (pitch - fp, max_eye_pitch)):
            fixed = HEAD_SHARE.get(movement)
            shares.append(fixed if fixed is not None else max(0.0, 1.0 - 0.9 * lim / max(abs(delta), 1e-9)))
        w = _ramp(t, start, end, HEAD_TURN_S + abs(shares[0] * (yaw - fy)) / 150.0)
        hy[:] = hy + w * shares[0] * (yaw - fy)
        hp[:] = hp + w * shares[1] * (pitch - fp)
        # The body is slower than the head: 0.6 s plus 2 s per metre of lean.
        body = _ramp(t, start, end, 0.6 + 2.0 * lean_m) * lean_m
        lean_to[body > lean] = to  # where this lean is the larger one, it sets the direction
        lean[:] = lean + body
        glances.append({"target": target, "start_s": start, "end_s": end, "movement": movement})

    # Phone episode.
    busy: list[tuple[float, float]] = []
    if rng.random() < phone_probability and dur > 3.0:
        kind = ("phone_ear", "phone_ear_left", "phone_hand")[int(rng.choice(3, p=[0.35, 0.15, 0.5]))]
        length = min(rng.uniform(3.0, 6.0), dur - 0.5)
        start = rng.uniform(0.2, max(0.25, dur - length))
        end = start + length
        sel = (t >= start) & (t < end)
        for i in np.flatnonzero(sel):
            occluder[i] = kind
        if kind == "phone_hand":
            eye = cabin.seat_eye(seat)
            phone = eye + np.array(cabin.PHONE_IN_HAND)  # where the renderer draws it
            rot, _ = cabin.camera_pose(camera, seat)
            d = rot @ (phone - eye)
            yaw, pitch = gaze_angles(d / np.linalg.norm(d))
            look0 = start + 0.3
            glance(look0, min(end - 0.2, look0 + rng.uniform(1.5, 3.5)), yaw, pitch,
                   "owl" if rng.random() < 0.5 else "lizard", "phone")
        busy.append((start, end))

    # Glances away.
    targets = _reachable_targets(camera, seat, rng)
    tg = rng.uniform(0.5, 2.0)
    while targets and tg < dur - 0.3:
        length = rng.uniform(3.0, 4.5) if rng.random() < 0.2 else float(np.clip(rng.lognormal(0.0, 0.45), 0.4, 2.8))
        end = min(tg + length, dur)
        if not any(s < end + 0.5 and tg < e + 0.5 for s, e in busy):
            z, yaw, pitch = targets[int(rng.integers(len(targets)))]
            yaw, pitch = cabin.gaze_angles_toward(z, camera, seat, rng)
            move = "owl" if rng.random() < 0.5 else "lizard"
            leaned = _lean_glance(z, camera, seat, lean_share, lean_rng)
            if leaned is None:
                glance(tg, end, yaw, pitch, move, z)
            else:
                glance(tg, end, leaned[1], leaned[2], "lean", z, leaned[0], leaned[3])
            busy.append((tg, end))
        tg = end + 0.5 + rng.exponential(60.0 / max(glance_rate_per_min, 1e-6))

    # Eyes: droop, blinks, microsleeps; yawns.
    base_open = 1.0 - 0.015 * (kss - 1)
    closure = np.zeros(frames)
    sleeps: list[tuple[float, float]] = []
    if kss >= 7:
        for s in _poisson_times(rng, 1.5 * (kss - 6), dur):
            e = s + rng.uniform(0.6, 2.5)
            sleeps.append((s, e))
            ramp = np.minimum(_min_jerk((t - s) / 0.15), 1 - _min_jerk((t - e) / 0.15))
            closure = np.maximum(closure, np.where((t >= s) & (t < e + 0.15), ramp, 0.0))
            nod = np.where((t >= s) & (t < e + 0.3), np.minimum(_min_jerk((t - s) / 0.5), 1 - _min_jerk((t - e) / 0.3)), 0.0)
            hp[:] = hp - 8.0 * nod
    closure = np.maximum(closure, _blinks(t, kss, dur, sleeps, rng))
    openness = base_open * (1.0 - closure)
    eye_state = ["open"] * frames
    if kss >= 5:
        for s in _poisson_times(rng, 0.3 * (kss - 4), dur):
            length = rng.uniform(4.0, 6.0)
            sel = (t >= s + 0.2 * length) & (t < s + 0.8 * length)
            for i in np.flatnonzero(sel):
                eye_state[i] = "yawn"

    # Eyes turn at most so far inside the head: while the head is still turning, the gaze waits.
    gy = np.clip(gy, hy - max_eye_yaw, hy + max_eye_yaw)
    gp = np.clip(gp, hp - max_eye_pitch, hp + max_eye_pitch)
    return Timeline(t, gy, gp, np.clip(hy, -90, 90), np.clip(hp, -60, 60), hr, openness, eye_state,
                    occluder, np.round(lean, 3), [str(v) for v in lean_to], glances)


def motion_rates(tl: Timeline, readout_ms: float) -> dict[str, list[float]]:
    """Per frame, the clip's readout and how fast head, gaze and lids move (central differences of
    the timeline, one-sided at the ends; clipped to the rate fields' bounds). Empty under a global
    shutter, so those clips keep their specs and ids. A saccade is a step between two frames in the
    timeline: its rate is the step over the frames around it, which spreads it over the readout."""
    if readout_ms <= 0 or len(tl.t) < 2:
        return {}
    out: dict[str, list[float]] = {"readout_ms": [float(readout_ms)] * len(tl.t)}
    for name, rate in MOTION_RATES.items():
        series = tl.openness if name == "eye_openness" else getattr(tl, name)
        d = np.gradient(np.asarray(series, float), tl.t)
        out[rate] = [round(float(v), 3) for v in np.clip(d, *field_bounds(rate))]
    return out


def effective_openness(openness: float, eye_state: str) -> float:
    return openness * EYE_STATE_OPENNESS[eye_state]


def plan_clip(clip: int, params: PlanParams, seed: int, identity: Identity) -> list[SceneSpec]:
    """The frames of clip ``clip``, in order."""
    sq = params.sequence
    base = sample_spec(clip, params, seed, identity)
    rng = np.random.default_rng([seed, _CLIP, clip])
    kss = int(round(float(sq.kss.sample(rng))))
    lean_rng = np.random.default_rng([seed, _LEAN, clip]) if sq.lean_share > 0 else None
    tl = behaviour(base.camera, base.seat, kss, sq.frames, sq.fps, rng, sq.glance_rate_per_min,
                   sq.phone_probability, params.max_eye_in_head_yaw, params.max_eye_in_head_pitch,
                   sq.lean_share, lean_rng)
    lean = tl.body_lean
    # Each frame's zone is hit from that frame's eye point (a leaning head looks from elsewhere).
    zones = [cabin.zone_of_angles(base.camera, base.seat, float(y), float(p), float(b), to)
             for y, p, b, to in zip(tl.gaze_yaw, tl.gaze_pitch, lean, tl.lean_to, strict=True)]
    eff = [effective_openness(o, s) for o, s in zip(tl.openness, tl.eye_state, strict=True)]
    events = dsm.clip_events(eff, zones, sq.fps, tl.head_yaw.tolist(), tl.gaze_yaw.tolist(),
                             body_lean=lean.tolist()).to_json()
    seq_id = stable_hash({"seed": seed, "clip": clip, "base": base.sample_id, "kss": kss})
    motion = motion_rates(tl, sq.readout_ms)
    common = base.model_dump(exclude={"sample_id", "index", "seed"})
    # A frame's readout and motion come from the clip (plan.sequence.readout_ms and the behaviour
    # model), never from the per-image condition draws.
    common.update({k: CONDITION_DEFAULTS[k] for k in ("readout_ms", *MOTION_RATES.values())})
    out = []
    for f in range(sq.frames):
        values = dict(common)
        values.update(
            gaze_yaw=round(float(tl.gaze_yaw[f]), 3), gaze_pitch=round(float(tl.gaze_pitch[f]), 3),
            head_yaw=round(float(tl.head_yaw[f]), 3), head_pitch=round(float(tl.head_pitch[f]), 3),
            head_roll=round(float(tl.head_roll[f]), 3), eye_openness=round(float(tl.openness[f]), 4),
            body_lean=float(lean[f]), lean_to=tl.lean_to[f] if lean[f] else "centre",
            eye_state=tl.eye_state[f], kss=kss, expression="neutral",
            occluder=tl.occluder[f] if base.occluder == "none" else base.occluder,
            sequence_id=seq_id, frame_index=f, t_ms=round(float(tl.t[f]) * 1000.0, 3),
        )
        values.update({k: v[f] for k, v in motion.items()})
        sid = stable_hash({"seq": seq_id, "frame": f, **id_values(values)})
        fseed = int(np.random.default_rng([seed, _FRAME_SEED, clip, f]).integers(2**31 - 1))
        out.append(SceneSpec(sample_id=sid, index=clip * sq.frames + f, seed=fseed,
                             sequence_events=events, **{k: v for k, v in values.items() if k != "sequence_events"}))
    return out


def plan_sequences(params: PlanParams, seed: int) -> list[SceneSpec]:
    """``params.n`` clips of ``params.sequence.frames`` frames, clip by clip, each in frame order."""
    identities = plan_identities(params, seed)
    out: list[SceneSpec] = []
    for c in range(params.n):
        out += plan_clip(c, params, seed, identities[c % len(identities)])
    return out

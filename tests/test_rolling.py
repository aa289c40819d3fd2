"""Rolling-shutter exposure: rows from their own instants, labels where their row was read."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from synthgen.generate.procedural import rolling
from synthgen.generate.procedural.backend import ProceduralGenerator
from synthgen.generate.procedural.renderer import _draw, render_clean
from synthgen.spec import SceneSpec

BASE: dict[str, Any] = dict(sample_id="s", index=0, seed=3, identity=0, identity_seed=12, age=35.0,
                            gender="male", skin_tone=3)


def _instants(spec: SceneSpec) -> list[tuple[np.ndarray, np.ndarray, dict[str, Any]]]:
    """Each sub-exposure drawn as the renderer draws it: linear canvas, finished image, labels."""
    out = []
    subs = rolling.sub_specs(spec)
    for sub, shift in zip(subs, rolling.head_shifts(spec, subs), strict=True):
        frame, labels, _ = _draw(sub, 256, 256, 2, 0.42, "pixel", shift)
        out.append((frame.develop()[0], frame.finish(), labels))
    return out


@pytest.fixture(scope="module")
def gen() -> ProceduralGenerator:
    return ProceduralGenerator(256, 256)


def test_global_shutter_or_no_motion_renders_the_plain_image(gen: ProceduralGenerator) -> None:
    plain = gen.render(SceneSpec(**BASE, head_yaw=10.0))
    for kw in ({"readout_ms": 30.0}, {"head_yaw_rate": 300.0}):
        other = gen.render(SceneSpec(**BASE, head_yaw=10.0, **kw))
        assert np.array_equal(other.image, plain.image)
        assert other.labels["req_landmarks_478"] == plain.labels["req_landmarks_478"]


def test_sub_exposures_span_the_readout_and_count_with_the_motion() -> None:
    spec = SceneSpec(**BASE, head_yaw=10.0, readout_ms=30.0, head_yaw_rate=200.0, eye_openness=0.5,
                     eye_openness_rate=-10.0)
    subs = rolling.sub_specs(spec)
    assert len(subs) == 7  # 6 degrees of yaw in the readout: 1 per degree, plus one
    assert [s.head_yaw for s in subs] == pytest.approx(np.linspace(7.0, 13.0, 7))
    assert subs[3].head_yaw == spec.head_yaw and subs[3].eye_openness == spec.eye_openness
    assert subs[0].eye_openness == pytest.approx(0.65) and subs[-1].eye_openness == pytest.approx(0.35)
    assert all(s.readout_ms == 0 for s in subs)
    slow = spec.model_copy(update={"head_yaw_rate": 10.0, "eye_openness_rate": 0.0})
    assert rolling.sub_count(slow) == 3
    fast = spec.model_copy(update={"gaze_yaw_rate": 1900.0})
    assert rolling.sub_count(fast) == rolling.MAX_SUBS
    edge = SceneSpec(**BASE, head_yaw=89.0, readout_ms=100.0, head_yaw_rate=100.0)
    assert max(s.head_yaw for s in rolling.sub_specs(edge)) == 90.0  # clipped to the spec's bounds


def test_each_row_comes_from_its_instant_and_the_static_cabin_is_not_skewed(gen: ProceduralGenerator) -> None:
    """Pixels that no instant changes (the cabin) are the plain render's, to the byte: one exposure
    and one sensor noise for the whole readout, the spec's own. The face's upper rows look like the
    first instant's render and its lower rows like the last one's."""
    spec = SceneSpec(**BASE, head_yaw=10.0, readout_ms=40.0, head_yaw_rate=600.0)
    inst = _instants(spec)
    plain = gen.render(spec.model_copy(update={"readout_ms": 0.0}))
    out = gen.render(spec)
    canvases = np.stack([c for c, _, _ in inst])
    still = np.all(canvases == canvases[0], axis=(0, -1))
    moved = ~still
    assert still.mean() > 0.5
    assert np.array_equal(out.image[still], plain.image[still])
    y0, y1 = np.flatnonzero(moved.any(axis=1))[[0, -1]]
    third = (y1 - y0) // 3
    first, last = inst[0][1].astype(float), inst[-1][1].astype(float)
    for rows, nearer, farther in ((slice(y0, y0 + third), first, last), (slice(y1 - third, y1), last, first)):
        m = moved[rows]
        assert np.abs(out.image[rows][m] - nearer[rows][m]).mean() < 0.6 * np.abs(out.image[rows][m] - farther[rows][m]).mean()


def test_labels_lie_where_their_row_was_read(gen: ProceduralGenerator) -> None:
    """Every landmark inside the image sits on the row read at its instant, on its path between
    the two sub-exposures around that instant; the face box spans the landmarks and the control
    map is drawn from them."""
    spec = SceneSpec(**BASE, head_yaw=10.0, readout_ms=40.0, head_yaw_rate=250.0, head_pitch_rate=-150.0)
    subs = [labels for _, _, labels in _instants(spec)]
    k = len(subs)
    pts = np.stack([np.asarray(s["req_landmarks_478"]).reshape(-1, 2) for s in subs])
    out = gen.render(spec)
    px = np.asarray(out.labels["req_landmarks_478"]).reshape(-1, 2)
    u = rolling.point_instants(pts[:, :, 1], 256)
    read_row = u / (k - 1) * 255
    assert np.abs(px[:, 1] - read_row).max() < 1e-6
    k0 = np.minimum(np.floor(u).astype(int), k - 2)
    i = np.arange(len(px))
    lo, hi = pts[k0, i], pts[k0 + 1, i]
    assert np.all(np.minimum(lo, hi) - 1e-9 <= px) and np.all(px <= np.maximum(lo, hi) + 1e-9)
    plain = np.asarray(subs[k // 2]["req_landmarks_478"]).reshape(-1, 2)
    assert np.abs(px - plain).max() > 1.0  # the readout moved them
    x0, y0, x1, y1 = out.labels["req_face_box"]
    assert (x0, y0, x1, y1) == (px[:468, 0].min(), px[:468, 1].min(), px[:468, 0].max(), px[:468, 1].max())
    assert out.labels["req_gaze_vector"] == subs[k // 2]["req_gaze_vector"]
    assert out.labels["req_gaze_vector"] == render_clean(spec, 256, 256).labels["req_gaze_vector"]


def test_the_iris_network_finds_the_pupils_where_the_rolling_labels_put_them(gen: ProceduralGenerator) -> None:
    """A fast saccade (1500 deg/s) under a 100 ms readout: the eyes lie above the middle row, so they
    were read about 9 ms early and the pupils sit about 2 px from where the spec's own instant has
    them. MediaPipe's standalone iris network (held out, never tuned to) finds them at the rolling
    labels, not at the mid-instant ones."""
    from synthgen.label.base import FaceContext
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import build_labelers

    labs = build_labelers(LabelParams(labelers=["mediapipe_detector", "mediapipe_mesh", "dlib", "head_pose",
                                                "mediapipe_iris"]))
    for rate in (1500.0, -1500.0):
        out = gen.render(SceneSpec(**BASE, readout_ms=100.0, gaze_yaw_rate=rate))
        plain = gen.render(SceneSpec(**BASE))
        ctx = FaceContext(out.image)
        for lab in labs:
            lab.label(ctx)
        rolled = np.asarray(out.labels["req_pupils"]).reshape(2, 2)
        mid = np.asarray(plain.labels["req_pupils"]).reshape(2, 2)
        assert np.all(np.sign(rolled[:, 0] - mid[:, 0]) == np.sign(rate))
        for found in ctx.extras["iris_xy"].values():
            near_rolled = np.min(np.linalg.norm(rolled - found, axis=1))
            near_mid = np.min(np.linalg.norm(mid - found, axis=1))
            assert near_rolled < 1.0 and near_mid > near_rolled + 0.5


def test_clips_with_a_readout_carry_their_rates_and_global_clips_do_not() -> None:
    from synthgen.plan.config import PlanParams
    from synthgen.plan.sequence import plan_sequences

    params = PlanParams(kind="sequence", n=2, sequence={"frames": 30, "fps": 30.0})
    plain = plan_sequences(params, 5)
    assert all(s.readout_ms == 0 and s.head_yaw_rate == 0 for s in plain)
    rolled = plan_sequences(params.model_copy(update={"sequence": params.sequence.model_copy(
        update={"readout_ms": 25.0})}), 5)
    assert all(s.readout_ms == 25.0 for s in rolled)
    assert [s.head_yaw for s in rolled] == [s.head_yaw for s in plain]  # same behaviour, same clip
    assert {s.sample_id for s in rolled}.isdisjoint({s.sample_id for s in plain})
    for clip in (rolled[:30], rolled[30:]):
        t = np.array([s.t_ms for s in clip]) / 1000.0
        for field in ("head_yaw", "gaze_yaw", "eye_openness"):
            series = np.array([getattr(s, field) for s in clip])
            rate = np.array([getattr(s, f"{field}_rate") for s in clip])
            assert rate[1:-1] == pytest.approx((series[2:] - series[:-2]) / (t[2:] - t[:-2]), abs=0.2)


def test_a_head_turning_about_the_neck_shears_the_face_and_the_mesh_network_sees_it(gen: ProceduralGenerator) -> None:
    """Inside one readout the crop holds while the head turns about the neck: the face sweeps
    sideways, so a turn one way leans the face's upper half one way and the other turn the other.
    The exact labels say about 5 px between +-400 deg/s over 30 ms; MediaPipe's face mesh, reading
    the pixels, sees the same sign and at least 1 px of it."""
    from synthgen.label.base import FaceContext
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import build_labelers

    spec = SceneSpec(**BASE, head_yaw=10.0, readout_ms=30.0, head_yaw_rate=400.0)
    shifts = rolling.head_shifts(spec, rolling.sub_specs(spec))
    assert np.allclose(shifts[len(shifts) // 2], 0)
    assert abs(shifts[0][0]) > 5 * max(abs(shifts[0][1]), 1e-4)  # a yaw turn moves the face sideways
    assert abs(shifts[0][0]) == pytest.approx(0.08 * np.radians(6.0), rel=0.1)

    labs = build_labelers(LabelParams(labelers=["mediapipe_detector", "mediapipe_mesh"]))

    def shear(p: np.ndarray) -> float:  # mean x of the upper half of the face minus the lower half's
        p = p[:468]
        upper = p[:, 1] < np.median(p[:, 1])
        return float(p[upper, 0].mean() - p[~upper, 0].mean())

    exact, seen = [], []
    for rate in (400.0, -400.0):
        out = gen.render(spec.model_copy(update={"head_yaw_rate": rate}))
        ctx = FaceContext(out.image)
        for lab in labs:
            lab.label(ctx)
        exact.append(shear(np.asarray(out.labels["req_landmarks_478"]).reshape(-1, 2)))
        seen.append(shear(ctx.extras["mesh_xy"]))
    assert exact[0] - exact[1] > 3.0
    assert seen[0] - seen[1] > 1.0


def test_single_images_draw_readout_and_motion_from_the_plan_and_clips_ignore_those_draws() -> None:
    """plan.conditions can ask single images for a rolling readout with random motion; the default
    plan is unchanged (its conditions stay at the defaults), and clips take their motion only from
    the behaviour model."""
    from synthgen.plan.config import PlanParams
    from synthgen.plan.sampling import plan_random
    from synthgen.plan.sequence import plan_sequences

    plain = plan_random(PlanParams(n=20), 3)
    rolling_plan = PlanParams.model_validate({"n": 20, "conditions": {
        "readout_ms": {"dist": "constant", "value": 20.0},
        "head_yaw_rate": {"dist": "truncnormal", "mean": 0, "std": 150, "low": -400, "high": 400}}})
    rolled = plan_random(rolling_plan, 3)
    assert [s.head_yaw for s in rolled] == [s.head_yaw for s in plain]
    assert all(s.readout_ms == 20.0 for s in rolled) and len({s.head_yaw_rate for s in rolled}) == 20
    assert all(abs(s.head_yaw_rate) <= 400 for s in rolled)
    assert {s.sample_id for s in rolled}.isdisjoint({s.sample_id for s in plain})
    with pytest.raises(ValueError, match="outside the allowed range"):
        PlanParams.model_validate({"conditions": {"readout_ms": {"dist": "constant", "value": 500.0}}})
    clip_params = rolling_plan.model_copy(update={"kind": "sequence", "n": 1,
                                                  "sequence": rolling_plan.sequence.model_copy(update={"frames": 5})})
    frames = plan_sequences(clip_params, 3)
    assert all(f.readout_ms == 0 and f.head_yaw_rate == 0 for f in frames)

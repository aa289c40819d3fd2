"""Driver-monitoring conditions: plan attributes that keep old plans intact, renders of every occluder
and eye state, and exact labels (landmark visibility, occluder mask, eye aperture, EAR, visible enough)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from synthgen.config import parse_params
from synthgen.dsm import eye_aspect_ratio, visible_enough
from synthgen.errors import ConfigError
from synthgen.generate.procedural.renderer import render_spec
from synthgen.images import decode_rgb
from synthgen.io import stable_hash
from synthgen.plan.config import PlanParams
from synthgen.plan.sampling import plan_random
from synthgen.spec import CONDITION_DEFAULTS, SceneSpec
from synthgen.vocab import EYE_STATES, OCCLUDERS

BASE = dict(sample_id="t", index=0, seed=5, identity=0, identity_seed=11, age=35, gender="male",
            skin_tone=4, gaze_yaw=8.0, head_yaw=6.0)
EYE_R, EYE_L, MOUTH = list(range(36, 42)), list(range(42, 48)), list(range(48, 68))


def _render(**kw: object):
    return render_spec(SceneSpec(**{**BASE, **kw}), 128, 128)


@pytest.fixture(scope="module")
def plain():
    return _render()


def test_default_conditions_keep_sample_ids_and_draws() -> None:
    """Plans made before conditions existed keep their specs: the id hashes what it hashed before."""
    params = PlanParams(n=12, identities=4)
    for s in plan_random(params, 7):
        old = s.model_dump(exclude={"sample_id", "index", "seed", "split", *CONDITION_DEFAULTS,
                                    "sequence_id", "frame_index", "t_ms", "sequence_events"})
        assert s.sample_id == stable_hash({"seed": 7, "index": s.index, **old})
        assert s.occluder == "none" and s.light_band == "cabin" and s.sequence_id == ""


def test_condition_distributions_leave_other_attributes_alone() -> None:
    plain = plan_random(PlanParams(n=40, identities=5), 3)
    cond = plan_random(PlanParams.model_validate({
        "n": 40, "identities": 5,
        "conditions": {"occluder": {"dist": "categorical", "values": ["none", "face_mask", "cap"]},
                       "light_band": {"dist": "categorical", "values": ["cabin", "night_nir"]},
                       "jpeg_quality": {"dist": "uniform", "low": 40, "high": 90}},
    }), 3)
    assert {s.occluder for s in cond} == {"none", "face_mask", "cap"}
    for a, b in zip(plain, cond, strict=True):
        assert (a.age, a.gaze_yaw, a.head_pitch, a.expression, a.camera) == (b.age, b.gaze_yaw, b.head_pitch,
                                                                           b.expression, b.camera)
        assert isinstance(b.jpeg_quality, int) and 40 <= b.jpeg_quality <= 90
        if b.light_band == "night_nir":
            assert b.lighting == "nir"  # the camera sees by its own illumination at night
    changed = [a.sample_id != b.sample_id for a, b in zip(plain, cond, strict=True)]
    non_default = [b.occluder != "none" or b.light_band != "cabin" or b.jpeg_quality != 0 for b in cond]
    assert changed == non_default


def test_bad_condition_is_one_clear_error() -> None:
    with pytest.raises(ConfigError) as e:
        parse_params({"plan": {"conditions": {"occluder": {"dist": "constant", "value": "helmet"}}}})
    assert "plan.conditions.occluder" in str(e.value) and "helmet" in str(e.value)


@pytest.mark.parametrize("occluder", [o for o in OCCLUDERS if o != "none"])
def test_every_occluder_renders_and_flags_what_it_hides(occluder: str, plain) -> None:
    r = _render(occluder=occluder)
    vis = np.array(r.labels["req_landmarks_478_visible"])
    px = np.array(r.labels["req_landmarks_478"]).reshape(-1, 2)
    assert vis.shape == (478,) and len(r.labels["req_landmarks_68_visible"]) == 68
    diff = np.abs(r.image.astype(int) - plain.image.astype(int)).max(-1)
    assert (diff > 12).sum() > 40, "the occluder is not drawn"
    box = r.labels["req_occluder_box"]
    assert len(box) == 4 and r.labels["req_occluder_mask"] is not None
    mask = decode_rgb(r.labels["req_occluder_mask"]["bytes"])[..., 0] > 127
    # The mask is where the image changed (up to antialiasing at its rim).
    changed = diff > 12
    assert (mask & changed).sum() >= 0.9 * changed.sum() - 0.15 * mask.sum()
    inside = (px[:, 0] >= 0) & (px[:, 0] < 127) & (px[:, 1] >= 0) & (px[:, 1] < 127)
    q = np.round(px[inside]).astype(int)
    hidden = ~vis[inside]
    # Every hidden landmark lies on the occluder; visible ones lie off it (edges excepted).
    if hidden.any():
        assert mask[q[hidden, 1], q[hidden, 0]].mean() >= 0.9
    if (~hidden).any():
        assert mask[q[~hidden, 1], q[~hidden, 0]].mean() <= 0.05


def test_what_each_occluder_hides() -> None:
    v = {o: np.array(_render(occluder=o).labels["req_landmarks_68_visible"])
         for o in ("face_mask", "eye_rub", "hand_mouth", "cap")}
    assert not v["face_mask"][MOUTH].any() and v["face_mask"][EYE_R + EYE_L].all()
    assert not v["eye_rub"][EYE_R].any() and v["eye_rub"][EYE_L].all()
    assert not v["hand_mouth"][MOUTH].any()
    assert v["cap"][EYE_R + EYE_L].all()


def test_glasses_transmittance_decides_if_eyes_are_seen() -> None:
    ir_nir = _render(glasses="ir_blocking", lighting="nir").labels
    ir_rgb = _render(glasses="ir_blocking", lighting="rgb").labels
    clear = _render(glasses="glasses", lighting="nir").labels
    eyes = EYE_R + EYE_L
    assert not np.array(ir_nir["req_landmarks_68_visible"])[eyes].any() and not ir_nir["req_visible_enough"]
    assert np.array(ir_rgb["req_landmarks_68_visible"])[eyes].all() and ir_rgb["req_visible_enough"]
    assert np.array(clear["req_landmarks_68_visible"]).all() and clear["req_visible_enough"]


def test_self_occlusion_flags_what_the_face_itself_hides() -> None:
    """The face's own surfaces hide landmarks: on a head turned 60 degrees the far eye lies partly
    behind the nose and the near eye is in full view, mirrored for the other side; the iris under
    shut lids is hidden while an open eye's pupil centre shows (and its top and bottom under the lids). Occluder visibility and the
    visible-enough rule do not count this (a turned head is still a driver the camera sees)."""
    far_right, far_left = (_render(head_yaw=y, gaze_yaw=y, expression="neutral").labels for y in (60.0, -60.0))
    for far, near, lab in ((EYE_R, EYE_L, far_right), (EYE_L, EYE_R, far_left)):
        occ = np.array(lab["req_landmarks_68_self_occluded"])
        assert occ[far].sum() >= 2 and not occ[near].any(), (occ[far], occ[near])
        assert np.array(lab["req_landmarks_68_visible"]).all() and lab["req_visible_enough"]
    assert len(far_right["req_landmarks_478_self_occluded"]) == 478
    frontal = _render(head_yaw=0.0, gaze_yaw=0.0, expression="neutral").labels
    shut = _render(head_yaw=0.0, gaze_yaw=0.0, expression="neutral", eye_openness=0.0).labels
    iris = slice(468, 478)
    # Shut lids keep a slit of about 0.5 mm, where an iris point on the lid line may still show.
    assert np.array(shut["req_landmarks_478_self_occluded"])[iris].sum() >= 8
    assert not np.array(frontal["req_landmarks_478_self_occluded"])[[468, 473]].any()  # pupil centres
    assert not np.array(frontal["req_landmarks_68_self_occluded"])[EYE_R + EYE_L + MOUTH].any()


def _ray_hidden(verts: np.ndarray, tris: np.ndarray, n_mesh: int, margin: float) -> np.ndarray:
    """The reference: the segment from the camera to each point crosses a face triangle (any
    facing, not one of the point's own) nearer than the point by ``margin`` (0 for points off the
    mesh): Moller-Trumbore against every triangle, no rasterisation."""
    v = verts[:n_mesh]
    a, e1, e2 = v[tris[:, 0]], v[tris[:, 1]] - v[tris[:, 0]], v[tris[:, 2]] - v[tris[:, 0]]
    out = np.zeros(len(verts), bool)
    for i, p in enumerate(verts):
        d = p / np.linalg.norm(p)
        h = np.cross(d, e2)
        det = (e1 * h).sum(1)
        f = 1.0 / np.where(np.abs(det) > 1e-12, det, np.inf)
        u = f * (-a * h).sum(1)
        qv = np.cross(-a, e1)
        w = f * (qv * d).sum(1)
        t = f * (e2 * qv).sum(1)
        hit = (u >= 0) & (w >= 0) & (u + w <= 1) & (t > 0) & ~(tris == i).any(1)
        out[i] = bool((hit & (t * d[2] < p[2] - (margin if i < n_mesh else 0.0))).any())
    return out


def test_self_occlusion_agrees_with_exact_ray_casting() -> None:
    """The labels come from the face's ID buffer; an exact ray cast against every triangle must
    agree on nearly every point, and never find a point on view that the labels call hidden."""
    from synthgen.generate.procedural import model as fm
    from synthgen.generate.procedural.renderer import SELF_OCCLUSION_MM, Scene

    tris = fm.load_model().triangles
    rng = np.random.default_rng(3)
    agree = total = false_flags = 0
    for _ in range(8):
        spec = SceneSpec(**{**BASE, "head_yaw": float(rng.uniform(-70, 70)), "head_pitch": float(rng.uniform(-30, 25)),
                            "gaze_pitch": float(rng.uniform(-30, 20)), "eye_openness": float(rng.choice([0.0, 1.0])),
                            "expression": str(rng.choice(["neutral", "surprise"])), "glasses": "none"})
        got = np.array(render_spec(spec, 256, 256).labels["req_landmarks_478_self_occluded"])
        exact = _ray_hidden(Scene(spec, 256, 256, 2, 0.42).verts, tris, fm.N_MESH, SELF_OCCLUSION_MM / 1000)
        agree += int((got == exact).sum())
        total += len(got)
        false_flags += int((got & ~exact).sum())
    assert agree / total >= 0.99, agree / total
    assert false_flags <= 0.002 * total, false_flags


def test_mask_is_visible_enough_and_a_face_without_eyes_is_not() -> None:
    assert _render(occluder="face_mask").labels["req_visible_enough"]
    v = np.ones(68, bool)
    assert visible_enough(v)
    v[EYE_R] = False
    assert visible_enough(v)
    v[EYE_L[0]] = False
    assert not visible_enough(v)
    v = np.zeros(68, bool)
    v[EYE_R] = True
    assert not visible_enough(v)  # one eye alone is under 30% of the face


def test_eye_states_and_aperture_labels() -> None:
    ap = {}
    for state in EYE_STATES:
        r = _render(eye_state=state)
        ap[state] = float(np.mean(r.labels["req_eye_aperture_mm"]))
    assert ap["closed"] < 1.0 < ap["squint"] < ap["open"] and ap["yawn"] < ap["open"]
    assert 7.0 < ap["open"] < 13.0  # an adult's palpebral aperture in mm
    lm_open = np.array(_render().labels["req_landmarks_68"]).reshape(68, 2)
    lm_yawn = np.array(_render(eye_state="yawn").labels["req_landmarks_68"]).reshape(68, 2)
    assert lm_yawn[57, 1] - lm_yawn[51, 1] > lm_open[57, 1] - lm_open[51, 1] + 4  # the jaw opens


def test_exact_ear_follows_aperture() -> None:
    aps, ears = [], []
    for o in np.linspace(0.0, 1.0, 8):
        lab = _render(eye_openness=float(o)).labels
        aps.append(np.mean(lab["req_eye_aperture_mm"]))
        ears.append(np.mean(lab["req_ear"]))
        lm = np.array(lab["req_landmarks_68"]).reshape(68, 2)
        assert np.allclose(eye_aspect_ratio(lm), lab["req_ear"], atol=1e-3)
    assert spearmanr(aps, ears)[0] > 0.95 and np.all(np.diff(aps) > 0)


def test_light_bands_and_sensor_effects_are_deterministic(plain) -> None:
    for kw in ({"light_band": "sun_stripes", "glasses": "glasses"}, {"light_band": "night_nir", "lighting": "nir"},
               {"motion_blur": 4.0}, {"jpeg_quality": 20}, {"seat_belt": True, "camera": "a_pillar"}):
        a, b = _render(**kw), _render(**kw)
        assert np.array_equal(a.image, b.image)
        if a.image.shape == plain.image.shape:
            assert np.abs(a.image.astype(int) - plain.image.astype(int)).mean() > 0.3, kw
    dark = _render(light_band="night_nir", lighting="nir")
    assert dark.labels["req_illuminance_lux"] == 1.0
    assert np.array(dark.labels["req_landmarks_478_visible"]).all()


def test_children_get_occluders_scaled_to_their_head() -> None:
    r = _render(age=6, occluder="face_mask")
    vis = np.array(r.labels["req_landmarks_68_visible"])
    assert not vis[MOUTH].any() and vis[EYE_R + EYE_L].all()


# ---------------------------------------------------------------- facial hair (Euro NCAP: must not matter)


def _lower_face(r, rows: tuple[int, int]) -> np.ndarray:
    """Pixels between two 68-point landmarks' rows (nose tip 33, upper lip 51, chin 8), jaw-wide."""
    lm = np.array(r.labels["req_landmarks_68"]).reshape(-1, 2)
    y0, y1 = sorted(int(round(lm[i, 1])) for i in rows)
    x0, x1 = int(lm[[4, 12], 0].min()), int(lm[[4, 12], 0].max())
    img = r.image.astype(float)
    return img[y0:y1, x0:x1].mean(-1) if img.ndim == 3 else img[y0:y1, x0:x1]


def test_facial_hair_is_drawn_where_asked_and_labelled() -> None:
    """A beard darkens the lower face from the upper lip to the chin; a moustache only the band
    between nose and upper lip; the label says what was drawn."""
    kw = dict(age=45.0, gender="male", expression="neutral", head_yaw=0.0, gaze_yaw=0.0, skin_tone=3)
    shaven, moustache, beard = (render_spec(SceneSpec(**{**BASE, **kw, "facial_hair": f}), 256, 256)
                                for f in ("none", "moustache", "beard"))
    assert [r.labels["req_facial_hair"] for r in (shaven, moustache, beard)] == ["none", "moustache", "beard"]
    upper, chin = (33, 51), (57, 8)
    assert _lower_face(beard, chin).mean() < _lower_face(shaven, chin).mean() - 15
    assert _lower_face(beard, upper).mean() < _lower_face(shaven, upper).mean() - 15
    assert _lower_face(moustache, upper).mean() < _lower_face(shaven, upper).mean() - 15
    assert abs(_lower_face(moustache, chin).mean() - _lower_face(shaven, chin).mean()) < 2
    # Texture only: the geometry and every other label stay as they were.
    for key in ("req_landmarks_68", "req_landmarks_68_visible", "req_ear", "req_visible_enough"):
        assert beard.labels[key] == shaven.labels[key], key


def test_facial_hair_default_is_the_identitys_own_and_children_get_none() -> None:
    identity = _render()  # BASE: an adult man; the identity's look decides (0.6.0 pixels)
    assert identity.labels["req_facial_hair"] in ("none", "stubble")
    same = _render(facial_hair=identity.labels["req_facial_hair"])
    assert np.array_equal(identity.image, same.image)  # "identity" draws exactly what it names
    assert _render(gender="female").labels["req_facial_hair"] == "none"
    child, child_plain = _render(age=10.0, facial_hair="beard"), _render(age=10.0, facial_hair="none")
    assert child.labels["req_facial_hair"] == "none" and np.array_equal(child.image, child_plain.image)


def test_facial_hair_in_the_plan_keeps_other_draws_and_default_ids() -> None:
    plain = plan_random(PlanParams(n=20, identities=4), 5)
    hairy = plan_random(PlanParams.model_validate({
        "n": 20, "identities": 4,
        "conditions": {"facial_hair": {"dist": "categorical", "values": ["identity", "moustache", "beard"]}}}), 5)
    assert {s.facial_hair for s in hairy} == {"identity", "moustache", "beard"}
    for a, b in zip(plain, hairy, strict=True):
        assert (a.age, a.gaze_yaw, a.occluder) == (b.age, b.gaze_yaw, b.occluder)
        assert (a.sample_id == b.sample_id) == (b.facial_hair == "identity")

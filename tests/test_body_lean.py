"""Body lean, Euro NCAP's third movement type: geometry, the face-following crop, labels that stay
exact, the coverage planner's lean cells, and what the offline models measure on a leaned render."""

from __future__ import annotations

import numpy as np
import pytest

from synthgen import cabin, ncap
from synthgen.generate.procedural.raster import project
from synthgen.generate.procedural.renderer import render_spec
from synthgen.plan.config import PlanParams
from synthgen.plan.coverage import plan_coverage
from synthgen.plan.sampling import LEAN_RANGE, id_values
from synthgen.spec import SceneSpec


def _spec(**kw: object) -> SceneSpec:
    base: dict[str, object] = dict(sample_id="lean", index=0, seed=3, identity=0, identity_seed=11, age=40.0,
                                   gender="female", skin_tone=4, gaze_yaw=-25.0, gaze_pitch=-15.0, head_yaw=-15.0)
    base.update(kw)
    return SceneSpec(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("seat", ["driver", "passenger"])
def test_a_lean_carries_the_head_towards_the_cabin_centre(seat: str) -> None:
    eye = cabin.seat_eye(seat)
    assert np.array_equal(cabin.occupant_eye(seat, 0.0), eye)
    leaned = cabin.occupant_eye(seat, 0.2)
    assert np.linalg.norm(leaned - eye) == pytest.approx(0.2)
    assert abs(leaned[0]) < abs(eye[0])  # inboard
    assert leaned[1] > eye[1] and leaned[2] > eye[2]  # a little down (y down) and forward (z forward)
    chest = cabin.chest_anchor(seat, 0.2)
    assert np.linalg.norm(chest - eye) == pytest.approx(cabin.CHEST_LEAN_SHARE * 0.2)


@pytest.mark.parametrize("camera", ["rearview_mirror", "a_pillar", "instrument_cluster"])
def test_the_crop_follows_the_face(camera: str) -> None:
    k0 = cabin.intrinsics(camera, "driver", 256, 256)
    k1 = cabin.intrinsics(camera, "driver", 256, 256, lean=0.15)
    assert k1[0, 0] == k0[0, 0] and k1[1, 1] == k0[1, 1]  # same lens: the face grows or shrinks with distance
    nominal = project(cabin.eye_position(camera, "driver")[None], k0)[0]
    leaned = project(cabin.eye_position(camera, "driver", 0.15)[None], k1)[0]
    assert np.allclose(nominal, leaned)


def test_leaned_render_labels_are_exact() -> None:
    """The labels of a leaned render come from the leaned geometry: the camera matrix is the
    shifted crop's, the eyes sit where the unleaned ones did, the face is larger for a camera the
    head leans towards, and the gaze zone is hit from the leaned eye point."""
    plain = render_spec(_spec(), 256, 256)
    lean = render_spec(_spec(body_lean=0.15), 256, 256)
    k = np.asarray(lean.labels["req_camera_matrix"]).reshape(3, 3)
    assert np.allclose(k, cabin.intrinsics("rearview_mirror", "driver", 256, 256, lean=0.15))
    assert not np.allclose(k, np.asarray(plain.labels["req_camera_matrix"]).reshape(3, 3))
    eyes = [np.asarray(r.labels["req_landmarks_68"]).reshape(68, 2)[36:48].mean(0) for r in (plain, lean)]
    assert np.linalg.norm(eyes[0] - eyes[1]) < 3.0
    width = [r.labels["req_face_box"][2] - r.labels["req_face_box"][0] for r in (plain, lean)]
    d0 = np.linalg.norm(cabin.eye_position("rearview_mirror", "driver"))
    d1 = np.linalg.norm(cabin.eye_position("rearview_mirror", "driver", 0.15))
    assert d1 < d0 and width[1] / width[0] == pytest.approx(d0 / d1, rel=0.08)
    g = np.asarray(lean.labels["req_gaze_vector"])
    assert lean.labels["req_gaze_zone"] == cabin.gaze_zone("rearview_mirror", "driver", g,
                                                           cabin.eye_position("rearview_mirror", "driver", 0.15))
    assert not np.array_equal(plain.image, lean.image)


def test_no_lean_keeps_sample_ids() -> None:
    """A lean at its default is left out of the sample id, so plans made before leans keep their ids;
    so is a lean towards the centre, the only direction before door and forward leans existed."""
    assert "body_lean" not in id_values({"age": 30.0, "body_lean": 0.0})
    assert id_values({"body_lean": 0.12}) == {"body_lean": 0.12}
    assert id_values({"body_lean": 0.12, "lean_to": "centre"}) == {"body_lean": 0.12}
    assert id_values({"body_lean": 0.12, "lean_to": "door"}) == {"body_lean": 0.12, "lean_to": "door"}


def test_each_target_has_the_lean_that_reaches_it() -> None:
    """Inboard targets by leaning over the console, the occupant's own side mirror and window by
    leaning towards the door, the cluster and the lap by leaning forward; each lean brings the eye
    point nearer to its target and moves it the way it says (cabin x to the passenger side, y down,
    z forward)."""
    reach = {z: cabin.lean_to_reach(z, "driver") for z in ("glovebox", "infotainment", "left_mirror", "left_window",
                                                              "instrument_cluster", "lap")}
    assert reach == {"glovebox": "centre", "infotainment": "centre", "left_mirror": "door", "left_window": "door",
                     "instrument_cluster": "forward", "lap": "forward"}
    assert cabin.lean_to_reach("right_window", "passenger") == "door"
    assert cabin.lean_to_reach("glovebox", "passenger") == "forward"
    for seat in ("driver", "passenger"):
        eye = cabin.seat_eye(seat)
        door = cabin.occupant_eye(seat, 0.15, "door")
        forward = cabin.occupant_eye(seat, 0.15, "forward")
        assert abs(door[0]) > abs(eye[0]) and np.linalg.norm(door - eye) == pytest.approx(0.15)
        assert forward[0] == eye[0] and forward[1] > eye[1] and forward[2] > eye[2]
    for zone, to in reach.items():
        centre = cabin._zone(zone, "driver").centre
        eye = cabin.seat_eye("driver")
        assert np.linalg.norm(centre - cabin.occupant_eye("driver", 0.15, to)) < np.linalg.norm(centre - eye)
    with pytest.raises(Exception, match="unknown lean direction"):
        cabin.lean_direction("driver", "up")


@pytest.mark.parametrize("to", ["door", "forward"])
def test_door_and_forward_leans_render_with_exact_labels(to: str) -> None:
    """The crop follows a door or forward lean as it follows a centre lean (the eyes stay where the
    unleaned ones were), and the gaze zone is hit from the leaned eye point."""
    plain = render_spec(_spec(), 256, 256)
    lean = render_spec(_spec(body_lean=0.15, lean_to=to), 256, 256)
    k = np.asarray(lean.labels["req_camera_matrix"]).reshape(3, 3)
    assert np.allclose(k, cabin.intrinsics("rearview_mirror", "driver", 256, 256, lean=0.15, to=to))
    eyes = [np.asarray(r.labels["req_landmarks_68"]).reshape(68, 2)[36:48].mean(0) for r in (plain, lean)]
    assert np.linalg.norm(eyes[0] - eyes[1]) < 3.0
    g = np.asarray(lean.labels["req_gaze_vector"])
    assert lean.labels["req_gaze_zone"] == cabin.gaze_zone("rearview_mirror", "driver", g,
                                                           cabin.eye_position("rearview_mirror", "driver", 0.15, to))
    centre = render_spec(_spec(body_lean=0.15), 256, 256)
    assert not np.array_equal(centre.image, lean.image)


def test_movement_lean() -> None:
    fy, fp = ncap.forward_angles("rearview_mirror", "driver")
    assert ncap.movement("rearview_mirror", "driver", fy + 40, fp, fy + 5, fp, body_lean=0.12) == "lean"
    assert ncap.movement("rearview_mirror", "driver", fy + 40, fp, fy + 5, fp, body_lean=0.01) == "lizard"  # under dsm.LEAN_MIN
    assert ncap.movement("rearview_mirror", "driver", fy + 2, fp, fy, fp, body_lean=0.12) == "road"
    row = {"req_camera": "rearview_mirror", "req_seat": "driver", "req_gaze_yaw": fy + 40, "req_gaze_pitch": fp,
           "req_head_yaw": fy + 5, "req_head_pitch": fp, "req_occluder": "none", "req_light_band": "cabin",
           "req_age": 40.0, "req_skin_tone": 3, "req_gaze_zone": "infotainment"}
    assert ncap.cell_of(row)[1] == "lizard"  # a row made before leans existed
    assert ncap.cell_of({**row, "req_body_lean": 0.12})[1] == "lean"


@pytest.fixture(scope="module")
def lean_plan() -> tuple[PlanParams, list[SceneSpec]]:
    p = PlanParams.model_validate({"mode": "coverage", "coverage": {
        "glance_targets": ["glovebox", "passenger_footwell", "infotainment", "left_window"],
        "movements": ["lean", "owl"], "age_bands": ["30-49"], "skin_types": [2, 5]},
        "attributes": {"camera": {"dist": "categorical", "values": ["rearview_mirror", "a_pillar"]}}})
    return p, plan_coverage(p, 5)


def test_coverage_fills_lean_cells_with_leans_that_reach_the_target(lean_plan) -> None:
    """Inboard targets are reached by leaning towards the cabin centre, the door-side window by
    leaning towards the door; each lean's rendered gaze zone is its cell's target."""
    _, specs = lean_plan
    cells = {ncap.cell_of(s.model_dump()) for s in specs}
    leans = [s for s in specs if ncap.cell_of(s.model_dump())[1] == "lean"]
    assert {c[0] for c in cells if c[1] == "lean"} == {"glovebox", "passenger_footwell", "infotainment", "left_window"}
    assert all(LEAN_RANGE[0] <= s.body_lean <= LEAN_RANGE[1] for s in leans)
    assert all(s.body_lean == 0 and s.lean_to == "centre" for s in specs if s not in leans)
    zone_of = {s.sample_id: ncap.cell_of(s.model_dump())[0] for s in leans}
    assert {s.lean_to for s in leans if zone_of[s.sample_id] == "left_window"} == {"door"}
    assert {s.lean_to for s in leans if zone_of[s.sample_id] != "left_window"} == {"centre"}
    door = [s for s in leans if s.lean_to == "door"]
    for s in leans[:2] + door[:2]:
        r = render_spec(s, 192, 192)
        assert r.labels["req_gaze_zone"] == ncap.cell_of(s.model_dump())[0]
        assert ncap.cell_of({**s.model_dump(), "req_gaze_zone": r.labels["req_gaze_zone"]}) == ncap.cell_of(s.model_dump())


def test_offline_models_measure_a_leaned_face(lean_plan) -> None:
    """The labellers read the row's camera matrix, so a leaned face is found and its head pose is
    measured as well as an unleaned one's (real models, no mocks)."""
    from synthgen.contract import image_struct
    from synthgen.images import encode_png
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import build_labelers, label_one

    labs = build_labelers(LabelParams(labelers=["mediapipe_detector", "dlib", "head_pose"]))
    errors = []
    for lean in (0.0, 0.15):
        spec = _spec(body_lean=lean, head_yaw=-20.0, gaze_yaw=-20.0, gaze_pitch=-5.0)
        r = render_spec(spec, 256, 256)
        row = {"req_camera": spec.camera, "req_seat": spec.seat, "req_camera_matrix": r.labels["req_camera_matrix"]}
        m = label_one(labs, image_struct(encode_png(r.image), "x"), row)
        assert m.get("meas_face_count") == 1
        errors.append(abs(m["meas_head_yaw"] - spec.head_yaw))
    assert errors[1] < 8.0 and errors[1] < errors[0] + 4.0


def test_clips_reach_targets_by_leaning() -> None:
    """With ``sequence.lean_share`` some glances are leans, each the way its target needs (the centre,
    the door or forward: ``cabin.lean_to_reach``): the body leans in
    step with the head turn and back, each frame's zone is hit from that frame's eye point, and the
    planned events call those glances ``lean``."""
    from synthgen.dsm import ClipEvents
    from synthgen.plan.sequence import plan_sequences

    p = PlanParams.model_validate({"n": 8, "identities": 4, "kind": "sequence", "sequence": {
        "frames": 80, "fps": 10, "glance_rate_per_min": 30, "lean_share": 1.0, "phone_probability": 0.0}})
    specs = plan_sequences(p, 11)
    leaned_glances = 0
    for c in range(p.n):
        clip = specs[c * 80:(c + 1) * 80]
        events = ClipEvents.from_json(clip[0].sequence_events)
        lean = np.array([s.body_lean for s in clip])
        for g in events.glances:
            frames = lean[g.start_frame:g.start_frame + g.n_frames]
            if g.movement == "lean":
                leaned_glances += 1
                assert frames.max() >= 0.05
                to = {s.lean_to for s in clip[g.start_frame:g.start_frame + g.n_frames] if s.body_lean > 0}
                assert to == {cabin.lean_to_reach(g.target, clip[0].seat)}, (g.target, to)
        assert lean.min() >= 0 and lean.max() <= LEAN_RANGE[1] + 1e-9
        if lean.any():  # the body moves smoothly, slower than a head turn: under 5 cm per 100 ms
            assert np.abs(np.diff(lean)).max() < 0.05
            f = int(np.argmax(lean))
            s = clip[f]
            assert cabin.zone_of_angles(s.camera, s.seat, s.gaze_yaw, s.gaze_pitch, s.body_lean, s.lean_to) == \
                render_spec(s, 160, 160).labels["req_gaze_zone"]
    assert leaned_glances >= 3
    # Without lean_share the same seed plans the clips it planned before leans existed.
    plain = plan_sequences(p.model_copy(update={"sequence": p.sequence.model_copy(update={"lean_share": 0.0})}), 11)
    assert all(s.body_lean == 0 for s in plain)

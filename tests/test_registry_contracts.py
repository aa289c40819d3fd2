"""The same contract for every registered backend (the timm pattern): a backend added to a registry
gets these tests without writing any.

Generators, labellers, curation filters, feature extractors and shift metrics are each checked for
their protocol's shape, determinism, columns inside the row contract, awkward inputs, and for the
registry's names being exactly what params.yaml accepts. Backends whose real weights cannot be had
offline run on tiny models built here (diffusion: random-weight SD from configs; insightface: tiny
ONNX models exported from torch), never on mocks.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from pydantic import ValidationError

from synthgen.analyze.config import AnalyzeParams, FeatureParams
from synthgen.analyze.registries import EXTRACTORS, METRIC_VALUES, METRICS
from synthgen.contract import MEAS_NAMES, generated_schema, image_struct
from synthgen.curate.base import FILTERS, Filter, FilterResult
from synthgen.curate.config import CurateParams
from synthgen.generate.base import GENERATORS, Generator
from synthgen.generate.config import GenerateParams
from synthgen.images import encode_png
from synthgen.label.base import LABELERS, Labeler
from synthgen.label.config import LabelParams
from synthgen.label.pipeline import build_labelers, label_one
from synthgen.spec import SceneSpec

sys.path.insert(0, str(Path(__file__).parent))

SPECS = [
    SceneSpec(sample_id="c0", index=0, seed=11, identity=0, identity_seed=3, age=34, gender="female", skin_tone=4,
              expression="happiness", gaze_yaw=10, head_yaw=-8),
    SceneSpec(sample_id="c1", index=1, seed=12, identity=1, identity_seed=4, age=61, gender="male", skin_tone=8,
              lighting="nir", glasses="glasses", gaze_pitch=-10),
]


# --- generators ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def generate_params(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GenerateParams]:
    """Working params for every registered generator (diffusion on a tiny random-weight SD 1.5)."""
    out: dict[str, GenerateParams] = {}
    for name in GENERATORS.names():
        if name == "diffusion":
            from synthgen.generate.diffusion.tiny import save_tiny

            model, controlnet = save_tiny(tmp_path_factory.mktemp("tiny-sd"), "sd")
            out[name] = GenerateParams(backend=name, width=64, height=64, diffusion=dict(
                model=str(model), controlnet=str(controlnet), controlnet_subfolder=None, steps=2,
                batch_size=2, scheduler="ddim"))
        else:
            out[name] = GenerateParams(backend=name, width=96, height=96)
    return out


@pytest.mark.parametrize("name", GENERATORS.names())
def test_generator_contract(name: str, generate_params: dict[str, GenerateParams]) -> None:
    cfg = generate_params[name]
    gen = GENERATORS.create(name, cfg)
    assert isinstance(gen, Generator)
    assert gen.name == name and isinstance(gen.version, str) and gen.version
    # a declared code version (it keys generated shards and dataset versions), which the rows'
    # generator_version reflects: equal to it, or its prefix where weights add a digest
    code = cfg.code_version()
    assert code and gen.version.split("+")[0] == code.split("+")[0]
    assert gen.max_processes is None or gen.max_processes >= 1
    first = gen.generate(SPECS)
    again = GENERATORS.create(name, cfg).generate(SPECS)
    contract = set(generated_schema().names)
    assert [s.sample_id for s in first] == [s.sample_id for s in SPECS]
    for a, b in zip(first, again, strict=True):
        assert a.image.dtype == np.uint8 and a.image.shape[:2] == (cfg.height, cfg.width)
        assert np.array_equal(a.image, b.image), "same spec and seed must give the same pixels"
        assert set(a.labels) <= contract, f"labels outside the row contract: {set(a.labels) - contract}"
        assert encode_png(a.image) == encode_png(b.image)


@pytest.mark.parametrize("name", GENERATORS.names())
def test_generator_names_are_what_params_accept(name: str) -> None:
    GenerateParams(backend=name)
    section = GENERATORS.section(name)
    if section is not None:
        assert isinstance(GenerateParams().section(name), section)


def test_unknown_generator_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown generator"):
        GenerateParams(backend="nosuch")


# --- labellers -------------------------------------------------------------------------------------
# Labellers outside the default list that need more than a detector before them.
NEEDS = {"mediapipe_iris": ["mediapipe_detector", "mediapipe_mesh"]}


@pytest.fixture(scope="module")
def label_params(tmp_path_factory: pytest.TempPathFactory) -> dict[str, LabelParams]:
    """For each labeller, a working list that ends with it (the labellers it requires come first)."""
    import torch
    from test_label_insightface import TinyArcFace, TinyScrfd  # the tiny ONNX models that test builds

    root = tmp_path_factory.mktemp("insightface")
    folder = root / "models" / "tiny"
    folder.mkdir(parents=True)
    det = [f"{k}_{s}" for k in ("score", "bbox", "kps") for s in (8, 16, 32)]
    torch.onnx.export(TinyScrfd(), torch.zeros(1, 3, 128, 128), str(folder / "det_tiny.onnx"), input_names=["input.1"],
                      output_names=det, opset_version=13, dynamo=False, dynamic_axes={"input.1": {2: "h", 3: "w"}})
    torch.onnx.export(TinyArcFace(), torch.zeros(1, 3, 112, 112), str(folder / "w600k_tiny.onnx"),
                      input_names=["input.1"], output_names=["embedding"], opset_version=13, dynamo=False,
                      dynamic_axes={"input.1": {0: "n"}, "embedding": {0: "n"}})
    base: dict[str, Any] = {"workers": 1, "insightface": {"root": root, "name": "tiny", "det_size": 128}}
    default = LabelParams().labelers
    out = {}
    for name in LABELERS.names():
        if name in ("mediapipe_detector", "dlib_hog", "insightface"):
            names = [name]
        else:
            names = (default[: default.index(name) + 1] if name in default
                     else NEEDS.get(name, ["mediapipe_detector"]) + [name])
        out[name] = LabelParams(labelers=names, **base)
    return out


def _awkward_images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    face = GENERATORS.create("procedural", GenerateParams(width=160, height=160)).generate(SPECS[:1])[0].image
    return {
        "face": face,
        "blank": np.zeros((128, 128, 3), np.uint8),
        "tiny": rng.integers(0, 255, (8, 8, 3), dtype=np.uint8),
        "huge": np.ascontiguousarray(np.pad(face, ((880, 880), (880, 880), (0, 0)), mode="edge")),  # 1920 x 1920
        "grey": np.ascontiguousarray(face.mean(axis=2).astype(np.uint8)),
    }


@pytest.mark.slow
@pytest.mark.parametrize("name", LABELERS.names())
def test_labeler_contract(name: str, label_params: dict[str, LabelParams]) -> None:
    labelers = build_labelers(label_params[name])
    lab = labelers[-1]
    assert isinstance(lab, Labeler)
    assert lab.name == name and isinstance(lab.model, str) and lab.model
    assert set(lab.provides) <= MEAS_NAMES, f"columns outside the row contract: {set(lab.provides) - MEAS_NAMES}"
    assert not set(lab.exports) & MEAS_NAMES, "extras are not columns"
    for kind, image in _awkward_images().items():
        png = image_struct(encode_png(image), None)
        first = label_one(labelers, png, {}, where=kind)
        assert set(first) <= MEAS_NAMES
        assert first == label_one(labelers, png, {}, where=kind), f"{kind}: not deterministic"
        if name == "insightface":
            continue  # its tiny detector has random weights: shape and determinism only
        if kind in ("blank", "tiny"):
            assert first.get("meas_face_count") in (0, None), f"{kind}: a face where there is none"
        if kind == "face":
            assert first.get("meas_face_count") == 1 and first.get("meas_error") is None, first.get("meas_error")


@pytest.mark.parametrize("name", LABELERS.names())
def test_labeler_names_are_what_params_accept(name: str) -> None:
    LabelParams(labelers=[name])


@pytest.mark.parametrize("name", LABELERS.names())
def test_labeler_declares_a_code_version(name: str) -> None:
    """It keys labelled shards and dataset versions (see test_publish's version tests)."""
    version = LABELERS.code_version(name)
    assert isinstance(version, str) and version
    assert "absent" not in version, f"{name}: a library its version names is not installed: {version}"
    assert LabelParams(labelers=[name]).code_versions() == {name: version}


def test_unknown_labeler_is_refused() -> None:
    with pytest.raises(ValidationError):
        LabelParams(labelers=["nosuch"])


# --- curation filters ------------------------------------------------------------------------------
def _labelled_frame(n: int = 12) -> pl.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for i in range(n):
        rows.append({
            "sample_id": f"r{i}", "split": "train", "req_identity": i % 4, "meas_error": None, "meas_face_count": 1,
            "req_gaze_yaw": float(rng.uniform(-20, 20)), "req_gaze_pitch": float(rng.uniform(-10, 10)),
            "meas_gaze_yaw": float(rng.uniform(-20, 20)), "meas_gaze_pitch": float(rng.uniform(-10, 10)),
            "req_head_yaw": 0.0, "req_head_pitch": 0.0, "req_head_roll": 0.0,
            "meas_head_yaw": 1.0, "meas_head_pitch": -1.0, "meas_head_roll": 0.5,
            "req_age": 30.0, "meas_age": 32.0, "req_gender": "female", "meas_gender": "female",
            "req_expression": "neutral", "meas_expression": "neutral", "req_eyes_open": True,
            "meas_quality_sharpness": 100.0, "meas_quality_brightness": 120.0, "meas_quality_brisque": 30.0,
            "meas_phash": f"{i:016x}",
            "meas_identity_embedding": rng.normal(size=128).astype(np.float32).tolist(),
        })
    return pl.DataFrame(rows)


@pytest.mark.parametrize("name", FILTERS.names())
def test_filter_contract(name: str) -> None:
    flt = FILTERS.create(name, CurateParams())
    assert isinstance(flt, Filter) and flt.name == name and flt.kind in ("row", "set") and flt.reasons
    frame = _labelled_frame()
    prior: list[list[str]] = [[] for _ in range(frame.height)]
    res = flt.apply(frame, prior)
    assert isinstance(res, FilterResult)
    assert set(res.masks) <= set(flt.reasons), "every reject carries one of the filter's reason codes"
    for mask in res.masks.values():
        assert mask.dtype == bool and mask.shape == (frame.height,)
    again = flt.apply(frame, prior)
    assert {k: v.tolist() for k, v in res.masks.items()} == {k: v.tolist() for k, v in again.masks.items()}
    empty = flt.apply(frame.head(0), [])
    assert all(m.shape == (0,) for m in empty.masks.values())


@pytest.mark.parametrize("name", FILTERS.names())
def test_filter_names_are_what_params_accept(name: str) -> None:
    CurateParams(filters=[name])


# --- feature extractors and shift metrics ----------------------------------------------------------
def test_extractor_and_metric_names_are_what_params_accept() -> None:
    for name in EXTRACTORS.names():
        FeatureParams(name=name)
        assert isinstance(EXTRACTORS.get(name).needs_images, bool)
    AnalyzeParams(metrics=METRICS.names())
    assert set(METRIC_VALUES) == set(METRICS.names())
    with pytest.raises(ValidationError, match="unknown feature extractor"):
        FeatureParams(name="nosuch")
    with pytest.raises(ValidationError, match="unknown shift metric"):
        AnalyzeParams(metrics=["nosuch"])


@pytest.mark.parametrize("name", METRICS.names())
def test_metric_contract(name: str) -> None:
    rng = np.random.default_rng(2)
    real, synth = rng.normal(size=(60, 8)), rng.normal(0.5, 1, size=(50, 8))
    params = AnalyzeParams(kid_subsets=5, kid_subset_size=20, bootstrap=10, classifier_folds=2)
    fn = METRICS.get(name)
    vals = fn(real, synth, params, 0)
    assert [v.name for v in vals] == list(METRIC_VALUES[name])
    assert all(v.value is not None and np.isfinite(v.value) for v in vals)
    assert [v.value for v in fn(real, synth, params, 0)] == [v.value for v in vals], "same seed, same value"


def test_identity_extractor_contract() -> None:
    ext = EXTRACTORS.create("identity")
    table = pa.table({"meas_identity_embedding": [[0.1, 0.2], None, [0.3, 0.1], []]})
    feats = ext.extract(table)
    assert feats.values.shape == (2, 2) and feats.rows.tolist() == [0, 2]
    assert sum(feats.skipped.values()) == 2, "rows without a face are counted as skipped, not dropped silently"

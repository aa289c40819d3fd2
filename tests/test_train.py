"""The train stage on a tiny published dataset: outputs, determinism, resume, OOD evaluation."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from safetensors.torch import load_file  # noqa: E402

from synthgen.config import Params, parse_params  # noqa: E402
from synthgen.errors import DataError, ModelUnavailableError  # noqa: E402
from synthgen.paths import Layout  # noqa: E402
from synthgen.train.toydata import write_toy_dataset  # noqa: E402

SPLITS = {"train": 24, "val": 8, "test": 8}
TINY = {
    "backbone": "resnet10t", "image_size": 48, "epochs": 2, "batch_size": 8, "workers": 0,
    "threads": 1, "warmup_steps": 1, "eval_batch_size": 16,
}


def make_params(data_dir: Path, **train: object) -> Params:
    return parse_params({"seed": 7, "data_dir": str(data_dir), "dataset": {"name": "toy", "version": "v1"},
                         "train": {**TINY, **train}})


def publish_toy(params: Params, **kw: object) -> Path:
    return write_toy_dataset(Layout.from_params(params).version_dir, n=SPLITS, size=64, seed=3,
                             row_group_size=8, **kw)


@pytest.fixture(scope="module")
def real_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 'real' reference set: measured age and expression only, no gaze or head pose."""
    root = tmp_path_factory.mktemp("real")
    write_toy_dataset(root, n={"test": 8}, size=80, seed=11, with_meas=True, reject_every=0, source="real")
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, real_set: Path):
    from synthgen.stages import run_train

    data = tmp_path_factory.mktemp("a") / "data"
    params = make_params(data, ood=str(real_set))
    publish_toy(params)
    return params, run_train(params, progress=False)


def test_outputs_metrics_and_card(trained) -> None:
    params, result = trained
    out = Layout.from_params(params).models_dir / "v1"
    assert result.out_dir == out
    for name in ("model.safetensors", "model_card.md", "metrics.json", "train_log.csv", "epoch_log.csv",
                 "checkpoints/last.safetensors"):
        assert (out / name).is_file(), name
    m = json.loads((out / "metrics.json").read_text())
    assert m == result.metrics
    assert all(isinstance(v, (int, float)) for v in m.values())  # flat numbers for DVC
    # 24 train rows, every 7th rejected -> 21 accepted -> 3 batches of 8 per epoch
    assert result.steps == 6 and result.epochs == 2
    for split in ("val", "test"):
        assert 0 <= m[f"{split}.gaze.angular_error_deg"] < 180
        assert 0 <= m[f"{split}.gaze.zone_accuracy"] <= 1
        assert m[f"{split}.head_pose.mae_deg"] >= 0 and m[f"{split}.age.mae_years"] >= 0
        assert 0 <= m[f"{split}.expression.balanced_accuracy"] <= 1
        assert m[f"{split}.n"] == 7  # 8 rows, one rejected
    # OOD: measured age and expression only -> gaze and head pose are not scored at all
    assert m["ood.available"] == 1 and m["ood.n"] == 8
    assert m["ood.gaze.n"] == 0 and "ood.gaze.angular_error_deg" not in m
    assert m["ood.head_pose.n"] == 0 and m["ood.age.n"] == 8 and "ood.age.mae_years" in m
    assert "ood.expression.accuracy" in m
    log = (out / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,step,loss") and len(log) == 1 + 6
    assert len((out / "epoch_log.csv").read_text().splitlines()) == 1 + 2
    card = (out / "model_card.md").read_text()
    assert "version `v1`" in card and "resnet10t" in card and "## Out-of-distribution" in card
    assert "age.mae_years" in card.split("## Out-of-distribution")[1]


def test_model_reloads_with_same_predictions(trained) -> None:
    from synthgen.train.runner import load_model

    _, result = trained
    net = load_model(result.out_dir)
    x = torch.randint(0, 255, (2, 3, 48, 48), dtype=torch.uint8)
    again = load_model(result.model_path)
    with torch.no_grad():
        a, b = net(x), again(x)
    assert set(a) == {"gaze", "head_pose", "age", "expression"}
    for k in a:
        assert torch.equal(a[k], b[k])


def test_stop_and_resume_equals_straight_run(trained, tmp_path: Path) -> None:
    """Determinism and exact resume at once: a run stopped after epoch 1 and resumed gives
    bit-identical weights to the uninterrupted run (model + optimiser + RNG restored)."""
    from synthgen.stages import run_train

    straight_params, straight = trained
    params = make_params(tmp_path / "data", max_steps=3, ood=None, eval_splits=["val"])
    publish_toy(params)
    first = run_train(params, progress=False)
    assert first.epochs == 1 and first.steps == 3 and first.resumed_from_epoch is None
    resumed = run_train(make_params(tmp_path / "data", ood=None, eval_splits=["val"]), progress=False)
    assert resumed.resumed_from_epoch == 1 and resumed.steps == 6
    a, b = load_file(str(straight.model_path)), load_file(str(resumed.model_path))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["val.gaze.angular_error_deg"] == straight.metrics["val.gaze.angular_error_deg"]
    rows = (resumed.out_dir / "train_log.csv").read_text().splitlines()
    assert len(rows) == 1 + 6  # the log continues, without repeating epoch 1


def test_other_params_do_not_resume(trained, tmp_path: Path) -> None:
    """A checkpoint of another config is ignored, not loaded into a different model."""
    from synthgen.stages import run_train

    params = make_params(tmp_path / "data", ood=None, eval_splits=[], epochs=1, max_steps=1)
    publish_toy(params)
    run_train(params, progress=False)
    other = make_params(tmp_path / "data", ood=None, eval_splits=[], epochs=1, max_steps=1, lr=5e-4)
    assert run_train(other, progress=False).resumed_from_epoch is None


# ---------------------------------------------------------------- bad input: clear and fast
def _fast(fn, exc: type[BaseException], *words: str) -> str:
    t = time.perf_counter()
    with pytest.raises(exc) as info:
        fn()
    assert time.perf_counter() - t < 1.0, "error must come in under a second"
    text = str(info.value)
    for w in words:
        assert w in text, (w, text)
    return text


def test_no_accepted_rows(tmp_path: Path) -> None:
    from synthgen.stages import run_train

    params = make_params(tmp_path / "data", ood=None)
    publish_toy(params, reject_every=1)
    _fast(lambda: run_train(params, progress=False), DataError, "no accepted rows", "split=train",
          "low_quality", str(Layout.from_params(params).version_dir))


def test_missing_dataset(tmp_path: Path) -> None:
    from synthgen.stages import run_train

    params = make_params(tmp_path / "data", ood=None)
    _fast(lambda: run_train(params, progress=False), DataError, "no Parquet shards", "Fix:")


def test_task_without_labels(tmp_path: Path) -> None:
    from synthgen.stages import run_train

    params = make_params(tmp_path / "data", ood=None, labels={"gaze": "meas"})
    publish_toy(params)
    _fast(lambda: run_train(params, progress=False), DataError, "task 'gaze' has no labels",
          "meas_gaze_yaw", "train.labels.gaze: req")


def test_missing_weights_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from synthgen.stages import run_train
    from synthgen.train.model import create_backbone

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty hub cache
    params = make_params(tmp_path / "data", ood=None, weights=str(tmp_path / "nope.safetensors"))
    publish_toy(params)
    _fast(lambda: run_train(params, progress=False), ModelUnavailableError, "nope.safetensors", "not found")
    cfg = make_params(tmp_path, pretrained=True).train
    _fast(lambda: create_backbone(cfg), ModelUnavailableError, "resnet10t", "offline", "train.pretrained")
    hub = make_params(tmp_path, weights="hf-hub:timm/not-here").train
    _fast(lambda: create_backbone(hub), ModelUnavailableError, "timm/not-here", "offline")


def test_corrupt_checkpoint(trained, tmp_path: Path) -> None:
    from synthgen.stages import run_train
    from synthgen.train.checkpoint import CheckpointError

    params = make_params(tmp_path / "data", ood=None)
    publish_toy(params)
    ckpt = Layout.from_params(params).models_dir / "v1" / "checkpoints" / "last.safetensors"
    ckpt.parent.mkdir(parents=True)
    shutil.copy(trained[1].out_dir / "checkpoints" / "last.safetensors", ckpt)
    with open(ckpt, "r+b") as fh:  # truncate: a run killed mid-copy, a full disk
        fh.truncate(ckpt.stat().st_size // 2)
    _fast(lambda: run_train(params, progress=False), CheckpointError, str(ckpt), "corrupt", "train.resume: false")


def test_local_weights_file_is_loaded(tmp_path: Path) -> None:
    import timm
    from safetensors.torch import save_file

    from synthgen.train.model import create_backbone

    src = timm.create_model("resnet10t", num_classes=5)
    path = tmp_path / "resnet10t.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    bb = create_backbone(make_params(tmp_path, weights=str(path)).train)
    assert torch.equal(bb.conv1[0].weight, src.conv1[0].weight)
    wrong = timm.create_model("resnet18", num_classes=0)
    bad = tmp_path / "resnet18.safetensors"
    save_file({k: v.contiguous() for k, v in wrong.state_dict().items()}, str(bad))
    with pytest.raises(ModelUnavailableError, match="do not fit"):
        create_backbone(make_params(tmp_path, weights=str(bad)).train)


def test_unknown_ood_path_fails_before_training(tmp_path: Path) -> None:
    from synthgen.stages import run_train

    params = make_params(tmp_path / "data", ood=str(tmp_path / "no-real-set"))
    _fast(lambda: run_train(params, progress=False), DataError, "out-of-distribution set not found")


def test_params_defaults_and_validation() -> None:
    from synthgen.errors import ConfigError

    p = parse_params({})
    assert p.train.tasks == ["gaze", "head_pose", "age", "expression"]
    assert p.train.labels.gaze == "req" and p.train.ood_labels.age == "meas"
    assert p.train.loss.weighting == "uncertainty" and p.train.ood == "demo"
    with pytest.raises(ConfigError, match="balance"):
        parse_params({"train": {"tasks": ["gaze"], "balance": ["age"]}})
    with pytest.raises(ConfigError, match="task_weights"):
        parse_params({"train": {"loss": {"task_weights": {"height": 1.0}}}})
    assert np.isfinite(p.train.lr)


def test_lora_with_curriculum_and_fixed_weights(tmp_path: Path) -> None:
    """The curriculum's warm-up epoch sees only the easy (near-frontal) rows, then all of them."""
    from synthgen.stages import run_train

    params = make_params(
        tmp_path / "data", ood=None, eval_splits=[], adaptation="lora", balance=[],
        loss={"weighting": "fixed", "task_weights": {"gaze": 2.0}},
        curriculum={"enabled": True, "warmup_epochs": 1, "max_gaze_deg": 30, "max_head_deg": 25},
    )
    publish_toy(params)
    result = run_train(params, progress=False)
    rows = (result.out_dir / "train_log.csv").read_text().splitlines()[1:]
    seen = {1: 0, 2: 0}
    for r in rows:
        epoch, images = int(r.split(",")[0]), int(r.split(",")[6])
        seen[epoch] += images
    assert 0 < seen[1] < seen[2] == 21
    assert "adaptation `lora`" in (result.out_dir / "model_card.md").read_text()

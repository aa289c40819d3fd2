"""Unit tests of the train stage's parts: streaming, balancing, masked losses, adaptation modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")

from synthgen.config import parse_params  # noqa: E402
from synthgen.train.config import TrainParams  # noqa: E402
from synthgen.train.data import (  # noqa: E402
    RowGroupStream,
    build_index,
    make_loader,
    plan_epoch,
    sampling_weights,
)
from synthgen.train.losses import MultiTaskLoss  # noqa: E402
from synthgen.train.model import _NORMS  # noqa: E402
from synthgen.train.tasks import CLS_NAMES, TASK_SPECS  # noqa: E402
from synthgen.train.toydata import write_toy_dataset  # noqa: E402

REQ = {t: "req" for t in TASK_SPECS}
ALL = list(TASK_SPECS)


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy") / "version=v1"
    return write_toy_dataset(root, n={"train": 30, "val": 6}, size=40, seed=1, row_group_size=4)


def test_index_reads_labels_splits_and_skips_rejects(toy: Path) -> None:
    idx = build_index(toy, REQ, ALL)
    assert idx.total_rows == 36 and len(idx) == 36 - 4 - 0  # rows 6, 13, 20, 27 of train rejected
    assert set(idx.split) == {"train", "val"}
    assert np.isfinite(idx.reg).all() and (idx.cls >= 0).all()
    meas = build_index(toy, {**REQ, "gaze": "meas", "head_pose": "meas"}, ALL)
    assert np.isnan(meas.reg[:, :5]).all()  # meas gaze/head columns absent or null
    assert np.isfinite(meas.reg[:, 5]).all() and (meas.cls[:, 1] >= 0).all()  # age group derived


@pytest.mark.parametrize("workers", [0, 2])
def test_stream_emits_each_row_once_across_workers(toy: Path, workers: int) -> None:
    idx = build_index(toy, REQ, ALL)
    units = plan_epoch(idx, np.arange(len(idx)), np.random.default_rng(0))
    assert len(units) > 4  # several row groups, so workers really share the work
    stream = RowGroupStream(idx.files, units, image_size=24)
    seen = []
    for images, reg, _cls in make_loader(stream, 5, workers, 2, seed=0):
        assert images.dtype == torch.uint8 and images.shape[1:] == (3, 24, 24)
        seen.append(reg[:, 0].numpy())
    got = np.sort(np.concatenate(seen))
    assert np.array_equal(got, np.sort(idx.reg[:, 0]))


def test_two_processes_split_row_groups(toy: Path) -> None:
    idx = build_index(toy, REQ, ALL)
    units = plan_epoch(idx, np.arange(len(idx)), None)
    parts = [RowGroupStream(idx.files, units, 16, rank=r, world=2) for r in (0, 1)]
    assert sum(len(p) for p in parts) == len(idx)
    a = {float(r[0]) for _, r, _ in parts[0]}
    b = {float(r[0]) for _, r, _ in parts[1]}
    assert not a & b and len(a | b) == len(idx)


def test_balanced_sampling_flattens_class_frequencies(toy: Path) -> None:
    idx = build_index(toy, REQ, ALL)
    idx.cls[:, 2] = np.where(np.arange(len(idx)) < len(idx) * 0.8, 0, 1)  # 80/20 expression split
    w = sampling_weights(idx, ["expression"])
    rng = np.random.default_rng(0)
    draw = rng.choice(len(idx), size=20000, p=w / w.sum())
    share = (idx.cls[draw, 2] == 1).mean()
    assert 0.45 < share < 0.55
    assert np.allclose(sampling_weights(idx, []), 1.0)


def test_masked_loss_and_uncertainty_weighting() -> None:
    torch.manual_seed(0)
    tasks = ["gaze", "expression"]
    outs = {t: torch.randn(4, TASK_SPECS[t].out_dim, requires_grad=True) for t in tasks}
    reg = torch.full((4, 6), float("nan"))
    cls = torch.full((4, len(CLS_NAMES)), -1, dtype=torch.long)
    cls[:2, 2] = torch.tensor([1, 3])  # expression on two rows, no gaze anywhere
    lf = MultiTaskLoss(tasks, "uncertainty", {"gaze": 1.0, "expression": 1.0})
    total, parts = lf(outs, reg, cls)
    assert set(parts) == {"expression"} and torch.isfinite(total)
    total.backward()
    assert outs["gaze"].grad is None or not outs["gaze"].grad.abs().sum()  # masked out entirely
    assert lf.log_vars.grad[0] == 0 and lf.log_vars.grad[1] != 0  # gaze's weight does not drift
    reg[:, 0:2] = 10.0
    assert set(MultiTaskLoss(tasks, "fixed", {"gaze": 2.0})(outs, reg, cls)[1]) == {"gaze", "expression"}
    empty = torch.full((4, 3), -1, dtype=torch.long)
    assert MultiTaskLoss(tasks, "fixed", {})(outs, torch.full((4, 6), float("nan")), empty)[0] is None


def _cfg(**kw: object) -> TrainParams:
    # 64 px: at 32 px ResNet's last stage is 1x1, and BatchNorm over a tiny batch then passes no gradient
    return parse_params({"train": {"image_size": 64, **kw}}).train


@pytest.mark.parametrize("backbone", ["resnet10t", "vit_tiny_patch16_224"])
def test_adaptation_modes(backbone: str) -> None:
    from synthgen.train.model import build_model, count_parameters

    counts = {}
    for mode in ("linear", "partial", "lora", "full"):
        torch.manual_seed(0)
        net = build_model(_cfg(backbone=backbone, adaptation=mode, partial_blocks=1))
        counts[mode] = count_parameters(net)[0]
        heads = sum(p.numel() for p in net.heads.parameters())
        if mode == "linear":
            assert counts[mode] == heads
        if mode == "lora":
            norms = {f"{m}.{n}" for m, mod in net.backbone.named_modules()
                     if isinstance(mod, _NORMS) for n, _ in mod.named_parameters(recurse=False)}
            names = {n for n, p in net.backbone.named_parameters() if p.requires_grad}
            assert {n for n in names if "lora_" in n} and names - norms == {n for n in names if "lora_" in n}
            before = {n: p.detach().clone() for n, p in net.backbone.named_parameters()}
            opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
            x = torch.randint(0, 255, (4, 3, 64, 64), dtype=torch.uint8)
            for _ in range(2):  # from random init the adapters get gradient once norm scales move
                opt.zero_grad()
                sum(o.pow(2).mean() for o in net(x).values()).backward()
                opt.step()
            changed = {n for n, p in net.backbone.named_parameters() if not torch.equal(before[n], p)}
            assert any("lora_B" in n for n in changed)
            assert changed <= names  # base convolution / linear weights stay frozen
    assert counts["linear"] < counts["lora"] < counts["partial"] < counts["full"]


def test_unknown_backbone_is_a_config_error() -> None:
    from synthgen.errors import ConfigError
    from synthgen.train.model import build_model

    with pytest.raises(ConfigError, match="unknown backbone 'resnet_nope'"):
        build_model(_cfg(backbone="resnet_nope"))


def test_curriculum_and_balance_are_deterministic(toy: Path) -> None:
    from synthgen.train.data import easy_mask

    idx = build_index(toy, REQ, ALL)
    easy = easy_mask(idx, 20, 20, synthetic_only=True)
    assert 0 < easy.sum() < len(idx)
    assert (np.abs(idx.reg[easy, :2]) <= 20).all()
    a = plan_epoch(idx, np.arange(len(idx)), np.random.default_rng([1, 0]))
    b = plan_epoch(idx, np.arange(len(idx)), np.random.default_rng([1, 0]))
    assert [tuple(u.pos) for u in a] == [tuple(u.pos) for u in b]

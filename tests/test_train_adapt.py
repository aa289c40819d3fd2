"""Adaptation modes (prefix, DoRA, MTLoRA), the gender head and the CLIP backbone with its
zero-shot baseline, on tiny models: parameter counts, frozen weights stay frozen, a step lowers
the loss, save/load round trips. The CLIP model is a tiny random one built from a config (no
weights can be downloaded here); it checks the machinery, not CLIP's accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")

from synthgen.config import parse_params  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402
from synthgen.train.checkpoint import save_model  # noqa: E402
from synthgen.train.config import TrainParams  # noqa: E402
from synthgen.train.losses import MultiTaskLoss  # noqa: E402
from synthgen.train.model import build_model, count_parameters  # noqa: E402
from synthgen.train.tasks import CLS_NAMES, N_CLS, N_REG, TASK_SPECS  # noqa: E402

TASKS = list(TASK_SPECS)


def _cfg(**kw: object) -> TrainParams:
    return parse_params({"train": {"image_size": 64, "dropout": 0.0, **kw}}).train


def _batch(n: int = 8, size: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 255, (n, 3, size, size), dtype=torch.uint8, generator=g)
    reg = torch.randn(n, N_REG, generator=g) * 20
    reg[:, 5] = 40
    cls = torch.zeros(n, N_CLS, dtype=torch.long)
    cls[:, 3] = torch.arange(n) % 2
    return x, reg, cls


def _trainable(net: torch.nn.Module) -> set[str]:
    return {n for n, p in net.named_parameters() if p.requires_grad}


def _norm_params(net: torch.nn.Module) -> set[str]:
    from synthgen.train.model import _NORMS

    return {f"{m}.{n}" for m, mod in net.named_modules() if isinstance(mod, _NORMS)
            for n, _ in mod.named_parameters(recurse=False)}


def _steps_lower_loss(net: torch.nn.Module, tasks: list[str], steps: int = 3, lr: float = 1e-2) -> None:
    """Same batch, a few AdamW steps: the loss falls, and only trainable tensors change."""
    x, reg, cls = _batch()
    loss_fn = MultiTaskLoss(tasks, "fixed", {})
    frozen = {n: p.detach().clone() for n, p in net.named_parameters() if not p.requires_grad}
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    net.train()
    first = None
    for _ in range(steps):
        loss, _ = loss_fn(net(x), reg, cls)
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    last = float(loss_fn(net(x), reg, cls)[0])
    assert last < first
    for n, p in net.named_parameters():
        if n in frozen:
            assert torch.equal(frozen[n], p.detach()), f"frozen {n} changed"


def _round_trip(net: torch.nn.Module, cfg: TrainParams, tmp_path: Path) -> None:
    from synthgen.train.runner import load_model

    path = save_model(tmp_path / "model.safetensors", net, {"train": json.dumps(cfg.model_dump(mode="json"))})
    again = load_model(path)
    x = _batch(2)[0]
    net.eval()
    with torch.no_grad():
        a, b = net(x), again(x)
    assert set(a) == set(b)
    for t in a:
        assert torch.allclose(a[t], b[t], atol=1e-5), t


@pytest.mark.parametrize("backbone", ["resnet10t", "vit_tiny_patch16_224"])
def test_dora_and_mtlora(backbone: str, tmp_path: Path) -> None:
    counts = {}
    for mode in ("linear", "lora", "dora", "mtlora"):
        torch.manual_seed(0)
        cfg = _cfg(backbone=backbone, adaptation=mode)
        net = build_model(cfg)
        counts[mode] = count_parameters(net)[0]
        names = _trainable(net)
        if mode == "dora":
            assert any("lora_magnitude_vector" in n for n in names)
        if mode == "mtlora":
            assert {n.split(".")[1] for n in names if n.startswith("task_maps.")} == set(TASKS)
        if mode != "linear":
            base = {n for n in names if n.startswith("backbone.") and "lora_" not in n}
            assert base <= _norm_params(net), base  # only normalisation scales beside the adapters
            _steps_lower_loss(net, cfg.tasks)
            _round_trip(net, cfg, tmp_path / mode)
    nf = int(build_model(_cfg(backbone=backbone, adaptation="linear")).backbone.num_features)
    # DoRA = LoRA + one magnitude per adapted output channel; MTLoRA = LoRA + 2 * nf * rank per task
    adapted = [m for m in build_model(_cfg(backbone=backbone, adaptation="lora")).modules() if hasattr(m, "lora_A")]
    out_channels = sum(getattr(m.base_layer, "out_features", None) or m.base_layer.out_channels for m in adapted)
    assert adapted and counts["dora"] - counts["lora"] == out_channels
    assert counts["mtlora"] - counts["lora"] == len(TASKS) * 2 * nf * 8
    assert counts["linear"] < counts["lora"]


def test_mtlora_task_maps_start_as_identity() -> None:
    torch.manual_seed(0)
    net = build_model(_cfg(backbone="resnet10t", adaptation="mtlora"))
    feats = torch.randn(3, int(net.backbone.num_features))
    for t in TASKS:
        assert torch.equal(net.task_maps[t](feats), feats)


@pytest.mark.parametrize("deep", [True, False])
def test_prefix_tokens_on_a_vit(deep: bool, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = _cfg(backbone="vit_tiny_patch16_224", adaptation="prefix", prefix={"tokens": 4, "deep": deep})
    net = build_model(cfg)
    dim, depth = 192, 12
    heads = sum(p.numel() for p in net.heads.parameters())
    assert count_parameters(net)[0] == heads + 4 * dim * (depth if deep else 1)
    assert _trainable(net) - {n for n in _trainable(net) if n.startswith("heads.")} == {"prompts.tokens"}
    # the prompts really enter the sequence: changing them changes the output (a random change: a
    # constant added to every element would vanish in each block's LayerNorm)
    x = _batch(2)[0]
    net.eval()
    with torch.no_grad():
        a = net(x)["age"].clone()
        delta = torch.randn_like(net.prompts.tokens)
        net.prompts.tokens.add_(delta)
        b = net(x)["age"]
        net.prompts.tokens.sub_(delta)
    assert not torch.allclose(a, b)
    _steps_lower_loss(net, cfg.tasks)
    _round_trip(net, cfg, tmp_path)


def test_prefix_on_a_cnn_is_refused_clearly() -> None:
    with pytest.raises(ConfigError, match="convolutional network and has no tokens") as err:
        build_model(_cfg(backbone="resnet10t", adaptation="prefix"))
    assert "vit_tiny_patch16_224" in err.value.fix


def test_gender_head_masked_where_missing() -> None:
    outs = {"gender": torch.randn(4, TASK_SPECS["gender"].out_dim, requires_grad=True)}
    cls = torch.full((4, len(CLS_NAMES)), -1, dtype=torch.long)
    reg = torch.full((4, N_REG), float("nan"))
    lf = MultiTaskLoss(["gender"], "fixed", {})
    assert lf(outs, reg, cls)[0] is None  # no gender label anywhere: no loss at all
    cls[0, 3] = 1
    total, parts = lf(outs, reg, cls)
    total.backward()
    assert set(parts) == {"gender"}
    assert outs["gender"].grad[1:].abs().sum() == 0 and outs["gender"].grad[0].abs().sum() > 0


def test_gender_labels_metrics_and_limit_rows(tmp_path: Path) -> None:
    from synthgen.train.data import build_index, limit_rows
    from synthgen.train.metrics import task_metrics
    from synthgen.train.toydata import write_toy_dataset

    root = write_toy_dataset(tmp_path / "v", n={"train": 20}, size=32, reject_every=0)
    req = build_index(root, {t: "req" for t in TASKS}, TASKS)
    assert set(req.cls[:, 3]) == {0, 1}
    meas = build_index(root, {**{t: "req" for t in TASKS}, "gender": "meas"}, TASKS)
    assert (meas.cls[:, 3] == -1).sum() == 4  # every 5th measured gender missing: masked, not guessed
    m = task_metrics("x", ["gender"], np.zeros((20, N_REG)), np.zeros((20, N_CLS), int), meas.reg, meas.cls)
    assert m["x.gender.n"] == 16 and m["x.gender.balanced_accuracy"] == 0.5
    small = limit_rows(req, 7, seed=1)
    assert len(small) == 7 and len(limit_rows(req, 0, 1)) == 20
    assert set(small.pos) <= set(limit_rows(req, 12, seed=1).pos)  # nested: learning curves add rows


# ---------------------------------------------------------------------------------------------- CLIP
def _tiny_tokenizer() -> object:
    """A byte-level CLIP tokenizer without merges, built without any file."""
    from transformers import CLIPTokenizer

    # GPT-2's byte-to-symbol map: printable bytes stand for themselves, the rest move above 255
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in keep]
    symbols = [chr(b) for b in keep] + [chr(256 + i) for i in range(len(extra))]
    vocab = {s: i for i, s in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import CLIPConfig, CLIPModel

    tok = _tiny_tokenizer()
    torch.manual_seed(0)
    config = CLIPConfig(
        text_config={"vocab_size": len(tok), "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 77,
                     "eos_token_id": tok.convert_tokens_to_ids("<|endoftext|>")},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    folder = tmp_path_factory.mktemp("clip") / "tiny-clip"
    CLIPModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("mode", ["linear", "lora", "prefix", "partial"])
def test_clip_vision_backbone(tiny_clip: Path, mode: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = _cfg(backbone=f"clip:{tiny_clip}", adaptation=mode, prefix={"tokens": 2})
    net = build_model(cfg)
    trainable, total = count_parameters(net)
    heads = sum(p.numel() for p in net.heads.parameters())
    if mode == "linear":
        assert trainable == heads
    elif mode == "prefix":
        assert trainable == heads + 2 * 32 * 2  # 2 tokens x width 32 x 2 layers (deep)
    else:
        assert heads < trainable < total
    _steps_lower_loss(net, cfg.tasks)
    _round_trip(net, cfg, tmp_path)


def test_clip_folder_missing_is_a_clear_error(tmp_path: Path) -> None:
    from synthgen.errors import ModelUnavailableError

    with pytest.raises(ModelUnavailableError, match="no CLIP model in this folder"):
        build_model(_cfg(backbone=f"clip:{tmp_path}"))
    with pytest.raises(ConfigError, match="zero_shot needs a vision-language backbone"):
        _cfg(backbone="resnet10t", adaptation="zero_shot")


def test_zero_shot_scores_prompts_per_class(tiny_clip: Path) -> None:
    from synthgen.train.clip import ZeroShotClip

    net = build_model(_cfg(backbone=f"clip:{tiny_clip}", adaptation="zero_shot"))
    assert isinstance(net, ZeroShotClip) and count_parameters(net)[0] == 0
    assert net.tasks == ["age", "expression", "gender"]
    out = net(_batch(3)[0])
    assert {t: o.shape[1] for t, o in out.items()} == {t: TASK_SPECS[t].out_dim for t in net.tasks}
    # the age regression output is the expected age under the group probabilities
    probs = out["age"][:, 1:].softmax(-1)
    assert torch.allclose(out["age"][:, 0], (probs * net.age_mid).sum(-1), atol=1e-6)
    # class scores are cosine similarities with the class's text embedding, times CLIP's scale
    assert torch.allclose(net.text_gender.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_zero_shot_run_gives_the_same_evaluation_as_training(tiny_clip: Path, tmp_path: Path) -> None:
    from synthgen.paths import Layout
    from synthgen.stages import run_train
    from synthgen.train.toydata import write_toy_dataset

    params = parse_params({
        "data_dir": str(tmp_path / "data"), "dataset": {"name": "toy", "version": "v1"},
        "train": {"backbone": f"clip:{tiny_clip}", "adaptation": "zero_shot", "image_size": 32, "workers": 0,
                  "eval_splits": ["test"], "ood": None, "threads": 1}})
    write_toy_dataset(Layout.from_params(params).version_dir, n={"train": 8, "test": 12}, size=32, reject_every=0)
    r = run_train(params, progress=False)
    assert r.steps == 0 and r.metrics["train.trainable_params"] == 0
    assert r.metrics["test.n"] == 12 and r.metrics["test.expression.n"] == 12
    for key in ("test.expression.balanced_accuracy", "test.age.mae_years", "test.gender.accuracy"):
        assert key in r.metrics
    assert "test.gaze.n" not in r.metrics  # no prompts for gaze: not evaluated rather than a fake number
    assert (r.out_dir / "model_card.md").is_file()


def test_train_stage_reads_real_rows_only_through_the_door() -> None:
    """train/ never imports the real stage: `train.ood: demo` is resolved by synthgen.stages."""
    from synthgen.train.runner import _resolve_ood

    src = Path(__file__).resolve().parents[1] / "synthgen" / "train"
    for f in src.glob("*.py"):
        assert "synthgen.real" not in f.read_text(), f
    note = _resolve_ood(_cfg(ood="demo"), None)
    assert note.path is None and "not provided" in note.note

"""``run_train``: train the multi-task model on a published dataset version and evaluate it.

Outputs, all under ``Layout.models_dir / <version>`` and all written atomically:
``model.safetensors`` (weights + rebuild config), ``model_card.md``, ``metrics.json`` (flat, a
DVC metric), ``train_log.csv`` (per step) and ``epoch_log.csv`` (per epoch; DVC plots), and
``checkpoints/last.safetensors`` (resume state).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthgen.errors import ConfigError, DataError
from synthgen.io import stable_hash, write_json_atomic, write_text_atomic
from synthgen.paths import Layout
from synthgen.train.card import render_card
from synthgen.train.checkpoint import TrainState, load_checkpoint, peek_checkpoint, save_checkpoint, save_model
from synthgen.train.config import TrainParams, TrainRun
from synthgen.train.data import (
    RowGroupStream,
    RowIndex,
    build_index,
    easy_mask,
    make_loader,
    plan_epoch,
    require_labels,
    require_rows,
    sampling_weights,
)
from synthgen.train.losses import MultiTaskLoss, split_output
from synthgen.train.metrics import task_metrics
from synthgen.train.model import MultiTaskNet, build_model, count_parameters
from synthgen.train.tasks import REG_SCALE, REG_SHIFT, TASK_SPECS

log = logging.getLogger("synthgen.train")

# Fields that change how a run is carried out or evaluated, not what the weights become up to
# the current epoch: a checkpoint made under other values of these can still be resumed.
_RESUMABLE_FIELDS = {"epochs", "max_steps", "workers", "prefetch", "resume", "eval_splits", "ood",
                     "ood_labels", "eval_batch_size", "log_every"}
STEP_FIELDS = ["epoch", "step", "loss", "lr", "data_s", "compute_s", "images"]


@dataclass
class TrainResult:
    out_dir: Path
    metrics: dict[str, float]
    model_path: Path
    epochs: int
    steps: int
    resumed_from_epoch: int | None = None
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        keys = [k for k in sorted(self.metrics) if not k.endswith(".n")]
        body = "\n".join(f"  {k} = {self.metrics[k]:.4g}" for k in keys)
        return f"model: {self.model_path} ({self.epochs} epochs, {self.steps} steps)\n{body}"


# ----------------------------------------------------------------------------------------------
def _sources(labels: Any, tasks: list[str]) -> dict[str, str]:
    return {t: labels.of(t) for t in tasks}


def _accelerator(cfg: TrainParams) -> Any:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    cuda = torch.cuda.is_available()
    mp = cfg.mixed_precision
    if mp == "auto":
        mp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "no"
    return Accelerator(
        cpu=not cuda,
        mixed_precision=mp,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def _optimizer(net: MultiTaskNet, loss: MultiTaskLoss, cfg: TrainParams) -> torch.optim.Optimizer:
    bb = [p for p in net.backbone.parameters() if p.requires_grad]
    heads = [p for p in net.heads.parameters() if p.requires_grad]
    groups = [
        {"params": bb, "lr": cfg.lr, "base_lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": heads, "lr": cfg.lr * cfg.head_lr_mult, "base_lr": cfg.lr * cfg.head_lr_mult,
         "weight_decay": cfg.weight_decay},
        {"params": [loss.log_vars], "lr": cfg.lr * cfg.head_lr_mult,
         "base_lr": cfg.lr * cfg.head_lr_mult, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up then cosine to 5%: stateless, so a resumed run continues the same curve."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def _read_csv(path: Path, max_step: int, key: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if float(r.get(key) or 0) <= max_step]


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("[bold]train[/] {task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[info]}"), disable=not enabled)


# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def predict(net: torch.nn.Module, index: RowIndex, cfg: TrainParams, device: torch.device,
            loss_fn: MultiTaskLoss | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Run the model over every row of ``index``: (pred_reg, pred_cls, reg, cls, mean loss).

    Predictions are in degrees/years; regression columns of tasks the model lacks stay NaN.
    """
    was_training = net.training
    net.eval()
    units = plan_epoch(index, np.arange(len(index)), rng=None)
    stream = RowGroupStream(index.files, units, cfg.image_size)
    loader = make_loader(stream, cfg.eval_batch_size, cfg.workers, cfg.prefetch, 0)
    shift, scale = torch.from_numpy(REG_SHIFT), torch.from_numpy(REG_SCALE)
    preds_r, preds_c, regs, clss, losses, weights = [], [], [], [], [], []
    for images, reg, cls in loader:
        out = net(images.to(device))
        pr = torch.full((len(images), 6), float("nan"))
        pc = torch.full((len(images), 3), -1, dtype=torch.long)
        for t, o in out.items():
            r, logits = split_output(t, o.float().cpu())
            spec = TASK_SPECS[t]
            idx = list(spec.reg)
            if idx:
                pr[:, idx] = r * scale[idx] + shift[idx]
            for c, lg in zip(spec.cls, logits):
                pc[:, c] = lg.argmax(1)
        if loss_fn is not None:
            total, _ = loss_fn(out, reg.to(device), cls.to(device))
            if total is not None:
                losses.append(float(total))
                weights.append(len(images))
        preds_r.append(pr.numpy())
        preds_c.append(pc.numpy())
        regs.append(reg.numpy())
        clss.append(cls.numpy())
    net.train(was_training)
    if not regs:
        empty_r, empty_c = np.zeros((0, 6), np.float32), np.zeros((0, 3), np.int64)
        return empty_r, empty_c, empty_r, empty_c, float("nan")
    mean_loss = float(np.average(losses, weights=weights)) if losses else float("nan")
    return (np.concatenate(preds_r), np.concatenate(preds_c), np.concatenate(regs),
            np.concatenate(clss), mean_loss)


def _resolve_ood(params: TrainRun, cfg: TrainParams, progress: bool) -> tuple[Path | None, str]:
    """Where the real evaluation set is, and a note for the card. 'demo' builds it on demand."""
    if cfg.ood is None:
        return None, "none (train.ood is null)"
    if cfg.ood == "demo":
        try:
            from synthgen.real.demo import build_demo_reference
        except ImportError as err:
            log.warning("out-of-distribution evaluation skipped: the demo real set is unavailable (%s)", err)
            return None, f"skipped: demo real set unavailable ({err})"
        path = Path(build_demo_reference(params, out_dir=None, progress=progress))
        return path, f"demo real faces (`{path}`)"
    path = Path(cfg.ood).expanduser()
    return path, f"`{path}`"


def _check_ood_path(cfg: TrainParams) -> None:
    """A user-given real set must exist before hours of training, not after."""
    if cfg.ood not in (None, "demo") and not Path(cfg.ood).expanduser().exists():
        raise DataError("out-of-distribution set not found", where=str(cfg.ood),
                        fix="set train.ood to a Parquet file/folder in the row contract, 'demo', or null")


# ----------------------------------------------------------------------------------------------
def run_train(params: TrainRun, progress: bool = True) -> TrainResult:
    """Train on ``Layout.from_params(params).version_dir``; write to ``models_dir/<version>``."""
    cfg = params.train
    layout = Layout.from_params(params)
    root = layout.version_dir
    out_dir = layout.models_dir / layout.version
    _check_ood_path(cfg)
    sources = _sources(cfg.labels, cfg.tasks)

    index = build_index(root, sources, cfg.tasks)
    train_idx = index.subset(index.split == "train")
    require_rows(train_idx, root, "train")
    require_labels(train_idx, cfg.tasks, sources, root)
    eval_sets = {s: index.subset(index.split == s) for s in cfg.eval_splits}

    accel = _accelerator(cfg)
    if accel.device.type == "cpu":
        import os

        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) - cfg.workers))
    device = accel.device
    torch.manual_seed(params.seed)
    net = build_model(cfg)
    loss_fn = MultiTaskLoss(cfg.tasks, cfg.loss.weighting, cfg.loss.task_weights)
    optimizer = _optimizer(net, loss_fn, cfg)
    trainable, total_params = count_parameters(net)
    if trainable == 0:
        raise ConfigError("no parameter would be trained", where="train.adaptation",
                          fix="use linear, partial, lora or full")

    fingerprint = {
        "train": cfg.model_dump(mode="json", exclude=_RESUMABLE_FIELDS),
        "seed": params.seed,
        "version": layout.version,
        "files": [(str(p.relative_to(root)) if p.is_relative_to(root) else str(p), p.stat().st_size)
                  for p in index.files],
    }
    config_hash = stable_hash(fingerprint)
    ckpt = out_dir / "checkpoints" / "last.safetensors"
    state = TrainState(0, 0, config_hash)
    resumed: int | None = None
    if cfg.resume and ckpt.exists():
        if peek_checkpoint(ckpt).config_hash == config_hash:
            state = load_checkpoint(ckpt, net, loss_fn, optimizer)
            resumed = state.epoch
            log.info("resuming from %s (epoch %d, step %d)", ckpt, state.epoch, state.step)
        else:
            log.info("checkpoint %s was made with other params or data; training from scratch", ckpt)
    net, optimizer = accel.prepare(net, optimizer)
    loss_fn.to(device)

    step_rows = _read_csv(out_dir / "train_log.csv", state.step, "step") if resumed is not None else []
    epoch_rows = _read_csv(out_dir / "epoch_log.csv", state.epoch, "epoch") if resumed is not None else []
    all_train = np.arange(len(train_idx))
    base_w = sampling_weights(train_idx, cfg.balance) if cfg.balance else None
    easy = (easy_mask(train_idx, cfg.curriculum.max_gaze_deg, cfg.curriculum.max_head_deg,
                      cfg.curriculum.synthetic_first) if cfg.curriculum.enabled else None)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    total_steps = max(1, steps_per_epoch * cfg.epochs)
    rank, world = accel.process_index, accel.num_processes
    timings = {"data_s": 0.0, "compute_s": 0.0, "images": 0.0}

    def epoch_batches(e: int) -> tuple[RowGroupStream, Iterator[Any]]:
        """The batch iterator of epoch ``e``; its plan depends on (seed, e) alone, never on training."""
        rng = np.random.default_rng([params.seed, e])
        rows = all_train
        if easy is not None and e < cfg.curriculum.warmup_epochs and easy.any():
            rows = all_train[easy]
        if base_w is not None:
            p = base_w[rows] / base_w[rows].sum()
            rows = rng.choice(rows, size=len(rows), replace=True, p=p)
        stream = RowGroupStream(train_idx.files, plan_epoch(train_idx, rows, rng), cfg.image_size, rank, world)
        return stream, iter(make_loader(stream, cfg.batch_size, cfg.workers, cfg.prefetch, params.seed + e))

    step, epoch = state.step, state.epoch
    stop = False
    upcoming = epoch_batches(epoch) if epoch < cfg.epochs else None
    with _progress(progress and accel.is_main_process) as bar:
        task_id = bar.add_task("", total=steps_per_epoch, info="")
        while epoch < cfg.epochs and not stop:
            assert upcoming is not None
            stream, it = upcoming
            # Start the next epoch's loader now: its workers start and read their first batches
            # while this epoch computes, instead of stalling the first step of every epoch
            # (about 0.8 s each on 2 cores; 30 % of step time on a 100-row dataset).
            upcoming = epoch_batches(epoch + 1) if epoch + 1 < cfg.epochs else None
            net.train()
            if cfg.adaptation == "linear":
                accel.unwrap_model(net).backbone.eval()  # frozen: keep BatchNorm statistics as loaded
            bar.reset(task_id, total=math.ceil(len(stream) / cfg.batch_size),
                      description=f"epoch {epoch + 1}/{cfg.epochs}")
            while True:
                t0 = time.perf_counter()
                try:
                    images, reg, cls = next(it)
                except StopIteration:
                    break
                t1 = time.perf_counter()
                images, reg, cls = images.to(device), reg.to(device), cls.to(device)
                factor = _lr_factor(step, cfg.warmup_steps, total_steps)
                for g in optimizer.param_groups:
                    g["lr"] = g["base_lr"] * factor
                with accel.autocast():
                    outputs = net(images)
                loss, parts = loss_fn(outputs, reg, cls)
                if loss is None:  # no target of any task in this batch
                    continue
                optimizer.zero_grad(set_to_none=True)
                accel.backward(loss)
                if cfg.grad_clip > 0:
                    accel.clip_grad_norm_(list(net.parameters()) + [loss_fn.log_vars], cfg.grad_clip)
                optimizer.step()
                t2 = time.perf_counter()
                step += 1
                timings["data_s"] += t1 - t0
                timings["compute_s"] += t2 - t1
                timings["images"] += len(images)
                loss_value = float(loss.detach())
                if step % cfg.log_every == 0:
                    step_rows.append({"epoch": epoch + 1, "step": step, "loss": loss_value, "lr": factor * cfg.lr,
                                      "data_s": round(t1 - t0, 5), "compute_s": round(t2 - t1, 5),
                                      "images": len(images), **{f"loss_{k}": v for k, v in parts.items()}})
                bar.update(task_id, advance=1, info=f"loss {loss_value:.3f}")
                if cfg.max_steps and step >= cfg.max_steps:
                    stop = True
                    break
            epoch += 1
            val_loss = float("nan")
            if "val" in eval_sets and len(eval_sets["val"]) and accel.is_main_process:
                val_loss = predict(accel.unwrap_model(net), eval_sets["val"], cfg, device, loss_fn)[4]
            train_losses = [r["loss"] for r in step_rows if int(r["epoch"]) == epoch]
            epoch_rows.append({"epoch": epoch, "step": step,
                               "train_loss": float(np.mean([float(x) for x in train_losses])) if train_losses else float("nan"),
                               "val_loss": val_loss})
            if accel.is_main_process:
                save_checkpoint(ckpt, accel.unwrap_model(net), loss_fn, optimizer, TrainState(epoch, step, config_hash))
                _write_logs(out_dir, step_rows, epoch_rows, cfg.tasks)

    it = upcoming = None  # a run cut short by max_steps: its loaders' workers shut down here
    model = accel.unwrap_model(net)
    metrics: dict[str, float] = {}
    rows_used = {"train": len(train_idx)}
    ood_note = "not evaluated"
    if accel.is_main_process:
        for split, sub in eval_sets.items():
            rows_used[split] = len(sub)
            metrics[f"{split}.n"] = len(sub)
            if len(sub):
                pr, pc, reg, cls, lval = predict(model, sub, cfg, device, loss_fn)
                metrics.update(task_metrics(split, cfg.tasks, pr, pc, reg, cls))
                metrics[f"{split}.loss"] = lval
        ood_path, ood_note = _resolve_ood(params, cfg, progress)
        metrics["ood.available"] = int(ood_path is not None)
        if ood_path is not None:
            ood_idx = build_index(ood_path, _sources(cfg.ood_labels, cfg.tasks), cfg.tasks,
                                  require_accepted=False, what="out-of-distribution set")
            rows_used["ood"] = len(ood_idx)
            metrics["ood.n"] = len(ood_idx)
            if len(ood_idx):
                pr, pc, reg, cls, _ = predict(model, ood_idx, cfg, device)
                metrics.update(task_metrics("ood", cfg.tasks, pr, pc, reg, cls))
        if timings["images"]:
            busy = timings["data_s"] + timings["compute_s"]
            metrics["train.images_per_s"] = timings["images"] / busy
            metrics["train.data_share"] = timings["data_s"] / busy
        metrics = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}

        from synthgen import __version__

        rebuild = {"train": json.dumps(cfg.model_dump(mode="json")), "dataset": layout.name,
                   "version": layout.version, "synthgen": __version__}
        model_path = save_model(out_dir / "model.safetensors", model, rebuild)
        write_json_atomic(out_dir / "metrics.json", metrics)
        _write_logs(out_dir, step_rows, epoch_rows, cfg.tasks)
        # A copy at a fixed path outside the model folder: DVC metrics/plots cannot name a
        # folder that depends on the resolved version, nor sit inside another output.
        report_dir = layout.reports_dir / "train"
        write_json_atomic(report_dir / "metrics.json", metrics)
        _write_logs(report_dir, step_rows, epoch_rows, cfg.tasks)
        card = render_card(
            dataset=layout.name, version=layout.version, data_path=str(root),
            config=cfg.model_dump(mode="json"), metrics=metrics, rows=rows_used,
            params_trainable=trainable, params_total=total_params, task_weights=loss_fn.weights(),
            ood_note=ood_note, epochs=epoch, steps=step, synthgen_version=__version__,
        )
        write_text_atomic(out_dir / "model_card.md", card)
    else:
        model_path = out_dir / "model.safetensors"
    return TrainResult(out_dir, metrics, model_path, epoch, step, resumed, timings)


def _write_logs(out_dir: Path, step_rows: list[dict[str, Any]], epoch_rows: list[dict[str, Any]],
                tasks: list[str]) -> None:
    write_text_atomic(out_dir / "train_log.csv", _csv(step_rows, STEP_FIELDS + [f"loss_{t}" for t in tasks]))
    write_text_atomic(out_dir / "epoch_log.csv", _csv(epoch_rows, ["epoch", "step", "train_loss", "val_loss"]))


def load_model(path: str | Path) -> MultiTaskNet:
    """Rebuild a trained network from ``model.safetensors`` (random init, then its weights)."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.exists():
        raise DataError("model file not found", where=str(path), fix="run `synthgen train` first")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    cfg = TrainParams.model_validate(json.loads(meta["train"]) | {"weights": None, "pretrained": False})
    net = build_model(cfg)
    net.load_state_dict(load_file(str(path)))
    return net.eval()

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
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthgen.errors import ConfigError, DataError
from synthgen.io import stable_hash, write_json_atomic, write_text_atomic
from synthgen.paths import Layout
from synthgen.reference import Reference
from synthgen.train.card import render_card
from synthgen.train.checkpoint import TrainState, load_checkpoint, peek_checkpoint, save_checkpoint, save_model
from synthgen.train.config import TrainParams, TrainRun
from synthgen.train.data import (
    RowGroupStream,
    RowIndex,
    build_index,
    easy_mask,
    limit_rows,
    make_loader,
    plan_epoch,
    require_labels,
    require_rows,
    sampling_weights,
)
from synthgen.train.losses import MultiTaskLoss, split_output
from synthgen.train.metrics import task_metrics
from synthgen.train.model import build_model, count_parameters
from synthgen.train.tasks import N_CLS, N_REG, REG_SCALE, REG_SHIFT, TASK_SPECS

log = logging.getLogger(__name__)

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
def _sources(labels: Any, tasks: Sequence[str]) -> dict[str, str]:
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


def _optimizer(net: Any, loss: MultiTaskLoss, cfg: TrainParams) -> torch.optim.Optimizer:
    bb = [p for p in net.backbone.parameters() if p.requires_grad]
    heads = [p for p in net.heads.parameters() if p.requires_grad]
    groups = [
        {"params": bb, "lr": cfg.lr, "base_lr": cfg.lr, "weight_decay": cfg.weight_decay},
        {"params": heads, "lr": cfg.lr * cfg.head_lr_mult, "base_lr": cfg.lr * cfg.head_lr_mult,
         "weight_decay": cfg.weight_decay},
        {"params": [loss.log_vars], "lr": cfg.lr * cfg.head_lr_mult,
         "base_lr": cfg.lr * cfg.head_lr_mult, "weight_decay": 0.0},
    ]
    adapters = net.adapter_parameters()
    if adapters:  # prompt tokens and task maps learn at the backbone's rate, without weight decay
        groups.append({"params": adapters, "lr": cfg.lr, "base_lr": cfg.lr, "weight_decay": 0.0})
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
@dataclass
class Predictions:
    """A model's outputs over a row index, next to the targets: the input of every metric.

    ``pred_reg``/``reg``: [n, 6] degrees/years (NaN = not predicted / no label);
    ``pred_cls``/``cls``: [n, 4] class indices (-1 likewise); ``loss``: mean loss (NaN if not asked).
    """

    pred_reg: np.ndarray
    pred_cls: np.ndarray
    reg: np.ndarray
    cls: np.ndarray
    loss: float = float("nan")

    def __len__(self) -> int:
        return len(self.reg)

    def metrics(self, prefix: str, tasks: Sequence[str]) -> dict[str, float]:
        return task_metrics(prefix, tasks, self.pred_reg, self.pred_cls, self.reg, self.cls)


def _decode_outputs(out: dict[str, torch.Tensor], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Head outputs -> (regression in degrees/years [n, 6], argmax classes [n, 4])."""
    shift, scale = torch.from_numpy(REG_SHIFT), torch.from_numpy(REG_SCALE)
    pr = torch.full((n, N_REG), float("nan"))
    pc = torch.full((n, N_CLS), -1, dtype=torch.long)
    for t, o in out.items():
        r, logits = split_output(t, o.float().cpu())
        spec = TASK_SPECS[t]
        idx = list(spec.reg)
        if idx:
            pr[:, idx] = r * scale[idx] + shift[idx]
        for c, lg in zip(spec.cls, logits, strict=True):
            pc[:, c] = lg.argmax(1)
    return pr.numpy(), pc.numpy()


@torch.no_grad()
def predict(net: torch.nn.Module, index: RowIndex, cfg: TrainParams, device: torch.device,
            loss_fn: MultiTaskLoss | None = None) -> Predictions:
    """Run the model over every row of ``index``; regression columns of tasks the model lacks stay NaN."""
    was_training = net.training
    net.eval()
    units = plan_epoch(index, np.arange(len(index)), rng=None)
    stream = RowGroupStream(index.files, units, cfg.image_size)
    loader = make_loader(stream, cfg.eval_batch_size, cfg.workers, cfg.prefetch, 0)
    preds_r, preds_c, regs, clss, losses, weights = [], [], [], [], [], []
    for images, reg, cls in loader:
        out = net(images.to(device))
        pr, pc = _decode_outputs(out, len(images))
        if loss_fn is not None:
            total, _ = loss_fn(out, reg.to(device), cls.to(device))
            if total is not None:
                losses.append(float(total))
                weights.append(len(images))
        preds_r.append(pr)
        preds_c.append(pc)
        regs.append(reg.numpy())
        clss.append(cls.numpy())
    net.train(was_training)
    if not regs:
        empty_r, empty_c = np.zeros((0, N_REG), np.float32), np.zeros((0, N_CLS), np.int64)
        return Predictions(empty_r, empty_c, empty_r, empty_c)
    mean_loss = float(np.average(losses, weights=weights)) if losses else float("nan")
    return Predictions(np.concatenate(preds_r), np.concatenate(preds_c), np.concatenate(regs),
                       np.concatenate(clss), mean_loss)


@dataclass(frozen=True)
class OodSet:
    """The real (out-of-distribution) evaluation set of a run: where (None = not evaluated) and a
    note for the model card."""

    path: Path | None
    note: str


def _resolve_ood(cfg: TrainParams, given: Reference | None) -> OodSet:
    """The real set handed in by the stage door, else ``train.ood`` read as a path.

    The train stage never builds a real set itself: ``synthgen.stages.run_train`` turns
    ``train.ood: demo`` into a :class:`~synthgen.reference.Reference` (through the ``real`` stage).
    """
    if given is not None:
        kind = "demo real faces" if given.demo else "real set"
        return OodSet(given.path, f"{kind} (`{given.name}`)")
    if cfg.ood is None:
        return OodSet(None, "none (train.ood is null)")
    if cfg.ood == "demo":
        log.warning("out-of-distribution evaluation skipped: train.ood is 'demo' but no demo set was handed "
                    "in (run training through synthgen.stages.run_train or `synthgen train`)")
        return OodSet(None, "skipped: demo real set not provided")
    path = Path(cfg.ood).expanduser()
    return OodSet(path, f"`{path}`")


def _check_ood_path(cfg: TrainParams) -> None:
    """A user-given real set must exist before hours of training, not after."""
    if cfg.ood not in (None, "demo") and not Path(cfg.ood).expanduser().exists():
        raise DataError("out-of-distribution set not found", where=str(cfg.ood),
                        fix="set train.ood to a Parquet file/folder in the row contract, 'demo', or null")


# ----------------------------------------------------------------------------------------------
# Few evaluation rows make metrics noise: below this, the log and the card say so.
MIN_EVAL_ROWS = 50


@dataclass
class TrainData:
    """What a run reads: the dataset's training rows and its evaluation sets."""

    root: Path
    index: RowIndex
    train: RowIndex
    evals: dict[str, RowIndex]


def load_train_data(params: TrainRun) -> TrainData:
    """Index the published version, check that training is possible, pick the training rows."""
    cfg = params.train
    root = Layout.from_params(params).version_dir
    sources = _sources(cfg.labels, cfg.tasks)
    index = build_index(root, sources, cfg.tasks)
    train_idx = index.subset(index.split == "train")
    require_rows(train_idx, root, "train")
    require_labels(train_idx, cfg.tasks, sources, root)
    train_idx = limit_rows(train_idx, cfg.train_rows, params.seed)
    evals = {str(s): index.subset(index.split == s) for s in cfg.eval_splits}
    for s, sub in evals.items():
        if 0 < len(sub) < MIN_EVAL_ROWS:
            log.warning("only %d accepted rows in split=%s: its metrics will be noisy (generate more "
                        "samples or give the split a larger share in plan.splits)", len(sub), s)
    return TrainData(root, index, train_idx, evals)


@dataclass
class Session:
    """Model, loss, optimiser and accelerator of one run, with where it resumes from."""

    cfg: TrainParams
    accel: Any
    net: torch.nn.Module
    loss_fn: MultiTaskLoss
    optimizer: torch.optim.Optimizer | None
    trainable: int
    total_params: int
    config_hash: str
    ckpt: Path
    state: TrainState
    resumed: int | None = None

    @property
    def device(self) -> torch.device:
        return self.accel.device

    def model(self) -> Any:
        return self.accel.unwrap_model(self.net)


def _fingerprint(params: TrainRun, data: TrainData, version: str) -> str:
    root = data.root
    return stable_hash({
        "train": params.train.model_dump(mode="json", exclude=_RESUMABLE_FIELDS),
        "seed": params.seed,
        "version": version,
        "files": [(str(p.relative_to(root)) if p.is_relative_to(root) else str(p), p.stat().st_size)
                  for p in data.index.files],
    })


def start_session(params: TrainRun, data: TrainData, out_dir: Path, version: str) -> Session:
    """Build the model and optimiser and resume from a matching checkpoint if there is one."""
    cfg = params.train
    zero_shot = cfg.adaptation == "zero_shot"
    config_hash = _fingerprint(params, data, version)
    ckpt = out_dir / "checkpoints" / "last.safetensors"
    # Read the checkpoint's header before building anything: a corrupt one fails at once.
    resume = not zero_shot and cfg.resume and ckpt.exists() and peek_checkpoint(ckpt).config_hash == config_hash
    if not resume and not zero_shot and cfg.resume and ckpt.exists():
        log.info("checkpoint %s was made with other params or data; training from scratch", ckpt)
    accel = _accelerator(cfg)
    if accel.device.type == "cpu":
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) - cfg.workers))
    torch.manual_seed(params.seed)
    net = build_model(cfg)
    loss_fn = MultiTaskLoss(cfg.tasks, cfg.loss.weighting, cfg.loss.task_weights)
    trainable, total_params = count_parameters(net)
    if trainable == 0 and not zero_shot:
        raise ConfigError("no parameter would be trained", where="train.adaptation",
                          fix="use linear, partial, lora, dora, mtlora, prefix or full")
    optimizer = None if zero_shot else _optimizer(net, loss_fn, cfg)
    session = Session(cfg, accel, net, loss_fn, optimizer, trainable, total_params, config_hash, ckpt,
                      TrainState(0, 0, config_hash))
    if resume and optimizer is not None:
        session.state = load_checkpoint(ckpt, net, loss_fn, optimizer)
        session.resumed = session.state.epoch
        log.info("resuming from %s (epoch %d, step %d)", ckpt, session.state.epoch, session.state.step)
    if optimizer is not None:
        session.net, session.optimizer = accel.prepare(net, optimizer)
    else:
        session.net = net.to(accel.device)
    loss_fn.to(accel.device)
    return session


@dataclass
class Logs:
    """Per-step and per-epoch rows (train_log.csv, epoch_log.csv) and the time split."""

    steps: list[dict[str, Any]]
    epochs: list[dict[str, Any]]
    timings: dict[str, float] = field(default_factory=lambda: {"data_s": 0.0, "compute_s": 0.0, "images": 0.0})


class EpochPlanner:
    """The batch iterator of each epoch; its plan depends on (seed, epoch) alone, never on training."""

    def __init__(self, params: TrainRun, train_idx: RowIndex, rank: int, world: int) -> None:
        cfg = params.train
        self.cfg, self.seed, self.idx, self.rank, self.world = cfg, params.seed, train_idx, rank, world
        self.all_rows = np.arange(len(train_idx))
        self.base_w = sampling_weights(train_idx, cfg.balance) if cfg.balance else None
        cur = cfg.curriculum
        self.easy = (easy_mask(train_idx, cur.max_gaze_deg, cur.max_head_deg, cur.synthetic_first)
                     if cur.enabled else None)

    def rows(self, e: int, rng: np.random.Generator) -> np.ndarray:
        rows = self.all_rows
        if self.easy is not None and e < self.cfg.curriculum.warmup_epochs and self.easy.any():
            rows = self.all_rows[self.easy]
        if self.base_w is not None:
            p = self.base_w[rows] / self.base_w[rows].sum()
            rows = rng.choice(rows, size=len(rows), replace=True, p=p)
        return rows

    def __call__(self, e: int) -> tuple[RowGroupStream, Iterator[Any]]:
        rng = np.random.default_rng([self.seed, e])
        rows = self.rows(e, rng)
        stream = RowGroupStream(self.idx.files, plan_epoch(self.idx, rows, rng), self.cfg.image_size,
                                self.rank, self.world)
        loader = make_loader(stream, self.cfg.batch_size, self.cfg.workers, self.cfg.prefetch, self.seed + e)
        return stream, iter(loader)


def _train_step(s: Session, batch: tuple[torch.Tensor, ...], factor: float) -> tuple[float, dict[str, float]] | None:
    """One optimiser step; None when the batch holds no target of any task."""
    assert s.optimizer is not None
    images, reg, cls = (t.to(s.device) for t in batch)
    for g in s.optimizer.param_groups:
        g["lr"] = g["base_lr"] * factor
    with s.accel.autocast():
        outputs = s.net(images)
    loss, parts = s.loss_fn(outputs, reg, cls)
    if loss is None:
        return None
    s.optimizer.zero_grad(set_to_none=True)
    s.accel.backward(loss)
    if s.cfg.grad_clip > 0:
        s.accel.clip_grad_norm_(list(s.net.parameters()) + [s.loss_fn.log_vars], s.cfg.grad_clip)
    s.optimizer.step()
    return float(loss.detach()), parts


def _run_epoch(s: Session, stream: RowGroupStream, it: Iterator[Any], epoch: int, step: int, total_steps: int,
               logs: Logs, bar: Progress, task_id: Any) -> tuple[int, bool]:
    """Train one epoch; returns the step count after it and whether max_steps was reached."""
    cfg = s.cfg
    s.net.train()
    if cfg.adaptation == "linear":
        s.model().backbone.eval()  # frozen: keep BatchNorm statistics as loaded
    bar.reset(task_id, total=math.ceil(len(stream) / cfg.batch_size), description=f"epoch {epoch + 1}/{cfg.epochs}")
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            return step, False
        t1 = time.perf_counter()
        factor = _lr_factor(step, cfg.warmup_steps, total_steps)
        done = _train_step(s, batch, factor)
        if done is None:  # no target of any task in this batch
            continue
        loss_value, parts = done
        t2 = time.perf_counter()
        step += 1
        n = len(batch[0])
        logs.timings["data_s"] += t1 - t0
        logs.timings["compute_s"] += t2 - t1
        logs.timings["images"] += n
        if step % cfg.log_every == 0:
            logs.steps.append({"epoch": epoch + 1, "step": step, "loss": loss_value, "lr": factor * cfg.lr,
                               "data_s": round(t1 - t0, 5), "compute_s": round(t2 - t1, 5),
                               "images": n, **{f"loss_{k}": v for k, v in parts.items()}})
        bar.update(task_id, advance=1, info=f"loss {loss_value:.3f}")
        if cfg.max_steps and step >= cfg.max_steps:
            return step, True


def train_epochs(params: TrainRun, s: Session, data: TrainData, out_dir: Path, progress: bool) -> tuple[Logs, int, int]:
    """The epoch loop: train, validate, checkpoint and log after every epoch."""
    cfg = s.cfg
    resumed = s.resumed is not None
    logs = Logs(_read_csv(out_dir / "train_log.csv", s.state.step, "step") if resumed else [],
                _read_csv(out_dir / "epoch_log.csv", s.state.epoch, "epoch") if resumed else [])
    step, epoch = s.state.step, s.state.epoch
    if s.optimizer is None:  # zero-shot: nothing to train
        return logs, epoch, step
    steps_per_epoch = math.ceil(len(data.train) / cfg.batch_size)
    total_steps = max(1, steps_per_epoch * cfg.epochs)
    planner = EpochPlanner(params, data.train, s.accel.process_index, s.accel.num_processes)
    stop = False
    it: Iterator[Any] | None = None
    upcoming = planner(epoch) if epoch < cfg.epochs else None
    with _progress(progress and s.accel.is_main_process) as bar:
        task_id = bar.add_task("", total=steps_per_epoch, info="")
        while epoch < cfg.epochs and not stop:
            assert upcoming is not None
            stream, it = upcoming
            # Start the next epoch's loader now: its workers start and read their first batches
            # while this epoch computes, instead of stalling the first step of every epoch
            # (about 0.8 s each on 2 cores; 30 % of step time on a 100-row dataset).
            upcoming = planner(epoch + 1) if epoch + 1 < cfg.epochs else None
            step, stop = _run_epoch(s, stream, it, epoch, step, total_steps, logs, bar, task_id)
            epoch += 1
            _end_epoch(s, data, out_dir, logs, epoch, step)
    it = upcoming = None  # a run cut short by max_steps: its loaders' workers shut down here
    return logs, epoch, step


def _end_epoch(s: Session, data: TrainData, out_dir: Path, logs: Logs, epoch: int, step: int) -> None:
    val_loss = float("nan")
    if "val" in data.evals and len(data.evals["val"]) and s.accel.is_main_process:
        val_loss = predict(s.model(), data.evals["val"], s.cfg, s.device, s.loss_fn).loss
    train_losses = [float(r["loss"]) for r in logs.steps if int(r["epoch"]) == epoch]
    logs.epochs.append({"epoch": epoch, "step": step,
                        "train_loss": float(np.mean(train_losses)) if train_losses else float("nan"),
                        "val_loss": val_loss})
    if s.accel.is_main_process:
        assert s.optimizer is not None
        save_checkpoint(s.ckpt, s.model(), s.loss_fn, s.optimizer, TrainState(epoch, step, s.config_hash))
        _write_logs(out_dir, logs.steps, logs.epochs, s.cfg.tasks)


def evaluate(s: Session, data: TrainData, ood: OodSet) -> tuple[dict[str, float], dict[str, int]]:
    """In-distribution splits and the real set, through the same :func:`predict` and metrics."""
    cfg = s.cfg
    model = s.model()
    tasks = list(getattr(model, "tasks", cfg.tasks))
    metrics: dict[str, float] = {"train.n": len(data.train)}
    rows_used = {"train": len(data.train)}
    for split, sub in data.evals.items():
        rows_used[split] = len(sub)
        metrics[f"{split}.n"] = len(sub)
        if len(sub):
            pred = predict(model, sub, cfg, s.device, s.loss_fn)
            metrics.update(pred.metrics(split, tasks))
            metrics[f"{split}.loss"] = pred.loss
    metrics["ood.available"] = int(ood.path is not None)
    if ood.path is not None:
        ood_idx = build_index(ood.path, _sources(cfg.ood_labels, cfg.tasks), cfg.tasks,
                              require_accepted=False, what="out-of-distribution set")
        rows_used["ood"] = len(ood_idx)
        metrics["ood.n"] = len(ood_idx)
        if len(ood_idx):
            metrics.update(predict(model, ood_idx, cfg, s.device).metrics("ood", tasks))
    return metrics, rows_used


def _write_outputs(params: TrainRun, s: Session, data: TrainData, out_dir: Path, metrics: dict[str, float],
                   rows_used: dict[str, int], logs: Logs, ood: OodSet, epoch: int, step: int) -> Path:
    """model.safetensors, metrics.json, logs and the model card (and the fixed-path DVC copies)."""
    from synthgen import __version__

    cfg = s.cfg
    layout = Layout.from_params(params)
    if s.optimizer is None:  # zero-shot: the model is the CLIP folder itself
        model_path = Path(cfg.backbone.removeprefix("clip:"))
    else:
        rebuild = {"train": json.dumps(cfg.model_dump(mode="json")), "dataset": layout.name,
                   "version": layout.version, "synthgen": __version__}
        model_path = save_model(out_dir / "model.safetensors", s.model(), rebuild)
    write_json_atomic(out_dir / "metrics.json", metrics)
    _write_logs(out_dir, logs.steps, logs.epochs, cfg.tasks)
    # A copy at a fixed path outside the model folder: DVC metrics/plots cannot name a
    # folder that depends on the resolved version, nor sit inside another output.
    report_dir = layout.reports_dir / "train"
    write_json_atomic(report_dir / "metrics.json", metrics)
    _write_logs(report_dir, logs.steps, logs.epochs, cfg.tasks)
    card = render_card(
        dataset=layout.name, version=layout.version, data_path=str(data.root),
        config=cfg.model_dump(mode="json"), metrics=metrics, rows=rows_used,
        params_trainable=s.trainable, params_total=s.total_params, task_weights=s.loss_fn.weights(),
        ood_note=ood.note, epochs=epoch, steps=step, synthgen_version=__version__,
    )
    write_text_atomic(out_dir / "model_card.md", card)
    return model_path


def run_train(params: TrainRun, progress: bool = True, ood: Reference | None = None) -> TrainResult:
    """Train on ``Layout.from_params(params).version_dir``; write to ``models_dir/<version>``.

    ``ood``: the real evaluation set resolved by the stage door (``train.ood: demo`` needs it);
    a path in ``train.ood`` is read directly.
    """
    cfg = params.train
    layout = Layout.from_params(params)
    out_dir = layout.models_dir / layout.version
    _check_ood_path(cfg)
    ood_set = _resolve_ood(cfg, ood)
    data = load_train_data(params)
    session = start_session(params, data, out_dir, layout.version)
    logs, epoch, step = train_epochs(params, session, data, out_dir, progress)
    if not session.accel.is_main_process:
        return TrainResult(out_dir, {}, out_dir / "model.safetensors", epoch, step, session.resumed, logs.timings)
    metrics, rows_used = evaluate(session, data, ood_set)
    tm = logs.timings
    if tm["images"]:
        busy = tm["data_s"] + tm["compute_s"]
        metrics["train.images_per_s"] = tm["images"] / busy
        metrics["train.data_share"] = tm["data_s"] / busy
    metrics["train.trainable_params"] = session.trainable
    metrics = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()}
    model_path = _write_outputs(params, session, data, out_dir, metrics, rows_used, logs, ood_set, epoch, step)
    return TrainResult(out_dir, metrics, model_path, epoch, step, session.resumed, logs.timings)


def _write_logs(out_dir: Path, step_rows: list[dict[str, Any]], epoch_rows: list[dict[str, Any]],
                tasks: Sequence[str]) -> None:
    write_text_atomic(out_dir / "train_log.csv", _csv(step_rows, STEP_FIELDS + [f"loss_{t}" for t in tasks]))
    write_text_atomic(out_dir / "epoch_log.csv", _csv(epoch_rows, ["epoch", "step", "train_loss", "val_loss"]))


def load_model(path: str | Path) -> torch.nn.Module:
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

"""What DVC and git record of a run: small headline metrics and plot images kept in git, and
whether the params a run used are the ones DVC reads.

The stages write their full reports under ``data/`` (git-ignored, cached by DVC). DVC's metrics
and plots live in ``metrics/`` instead, tracked by git: ``dvc metrics diff HEAD`` then compares
real numbers, and a ``git checkout`` brings the matching metrics back with the code. The plots
are PNG images, which ``dvc plots show`` embeds as they are, so the page renders offline
(DVC's Vega plots load their JavaScript from a CDN).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from synthgen.config import Params, load_params
from synthgen.errors import ConfigError
from synthgen.io import write_bytes_atomic, write_json_atomic
from synthgen.paths import Layout, dataset_version
from synthgen.versioning import dvc_root

logger = logging.getLogger(__name__)

METRICS_DIR = Path("metrics")
# Sections of params.yaml that DVC tracks (dvc.yaml `params:`); `record` only steers the flow.
TRACKED = ("seed", "data_dir", "dataset", "plan", "generate", "label", "curate", "publish", "analyze", "train")
# The curate stage's PNG plots that DVC shows (copied from the controllability report).
CURATE_PLOTS = ("requested_vs_measured.png", "expression_confusion.png", "reject_reasons.png")


def _num(value: Any) -> float | int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return round(value, 4) if isinstance(value, float) else value


def _pick(tree: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """``a.b`` paths of a nested dict -> a flat dict of the numbers found (missing ones left out)."""
    out: dict[str, Any] = {}
    for key in keys:
        node: Any = tree
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if _num(node) is not None:
            out[key] = _num(node)
    return out


# The headline numbers: `dvc metrics show` prints one column per key over all files, so each
# stage gives a handful (the full reports under data/ hold the rest).
CURATE_KEYS = ["rows", "acceptance_rate", "gaze_angular.mae", "head_yaw.mae", "age.mae", "expression.accuracy"]
SHIFT_KEYS = ["fd", "kid", "precision", "recall", "domain_auc"]
TRAIN_KEYS = ["test.gaze.angular_error_deg", "test.head_pose.mae_deg", "test.age.mae_years",
              "test.expression.accuracy", "ood.gaze.angular_error_deg"]


def curate_headline(report: dict[str, Any]) -> dict[str, Any]:
    return _pick(report, CURATE_KEYS)


def shift_headline(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: _num(flat[k]) for k in SHIFT_KEYS if _num(flat.get(k)) is not None}


def train_headline(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: _num(flat[k]) for k in TRAIN_KEYS if _num(flat.get(k)) is not None}


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _loss_png(epoch_log: Path) -> bytes | None:
    """Train and validation loss per epoch as a small PNG (what `dvc plots show` displays)."""
    import csv
    import io

    if not epoch_log.is_file():
        return None
    with open(epoch_log, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 3))
    epochs = [int(r["epoch"]) for r in rows]
    for col in ("train_loss", "val_loss"):
        ax.plot(epochs, [float(r[col]) if r.get(col) not in (None, "", "nan") else float("nan") for r in rows],
                marker="o", label=col)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _not_the_projects(params: Params, layout: Layout, root: Path | None) -> str | None:
    """Why this run's metrics are not the DVC project's record (None when they are)."""
    if root is None:
        return "not inside a DVC project"
    if not layout.data_dir.resolve().is_relative_to(root.resolve()):
        return f"data_dir {layout.data_dir} is outside the DVC project {root}"
    if (root / "params.yaml").is_file() and (drift := params_drift(params, root)):
        return f"params differ from {root / 'params.yaml'} ({drift[0]})"
    return None


def export_metrics(params: Params, stage: str, root: Path | None = None) -> list[Path]:
    """Write the stage's headline metrics (and plot images) into ``<root>/metrics/`` for DVC and
    git. Called by the CLI after curate, analyze and train (what ``dvc repro`` runs) and by the flows.

    ``root`` is the DVC project (default: the one the working folder is in, whichever subfolder
    the command runs from: dvc.yaml's ``metrics:`` paths are relative to it). Nothing is written,
    and the reason logged, when these numbers would not be the project's record of what its
    dvc.lock holds (the full reports stay under data/ either way):

    * outside a DVC project: a stray ``metrics/`` wherever a command ran would record nothing;
    * ``data_dir`` outside the project (``--set data_dir=/tmp/x`` from the project folder): the
      numbers describe data the project does not track;
    * params that differ from the project's params.yaml (``--set plan.n=4`` without
      ``--save-params``): dvc.lock is not updated for such a run, so its metrics must not be."""
    layout = Layout.from_params(params)
    root = root or dvc_root()
    why_not = _not_the_projects(params, layout, root)
    if why_not or root is None:
        logger.info("%s: %s headline metrics not exported (reports under %s)", why_not, stage, layout.reports_dir)
        return []
    out = root / METRICS_DIR
    written: list[Path] = []
    if stage == "curate":
        written.append(write_json_atomic(out / "curate.json",
                                         curate_headline(_read_json(layout.reports_dir / "controllability.json"))))
        for name in CURATE_PLOTS:
            src = layout.reports_dir / "controllability" / name
            if src.is_file():
                written.append(write_bytes_atomic(out / "plots" / name, src.read_bytes()))
    elif stage == "analyze":
        written.append(write_json_atomic(out / "shift.json",
                                         shift_headline(_read_json(layout.reports_dir / "metrics.json"))))
    elif stage == "train":
        written.append(write_json_atomic(out / "train.json",
                                         train_headline(_read_json(layout.reports_dir / "train" / "metrics.json"))))
        png = _loss_png(layout.reports_dir / "train" / "epoch_log.csv")
        if png is not None:
            written.append(write_bytes_atomic(out / "plots" / "train_loss.png", png))
    return written


# --- do the params of a run match what DVC reads? ---------------------------------------------


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): tree}


def _comparable(params: Params, base: Path) -> dict[str, Any]:
    """The DVC-tracked params, with the data folder made absolute against ``base`` and the dataset
    version resolved (a run pinned to version v and params.yaml's `auto` that hashes to v agree)."""
    data_dir = params.data_dir if params.data_dir.is_absolute() else base / params.data_dir
    tree = params.model_dump(mode="json", include=set(TRACKED))
    tree["data_dir"] = str(data_dir.resolve())
    tree["dataset"]["version"] = dataset_version(params)
    return _flatten(tree)


def params_drift(params: Params, root: Path) -> list[str]:
    """``key: used X, params.yaml Y`` for each DVC-tracked parameter where the run differs from
    ``<root>/params.yaml`` (empty list = dvc.lock would record what the run really used).

    A relative ``data_dir`` is where it really went for each side: the run's under the working
    folder (where the stages wrote it), params.yaml's under the project root (where DVC runs the
    stages and looks for their outputs). A run from a subfolder thus wrote ``sub/data``, and
    recording it would have committed the root's ``data/`` as this version."""
    try:
        recorded = load_params(root / "params.yaml")
    except ConfigError as err:
        return [f"params.yaml cannot be read ({err.what})"]
    used, dvc = _comparable(params, Path.cwd()), _comparable(recorded, root)
    keys = sorted(set(used) | set(dvc))
    return [f"{k}: used {used.get(k)!r}, params.yaml {dvc.get(k)!r}" for k in keys if used.get(k) != dvc.get(k)]


def save_params(params_path: str | Path, overrides: list[str], root: Path) -> Path:
    """Write the run's params into ``<root>/params.yaml`` (what DVC reads), keeping its comments:
    the run's params file (when it is another one) with the ``--set`` overrides applied."""
    from ruamel.yaml import YAML

    from synthgen.config import parse_override

    yaml = YAML()
    yaml.preserve_quotes = True
    target = root / "params.yaml"
    source = Path(params_path)
    if not source.is_absolute():
        source = Path.cwd() / source
    tree = yaml.load(source.read_text(encoding="utf-8")) if source.is_file() else {}
    tree = tree if tree is not None else {}
    for item in overrides:
        key, value = parse_override(item)
        node = tree
        parts = key.split(".")
        for p in parts[:-1]:
            if p not in node or not isinstance(node[p], dict):
                node[p] = {}
            node = node[p]
        node[parts[-1]] = value
    import io

    buf = io.StringIO()
    yaml.dump(tree, buf)
    load_params_text_check(buf.getvalue(), target)
    if source.resolve() != target.resolve() or overrides:
        write_bytes_atomic(target, buf.getvalue().encode("utf-8"))
    return target


def load_params_text_check(text: str, target: Path) -> None:
    """Refuse to write params that would not load (the run already validated them; this guards
    the round trip through the comment-keeping YAML writer)."""
    import yaml as pyyaml

    from synthgen.config import parse_params

    parse_params(pyyaml.safe_load(text), str(target))


"""The adaptation grid on CPU: backbone x adaptation (x curriculum) on a rendered, labelled,
curated dataset, printed as one table.

Usage::

    python benchmarks/bench_adaptation.py                     # 2,000 renders, small grid, 2 epochs at 64 px
    python benchmarks/bench_adaptation.py --renders 3000      # the figures in docs/training.md
    python benchmarks/bench_adaptation.py --data data/datasets/incabin-faces/version=<v>
    python benchmarks/bench_adaptation.py --clip <folder>     # adds CLIP rows (zero-shot, lora, prefix)

The dataset is made by the stage functions (plan -> generate -> label -> curate -> publish) under
``data/bench-train`` the first time and reused afterwards (a few minutes of CPU for 2,000 renders).
Each row trains the default multi-task model with one (backbone, adaptation, curriculum) and
evaluates it in distribution (test split, requested labels) and out of distribution (the demo real
set, labelled by the offline labellers: model readings, not ground truth). images/s is also given
as a ratio to the first row, run in the same process, so a loaded machine shifts every row alike.
Random initialisation: no pretrained weights are reachable offline, so frozen-backbone modes here
measure cost and machinery, not what the method achieves from a pretrained backbone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "data" / "bench-train"

# (backbone, adaptation, curriculum): the default grid, small enough for ~10 minutes on 2 cores.
CNN, VIT = "resnet10t", "vit_tiny_patch16_224"
GRID: list[tuple[str, str, bool]] = [
    (CNN, "full", False), (CNN, "full", True), (CNN, "linear", False), (CNN, "lora", False),
    (CNN, "dora", False), (CNN, "mtlora", False),
    (VIT, "full", False), (VIT, "linear", False), (VIT, "lora", False), (VIT, "dora", False),
    (VIT, "mtlora", False), (VIT, "prefix", False),
]
COLUMNS = [  # (header, metric key suffix, format)
    ("gaze°", "gaze.angular_error_deg", "{:.1f}"),
    ("head°", "head_pose.mae_deg", "{:.1f}"),
    ("age y", "age.mae_years", "{:.1f}"),
    ("expr bacc", "expression.balanced_accuracy", "{:.2f}"),
    ("gender acc", "gender.accuracy", "{:.2f}"),
]


def render_params(renders: int, seed: int = 0) -> Any:
    """Params of the benchmark dataset: ``renders`` images, 5 per identity, a 70/10/20 split."""
    from synthgen.config import load_params

    return load_params(None, [
        f"seed={seed}", f"data_dir={DATA_DIR}", "dataset.name=renders", f"dataset.version=n{renders}",
        f"plan.n={renders}", f"plan.identities={max(3, renders // 5)}", "plan.shard_size=250",
        "plan.splits.train=0.7", "plan.splits.val=0.1", "plan.splits.test=0.2",
    ])


def ensure_renders(renders: int, progress: bool) -> Any:
    """The published benchmark dataset, made through the stage functions when missing."""
    from synthgen import stages
    from synthgen.paths import Layout

    params = render_params(renders)
    if not Layout.from_params(params).version_dir.exists():
        t = time.perf_counter()
        stages.run_plan(params)
        stages.run_generate(params, progress=progress)
        stages.run_label(params, progress=progress)
        stages.run_curate(params, progress=progress)
        stages.run_publish(params, progress=progress)
        print(f"made {renders} renders in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    return params


def train_params(base: Any, data: Path | None, overrides: list[str]) -> Any:
    """Params for one training run on ``base``'s dataset, or on the published version ``data``."""
    from synthgen.config import load_params

    data_dir, name, version = base.data_dir, base.dataset.name, base.dataset.version
    if data is not None:
        data = data.resolve()
        if not (data.name.startswith("version=") and data.parent.parent.name == "datasets"):
            raise SystemExit(f"--data must be a published version folder <data_dir>/datasets/<name>/version=<v>: {data}")
        data_dir, name, version = data.parents[2], data.parent.name, data.name.removeprefix("version=")
    fixed = [f"data_dir={data_dir}", f"dataset.name={name}", f"dataset.version={version}"]
    return load_params(None, fixed + overrides)


def fmt(metrics: dict[str, float], key: str, spec: str) -> str:
    v = metrics.get(key)
    return "-" if v is None else spec.format(v)


def table(rows: list[tuple[str, dict[str, float]]], ref_ips: float | None) -> str:
    head = ["config", "trainable", "img/s", "x ref"] + [f"ID {h}" for h, _, _ in COLUMNS] + \
           [f"OOD {h}" for h, _, _ in COLUMNS]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, m in rows:
        ips = m.get("train.images_per_s")
        cells = [name, f"{int(m.get('train.trainable_params', 0)):,}", "-" if ips is None else f"{ips:.0f}",
                 "-" if ips is None or not ref_ips else f"{ips / ref_ips:.2f}"]
        cells += [fmt(m, f"test.{k}", s) for _, k, s in COLUMNS]
        cells += [fmt(m, f"ood.{k}", s) for _, k, s in COLUMNS]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renders", type=int, default=2000, help="size of the rendered benchmark dataset")
    ap.add_argument("--data", type=Path, help="use this published version folder instead")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--clip", type=Path, help="a local CLIP folder (save_pretrained): adds zero-shot/lora/prefix rows")
    ap.add_argument("--only", help="comma-separated row names to run (e.g. resnet10t/full)")
    ap.add_argument("--set", action="append", default=[], help="extra params override KEY=VALUE")
    args = ap.parse_args()

    from synthgen import stages

    progress = sys.stderr.isatty()
    base = render_params(args.renders) if args.data else ensure_renders(args.renders, progress)
    grid = list(GRID)
    if args.clip:
        clip = f"clip:{args.clip.resolve()}"
        grid += [(clip, "zero_shot", False), (clip, "lora", False), (clip, "prefix", False)]
    rows: list[tuple[str, dict[str, float]]] = []
    ref_ips: float | None = None
    t_all = time.perf_counter()
    for backbone, mode, curriculum in grid:
        name = f"{'clip' if backbone.startswith('clip:') else backbone}/{mode}" + ("+curriculum" if curriculum else "")
        if args.only and name not in args.only.split(","):
            continue
        params = train_params(base, args.data, [
            f"train.backbone={backbone}", f"train.adaptation={mode}", f"train.curriculum.enabled={curriculum}",
            f"train.epochs={args.epochs}", f"train.image_size={args.image_size}", "train.resume=false",
            "train.eval_splits=[test]", "train.ood=demo", *args.set,
        ])
        t = time.perf_counter()
        result = stages.run_train(params, progress=progress)
        print(f"{name}: {time.perf_counter() - t:.0f} s, {result.steps} steps", file=sys.stderr)
        if ref_ips is None:
            ref_ips = result.metrics.get("train.images_per_s")
        rows.append((name, result.metrics))
        print(table(rows[-1:], ref_ips).splitlines()[-1], file=sys.stderr)  # each row as it comes
    m0 = rows[0][1] if rows else {}
    where = f"{params.data_dir}/datasets/{params.dataset.name}/version={params.dataset.version}"
    print(f"data: {where}; "
          f"train rows {int(m0.get('train.n', 0)) or '?'}, test rows {int(m0.get('test.n', 0))}, "
          f"OOD (demo real, labeller readings) rows {int(m0.get('ood.n', 0))}")
    print(f"training: {args.epochs} epochs at {args.image_size} px, batch 32, random init, CPU threads "
          f"{os.cpu_count()}; grid wall {time.perf_counter() - t_all:.0f} s; x ref = images/s / first row's")
    print(table(rows, ref_ips))


if __name__ == "__main__":
    main()

"""Sim-to-real curve: the default multi-task model trained on N accepted renders, evaluated on real faces.

Usage::

    python benchmarks/bench_sim2real.py                          # N = 500 and 1000 from 5,000 renders
    python benchmarks/bench_sim2real.py --sizes 1000,4000 --renders 18000   # ~32 % accepted, 70 % train
    python benchmarks/bench_sim2real.py --real <Parquet of real rows>   # your own real set

For each N the default ``train:`` config (params.yaml's defaults: resnet18, full fine-tuning, 112 px,
5 epochs, requested labels on the renders) trains on the first N accepted training renders (drawn
with the seed, nested: the 500 are inside the 1000) and is evaluated on

- the rendered test split (in distribution, requested labels: exact), and
- the real reference (``demo`` by default: about 100 real photos shipped inside installed packages)
  against the **offline labellers' readings** of those photos (``meas_*``): head pose MAE, gaze
  angular error, age MAE, expression balanced accuracy and gender accuracy.

The real-side "labels" are model readings, not ground truth: a low error means the trained model
agrees with the labellers on real faces, within the labellers' own error. The demo set is a
demo (grey, low-resolution LFW crops, no in-cabin footage); use ``--real`` with real labelled data
for decisions.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_adaptation import ensure_renders, fmt, render_params, train_params

REAL_COLUMNS = [
    ("head pose MAE °", "head_pose.mae_deg", "{:.1f}"),
    ("gaze error °", "gaze.angular_error_deg", "{:.1f}"),
    ("age MAE y", "age.mae_years", "{:.1f}"),
    ("expression bal. acc", "expression.balanced_accuracy", "{:.3f}"),
    ("gender acc", "gender.accuracy", "{:.3f}"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--renders", type=int, default=5000, help="rendered dataset size (accepted renders are fewer)")
    ap.add_argument("--sizes", default="500,1000", help="training set sizes N (accepted training renders; 0 = all)")
    ap.add_argument("--data", type=Path, help="a published version folder instead of rendering one")
    ap.add_argument("--real", default="demo", help="real reference: demo, or a Parquet file/folder of real rows")
    ap.add_argument("--epochs", type=int, default=None, help="override train.epochs (default: params default)")
    ap.add_argument("--set", action="append", default=[], help="extra params override KEY=VALUE")
    args = ap.parse_args()

    from synthgen import stages

    progress = sys.stderr.isatty()
    base = render_params(args.renders) if args.data else ensure_renders(args.renders, progress)
    sizes = [int(s) for s in args.sizes.split(",")]
    extra = [f"train.epochs={args.epochs}"] if args.epochs else []
    rows = []
    for n in sizes:
        params = train_params(base, args.data, [f"train.train_rows={n}", f"train.ood={args.real}", "train.resume=false",
                                           "train.eval_splits=[test]", *extra, *args.set])
        t = time.perf_counter()
        r = stages.run_train(params, progress=progress)
        wall = time.perf_counter() - t
        rows.append((n, r.metrics, wall))
        print(f"N={n}: trained on {int(r.metrics['train.n'])} rows in {wall:.0f} s; real rows {int(r.metrics.get('ood.n', 0))}; "
              + ", ".join(f"{k}={v:.3g}" for k, v in sorted(r.metrics.items()) if k.startswith("ood.")), file=sys.stderr)

    cfg = params.train
    m0 = rows[0][1]
    print(f"data: {args.data or f'{args.renders} renders ({base.dataset.name} version={base.dataset.version})'}; "
          f"test split {int(m0.get('test.n', 0))} accepted renders; real set '{args.real}' "
          f"{int(m0.get('ood.n', 0))} photos")
    print(f"model: {cfg.backbone}, {cfg.adaptation}, {cfg.image_size} px, {cfg.epochs} epochs, batch {cfg.batch_size}, "
          f"random init. Real-side labels are the labellers' readings (meas_*), not ground truth.")
    head = ["N (asked)", "N (used)", "train s"] + [f"real {h}" for h, _, _ in REAL_COLUMNS] + \
           [f"synthetic test {h}" for h, _, _ in REAL_COLUMNS]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n, m, wall in rows:
        cells = [str(n or "all"), str(int(m["train.n"])), f"{wall:.0f}"]
        cells += [fmt(m, f"ood.{k}", s) + f" (n={int(m.get('ood.' + k.split('.')[0] + '.n', 0))})"
                  for _, k, s in REAL_COLUMNS]
        cells += [fmt(m, f"test.{k}", s) for _, k, s in REAL_COLUMNS]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    from synthgen.native_logs import quiet_native_logs

    quiet_native_logs()  # the face models' native start-up lines, as the CLI drops them unless --verbose
    main()

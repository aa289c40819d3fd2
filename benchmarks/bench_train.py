"""Training throughput of the `train` stage: images/s, and how much of each step waits for data.

Usage::

    python benchmarks/bench_train.py                       # ~300 toy images at 256 px, default config
    python benchmarks/bench_train.py --data data/datasets/incabin-faces/version=v1  # a published version
    python benchmarks/bench_train.py --workers 0 --set train.backbone=resnet10t

Prints images/s, the data-loading share of step time (goal: under 20 %) and the per-step and
per-epoch loss curves (``train_log.csv``/``epoch_log.csv``, the same files DVC plots).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="a published version folder (default: a toy set)")
    ap.add_argument("--rows", type=int, default=300, help="toy training rows")
    ap.add_argument("--size", type=int, default=256, help="toy image side in px")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: params default)")
    ap.add_argument("--set", action="append", default=[], help="train params override KEY=VALUE")
    ap.add_argument("--keep", action="store_true", help="keep the output folder")
    args = ap.parse_args()

    from synthgen.config import load_params
    from synthgen.stages import run_train
    from synthgen.train.toydata import write_toy_dataset

    work = Path(tempfile.mkdtemp(prefix="bench-train-"))
    overrides = [f"data_dir={work / 'data'}", "dataset.name=bench", "dataset.version=bench",
                 f"train.epochs={args.epochs}", "train.ood=null", "train.eval_splits=[]", *args.set]
    if args.workers is not None:
        overrides.append(f"train.workers={args.workers}")
    params = load_params(None, overrides)
    version_dir = work / "data" / "datasets" / "bench" / "version=bench"
    t = time.perf_counter()
    if args.data:
        version_dir.parent.mkdir(parents=True)
        version_dir.symlink_to(args.data.resolve())
    else:
        write_toy_dataset(version_dir, n={"train": args.rows}, size=args.size, seed=0, row_group_size=100,
                          reject_every=0)
    prep = time.perf_counter() - t

    t = time.perf_counter()
    result = run_train(params, progress=sys.stderr.isatty())
    wall = time.perf_counter() - t
    cfg = params.train
    tm = result.timings
    busy = tm["data_s"] + tm["compute_s"]
    print(f"config: backbone={cfg.backbone} image_size={cfg.image_size} batch={cfg.batch_size} "
          f"workers={cfg.workers} threads={cfg.threads or 'auto'} adaptation={cfg.adaptation}")
    print(f"data: {'toy ' + str(args.rows) + ' rows at ' + str(args.size) + ' px' if not args.data else args.data}"
          f" (prepared in {prep:.1f} s)")
    print(f"epochs={result.epochs} steps={result.steps} images={int(tm['images'])} wall={wall:.1f} s "
          f"(incl. model build and start-up)")
    print(f"training images/s: {tm['images'] / busy:.1f}")
    print(f"data-loading share of step time: {100 * tm['data_s'] / busy:.1f} % "
          f"(waiting {tm['data_s']:.2f} s of {busy:.2f} s)")
    print(f"compute per step: {1000 * tm['compute_s'] / max(1, result.steps):.0f} ms")
    with open(result.out_dir / "epoch_log.csv") as fh:
        print("epoch loss curve (epoch_log.csv):")
        for row in csv.DictReader(fh):
            print(f"  epoch {row['epoch']}: train_loss {float(row['train_loss']):.4f}")
    print(f"per-step curve: {result.out_dir / 'train_log.csv'}")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Labelling throughput with the full default labeller stack.

Two figures on the same images: one process labelling one image at a time (models loaded
beforehand, so only labelling is timed), and ``label_rows`` with a process pool of one worker per
core (timed from the call, so worker start-up and model loading count against it).

    .venv/bin/python benchmarks/bench_label.py [--n 48] [--workers 0]
"""

from __future__ import annotations

import argparse
import os
import time

import pyarrow as pa


def render(n: int) -> pa.Table:
    """Procedural renders of the default plan, as the generate stage would store them."""
    from synthgen.config import Params
    from synthgen.contract import image_struct
    from synthgen.generate.base import GENERATORS
    from synthgen.images import encode_png
    from synthgen.plan.planner import plan_specs

    params = Params()
    specs = plan_specs(params.plan.model_copy(update={"n": n}), params.seed)
    gen = GENERATORS.create(params.generate.backend, params.generate)
    rows = []
    for spec, s in zip(specs, gen.generate(specs), strict=True):
        rows.append({"sample_id": spec.sample_id, "image": image_struct(encode_png(s.image), None),
                     "req_camera": spec.camera, "req_seat": spec.seat})
    return pa.Table.from_pylist(rows)


_STARTUP = """
import time
t = time.process_time()
from synthgen.label.base import LABELERS
from synthgen.label.config import LabelParams
import synthgen.label.pipeline
print(f"  import the labelling pipeline   {time.process_time() - t:5.2f} s")
params = LabelParams()
total = time.process_time() - t
for name in params.labelers:
    s = time.process_time()
    LABELERS.create(name, params)
    total += time.process_time() - s
    print(f"  build {name:24s} {time.process_time() - s:5.2f} s")
print(f"  total                           {total:5.2f} s of CPU")
"""


def startup() -> None:
    """A spawned worker's start-up in a fresh interpreter: imports, then each labeller's models."""
    import subprocess
    import sys

    print("start-up of a fresh labelling process (CPU seconds):")
    subprocess.run([sys.executable, "-c", _STARTUP], check=True, stderr=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=48)
    ap.add_argument("--workers", type=int, default=0, help="0 = one per core")
    ap.add_argument("--startup", action="store_true",
                    help="only print what a fresh worker pays before its first image (CPU s per step)")
    args = ap.parse_args()
    if args.startup:
        startup()
        return
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import get_labelers, label_rows

    table = render(args.n)
    workers = args.workers or (os.cpu_count() or 1)
    print(f"{args.n} procedural renders (256x256), {os.cpu_count()} cores, labellers: "
          f"{', '.join(LabelParams().labelers)}")

    seq = LabelParams(workers=1, chunk_size=1)
    get_labelers(seq)  # load the models before timing
    label_rows(table.slice(0, 1), seq, progress=False)
    t, cpu = time.perf_counter(), time.process_time()
    label_rows(table, seq, progress=False)
    t_seq = time.perf_counter() - t
    cores = (time.process_time() - cpu) / t_seq
    print(f"sequential, one process, warm : {args.n / t_seq:6.2f} images/s ({1000 * t_seq / args.n:.0f} ms/image), "
          f"on {cores:.2f} cores (OpenCV/BLAS threads): the ceiling for {workers} processes is about "
          f"{workers / max(cores, 1.0):.2f}x")

    # small work items: the caller and the workers finish together (no long tail on one process)
    par = LabelParams(workers=workers, chunk_size=max(1, args.n // (16 * workers)), min_rows_per_worker=1)
    t = time.perf_counter()
    label_rows(table, par, progress=False)
    t_par = time.perf_counter() - t
    print(f"pool of {workers} (incl. start-up): {args.n / t_par:6.2f} images/s ({1000 * t_par / args.n:.0f} ms/image)")
    print(f"speed-up: {t_seq / t_par:.2f}x")


if __name__ == "__main__":
    main()

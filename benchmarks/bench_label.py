"""Labelling throughput with the full default labeller stack.

Three figures on the same images: one process labelling one image at a time (models loaded
beforehand, so only labelling is timed); ``label_rows`` with a process pool of one worker per
core, timed from the first call (worker start-up and model loading count against it); and a
second ``label_rows`` call, whose workers are already up, as every call after a flow's first
finds them (the workers stay between calls).

    .venv/bin/python benchmarks/bench_label.py [--n 48] [--workers 0]

``--startup`` prints what a fresh worker pays before its first image; ``--contention`` prints each
labeller's warm cost alone and beside a second warm process, which bounds the speed-up that any
scheduling can reach on the machine.
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


def _timed_labelling(args: tuple[bytes, int, object]) -> dict[str, float]:
    """In a fresh process: load the models, label two images untimed, wait for the other process
    (``barrier``), then time decoding and each labeller over the first ``n`` images (seconds)."""
    import cv2
    from threadpoolctl import threadpool_limits

    from synthgen.label import pipeline
    from synthgen.label.base import FaceContext
    from synthgen.label.config import LabelParams

    table_ipc, n, barrier = args
    cv2.setNumThreads(1)  # as a pool worker runs
    threadpool_limits(1)
    items = pipeline._items(pa.ipc.open_stream(table_ipc).read_all())
    labelers = pipeline.get_labelers(LabelParams(workers=1))

    def once(batch: list) -> dict[str, float]:
        spent: dict[str, float] = {}
        for img, row, where in batch:
            t = time.perf_counter()
            rgb = pipeline.decode_rgb(pipeline.image_bytes(img, where), where=where)
            spent["decode"] = spent.get("decode", 0.0) + time.perf_counter() - t
            ctx = FaceContext(image=rgb, row=row)
            for lab in labelers:
                t = time.perf_counter()
                lab.label(ctx)
                spent[lab.name] = spent.get(lab.name, 0.0) + time.perf_counter() - t
        return spent

    once(items[:2])
    if barrier is not None:
        barrier.wait()  # type: ignore[attr-defined]
    return once(items[:n])


def contention(table: pa.Table) -> None:
    """Warm, single-threaded labelling alone and with a second such process labelling at the same
    time (no start-up in either): the slowdown per labeller is what two cores cost each other."""
    import multiprocessing

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    ipc, n = sink.getvalue().to_pybytes(), table.num_rows
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        alone = pool.map(_timed_labelling, [(ipc, n, None)])[0]
    with ctx.Manager() as manager:
        barrier = manager.Barrier(2)
        with ctx.Pool(2) as pool:
            pair = pool.map(_timed_labelling, [(ipc, n, barrier)] * 2)
    print("warm, one thread per process: ms/image alone vs with a second process labelling at once")
    for key, sec in alone.items():
        both = (pair[0][key] + pair[1][key]) / 2
        print(f"  {key:20s} {1000 * sec / n:6.1f}  {1000 * both / n:6.1f}  x{both / max(sec, 1e-9):.2f}")
    a, b = sum(alone.values()), (sum(pair[0].values()) + sum(pair[1].values())) / 2
    print(f"  {'total':20s} {1000 * a / n:6.1f}  {1000 * b / n:6.1f}  x{b / a:.3f}: with no start-up at all, "
          f"2 processes reach {2 * a / b:.2f}x one")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=48, help="procedural renders to label (the README quotes 160)")
    ap.add_argument("--workers", type=int, default=0, help="0 = one per core")
    ap.add_argument("--startup", action="store_true",
                    help="only print what a fresh worker pays before its first image (CPU s per step)")
    ap.add_argument("--contention", action="store_true",
                    help="only print each labeller's cost alone and beside a second warm process")
    args = ap.parse_args()
    if args.startup:
        startup()
        return
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import get_labelers, label_rows

    table = render(args.n)
    if args.contention:
        contention(table)
        return
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
    t = time.perf_counter()
    label_rows(table, par, progress=False)  # the workers of the first call are still up
    t_warm = time.perf_counter() - t
    print(f"pool of {workers}, second call (workers already up): {args.n / t_warm:6.2f} images/s "
          f"({1000 * t_warm / args.n:.0f} ms/image)")
    print(f"speed-up, second call: {t_seq / t_warm:.2f}x")


if __name__ == "__main__":
    main()

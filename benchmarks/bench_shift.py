"""FD, KID and PRDC: synthgen.analyze vs the reference packages on the same features.

Prints time, peak memory (tracemalloc: numpy buffers are traced) and the values of both sides.
FD and KID take well under a few seconds at 50k, where one cold run (first-touch page faults,
thread-pool start) moves the ratio by 20-30 %: each side is run once traced (value, peak memory),
then timed --repeat times untraced, and the median is printed. PRDC runs take tens of seconds and
are timed once.
The reference PRDC holds n x n float64 distance matrices (two at its peak: one plus its partition
copy, then the real-synthetic one plus boolean masks), so it runs on a smaller n (--prdc-ref-n,
20k: ~7 GiB; much beyond ~30k no longer fits a 24 GiB machine shared with other work); ours runs at
that n for the comparison and at the full n to show bounded memory. The load average is printed
with the results because the ratios are only meaningful with both sides under similar load.

    .venv/bin/python benchmarks/bench_shift.py --n 50000 --dim 512
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np


def measure(fn: Callable[[], Any], repeat: int = 0) -> tuple[Any, float, float]:
    """(value, seconds, peak MiB): the traced run's time when repeat is 0, else the median of
    ``repeat`` untraced runs after it."""
    tracemalloc.start()
    t = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    if repeat:
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        dt = statistics.median(times)
    return out, dt, peak


def row(name: str, ref: tuple[Any, float, float] | None, ours: tuple[Any, float, float], ref_val: Any, our_val: Any) -> None:
    if ref is None:
        print(f"{name:<22} {'-':>9} {ours[1]:9.2f}s {'-':>6} {'-':>9} {ours[2]:9.0f}  ours={our_val}")
        return
    print(f"{name:<22} {ref[1]:9.2f}s {ours[1]:9.2f}s {ref[1] / ours[1]:5.2f}x {ref[2]:8.0f}M {ours[2]:8.0f}M  ref={ref_val} ours={our_val}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--prdc-ref-n", type=int, default=20_000)
    ap.add_argument("--kid-subsets", type=int, default=100)
    ap.add_argument("--skip-full-prdc", action="store_true")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs of FD and KID per side (median)")
    a = ap.parse_args()

    import prdc as ref_prdc
    from cleanfid.fid import frechet_distance as ref_fd
    from cleanfid.fid import kernel_distance as ref_kid

    from synthgen.analyze.frechet import frechet_distance_features
    from synthgen.analyze.kernel import kid
    from synthgen.analyze.prdc import prdc

    rng = np.random.default_rng(0)
    mix = rng.normal(size=(a.dim, a.dim)) / np.sqrt(a.dim)
    real = np.maximum(rng.normal(size=(a.n, a.dim)) @ mix, 0.0)  # non-negative, correlated, like CNN features
    synth = np.maximum(rng.normal(0.05, 1.1, size=(a.n, a.dim)) @ mix, 0.0)
    print(f"features: {a.n} x {a.dim} float64 per side; {os.cpu_count()} cores, load average {os.getloadavg()}\n")
    print(f"{'metric':<22} {'reference':>10} {'synthgen':>10} {'speed':>6} {'ref peak':>9} {'our peak':>9}")

    def fd_ref() -> float:
        return float(ref_fd(real.mean(0), np.cov(real, rowvar=False), synth.mean(0), np.cov(synth, rowvar=False)))

    r, o = measure(fd_ref, a.repeat), measure(lambda: frechet_distance_features(real, synth), a.repeat)
    row("FD (clean-fid)", r, o, f"{r[0]:.6f}", f"{o[0]:.6f} (rel diff {abs(r[0] - o[0]) / abs(r[0]):.1e})")

    def kid_ref() -> float:
        np.random.seed(0)
        return ref_kid(real, synth, num_subsets=a.kid_subsets, max_subset_size=1000)

    r, o = measure(kid_ref, a.repeat), measure(lambda: kid(real, synth, a.kid_subsets, 1000, seed=0).mean, a.repeat)
    row(f"KID (clean-fid, {a.kid_subsets}x1000)", r, o, f"{r[0]:.8f}", f"{o[0]:.8f} (rel diff {abs(r[0] - o[0]) / abs(r[0]):.1e})")

    m = a.prdc_ref_n
    with contextlib.redirect_stdout(io.StringIO()):
        r = measure(lambda: ref_prdc.compute_prdc(real[:m], synth[:m], 5))
    o = measure(lambda: prdc(real[:m], synth[:m], 5))
    rv = {k: round(float(v), 6) for k, v in r[0].items()}
    ov = {k: round(getattr(o[0], k), 6) for k in rv}
    row(f"PRDC k=5 n={m}", r, o, rv, f"{ov} equal={rv == ov}")
    if not a.skip_full_prdc and a.n > m:
        o = measure(lambda: prdc(real, synth, 5))
        need = 3 * a.n * a.n * 8 / 2**30
        row(f"PRDC k=5 n={a.n}", None, o, None,
            f"{ {k: round(getattr(o[0], k), 6) for k in rv} } (reference would need ~{need:.0f} GiB for its 3 distance matrices)")
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()

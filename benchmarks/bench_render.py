"""Procedural renderer throughput: images/s at 256x256 and 512x512, one process and two, and the
ratio of render time to PNG encoding (synthgen.images.encode_png) of the same images.

Run: ``.venv/bin/python benchmarks/bench_render.py [--n 60]``. Wall-clock figures depend on the
machine's load; the CPU-time column (process time of the rendering process) is what one busy core
costs per image and is less sensitive to other work sharing the cores.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from synthgen.generate.procedural.backend import ProceduralGenerator
from synthgen.images import encode_png
from synthgen.spec import SceneSpec
from synthgen.vocab import CAMERA_POSITIONS, EXPRESSIONS, GLASSES, LIGHTINGS, SEATS


def specs(n: int, offset: int = 0) -> list[SceneSpec]:
    """A varied mix like a default plan (identities, expressions, poses, cameras, RGB and NIR)."""
    out = []
    for i in range(offset, offset + n):
        r = np.random.default_rng(i)
        out.append(SceneSpec(
            sample_id=f"b{i}", index=i, seed=i, identity=i % 20, identity_seed=1000 + i % 20,
            age=float(r.uniform(5, 80)), gender=str(r.choice(["female", "male"])), skin_tone=int(r.integers(1, 11)),
            expression=str(r.choice(EXPRESSIONS)), gaze_yaw=float(r.uniform(-30, 30)),
            gaze_pitch=float(r.uniform(-20, 15)), head_yaw=float(r.uniform(-30, 30)),
            head_pitch=float(r.uniform(-15, 15)), glasses=str(r.choice(GLASSES)), lighting=str(r.choice(LIGHTINGS)),
            camera=str(r.choice(CAMERA_POSITIONS)), seat=str(r.choice(SEATS)),
        ))
    return out


def _render_chunk(args: tuple[int, int, int]) -> int:
    size, n, offset = args
    g = ProceduralGenerator(size, size)
    for s in specs(n, offset):
        g.render(s)
    return n


def bench(size: int, n: int) -> dict[str, float]:
    g = ProceduralGenerator(size, size)
    batch = specs(n)
    for s in batch[:5]:  # warm caches (mesh, textures, cabin layouts)
        g.render(s)
    t0, c0 = time.perf_counter(), time.process_time()
    images = [g.render(s).image for s in batch]
    render_s, render_cpu = time.perf_counter() - t0, time.process_time() - c0
    t0 = time.perf_counter()
    for im in images:
        encode_png(im)
    png_s = time.perf_counter() - t0
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_render_chunk, [(size, 3, 10_000), (size, 3, 20_000)]))  # start and warm workers
        t0 = time.perf_counter()
        done = sum(pool.map(_render_chunk, [(size, n // 2, 0), (size, n - n // 2, n // 2)]))
        two_s = time.perf_counter() - t0
    return {
        "ms_per_image": 1000 * render_s / n,
        "cpu_ms_per_image": 1000 * render_cpu / n,
        "img_s_1proc": n / render_s,
        "img_s_2proc": done / two_s,
        "png_ms": 1000 * png_s / n,
        "render_over_png": render_s / png_s,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="images per measurement")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.2f}  images per run: {args.n}")
    print(f"{'size':>9} | {'ms/img':>7} | {'CPU ms/img':>10} | {'img/s 1 proc':>12} | {'img/s 2 proc':>12} | {'PNG ms':>6} | {'render/PNG':>10}")
    for size in (256, 512):
        r = bench(size, args.n)
        print(f"{size:>4}x{size:<4} | {r['ms_per_image']:7.1f} | {r['cpu_ms_per_image']:10.1f} | {r['img_s_1proc']:12.1f} | {r['img_s_2proc']:12.1f} | "
              f"{r['png_ms']:6.2f} | {r['render_over_png']:10.1f}")


if __name__ == "__main__":
    main()

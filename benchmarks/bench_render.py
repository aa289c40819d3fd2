"""Procedural renderer throughput: images/s at 256x256 and 512x512, one process and two, and the
ratio of render time to PNG encoding (synthgen.images.encode_png) of the same images, in wall
time and in process CPU time (the CPU ratio holds up better when other jobs share the cores). The
specs are the default plan's, as the main job renders them.

Run: ``.venv/bin/python benchmarks/bench_render.py [--n 60] [--repeat 5] [--against REV]``. Wall-clock figures depend on the
machine's load; the CPU-time column (process time of the rendering process) is what one busy core
costs per image and is less sensitive to other work sharing the cores.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from synthgen.generate.procedural.backend import ProceduralGenerator
from synthgen.generate.procedural.renderer import clear_identity_caches
from synthgen.images import encode_png
from synthgen.spec import SceneSpec


def specs(n: int, offset: int = 0) -> list[SceneSpec]:
    """Specs n of the default plan (from ``offset``): identities repeat with their identity-level
    attributes (age, gender, skin tone), as in the main job, so per-identity caches behave as there."""
    from synthgen.config import Params
    from synthgen.plan.planner import plan_specs

    params = Params()
    return plan_specs(params.plan.model_copy(update={"n": offset + n}), params.seed)[offset:]


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
    t0, c0 = time.perf_counter(), time.process_time()
    for im in images:
        encode_png(im)
    png_s, png_cpu = time.perf_counter() - t0, time.process_time() - c0
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        list(pool.map(_render_chunk, [(size, 3, 1000), (size, 3, 2000)]))  # start and warm workers
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
        "cpu_render_over_png": render_cpu / png_cpu,
    }


def ratio_runs(n: int, repeats: int) -> list[float]:
    """CPU render / PNG-encode ratio at 256 x 256, ``repeats`` times in this process, each from
    empty per-identity caches (after the same 5-spec warm-up as ``bench``). Why several: this
    machine's speed drifts by a fifth between runs; the median of runs in one process is the figure
    to quote."""
    batch = specs(n)
    out = []
    for _ in range(repeats):
        clear_identity_caches()
        g = ProceduralGenerator(256, 256)
        for s in batch[:5]:
            g.render(s)
        render_cpu, png_cpu = cpu_render_then_png(g, batch)
        out.append(render_cpu / png_cpu)
    return out


def cpu_render_then_png(g: ProceduralGenerator, batch: list[SceneSpec]) -> tuple[float, float]:
    """Process CPU seconds to render ``batch``, then to PNG-encode the same images."""
    c0 = time.process_time()
    images = [g.render(s).image for s in batch]
    return time.process_time() - c0, cpu_png(images)


def cpu_png(images: list) -> float:
    """Process CPU seconds to PNG-encode ``images``: the reference every render figure is divided by."""
    c0 = time.process_time()
    for im in images:
        encode_png(im)
    return time.process_time() - c0


_IMPORT = re.compile(r"\bsynthgen(?=\.|\s+import\b|$)", re.M)


def reference_generator(rev: str) -> tuple[Any, Callable[[], None]]:
    """The procedural generator of git revision ``rev``, importable beside this checkout's: the
    revision's ``synthgen/`` is extracted to a temporary folder as the package ``synthgen_ref``
    (its imports renamed), so both renderers run in one process on the same specs. Returns the
    generator class and a function that clears its per-identity caches."""
    root = Path(__file__).resolve().parents[1]
    tmp = Path(tempfile.mkdtemp(prefix="synthgen_ref_"))
    atexit.register(shutil.rmtree, tmp, True)
    archive = subprocess.run(["git", "-C", str(root), "archive", rev, "synthgen"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    (tmp / "synthgen").rename(tmp / "synthgen_ref")
    for f in (tmp / "synthgen_ref").rglob("*.py"):
        f.write_text(_IMPORT.sub("synthgen_ref", f.read_text()))
    sys.path.insert(0, str(tmp))
    backend = importlib.import_module("synthgen_ref.generate.procedural.backend")
    renderer = importlib.import_module("synthgen_ref.generate.procedural.renderer")
    # Revisions before clear_identity_caches cached the skin texture only.
    clear = (renderer.clear_identity_caches if hasattr(renderer, "clear_identity_caches")
             else renderer.skin_texture.cache_clear)
    return backend.ProceduralGenerator, clear


def against(rev: str, n: int, repeats: int) -> None:
    """CPU time of this checkout's renderer over revision ``rev``'s, both in this process on the
    same ``n`` default-plan specs from empty caches, the two alternating spec by spec (which goes
    first alternates between runs): a ratio that holds when the machine's speed drifts, which
    separate runs of the two do not give on these machines. Prints each run and the median."""
    ref_cls, ref_clear = reference_generator(rev)
    batch = specs(n)
    ref_spec = importlib.import_module("synthgen_ref.spec").SceneSpec
    ref_batch = [ref_spec(**s.model_dump()) for s in batch]
    ratios, over_png = [], []
    for r in range(repeats):
        clear_identity_caches()
        ref_clear()
        new, ref = ProceduralGenerator(256, 256), ref_cls(256, 256)
        t_new = t_ref = 0.0
        images = []
        for s, rs in zip(batch, ref_batch, strict=True):
            for who in ((0, 1) if r % 2 else (1, 0)):
                c0 = time.process_time()
                if who == 0:
                    images.append(new.render(s).image)
                    t_new += time.process_time() - c0
                else:
                    ref.render(rs)
                    t_ref += time.process_time() - c0
        png = cpu_png(images)
        ratios.append(t_new / t_ref)
        over_png.append(t_new / png)
        print(f"  run {r + 1}: this checkout {1000 * t_new / n:.1f} ms/image ({t_new / png:.2f}x PNG), "
              f"{rev} {1000 * t_ref / n:.1f} ms/image ({t_ref / png:.2f}x PNG): ratio {t_new / t_ref:.3f}")
    print(f"this checkout / {rev}, CPU per image at 256x256: median {statistics.median(ratios):.3f} over {repeats} runs "
          f"(this checkout {statistics.median(over_png):.2f}x PNG encoding)")


PARTS = {
    "identity skin texture (cached per identity)": ("texture_mod", "skin_texture"),
    "face mesh rasterisation (ID buffer, barycentrics)": ("renderer", "rasterize_mesh"),
    "face texturing and lighting": ("frame", "draw_face"),
    "eyeballs": ("frame", "draw_eyes"),
    "mouth cavity and teeth": ("frame", "draw_mouth"),
    "head, hair, ears, neck, torso (ray-cast quadrics)": ("frame", "draw_head_and_body"),
    "cabin": ("renderer", "draw_cabin"),
    "glasses": ("renderer", "_draw_glasses"),
    "exposure, downsample, sRGB, noise": ("frame", "finish"),
    "scene geometry (shape, expression, lids, eyes)": ("renderer", "Scene"),
    "control map": ("renderer", "draw_control"),
}


def parts(n: int) -> None:
    """CPU ms per image of each drawing step (256 x 256, one process), by wrapping the steps:
    says where the render cost goes when realism adds to it."""
    from collections import Counter

    from synthgen.generate.procedural import renderer

    clear_identity_caches()  # identities new to this run cost their texture, look and shape
    acc: Counter[str] = Counter()
    owners = {"renderer": renderer, "frame": renderer._Frame}

    def wrap(label: str, owner: object, name: str) -> None:
        fn = getattr(owner, name)

        def timed(*a: object, **k: object) -> object:
            t = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                acc[label] += time.process_time() - t

        setattr(owner, name, timed)

    for label, (where, name) in PARTS.items():
        if where == "texture_mod":
            wrap(label, renderer, "skin_texture")  # the renderer's own reference to it
        else:
            wrap(label, owners[where], name)
    batch = specs(n)
    g = ProceduralGenerator(256, 256)
    for s in batch[:3]:
        g.render(s)
    acc.clear()
    total, png = cpu_render_then_png(g, batch)
    print(f"CPU ms per image at 256x256 by part ({n} default-plan specs, empty texture cache; "
          "the face step includes the texture and the rasterisation):")
    for label, v in acc.most_common():
        print(f"  {label:52s} {1000 * v / n:6.1f}  ({v / png:4.2f}x PNG)")
    print(f"  {'total render':52s} {1000 * total / n:6.1f}  ({total / png:4.2f}x PNG)")
    print(f"  {'PNG encode of the same images':52s} {1000 * png / n:6.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60, help="images per measurement")
    ap.add_argument("--parts", action="store_true", help="also print the CPU cost of each drawing step")
    ap.add_argument("--sizes", default="256,512", help="comma-separated square sizes to time (default 256,512)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="also measure the 256x256 CPU render/PNG ratio this many times in one process "
                         "and print each run and the median (default 1: the table only)")
    ap.add_argument("--against", metavar="REV",
                    help="also time this checkout's renderer against git revision REV's, both in this process "
                         "(REV's SceneSpec must take this checkout's fields), --repeat runs (at least 3)")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.2f}  images per run: {args.n}")
    print(f"{'size':>9} | {'ms/img':>7} | {'CPU ms/img':>10} | {'img/s 1 proc':>12} | {'img/s 2 proc':>12} | {'PNG ms':>6} | {'render/PNG':>10} | {'CPU render/PNG':>14}")
    for size in (int(v) for v in args.sizes.split(",")):
        r = bench(size, args.n)
        print(f"{size:>4}x{size:<4} | {r['ms_per_image']:7.1f} | {r['cpu_ms_per_image']:10.1f} | {r['img_s_1proc']:12.1f} | {r['img_s_2proc']:12.1f} | "
              f"{r['png_ms']:6.2f} | {r['render_over_png']:10.2f} | {r['cpu_render_over_png']:14.2f}")
    if args.repeat > 1:
        runs = ratio_runs(args.n, args.repeat)
        print(f"CPU render/PNG at 256x256 over {args.repeat} runs in this process: "
              + ", ".join(f"{r:.2f}" for r in runs) + f"; median {statistics.median(runs):.2f}x")
    if args.against:
        against(args.against, args.n, max(args.repeat, 3))
    if args.parts:
        parts(args.n)


if __name__ == "__main__":
    main()


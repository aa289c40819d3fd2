"""Scale-out figures, each as a ratio against a reference run in the same process.

1. Generate-flow throughput (plan -> generate -> label -> curate -> publish) with shard tasks on a
   Dask LocalCluster of 1 vs 2 worker processes: the same code path as a multi-node cluster. On a
   2-core machine the ratio is bounded by 2 and lower in practice (the flow, the Prefect server and
   the workers share the cores).
2. Orchestration overhead per shard: a shard's work (generate + label) called directly vs the same
   shard through the Prefect shard flow (task runs, state reports, result handling), as a share of
   the shard's work.
3. Object storage: a 1M-row metadata version in 1,000 part files, published to a local S3 API
   server (moto) and queried there vs from disk (same query, same files): upload time and
   S3/disk query-time ratio.
4. Per-image CPU figures for docs/scale.md: render, label (full default stack), curate, and
   Parquet bytes per row, at 512x512.

    python benchmarks/bench_scale.py [--rows 1000000 --parts 1000] [--skip-flow] [--skip-cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(ROOT))
from bench_query import KEYS, WHERE, make  # noqa: E402

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def tiny_params(folder: Path, n: int, shard_size: int, size: int = 96, light: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["data_dir"] = str(folder / "data")
    p["plan"].update(n=n, shard_size=shard_size, identities=max(3, n // 4))
    p["generate"].update(width=size, height=size, workers=1)
    p["label"]["workers"] = 1  # in this process, so that process_time() counts the labelling
    if light:
        p["label"]["labelers"] = ["mediapipe_detector"]
        p["curate"].update(filters=["label_error", "face_count"])
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(p, sort_keys=False))
    return path


def flow_throughput(tmp: Path, n: int, shard_size: int, size: int) -> None:
    """Whole-flow wall time (cluster start included) and steady-state throughput, i.e. images
    per second between the first and the last finished shard (from the shard files' times)."""
    from flows.generate_dataset import generate_dataset
    from flows.runtime import prefect_api

    times, steady = {}, {}
    with prefect_api():  # one server for both runs: its start-up is not part of either
        for workers in (1, 2):
            params = tiny_params(tmp / f"dask{workers}", n, shard_size, size=size)
            t = time.perf_counter()
            s = generate_dataset(str(params), record=False, analyze=False, runner="dask", workers=workers)
            times[workers] = time.perf_counter() - t
            assert s["rows"] == n and not s["failed_shards"], s
            done = sorted(p.stat().st_mtime for p in (tmp / f"dask{workers}" / "data" / "work").rglob(
                "labelled/shard-*.parquet"))
            steady[workers] = (len(done) - workers) * shard_size / (done[-1] - done[0])
    print(f"generate flow, {n} images of {size}x{size} in {n // shard_size} shards, Dask LocalCluster:")
    for w in (1, 2):
        print(f"  {w} worker(s): {times[w]:6.1f} s in all ({n / times[w]:5.2f} images/s), "
              f"steady state {steady[w]:5.2f} images/s")
    print(f"  2 vs 1 workers: {times[1] / times[2]:.2f}x whole flow, {steady[2] / steady[1]:.2f}x steady state "
          "(bounded by the 2 cores here, shared with the flow, the server and the cluster)")


def orchestration_overhead(tmp: Path, n: int, shard_size: int) -> None:
    from flows.generate_dataset import shard_flow
    from flows.runtime import prefect_api
    from synthgen.config import load_params
    from synthgen.generate.stage import prepare_generate
    from synthgen.label.stage import prepare_label_dir
    from synthgen.stages import generate_shard, label_shard, run_plan

    def prepared(name: str) -> tuple[Path, list[int]]:
        path = tiny_params(tmp / name, n, shard_size)
        params = load_params(path)
        run_plan(params)
        shards = prepare_generate(params)
        prepare_label_dir(params)
        return path, shards

    # warm both paths (models, renderer) on a throw-away copy
    path, shards = prepared("warm")
    params = load_params(path)
    generate_shard(params, shards[0])
    label_shard(params, shards[0])

    path, shards = prepared("direct")
    params = load_params(path)
    t = time.perf_counter()
    for s in shards:
        generate_shard(params, s)
        label_shard(params, s)
    direct = (time.perf_counter() - t) / len(shards)

    path, shards = prepared("flow")
    with prefect_api():
        shard_flow(str(path), None, shards[:1])  # warm Prefect's client and engine
        path, shards = prepared("flow2")
        t = time.perf_counter()
        shard_flow(str(path), None, shards)
        flowed = (time.perf_counter() - t) / len(shards)
    print(f"orchestration per shard of {shard_size} images (generate + label, 1 thread):")
    print(f"  direct {direct * 1000:.0f} ms, through the Prefect shard flow {flowed * 1000:.0f} ms: "
          f"overhead {(flowed - direct) / direct * 100:.0f} % of the shard's work")


def s3_versus_disk(tmp: Path, rows: int, parts: int) -> None:
    from synthgen import query as q
    from synthgen import storage
    from synthgen.io import sha256_file, write_json_atomic
    from tests.s3server import moto_server

    root = tmp / "datasets" / "sim"
    t = time.perf_counter()
    make(root, rows, parts)
    vdir = root / "version=vbench"
    files = sorted(vdir.rglob("*.parquet"))
    manifest = {"name": "sim", "version": "vbench", "rows": rows,
                "files": [{"path": str(f.relative_to(vdir)), "rows": rows // parts, "bytes": f.stat().st_size,
                           "sha256": sha256_file(f)} for f in files]}
    write_json_atomic(vdir / "_manifest.json", manifest)
    made = time.perf_counter() - t
    size = sum(f.stat().st_size for f in files)
    print(f"simulated version: {rows:,} metadata rows in {parts} parts, {size / 1e6:.1f} MB "
          f"({size / rows:.1f} B/row), written to disk in {made:.1f} s")

    def run(lf: pl.LazyFrame) -> pl.DataFrame:
        return q.collect(q.select_where(lf, WHERE, ["meas_age"], KEYS), "bench")

    with moto_server("sim") as _:
        url = "s3://sim/datasets/sim"
        t = time.perf_counter()
        storage.upload_version(vdir, url)
        up = time.perf_counter() - t
        print(f"publish to S3 (moto on 127.0.0.1): {up:.1f} s for {parts + 1} objects "
              f"({up / (parts + 1) * 1000:.1f} ms/object, manifest last)")
        disk_t, s3_t = [], []
        for _ in range(3):
            t = time.perf_counter()
            a = run(q.scan(root, version="vbench"))
            disk_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            b = run(q.scan(url, version="vbench"))
            s3_t.append(time.perf_counter() - t)
        # same groups and counts; means up to float summation order (files are read in parallel)
        assert a.drop("mean_meas_age").equals(b.drop("mean_meas_age")), "S3 and disk answers differ"
        assert (a["mean_meas_age"] - b["mean_meas_age"]).abs().max() < 1e-9
        t = time.perf_counter()
        storage.complete_versions(url)
        listing = time.perf_counter() - t
        d, s = min(disk_t), min(s3_t)
        print(f"query (filter + group-by, same files): disk {d * 1000:.0f} ms, S3 {s * 1000:.0f} ms: "
              f"S3/disk {s / d:.1f}x; listing complete versions {listing * 1000:.0f} ms")
        # the same answer with DuckDB over s3:// through fsspec
        con = storage.duckdb_connection(url)
        t = time.perf_counter()
        n = con.execute("SELECT count(*) FROM read_parquet(?, hive_partitioning=true) WHERE "
                        + WHERE.replace("accepted", "accepted"), [storage.version_files(url, "vbench")]).fetchone()
        print(f"DuckDB count over S3: {n[0]:,} rows matching in {(time.perf_counter() - t) * 1000:.0f} ms")


def cpu_figures(tmp: Path, n: int = 12) -> None:
    from synthgen.config import load_params
    from synthgen.generate.stage import prepare_generate
    from synthgen.label.stage import prepare_label_dir
    from synthgen.paths import Layout
    from synthgen.stages import (
        generate_shard,
        label_shard,
        run_curate,
        run_plan,
        run_publish,
    )

    path = tiny_params(tmp / "cpu", n, n, size=512, light=False)
    params = load_params(path)
    run_plan(params)
    prepare_generate(params)
    prepare_label_dir(params)
    t = time.process_time()
    generate_shard(params, 0)
    render = (time.process_time() - t) / n
    label_shard(params, 0)  # warm: models load once per process
    Layout.from_params(params).shard_file("labelled", 0).unlink()
    t = time.process_time()
    label_shard(params, 0)
    label = (time.process_time() - t) / n
    t = time.process_time()
    run_curate(params, progress=False)
    curate = (time.process_time() - t) / n
    r = run_publish(params, progress=False)
    total = sum(f["bytes"] for f in r.files)
    meta = pl.read_parquet(str(r.version_dir / "**" / "*.parquet")).drop(["image", "control_image"])
    meta_path = tmp / "meta.parquet"
    meta.write_parquet(meta_path, compression="zstd")
    print(f"per image at 512x512, CPU seconds in this process ({n} images):")
    print(f"  render {render * 1000:.0f} ms, label (default stack) {label * 1000:.0f} ms, "
          f"curate {curate * 1000:.1f} ms; label/render {label / render:.1f}x")
    print(f"  published Parquet: {total / r.rows / 1024:.0f} KiB/row with images, "
          f"{meta_path.stat().st_size / r.rows:.0f} B/row metadata only")
    print(json.dumps({"render_ms": render * 1000, "label_ms": label * 1000, "curate_ms": curate * 1000,
                      "bytes_per_row": total / r.rows, "meta_bytes_per_row": meta_path.stat().st_size / r.rows}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--parts", type=int, default=1000)
    ap.add_argument("--images", type=int, default=120, help="images in the throughput runs")
    ap.add_argument("--shard-size", type=int, default=6)
    ap.add_argument("--skip-flow", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--skip-s3", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if not args.skip_s3:
            s3_versus_disk(tmp, args.rows, args.parts)
        if not args.skip_flow:
            orchestration_overhead(tmp, 16, 4)
            flow_throughput(tmp, args.images, args.shard_size, 128)
        if not args.skip_cpu:
            cpu_figures(tmp)


if __name__ == "__main__":
    main()

"""Shard write throughput: synthgen's atomic shard writer vs a bare pyarrow write of the same table.

The table holds real procedural renders (PNG bytes dominate its size). synthgen's writer adds a
temp file, fsync, rename, 100-row groups, zstd level 3 on metadata and no second codec on the PNG
bytes; the bare write is
``pq.write_table(table, path)`` with pyarrow's defaults (snappy, one big row group).

It also prints the cost of Parquet page checksums (CRC32 per page): the same write with and without
``write_page_checksum``, and the same read with and without ``page_checksum_verification``, as
ratios (1.00 = free).

    python benchmarks/bench_shards.py [--rows 1000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from common import best_of

from synthgen.config import parse_params
from synthgen.shards import column_codecs, read_parquet, write_parquet_atomic
from synthgen.stages import run_generate, run_plan


def paired(base: Callable[[], Any], other: Callable[[], Any], pairs: int) -> tuple[tuple[float, float], float]:
    """Median times of ``base`` and ``other`` run back to back ``pairs`` times, and the median of the
    per-pair ratios other/base: a load spike hits both halves of a pair, so the ratio holds."""
    base(), other()
    tb, to, ratios = [], [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        base()
        t1 = time.perf_counter()
        other()
        t2 = time.perf_counter()
        tb.append(t1 - t0)
        to.append(t2 - t1)
        ratios.append((t2 - t1) / (t1 - t0))
    return (statistics.median(tb), statistics.median(to)), statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=500, help="distinct renders (duplicates would flatter codecs)")
    ap.add_argument("--pairs", type=int, default=15, help="back-to-back pairs for the checksum ratios")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        params = parse_params({"data_dir": str(tmp / "data"),
                               "plan": {"n": args.rows, "shard_size": args.rows}})
        run_plan(params)
        run_generate(params, progress=False)
        table = read_parquet(next((tmp / "data/work/incabin-faces/generated").glob("shard-*.parquet")))
        mb = table.nbytes / 2**20
        t_ours, _ = best_of(lambda: write_parquet_atomic(table, tmp / "ours.parquet"), 3)
        t_bare, _ = best_of(lambda: pq.write_table(table, tmp / "bare.parquet"), 3)
        t_bare_z, _ = best_of(lambda: pq.write_table(table, tmp / "bare_z.parquet", compression="zstd",
                                                      row_group_size=100), 3)
        size = {k: (tmp / f"{k}.parquet").stat().st_size / 2**20 for k in ("ours", "bare", "bare_z")}
        # Checksums on/off with everything else equal (synthgen's codecs and row groups, no fsync).
        codecs = column_codecs(table.schema, "zstd")
        level = {c: 3 for c, v in codecs.items() if v != "none"} if isinstance(codecs, dict) else 3

        def write(crc: bool) -> None:
            pq.write_table(table, tmp / f"crc{int(crc)}.parquet", row_group_size=100, compression=codecs,
                           compression_level=level, write_statistics=True, write_page_checksum=crc)

        def read(crc: bool, columns: list[str] | None = None) -> None:
            pq.read_table(tmp / "crc1.parquet", columns=columns, page_checksum_verification=crc)

        write(True)
        small = ["sample_id", "req_age", "req_gaze_yaw", "req_head_yaw", "split"]
        (t_w0, t_w1), w_ratio = paired(lambda: write(False), lambda: write(True), args.pairs)
        (t_r0, t_r1), r_ratio = paired(lambda: read(False), lambda: read(True), args.pairs)
        _, s_ratio = paired(lambda: read(False, small), lambda: read(True, small), args.pairs * 3)
    print(f"table: {table.num_rows} rows, {mb:.1f} MiB in memory (PNG bytes)")
    print(f"{'writer':56s} {'rows/s':>10s} {'MiB/s':>8s} {'file MiB':>9s}")
    for name, t, key in [("synthgen write_parquet_atomic (zstd-3 + raw PNG, rg 100)", t_ours, "ours"),
                         ("bare pq.write_table (defaults)", t_bare, "bare"),
                         ("bare pq.write_table (zstd, rg 100, no fsync)", t_bare_z, "bare_z")]:
        print(f"{name:56s} {table.num_rows / t:10.0f} {mb / t:8.1f} {size[key]:9.1f}")
    print(f"ratio synthgen / bare default time: {t_ours / t_bare:.2f}x")
    print("page checksums (same file, same settings; ratio = with / without):")
    print(f"  write, all columns:             {w_ratio:.2f}x  ({mb / t_w0:.0f} -> {mb / t_w1:.0f} MiB/s)")
    print(f"  read + verify, all columns:     {r_ratio:.2f}x  ({mb / t_r0:.0f} -> {mb / t_r1:.0f} MiB/s)")
    print(f"  read + verify, 5 small columns: {s_ratio:.2f}x")


if __name__ == "__main__":
    main()

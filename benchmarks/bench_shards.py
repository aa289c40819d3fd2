"""Shard write throughput: synthgen's atomic shard writer vs a bare pyarrow write of the same table.

The table holds real procedural renders (PNG bytes dominate its size). synthgen's writer adds a
temp file, fsync, rename, 100-row groups, zstd level 3 on metadata and no second codec on the PNG
bytes; the bare write is
``pq.write_table(table, path)`` with pyarrow's defaults (snappy, one big row group).

    python benchmarks/bench_shards.py [--rows 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from common import best_of  # noqa: E402

from synthgen.config import parse_params  # noqa: E402
from synthgen.shards import read_parquet, write_parquet_atomic  # noqa: E402
from synthgen.stages import run_generate, run_plan  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=500, help="distinct renders (duplicates would flatter codecs)")
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
    print(f"table: {table.num_rows} rows, {mb:.1f} MiB in memory (PNG bytes)")
    print(f"{'writer':56s} {'rows/s':>10s} {'MiB/s':>8s} {'file MiB':>9s}")
    for name, t, key in [("synthgen write_parquet_atomic (zstd-3 + raw PNG, rg 100)", t_ours, "ours"),
                         ("bare pq.write_table (defaults)", t_bare, "bare"),
                         ("bare pq.write_table (zstd, rg 100, no fsync)", t_bare_z, "bare_z")]:
        print(f"{name:56s} {table.num_rows / t:10.0f} {mb / t:8.1f} {size[key]:9.1f}")
    print(f"ratio synthgen / bare default time: {t_ours / t_bare:.2f}x")


if __name__ == "__main__":
    main()

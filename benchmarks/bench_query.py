"""`synthgen query` (polars) vs DuckDB: filter + group_by over 1M metadata rows in hive shards.

The rows carry the row contract's metadata columns (no image bytes: queries never need them).
Both engines read the same files and must return the same groups.

    python benchmarks/bench_query.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))
from common import best_of

from synthgen import query as q
from synthgen.io import write_json_atomic
from synthgen.shards import write_parquet_atomic
from synthgen.vocab import EXPRESSIONS, GAZE_ZONES, age_group

WHERE = "accepted AND req_age > 40 AND req_lighting = 'nir'"
KEYS = ["req_expression", "req_gaze_zone"]


def make(root: Path, rows: int, shards: int) -> None:
    rng = np.random.default_rng(0)
    per = rows // shards
    for s in range(shards):
        age = rng.uniform(1, 85, per)
        t = pa.table({
            "sample_id": [f"{s:03d}{i:07d}" for i in range(per)],
            "req_age": age,
            "req_age_group": [age_group(a) for a in age],
            "req_expression": rng.choice(EXPRESSIONS, per),
            "req_gaze_zone": rng.choice(GAZE_ZONES, per),
            "req_gaze_yaw": rng.normal(0, 20, per),
            "req_lighting": rng.choice(["rgb", "nir"], per),
            "meas_age": age + rng.normal(0, 5, per),
            "accepted": rng.random(per) > 0.2,
        })
        split = ["train", "val", "test"][s % 3]
        write_parquet_atomic(t, root / "version=vbench" / f"split={split}" / f"part-{s:05d}.parquet",
                             row_group_size=100_000)
    # a version is complete (and read) once its manifest is in place
    write_json_atomic(root / "version=vbench" / "_manifest.json", {"name": "bench", "version": "vbench"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--shards", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "datasets" / "bench"
        make(root, args.rows, args.shards)
        glob = str(root / "**" / "*.parquet")

        def ours():
            lf = q.scan(root)
            return q.select_where(lf, WHERE, ["req_age", "meas_age"], KEYS).collect()

        def duck():
            return duckdb.sql(
                f"SELECT {', '.join(KEYS)}, COUNT(*) AS n, AVG(req_age) AS mean_req_age, "
                f"AVG(meas_age) AS mean_meas_age FROM read_parquet('{glob}', hive_partitioning=true) "
                f"WHERE {WHERE} GROUP BY {', '.join(KEYS)} ORDER BY {', '.join(KEYS)}").pl()

        t_ours, a = best_of(ours)
        t_duck, b = best_of(duck)
        same = a["n"].to_list() == b["n"].to_list() and np.allclose(a["mean_req_age"], b["mean_req_age"])
    print(f"{args.rows} rows in {args.shards} hive shards; WHERE {WHERE}; GROUP BY {', '.join(KEYS)}")
    print(f"synthgen query (polars lazy SQL): {t_ours * 1000:7.1f} ms")
    print(f"DuckDB read_parquet:             {t_duck * 1000:7.1f} ms")
    print(f"ratio polars/DuckDB: {t_ours / t_duck:.2f}x; same groups and means: {same}")


if __name__ == "__main__":
    main()

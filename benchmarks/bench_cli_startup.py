"""Start-up of `synthgen query` against its floor and against the eager imports it used to pay.

`synthgen query` once imported the `real` sub-app's importers (OpenCV, the label schema, SciPy
through the planner) on every start. They are now imported on first use. Three command lines run
in fresh processes, interleaved, median of N:

- floor: `python -c "import polars, typer"` (what a query needs at the least);
- query: `synthgen query <dataset> --sql "SELECT count(*) ..."` on a small published dataset;
- eager: the same query after importing `synthgen.real.importers` first (the old start-up).

    python benchmarks/bench_cli_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _publish(data: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from synthgen.publish.stage import run_publish
    from tests.helpers import make_generated, tiny_params

    params = tiny_params(data, n=6, shard_size=3, size=64)
    make_generated(params)
    run_publish(params, source_stage="generated", progress=False)


def _time(code: str, argv: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"failed: {code}\n{r.stderr}")
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        _publish(data)
        query = ["incabin-faces", "--data-dir", str(data), "--sql", "SELECT count(*) AS n FROM dataset"]
        run_cli = "import sys; from synthgen.cli import app; sys.argv = ['synthgen', 'query', *sys.argv[1:]]; app()"
        cmds = {
            "floor": ("import polars, typer", []),
            "query": (run_cli, query),
            "eager": ("import synthgen.real.importers; " + run_cli, query),
        }
        times: dict[str, list[float]] = {k: [] for k in cmds}
        for _ in range(args.repeat + 1):  # first round warms the page cache, not counted
            for name, (code, argv) in cmds.items():
                times[name].append(_time(code, argv))
        med = {k: statistics.median(v[1:]) for k, v in times.items()}
    print(f"median of {args.repeat} fresh processes each:")
    for k, v in med.items():
        print(f"  {k:5s} {v * 1000:7.0f} ms")
    print(f"query / floor: {med['query'] / med['floor']:.2f}x; eager (old start-up) / query: "
          f"{med['eager'] / med['query']:.2f}x")


if __name__ == "__main__":
    main()

"""Search an expression table's magnitudes against one reader, and judge the result on others.

The procedural renderer's expressions are tables of FACS actions (``procedural/expressions.py``).
This script is how a candidate table is found and how it is judged before it may replace one:

- ``search EXPR``: random search over the table's magnitudes (signs kept, |move| <= 12 mm, jaw
  0-20 mm, eye widening -1.2..1.2), maximising fer's mean probability for EXPR (plus half its
  hit rate) on ``--tune-ids`` tuning identities (default-plan specs re-seeded, intensity 1);
  writes the best table as JSON;
- ``check EXPR --table FILE``: the current table against the candidate on ``--ids`` held-out
  identities (other seeds, same plan conditions), read by fer (tuned) and ``emotion_cnn`` (held
  out): how many renders each reads as EXPR, and what it reads otherwise;
- ``plan EXPR --table FILE [-- bench_controllability options]``: ``bench_controllability.py``
  with the candidate swapped in, for the plan-level figures of every reader incl. the held-out
  FACS action-unit reader.

A candidate is only worth taking where the held-out readers move with it (docs/procedural.md,
renderer 0.8.0, has the table of what was tried and why most were not taken).

    .venv/bin/python benchmarks/bench_expression_search.py search anger --tune-ids 36 --out /tmp/anger.json
    .venv/bin/python benchmarks/bench_expression_search.py check anger --table /tmp/anger.json
    .venv/bin/python benchmarks/bench_expression_search.py plan anger --table /tmp/anger.json -- --n 300
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).parent))  # bench_controllability, beside this file

Table = dict[str, Any]  # {"actions": [[field, axis, metres], ...], "jaw": metres, "widen": float}


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def current_table(expr: str) -> Table:
    from synthgen.generate.procedural.expressions import PROTOTYPES

    p = PROTOTYPES[expr]
    return {"actions": [[a.field, a.axis, a.metres] for a in p.actions], "jaw": p.jaw_open, "widen": p.widen}


def use_table(expr: str, table: Table) -> None:
    """Swap EXPR's table in this process (the renderer reads PROTOTYPES on every render)."""
    from synthgen.generate.procedural import expressions as fx

    if expr not in fx.PROTOTYPES or expr == "neutral":
        _fail(f"{expr!r} is not an expression with a table; choose one of "
              f"{', '.join(e for e in fx.PROTOTYPES if e != 'neutral')}")
    fields = fx.fields()
    bad = [f for f, _, _ in table["actions"] if f not in fields]
    if bad:
        _fail(f"unknown weight field(s) {bad} in the table; known: {', '.join(fields)}")
    fx.PROTOTYPES[expr] = fx.Prototype(tuple(fx.Action(f, int(a), float(m)) for f, a, m in table["actions"]),
                                       jaw_open=float(table["jaw"]), widen=float(table["widen"]))


def specs(expr: str, n: int, offset: int) -> list:
    """n default-plan specs (plan seeded with seed + offset) turned into full-intensity EXPR on
    identities offset..offset+n-1: poses, light, cameras and glasses as the plan draws them."""
    from synthgen.config import Params
    from synthgen.plan.planner import plan_specs

    p = Params()
    base = plan_specs(p.plan.model_copy(update={"n": n}), p.seed + offset)
    return [s.model_copy(update={"expression": expr, "expression_intensity": 1.0, "identity_seed": offset + i,
                                 "sample_id": f"search-{offset}-{i}"}) for i, s in enumerate(base)]


def read(spec_list: list, labeler: str, workers: int) -> pa.Table:
    """Render the specs in this process and label them with the detector and one expression reader."""
    from bench_controllability import rows_table

    from synthgen.generate.procedural.backend import ProceduralGenerator
    from synthgen.images import encode_png
    from synthgen.label.config import LabelParams
    from synthgen.label.pipeline import label_rows

    samples = ProceduralGenerator(256, 256).generate(spec_list)
    table = rows_table(spec_list, [encode_png(x.image) for x in samples])
    return label_rows(table, LabelParams(labelers=["mediapipe_detector", labeler], workers=workers), progress=False)


def fer_score(expr: str, spec_list: list) -> tuple[float, int]:
    from synthgen.vocab import EXPRESSIONS

    t = read(spec_list, "fer", 1)
    k = list(EXPRESSIONS).index(expr)
    probs = [p[k] if p else 0.0 for p in t.column("meas_expression_probs").to_pylist()]
    hits = sum(e == expr for e in t.column("meas_expression").to_pylist())
    return float(np.mean(probs)) + 0.5 * hits / len(spec_list), hits


def search(expr: str, seed: int, iters: int, tune_ids: int, out: Path) -> None:
    rng = np.random.default_rng(seed)
    sp = specs(expr, tune_ids, 0)
    best_t = current_table(expr)
    use_table(expr, best_t)
    best, hits = fer_score(expr, sp)
    print(f"start: score {best:.3f}, fer reads {hits}/{tune_ids} as {expr}", flush=True)
    for it in range(iters):
        t = json.loads(json.dumps(best_t))
        for a in t["actions"]:
            if rng.random() < 0.35:
                a[2] = float(np.clip(a[2] * np.exp(rng.normal(0, 0.35)), -0.012, 0.012))
        if rng.random() < 0.3:
            t["jaw"] = float(np.clip(t["jaw"] * np.exp(rng.normal(0, 0.4)) + rng.normal(0, 0.001), 0, 0.02))
        if rng.random() < 0.3:
            t["widen"] = float(np.clip(t["widen"] + rng.normal(0, 0.3), -1.2, 1.2))
        use_table(expr, t)
        s, h = fer_score(expr, sp)
        if s > best:
            best, best_t, hits = s, t, h
            out.write_text(json.dumps(best_t, indent=1))
            print(f"iteration {it}: score {best:.3f}, fer reads {h}/{tune_ids}", flush=True)
    out.write_text(json.dumps(best_t, indent=1))
    print(f"best: score {best:.3f}, fer reads {hits}/{tune_ids} as {expr}; table in {out}")


def check(expr: str, table: Table, ids: int, offset: int, workers: int) -> None:
    sp = specs(expr, ids, offset)
    tables = {"current": current_table(expr), "candidate": table}
    for name, t in tables.items():
        use_table(expr, t)
        for lab, role in (("fer", "tuned"), ("emotion_cnn", "held out")):
            got = read(sp, lab, workers).column("meas_expression").to_pylist()
            common = ", ".join(f"{k} {v}" for k, v in Counter(got).most_common(4))
            print(f"{name:9s} {lab:11s} ({role:8s}) {sum(g == expr for g in got):3d}/{ids} read as {expr}   [{common}]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("search", help="search EXPR's magnitudes against fer on tuning identities")
    s.add_argument("expr")
    s.add_argument("--seed", type=int, default=5)
    s.add_argument("--iters", type=int, default=70)
    s.add_argument("--tune-ids", type=int, default=36, help="tuning identities (0..N-1)")
    s.add_argument("--out", type=Path, required=True, help="JSON file for the best table")
    c = sub.add_parser("check", help="current vs candidate table on held-out identities, fer and emotion_cnn")
    c.add_argument("expr")
    c.add_argument("--table", type=Path, required=True)
    c.add_argument("--ids", type=int, default=24)
    c.add_argument("--offset", type=int, default=5000, help="first held-out identity seed (tuning uses 0..)")
    c.add_argument("--workers", type=int, default=0)
    p = sub.add_parser("plan", help="bench_controllability.py with the candidate table swapped in")
    p.add_argument("expr")
    p.add_argument("--table", type=Path, required=True)
    args, rest = ap.parse_known_args()  # for ``plan``: bench_controllability.py's own options, after --
    if rest and args.cmd != "plan":
        ap.error(f"unrecognised arguments: {' '.join(rest)}")
    if args.cmd == "search":
        search(args.expr, args.seed, args.iters, args.tune_ids, args.out)
        return
    table = json.loads(args.table.read_text())
    if args.cmd == "check":
        check(args.expr, table, args.ids, args.offset, args.workers)
        return
    use_table(args.expr, table)
    print(f"{args.expr}: candidate table from {args.table} in place of the renderer's own")
    import bench_controllability

    sys.argv = [str(Path(__file__).parent / "bench_controllability.py"), *[a for a in rest if a != "--"]]
    bench_controllability.main()


if __name__ == "__main__":
    from synthgen.native_logs import quiet_native_logs

    quiet_native_logs()  # the face models' native start-up lines, as the CLI drops them unless --verbose
    main()

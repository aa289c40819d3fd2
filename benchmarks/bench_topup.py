"""Before/after `curate.topup` on a plan (default: params.yaml, the 300-spec default plan).

Runs plan -> generate -> label (timed: the reference cost), curates without top-up ("before"),
runs the top-up rounds (timed), curates again ("after"), and prints acceptance overall, per age
group and per expression, the planned-vs-accepted JSD per attribute (bits, log base 2), and the
extra render + label cost as a ratio to the plan's own render + label time in the same process.

    python benchmarks/bench_topup.py --data-dir /tmp/topup-bench [--set plan.n=60 ...]

Finished stages in ``--data-dir`` are kept (a re-run only curates and re-reads); delete the folder
for fresh timings.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

from synthgen import stages
from synthgen.config import load_params


def _acceptance(report: dict[str, Any], attr: str) -> dict[str, float | None]:
    return report["planned_vs_accepted"]["attributes"][attr]["acceptance"]


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(message)s")
    logging.getLogger("synthgen.stages").setLevel(logging.INFO)
    over = [f"data_dir={args.data_dir}", *args.overrides]
    params = load_params(args.params, over)
    off = load_params(args.params, [*over, "curate.topup.enabled=false"])
    report_file = Path(args.data_dir) / "reports" / params.dataset.name / "controllability.json"

    t0 = time.perf_counter()
    stages.run_plan(params)
    gen = stages.run_generate(params, progress=False)
    t1 = time.perf_counter()
    lab = stages.run_label(params, progress=False)
    t2 = time.perf_counter()
    base_render, base_label = t1 - t0, t2 - t1
    stages.run_curate(off, progress=False)
    before = json.loads(report_file.read_text())
    t3 = time.perf_counter()
    result = stages.run_topup(params, progress=False)
    t4 = time.perf_counter()
    stages.run_curate(params, progress=False, topup=False)
    after = json.loads(report_file.read_text())

    n = params.plan.n
    print(f"plan n={n}; top-up: max_rounds={params.curate.topup.max_rounds}, budget={params.curate.topup.budget} "
          f"(<= {result.budget} specs), attributes={params.curate.topup.attributes}")
    print(f"rounds: {[(r.round, r.specs) for r in result.rounds]} -> {result.specs} extra specs "
          f"({result.specs / n:.2f} x plan.n)")
    print(f"accepted: before {before['accepted']}/{before['rows']} ({before['accepted'] / before['rows']:.0%}), "
          f"after {after['accepted']}/{after['rows']} ({after['accepted'] / after['rows']:.0%} of rows; "
          f"{after['accepted'] / n:.2f} x plan.n accepted)")
    print("JSD planned vs accepted (bits, base 2):")
    for a, v in before["planned_vs_accepted"]["jsd"].items():
        print(f"  {a:12s} before {v:.4f}  after {after['planned_vs_accepted']['jsd'][a]:.4f}")
    for attr in ("age_group", "expression"):
        b, a = _acceptance(before, attr), _acceptance(after, attr)
        pb = before["planned_vs_accepted"]["attributes"][attr]
        pa_ = after["planned_vs_accepted"]["attributes"][attr]
        print(f"acceptance and accepted share by {attr} (planned share):")
        for k in b:
            if pb["requested"][k] or pa_["requested"][k]:
                print(f"  {k:11s} planned {pb['planned_share'][k]:.3f}  accepted rate {_fmt(b[k]):>4s} -> {_fmt(a[k]):>4s}"
                      f"  accepted share {pb['accepted_share'][k]:.3f} -> {pa_['accepted_share'][k]:.3f}")
    extra_render = sum(r.render_s for r in result.rounds)
    extra_label = sum(r.label_s for r in result.rounds)
    timed = bool(gen.written) and bool(lab.written)
    print(f"cost: plan render {base_render:.1f}s + label {base_label:.1f}s"
          + ("" if timed else " (shards were already there: not a timing)")
          + f"; top-up render {extra_render:.1f}s + label {extra_label:.1f}s (wall {t4 - t3:.1f}s)")
    if timed and base_render + base_label > 0:
        print(f"cost ratio top-up / plan (same process): render {extra_render / base_render:.2f}, "
              f"label {extra_label / base_label:.2f}, both {(extra_render + extra_label) / (base_render + base_label):.2f}")


if __name__ == "__main__":
    from synthgen.native_logs import quiet_native_logs

    quiet_native_logs()  # the face models' native start-up lines, as the CLI drops them unless --verbose
    main()

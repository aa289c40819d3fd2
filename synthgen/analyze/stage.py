"""The ``analyze`` stage: published synthetic data vs a real reference, written to the reports folder.

Outputs (``Layout.reports_dir``):
- ``metrics.json``: flat numbers for ``dvc metrics show`` (computable metrics only);
- ``analysis.json``: the full AnalysisResult (every metric, its meaning, or why it is missing);
- ``plots/*.csv``: per-attribute shares, joint gaze counts, coverage counts and the 2-D projection for
  ``dvc plots show``;
- ``report.html``: one self-contained file (figures inlined);
- ``gaps.json``: under-covered bins, the input of ``plan.mode: targeted``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from synthgen.analyze.compare import analyze_tables
from synthgen.analyze.config import AnalyzeRun
from synthgen.analyze.plots import image_grid
from synthgen.analyze.registries import EXTRACTORS
from synthgen.analyze.report import render_report
from synthgen.analyze.result import AnalysisResult
from synthgen.errors import DataError
from synthgen.gaps import write_gaps
from synthgen.images import decode_rgb
from synthgen.io import csv_text, write_json_atomic, write_text_atomic
from synthgen.paths import Layout
from synthgen.reference import Reference, read_reference

logger = logging.getLogger(__name__)


def load_synthetic(version_dir: Path, accepted_only: bool, with_images: bool = False) -> pa.Table:
    """Published shards (``split=*/part-*.parquet``), without the image columns unless asked."""
    files = sorted(Path(version_dir).rglob("*.parquet")) if Path(version_dir).exists() else []
    if not files:
        raise DataError("no published synthetic shards", where=str(version_dir),
                        fix="run the pipeline up to `synthgen publish` first (dvc repro publish)")
    dset = ds.dataset([str(f) for f in files], format="parquet")
    skip = set() if with_images else {"image", "control_image"}
    cols = [c for c in dset.schema.names if c not in skip]
    table = dset.to_table(columns=cols)
    if accepted_only and "accepted" in table.column_names:
        table = table.filter(pc.fill_null(table.column("accepted"), False))
    return table


def _subsample(table: pa.Table, n: int | None, seed: int) -> pa.Table:
    if n is None or table.num_rows <= n:
        return table
    idx = np.sort(np.random.default_rng(seed).choice(table.num_rows, n, replace=False))
    return table.take(pa.array(idx))


def gaze_density_rows(g: dict[str, Any]) -> list[dict[str, Any]]:
    """Joint gaze counts in long form (one row per side and 5-degree bin, bin centres in degrees), the
    shape a DVC heat-map template reads; a side without gaze labels contributes no rows."""
    if not g:
        return []
    ye, pe = np.asarray(g["yaw_edges"]), np.asarray(g["pitch_edges"])
    yc, pcen = ((ye[:-1] + ye[1:]) / 2).round(3), ((pe[:-1] + pe[1:]) / 2).round(3)
    rows = []
    for side in ("synthetic", "real"):
        counts = (g.get(side) or {}).get("counts")
        if not counts:
            continue
        rows += [{"source": side, "yaw_bin": float(yc[i]), "pitch_bin": float(pcen[j]), "count": int(c)}
                 for i, row in enumerate(counts) for j, c in enumerate(row)]
    return rows


def write_plot_data(res: AnalysisResult, plots_dir: Path) -> dict[str, str]:
    """Tabular plot data for DVC (x = bin, y = real / synthetic shares)."""
    out = {}
    for a, d in res.distributions.items():
        if not d.get("bins"):
            continue
        rs, ss = sum(d["real_counts"]) or 1, sum(d["synth_counts"]) or 1
        labels = d["bins"] if d["kind"] == "categorical" else [round((lo + hi) / 2, 3) for lo, hi in zip(d["bins"][:-1], d["bins"][1:])]
        rows = [{"bin": b, "real": round(r / rs, 6), "synthetic": round(s / ss, 6)}
                for b, r, s in zip(labels, d["real_counts"], d["synth_counts"])]
        out[a] = str(write_text_atomic(plots_dir / f"attr_{a}.csv", csv_text(rows)))
    g = res.info.get("gaze_density") or {}
    rows = gaze_density_rows(g)
    if rows:
        out["gaze_density"] = str(write_text_atomic(plots_dir / "gaze_density.csv", csv_text(rows)))
    cov = res.coverage
    if cov.get("bins"):
        rows = [{"bin": "/".join(b), "real": r, "synthetic": s} for b, r, s in zip(cov["bins"], cov["real_counts"], cov["synth_counts"])]
        out["coverage"] = str(write_text_atomic(plots_dir / "coverage.csv", csv_text(rows)))
    p = res.info.get("projection")
    if p:
        rows = [{"x": x, "y": y, "source": s} for x, y, s in zip(p["x"], p["y"], p["source"])]
        out["projection"] = str(write_text_atomic(plots_dir / "projection.csv", csv_text(rows)))
    return out


def _images_by_id(table_or_dir: Any, ids: list[str]) -> dict[str, np.ndarray]:
    if not ids:
        return {}
    if isinstance(table_or_dir, pa.Table):
        t = table_or_dir.filter(pc.is_in(table_or_dir.column("sample_id"), pa.array(ids)))
    else:
        files = sorted(Path(table_or_dir).rglob("*.parquet"))
        t = ds.dataset([str(f) for f in files], format="parquet").to_table(
            columns=["sample_id", "image"], filter=pc.field("sample_id").isin(ids))
    out = {}
    for sid, im in zip(t.column("sample_id").to_pylist(), t.column("image").to_pylist()):
        try:
            out[sid] = decode_rgb((im or {}).get("bytes"), where=sid)
        except DataError:
            continue
    return out


def _grids(res: AnalysisResult, real: pa.Table, version_dir: Path, n: int) -> dict[str, bytes | None]:
    grids: dict[str, bytes | None] = {}
    ms = res.info.get("most_synthetic_looking", [])
    imgs = _images_by_id(version_dir, [m["sample_id"] for m in ms])
    grids["most_synthetic"] = image_grid([imgs[m["sample_id"]] for m in ms if m["sample_id"] in imgs],
                                         [f"p={m['p_synthetic']:.2f}" for m in ms if m["sample_id"] in imgs])
    # real examples from the neediest gap bins: what the synthetic set should learn to show
    picks: list[tuple[str, str]] = []
    attrs = res.gaps.get("attributes", [])
    cols = {a: real.column(f"meas_{a}").to_pylist() for a in attrs if f"meas_{a}" in real.column_names}
    ids = real.column("sample_id").to_pylist()
    for b in res.gaps.get("bins", []):
        for i, sid in enumerate(ids):
            if all(cols[a][i] == b["key"][a] for a in cols) and sid not in {p for p, _ in picks}:
                picks.append((sid, "/".join(b["key"].values())))
                break
        if len(picks) >= n:
            break
    imgs = _images_by_id(real, [p for p, _ in picks])
    grids["least_covered"] = image_grid([imgs[p] for p, _ in picks if p in imgs], [c for p, c in picks if p in imgs])
    return grids


def run_analyze(params: AnalyzeRun, reference: Reference, progress: bool = True) -> AnalysisResult:
    """Compare the published synthetic data set with the real reference and write the reports."""
    layout = Layout.from_params(params)
    ap = params.analyze
    synth = _subsample(load_synthetic(layout.version_dir, ap.accepted_only), ap.max_rows, params.seed)
    real, ref_name, demo = read_reference(reference.path), reference.name, reference.demo
    real_meta = real.drop_columns([c for c in ("image", "control_image") if c in real.column_names])
    real_meta = _subsample(real_meta, ap.max_rows, params.seed + 1)
    extractor_cls: Any = EXTRACTORS.get(ap.features.name)  # the registered class, with its declarations
    if extractor_cls.needs_images:
        synth_full = load_synthetic(layout.version_dir, ap.accepted_only, with_images=True)
        synth_full = synth_full.filter(pc.is_in(synth_full.column("sample_id"), synth.column("sample_id")))
        synth, real_for_features = synth_full, real.filter(pc.is_in(real.column("sample_id"), real_meta.column("sample_id")))
    else:
        real_for_features = real_meta
    logger.info("analyze: %d synthetic vs %d real rows (%s), features %s", synth.num_rows, real_for_features.num_rows,
                ref_name, ap.features.name)
    res = analyze_tables(synth, real_for_features, ap, params.seed, progress, reference_name=ref_name, demo=demo)
    out = layout.reports_dir
    res.files["gaps"] = str(write_gaps(out / "gaps.json", res.gaps))
    res.files.update({f"plot_{k}": v for k, v in write_plot_data(res, out / "plots").items()})
    res.files["metrics"] = str(write_json_atomic(out / "metrics.json", res.flat_metrics()))
    grids = _grids(res, real, layout.version_dir, ap.grid_images)
    res.files["report"] = str(write_text_atomic(out / "report.html", render_report(res, grids)))
    res.files["analysis"] = str(out / "analysis.json")
    res.save(out / "analysis.json")
    return res

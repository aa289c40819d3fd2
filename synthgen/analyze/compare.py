"""Synthetic vs real tables -> AnalysisResult: attribute shift, joint coverage and gaps, embedding
metrics overall and per attribute bin. Pure in the sense that matters: tables in, result out, no
files; ``stage.run_analyze`` does the reading and writing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.decomposition import PCA

from synthgen.analyze.attributes import EDGES, attribute_shift
from synthgen.analyze.classifier import auc_in_subset, domain_auc
from synthgen.analyze.config import AnalyzeParams
from synthgen.analyze.coverage import find_gaps, gaps_document, joint_coverage
from synthgen.analyze.embedding import MEANING, embedding_metrics
from synthgen.analyze.features import Features, create_extractor
from synthgen.analyze.registries import metric_values
from synthgen.analyze.result import AnalysisResult, MetricValue
from synthgen.analyze.validate import NotComputable, check_features
from synthgen.errors import DataError
from synthgen.vocab import CATEGORIES


def column_values(table: pa.Table, attribute: str, prefer: str) -> tuple[list[Any] | None, str | None]:
    """Values of one attribute and the column they came from. ``prefer``: meas, req or meas_or_req
    (meas when that column exists with some values, req otherwise)."""
    order = {"meas": ["meas"], "req": ["req"], "meas_or_req": ["meas", "req"]}[prefer]
    for p in order:
        name = f"{p}_{attribute}"
        if name in table.column_names:
            vals = table.column(name).to_pylist()
            if prefer != "meas_or_req" or any(v is not None for v in vals) or p == order[-1]:
                return vals, name
    return None, None


def _gaze_side(table: pa.Table, prefer: str, side: str, edges: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
    """Joint yaw x pitch histogram of one side, or the reason it cannot be drawn. Only rows with both
    angles known count; values beyond the edges are clipped into the outer bins (as the 1-D
    histograms do) so the counts add up to the rows with gaze."""
    yaw, ycol = column_values(table, "gaze_yaw", prefer)
    pitch, pcol = column_values(table, "gaze_pitch", prefer)
    out: dict[str, Any] = {"columns": [ycol, pcol], "n": 0, "counts": None, "reason": None}
    if yaw is None or pitch is None:
        missing = [n for n, v in (("gaze_yaw", yaw), ("gaze_pitch", pitch)) if v is None]
        out["reason"] = f"no {' / '.join(missing)} column in the {side} data"
        return out
    y = np.array([np.nan if v is None else v for v in yaw], dtype=float)
    p = np.array([np.nan if v is None else v for v in pitch], dtype=float)
    keep = np.isfinite(y) & np.isfinite(p)
    if not keep.any():
        out["reason"] = f"{ycol} / {pcol} hold no row with both angles in the {side} data"
        return out
    ye, pe = edges
    counts = np.histogram2d(np.clip(y[keep], ye[0], ye[-1]), np.clip(p[keep], pe[0], pe[-1]), bins=[ye, pe])[0]
    out["n"], out["counts"] = int(keep.sum()), counts.astype(int).tolist()
    return out


def gaze_density(real: pa.Table, synth: pa.Table, synthetic_columns: str) -> dict[str, Any]:
    """Joint gaze yaw/pitch counts of both sides on the 1-D histograms' edges. The result keeps no
    per-row values, so the 2-D histogram is computed here for the report figure and the DVC CSV.
    ``counts[i][j]``: rows with yaw in bin i and pitch in bin j (degrees, synthgen.geometry camera frame)."""
    edges = (EDGES["gaze_yaw"], EDGES["gaze_pitch"])
    return {
        "yaw_edges": edges[0].tolist(), "pitch_edges": edges[1].tolist(),
        "real": _gaze_side(real, "meas", "real", edges),
        "synthetic": _gaze_side(synth, synthetic_columns, "synthetic", edges),
    }


@dataclass
class EmbeddingData:
    real: Features
    synth: Features


def extract_features(real: pa.Table, synth: pa.Table, ap: AnalyzeParams, progress: bool) -> EmbeddingData:
    f = ap.features
    opts: dict[str, Any] = {"batch_size": f.batch_size, "device": f.device}
    if f.model:
        opts["model"] = f.model
    ex = create_extractor(f.name, **opts)
    return EmbeddingData(ex.extract(real, progress), ex.extract(synth, progress))


def _bin_values(table: pa.Table, rows: np.ndarray, attribute: str, prefer: str) -> np.ndarray | None:
    vals, _ = column_values(table, attribute, prefer)
    if vals is None:
        return None
    return np.array([vals[i] if vals[i] is not None else "" for i in rows], dtype=object)


def analyze_tables(
    synth: pa.Table,
    real: pa.Table,
    ap: AnalyzeParams,
    seed: int = 0,
    progress: bool = False,
    embeddings: EmbeddingData | None = None,
    reference_name: str = "reference",
    demo: bool = False,
) -> AnalysisResult:
    """Synthetic vs real, in three steps: per-attribute shift, joint coverage with the gaps list, and
    the embedding metrics. Pure: tables in, a result object out (the stage writes the files)."""
    res = AnalysisResult()
    res.info = {"n_synthetic": synth.num_rows, "n_real": real.num_rows, "reference": reference_name, "demo": demo,
                "features": ap.features.name, "synthetic_columns": ap.synthetic_columns, "columns": {}}
    _attribute_shifts(res, synth, real, ap)
    _coverage_and_gaps(res, synth, real, ap, reference_name)
    _embedding_shift(res, synth, real, ap, seed, progress, embeddings)
    return res


def _attribute_shifts(res: AnalysisResult, synth: pa.Table, real: pa.Table, ap: AnalyzeParams) -> None:
    for a in ap.attributes:
        r, rcol = column_values(real, a, "meas")
        s, scol = column_values(synth, a, ap.synthetic_columns)
        if r is not None and real.num_rows and all(v is None for v in r):
            r = None  # present but empty: the same as absent, for the reasons below
        res.info["columns"][a] = {"real": rcol, "synthetic": scol}
        shift = attribute_shift(a, r, s)
        if r is None and rcol is not None:
            why = f"{rcol} holds no values in the real data (e.g. no camera geometry)"
            shift.metrics = [replace(m, reason=why) for m in shift.metrics]
        res.distributions[a] = shift.to_dict()
        res.metrics += shift.metrics
    res.info["gaze_density"] = gaze_density(real, synth, ap.synthetic_columns)


def _coverage_and_gaps(res: AnalysisResult, synth: pa.Table, real: pa.Table, ap: AnalyzeParams,
                       reference_name: str) -> None:
    cov_r = {a: column_values(real, a, "meas")[0] for a in ap.coverage_attributes}
    cov_s = {a: column_values(synth, a, ap.synthetic_columns)[0] for a in ap.coverage_attributes}
    cov = joint_coverage(cov_r, cov_s, ap.coverage_attributes)
    res.coverage = cov.to_dict()
    if cov.attributes and cov.n_real and cov.n_synth:
        gaps = find_gaps(cov, ap.coverage_ratio, ap.min_per_bin)
        held = cov.real_counts > 0
        res.metrics.append(MetricValue("bin_coverage", float((cov.synth_counts[held] >= 1).mean()),
                                       "share of the real data's attribute bins that hold any synthetic sample",
                                       scope="coverage", extra={"gaps": len(gaps)}))
        res.metrics.append(MetricValue("samples_needed", float(sum(g.needed for g in gaps)),
                                       "synthetic samples the under-covered bins need (gaps.json)", scope="coverage"))
    else:
        gaps = []
        why = ("no coverage attribute is known on both sides: " + "; ".join(f"{k}: {v}" for k, v in cov.dropped.items())
               if not cov.attributes else "one side has no rows with known coverage attributes")
        for n in ("bin_coverage", "samples_needed"):
            res.metrics.append(MetricValue.missing(n, why, scope="coverage"))
    res.gaps = gaps_document(cov, gaps, ap.coverage_ratio, ap.min_per_bin, reference_name)


def _embedding_shift(res: AnalysisResult, synth: pa.Table, real: pa.Table, ap: AnalyzeParams, seed: int,
                     progress: bool, embeddings: EmbeddingData | None) -> None:
    pair_metrics = tuple(m for m in ap.metrics if m != "domain_auc")  # domain_auc: _classifier, with rankings
    try:
        if real.num_rows == 0 or synth.num_rows == 0:
            raise NotComputable(f"{'real' if real.num_rows == 0 else 'synthetic'} set is empty")
        try:
            emb = embeddings or extract_features(real, synth, ap, progress)
        except DataError as err:  # e.g. one side was never labelled: say so, keep the rest
            raise NotComputable(str(err).replace("\n", " ")) from None
        fr, fs = emb.real, emb.synth
        res.info["embedding"] = {"dim": int(fr.values.shape[1]) if fr.values.ndim == 2 else 0,
                                 "n_real": int(fr.values.shape[0]), "n_synthetic": int(fs.values.shape[0]),
                                 "skipped_real": fr.skipped, "skipped_synthetic": fs.skipped}
        res.metrics += embedding_metrics(fr.values, fs.values, ap, seed, "overall", pair_metrics, min_samples=2)
        if "domain_auc" in ap.metrics:
            _classifier(res, fr, fs, real, synth, ap, seed)
        _per_bin(res, fr, fs, real, synth, ap, seed)
        _projection(res, fr, fs, seed)
    except NotComputable as err:
        res.metrics += [MetricValue.missing(n, str(err), MEANING[n]) for n in metric_values(ap.metrics)]


def _classifier(res: AnalysisResult, fr: Features, fs: Features, real: pa.Table, synth: pa.Table, ap: AnalyzeParams, seed: int) -> None:
    try:
        r, s = check_features(fr.values, fs.values, 2)
        d = domain_auc(r, s, ap.classifier_folds, ap.classifier_max_samples, ap.bootstrap, seed)
    except NotComputable as err:
        res.metrics.append(MetricValue.missing("domain_auc", str(err), MEANING["domain_auc"]))
        return
    res.metrics.append(MetricValue("domain_auc", d.auc, MEANING["domain_auc"], extra={"ci_low": d.ci_low, "ci_high": d.ci_high}))
    synth_scores = d.scores[d.real_index.size :]
    order = np.argsort(-synth_scores, kind="stable")[: ap.grid_images]
    ids = synth.column("sample_id").to_pylist() if "sample_id" in synth.column_names else [str(i) for i in range(synth.num_rows)]
    res.info["most_synthetic_looking"] = [
        {"sample_id": ids[int(fs.rows[d.synth_index[i]])], "p_synthetic": float(synth_scores[i])} for i in order
    ]
    a = ap.bin_attribute
    if a is None or a not in CATEGORIES:
        return
    rb = _bin_values(real, fr.rows[d.real_index], a, "meas")
    sb = _bin_values(synth, fs.rows[d.synth_index], a, ap.synthetic_columns)
    if rb is None or sb is None:
        return
    y = np.r_[np.zeros(d.real_index.size, int), np.ones(d.synth_index.size, int)]
    bins = np.concatenate([rb, sb])
    for b in CATEGORIES[a]:
        mask = bins == b
        scope = f"{a}={b}"
        if min(int((mask & (y == 0)).sum()), int((mask & (y == 1)).sum())) < ap.min_bin_samples:
            continue  # reported by _per_bin for the same bins
        try:
            res.metrics.append(MetricValue("domain_auc", auc_in_subset(y, d.scores, mask), MEANING["domain_auc"], scope=scope))
        except NotComputable as err:
            res.metrics.append(MetricValue.missing("domain_auc", str(err), MEANING["domain_auc"], scope))


def _per_bin(res: AnalysisResult, fr: Features, fs: Features, real: pa.Table, synth: pa.Table, ap: AnalyzeParams, seed: int) -> None:
    a = ap.bin_attribute
    if a is None:
        return
    pair_metrics = tuple(m for m in ap.metrics if m != "domain_auc")
    rb = _bin_values(real, fr.rows, a, "meas")
    sb = _bin_values(synth, fs.rows, a, ap.synthetic_columns)
    if rb is None or sb is None:
        res.metrics.append(MetricValue.missing("fd", f"{a!r} is absent on the {'real' if rb is None else 'synthetic'} side", MEANING["fd"], f"{a}=*"))
        return
    for b in CATEGORIES.get(a, ()):
        rm, sm = rb == b, sb == b
        if not rm.any() and not sm.any():
            continue
        scope = f"{a}={b}"
        if min(int(rm.sum()), int(sm.sum())) < ap.min_bin_samples:
            why = f"{int(rm.sum())} real and {int(sm.sum())} synthetic samples in this bin; {ap.min_bin_samples} per side needed"
            res.metrics += [MetricValue.missing(n, why, MEANING[n], scope) for n in metric_values(pair_metrics)]
            continue
        res.metrics += embedding_metrics(fr.values[rm], fs.values[sm], ap, seed, scope, pair_metrics)


def _projection(res: AnalysisResult, fr: Features, fs: Features, seed: int, max_points: int = 2000) -> None:
    """2-D PCA of both feature sets (fitted on the pooled, seeded subsample) for the report."""
    try:
        r, s = check_features(fr.values, fs.values, 2)
    except NotComputable:
        return
    rng = np.random.default_rng(seed)
    ri = rng.permutation(r.shape[0])[:max_points]
    si = rng.permutation(s.shape[0])[:max_points]
    z = np.vstack([r[ri], s[si]])
    xy = PCA(n_components=2, random_state=seed).fit_transform(z)
    res.info["projection"] = {
        "method": "PCA",
        "x": xy[:, 0].round(4).tolist(),
        "y": xy[:, 1].round(4).tolist(),
        "source": ["real"] * ri.size + ["synthetic"] * si.size,
    }

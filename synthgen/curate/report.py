"""The controllability report: how well what was requested is what the images show, measured by
independent models, and what curation kept.

``controllability_report`` is pure (a table in, a dict of numbers out) so a notebook, a test and
the stage compute the same figures; ``write_controllability`` turns it into DVC metrics (JSON),
plot data (CSV) and PNG plots. Errors are over rows where exactly one face was found and both
sides are known; gaze errors only over rows whose eyes were requested open.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from synthgen.balance import JSD_BASE, AttributeCoverage, coverage
from synthgen.curate.filters import num, requested_eyes_open, strs
from synthgen.geometry import angle_diff, angular_error
from synthgen.io import atomic_path, write_json_atomic, write_text_atomic
from synthgen.vocab import AGE_GROUPS, EXPRESSIONS, GAZE_ZONES

ANGLES = ("gaze_yaw", "gaze_pitch", "head_yaw", "head_pitch", "head_roll")
YAW_LIMIT = 30.0


def _frame(data: pa.Table | pl.DataFrame) -> pl.DataFrame:
    if isinstance(data, pl.DataFrame):
        return data
    heavy = {"image", "control_image"}
    out = pl.from_arrow(data.select([c for c in data.column_names if c not in heavy]))
    assert isinstance(out, pl.DataFrame)
    return out


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


def error_stats(err: np.ndarray) -> dict[str, Any]:
    """n, MAE, median |error| and mean signed error (bias) over the finite entries."""
    e = err[np.isfinite(err)]
    if e.size == 0:
        return {"n": 0, "mae": None, "median": None, "bias": None}
    return {"n": int(e.size), "mae": _r(np.mean(np.abs(e))), "median": _r(np.median(np.abs(e))),
            "bias": _r(np.mean(e))}


def _rate(mask: np.ndarray, within: np.ndarray) -> float | None:
    n = int(within.sum())
    return None if n == 0 else _r(float((mask & within).sum()) / n)


def signed_errors(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Measured minus requested per angle (NaN where unknown or where the face count is not one)."""
    one = num(frame, "meas_face_count") == 1
    eyes = requested_eyes_open(frame)
    out: dict[str, np.ndarray] = {}
    for a in ANGLES:
        err = angle_diff(num(frame, f"meas_{a}"), num(frame, f"req_{a}"))
        keep = one & (eyes if a.startswith("gaze") else True)
        out[a] = np.where(keep, err, np.nan)
    ang = angular_error(num(frame, "req_gaze_yaw"), num(frame, "req_gaze_pitch"),
                             num(frame, "meas_gaze_yaw"), num(frame, "meas_gaze_pitch"))
    out["gaze_angular"] = np.where(one & eyes, ang, np.nan)
    out["age"] = np.where(one, num(frame, "meas_age") - num(frame, "req_age"), np.nan)
    return out


def _categorical(frame: pl.DataFrame, req: str, meas: str, one: np.ndarray) -> tuple[list, list]:
    r, m = strs(frame, req), strs(frame, meas)
    pairs = [(a, b) for a, b, o in zip(r, m, one, strict=True) if o and a is not None and b is not None]
    return [a for a, _ in pairs], [b for _, b in pairs]


def _accuracy(req: list, meas: list) -> float | None:
    return None if not req else _r(sum(a == b for a, b in zip(req, meas, strict=True)) / len(req))


def _acceptance_by(frame: pl.DataFrame, column: str, names: tuple[str, ...], accepted: np.ndarray) -> dict:
    values = strs(frame, column)
    out = {}
    for name in names:
        within = np.array([v == name for v in values], bool)
        if within.any():
            out[name] = {"n": int(within.sum()), "rate": _rate(accepted, within)}
    return out


def controllability_report(table: pa.Table | pl.DataFrame) -> dict[str, Any]:
    """The report's numbers, as a JSON-able dict (see the module docstring for what each covers)."""
    frame = _frame(table)
    n = frame.height
    count = num(frame, "meas_face_count")
    one = count == 1
    accepted = (frame.get_column("accepted").fill_null(False).to_numpy().astype(bool)
                if "accepted" in frame.columns else np.ones(n, bool))
    head_yaw = num(frame, "req_head_yaw")
    frontal = np.abs(np.nan_to_num(head_yaw, nan=np.inf)) <= YAW_LIMIT
    everyone = np.ones(n, bool)
    errs = signed_errors(frame)

    report: dict[str, Any] = {
        "rows": n,
        "accepted": int(accepted.sum()),
        "acceptance_rate": _rate(accepted, everyone),
        "detection": {
            "one_face_rate": _rate(one, everyone),
            "no_face_rate": _rate(count == 0, everyone),
            "multiple_faces_rate": _rate(np.nan_to_num(count) > 1, everyone),
            "one_face_rate_head_yaw_le_30": _rate(one, frontal),
            "rows_head_yaw_le_30": int(frontal.sum()),
        },
    }
    for key in (*ANGLES, "gaze_angular", "age"):
        report[key] = error_stats(errs[key])
    age_req, age_meas = _categorical(frame, "req_age_group", "meas_age_group", one)
    report["age"]["group_accuracy"] = _accuracy(age_req, age_meas)
    g_req, g_meas = _categorical(frame, "req_gender", "meas_gender", one)
    report["gender"] = {"n": len(g_req), "accuracy": _accuracy(g_req, g_meas)}
    z_req, z_meas = _categorical(frame, "req_gaze_zone", "meas_gaze_zone", one & requested_eyes_open(frame))
    report["gaze_zone"] = {"n": len(z_req), "accuracy": _accuracy(z_req, z_meas)}
    report["expression"] = expression_stats(frame, one)
    reasons = frame.get_column("reject_reasons").to_list() if "reject_reasons" in frame.columns else [[]] * n
    by_reason: dict[str, int] = {}
    for rs in reasons:
        for r in rs or []:
            by_reason[r] = by_reason.get(r, 0) + 1
    report["acceptance"] = {
        "by_reason": dict(sorted(by_reason.items())),
        "by_age_group": _acceptance_by(frame, "req_age_group", AGE_GROUPS, accepted),
        "by_expression": _acceptance_by(frame, "req_expression", EXPRESSIONS, accepted),
        "by_gaze_zone": _acceptance_by(frame, "req_gaze_zone", GAZE_ZONES, accepted),
    }
    return report


def expression_stats(frame: pl.DataFrame, one: np.ndarray) -> dict[str, Any]:
    req, meas = _categorical(frame, "req_expression", "meas_expression", one)
    confusion = {r: {m: 0 for m in EXPRESSIONS} for r in EXPRESSIONS}
    for a, b in zip(req, meas, strict=True):
        if a in confusion and b in confusion[a]:
            confusion[a][b] += 1
    probs = frame.get_column("meas_expression_probs").to_list() if "meas_expression_probs" in frame.columns \
        else [None] * frame.height
    top2 = [EXPRESSIONS.index(r) in np.argsort(-np.asarray(p, float), kind="stable")[:2]
            for r, p, o in zip(strs(frame, "req_expression"), probs, one, strict=True)
            if o and r in EXPRESSIONS and p is not None and len(p) == len(EXPRESSIONS)]
    return {"n": len(req), "accuracy": _accuracy(req, meas),
            "top2_accuracy": None if not top2 else _r(float(np.mean(top2))),
            "confusion": {r: {m: c for m, c in row.items() if c} for r, row in confusion.items() if any(row.values())}}


def acceptance_bins(table: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Acceptance per (requested age group, expression, gaze zone) bin that holds rows."""
    frame = _frame(table)
    keys = [c for c in ("req_age_group", "req_expression", "req_gaze_zone") if c in frame.columns]
    if not keys or "accepted" not in frame.columns:
        return pl.DataFrame()
    return (frame.group_by(keys).agg(rows=pl.len(), accepted=pl.col("accepted").cast(pl.Int64).sum())
            .with_columns(rate=pl.col("accepted") / pl.col("rows")).sort(keys))


def _csv(df: pl.DataFrame, path: Path) -> None:
    write_text_atomic(path, df.write_csv())


def planned_vs_accepted(table: pa.Table | pl.DataFrame, attributes: Sequence[str]) -> dict[str, AttributeCoverage]:
    """Per attribute: the plan's distribution (rows of the plan itself, ``topup_round`` 0 or no
    such column) against the accepted rows' (plan and top-up rounds), over the requested values."""
    frame = _frame(table)
    if "accepted" not in frame.columns:
        return {}
    rounds = (frame.get_column("topup_round").to_numpy() if "topup_round" in frame.columns
              else np.zeros(frame.height, int))
    accepted = frame.get_column("accepted").to_list()
    out = {}
    for a in attributes:
        col = f"req_{a}"
        if col not in frame.columns:
            continue
        req = frame.get_column(col).to_list()
        out[a] = coverage(a, [v for v, r in zip(req, rounds, strict=True) if r == 0], req, accepted)
    return out


def coverage_section(cov: dict[str, AttributeCoverage], frame: pl.DataFrame) -> dict[str, Any]:
    """The report's ``planned_vs_accepted`` entry: JSD (bits) per attribute and the shares behind it."""
    rounds = frame.get_column("topup_round").to_numpy() if "topup_round" in frame.columns else np.zeros(frame.height)
    return {
        "jsd_base": JSD_BASE,
        "jsd": {a: round(c.jsd, 6) for a, c in cov.items()},
        "topup_rows": int((rounds > 0).sum()),
        "topup_rounds": int(rounds.max()) if frame.height else 0,
        "attributes": {a: c.as_dict() for a, c in cov.items()},
    }


def write_controllability(table: pa.Table | pl.DataFrame, metrics_file: Path, plots_dir: Path,
                          notes: list[str] | None = None,
                          coverage_attributes: Sequence[str] = ("age_group", "expression", "gaze_zone"),
                          ) -> dict[str, Any]:
    """Write ``metrics_file`` (JSON numbers for DVC metrics) and, under ``plots_dir``, CSV plot data
    and PNG plots. Returns the report."""
    frame = _frame(table)
    report = controllability_report(frame)
    cov = planned_vs_accepted(frame, coverage_attributes)
    if cov:
        report["planned_vs_accepted"] = coverage_section(cov, frame)
    write_json_atomic(metrics_file, report)
    plots_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(plots_dir / "notes.json", {"notes": notes or []})
    one = num(frame, "meas_face_count") == 1
    ids = strs(frame, "sample_id")
    for a in (*ANGLES, "age"):
        req, meas = num(frame, f"req_{a}"), num(frame, f"meas_{a}")
        keep = one & np.isfinite(req) & np.isfinite(meas)
        if a.startswith("gaze"):
            keep &= requested_eyes_open(frame)
        _csv(pl.DataFrame({"sample_id": [ids[i] for i in np.nonzero(keep)[0]],
                           "requested": req[keep], "measured": meas[keep]}), plots_dir / f"{a}.csv")
    e_req, e_meas = _categorical(frame, "req_expression", "meas_expression", one)
    _csv(pl.DataFrame({"requested": e_req, "measured": e_meas}, schema={"requested": pl.String, "measured": pl.String}),
         plots_dir / "expression.csv")
    _csv(pl.DataFrame({"reason": list(report["acceptance"]["by_reason"]),
                       "rows": list(report["acceptance"]["by_reason"].values())},
                      schema={"reason": pl.String, "rows": pl.Int64}), plots_dir / "reasons.csv")
    bins = acceptance_bins(frame)
    if bins.height:
        _csv(bins, plots_dir / "acceptance_bins.csv")
    if cov:
        rows = [(a, b, c.as_dict()["planned_share"][b], c.as_dict()["accepted_share"][b])  # type: ignore[index]
                for a, c in cov.items() for b in c.planned]
        _csv(pl.DataFrame(rows, schema={"attribute": pl.String, "bin": pl.String, "planned_share": pl.Float64,
                                        "accepted_share": pl.Float64}, orient="row"),
             plots_dir / "planned_vs_accepted.csv")
    _plots(frame, report, plots_dir)
    if cov:
        _coverage_plot(cov, plots_dir / "planned_vs_accepted.png")
    return report


def _coverage_plot(cov: dict[str, AttributeCoverage], path: Path) -> None:
    """Planned vs accepted shares per attribute, one panel each, JSD in the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from synthgen.balance import shares

    fig, axes = plt.subplots(1, len(cov), figsize=(4.5 * len(cov), 4), squeeze=False)
    for ax, (a, c) in zip(axes[0], cov.items(), strict=False):
        bins = [b for b in c.planned if c.planned[b] or c.accepted[b]]
        x = np.arange(len(bins))
        p, q = shares(c.planned), shares(c.accepted)
        ax.bar(x - 0.2, [p[b] for b in bins], 0.4, label="planned")
        ax.bar(x + 0.2, [q[b] for b in bins], 0.4, label="accepted")
        ax.set_xticks(x, bins, rotation=45, ha="right", fontsize=8)
        ax.set_title(f"{a}: JSD {c.jsd:.4f} bits")
        ax.set_ylabel("share")
    axes[0][0].legend()
    fig.tight_layout()
    _save(fig, path)


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def _plots(frame: pl.DataFrame, report: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    one = num(frame, "meas_face_count") == 1
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    for ax, a in zip(axes.ravel(), (*ANGLES, "age"), strict=False):
        req, meas = num(frame, f"req_{a}"), num(frame, f"meas_{a}")
        keep = one & np.isfinite(req) & np.isfinite(meas)
        ax.scatter(req[keep], meas[keep], s=8, alpha=0.6)
        lo = float(np.nanmin(np.r_[req[keep], meas[keep], 0.0]))
        hi = float(np.nanmax(np.r_[req[keep], meas[keep], 1.0]))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        st = report[a]
        ax.set_title(f"{a}: median |err| {st['median']}, n={st['n']}")
        ax.set_xlabel("requested")
        ax.set_ylabel("measured")
    fig.tight_layout()
    _save(fig, out / "requested_vs_measured.png")

    mat = np.array([[report["expression"]["confusion"].get(r, {}).get(m, 0) for m in EXPRESSIONS]
                    for r in EXPRESSIONS], float)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(mat, cmap="Blues")
    ax.set_xticks(range(len(EXPRESSIONS)), EXPRESSIONS, rotation=45, ha="right")
    ax.set_yticks(range(len(EXPRESSIONS)), EXPRESSIONS)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            if mat[i, j]:
                ax.text(j, i, str(int(mat[i, j])), ha="center", va="center", fontsize=8)
    ax.set_xlabel("measured")
    ax.set_ylabel("requested")
    ax.set_title(f"expression accuracy {report['expression']['accuracy']}")
    fig.tight_layout()
    _save(fig, out / "expression_confusion.png")

    reasons = report["acceptance"]["by_reason"]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh(list(reasons) or ["(none)"], list(reasons.values()) or [0])
    ax.set_xlabel("rows")
    ax.set_title(f"reject reasons ({report['accepted']}/{report['rows']} accepted)")
    fig.tight_layout()
    _save(fig, out / "reject_reasons.png")


# The card's "how well the labels read" table: (report section, figure, row label, unit).
AGREEMENT_FIGURES: tuple[tuple[str, str, str, str], ...] = (
    ("detection", "one_face_rate", "one face found", "share of rows"),
    ("head_yaw", "mae", "head yaw", "degrees, mean abs. error"),
    ("head_pitch", "mae", "head pitch", "degrees, mean abs. error"),
    ("head_roll", "mae", "head roll", "degrees, mean abs. error"),
    ("gaze_yaw", "mae", "gaze yaw", "degrees, mean abs. error"),
    ("gaze_pitch", "mae", "gaze pitch", "degrees, mean abs. error"),
    ("gaze_pitch", "bias", "gaze pitch bias", "degrees, measured minus requested"),
    ("gaze_zone", "accuracy", "gaze zone", "share read as requested"),
    ("age", "mae", "age", "years, mean abs. error"),
    ("age", "group_accuracy", "age group", "share read as requested"),
    ("gender", "accuracy", "gender", "share read as requested"),
    ("expression", "accuracy", "expression", "share read as requested (top 1)"),
)


def label_agreement(report: dict[str, Any]) -> dict[str, Any]:
    """How far the offline models' readings (``meas_*``) agree with what was requested (``req_*``)
    over every labelled row, before curation: the figures of AGREEMENT_FIGURES that the report
    has, with the rows each was computed on. Why on the card: the requested columns are exact
    (what was drawn), the measured ones are model readings, and a user choosing which to train
    on needs to know how far apart they are in this version, not in a table in the docs."""
    rows = []
    for section, figure, label, unit in AGREEMENT_FIGURES:
        part = report.get(section) or {}
        value = part.get(figure)
        if isinstance(value, (int, float)) and np.isfinite(value):
            rows.append({"what": label, "unit": unit, "value": float(value),
                         "rows": int(part.get("n", report.get("rows", 0)))})
    return {"rows": int(report.get("rows", 0)), "figures": rows} if rows else {}

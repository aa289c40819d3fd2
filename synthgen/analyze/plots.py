"""Figures of the report, drawn from an AnalysisResult (no data access), returned as PNG bytes so the
HTML report can inline them and stay a single self-contained file."""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from synthgen.analyze.result import AnalysisResult

REAL, SYNTH = "#1f77b4", "#ff7f0e"


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _share(counts: list[int]) -> np.ndarray:
    c = np.asarray(counts, float)
    return c / c.sum() if c.sum() > 0 else c


def attribute_figure(dist: dict[str, Any]) -> bytes | None:
    """Overlaid histograms (continuous) or grouped bars (categorical), as shares of each side."""
    if not dist.get("bins"):
        return None
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    r, s = _share(dist["real_counts"]), _share(dist["synth_counts"])
    if dist["kind"] == "categorical":
        x = np.arange(len(dist["bins"]))
        ax.bar(x - 0.2, r, 0.4, color=REAL, label="real")
        ax.bar(x + 0.2, s, 0.4, color=SYNTH, label="synthetic")
        ax.set_xticks(x, dist["bins"], rotation=40, ha="right", fontsize=8)
    else:
        edges = np.asarray(dist["bins"])
        ax.stairs(r, edges, fill=True, alpha=0.45, color=REAL, label="real")
        ax.stairs(s, edges, fill=True, alpha=0.45, color=SYNTH, label="synthetic")
    ax.set_title(dist["attribute"])
    ax.set_ylabel("share")
    ax.legend(fontsize=8)
    return _png(fig)


GAZE_MEANING = ("Share of each side's rows per 5\u00b0 gaze bin (camera frame: + yaw = image left, + pitch = up); "
                "mass on one panel only is gaze the other side lacks.")


def gaze_density_figure(res: AnalysisResult) -> bytes | None:
    """Joint gaze yaw x pitch density, synthetic and real side by side. The 1-D histograms hide
    combinations (e.g. far left and down) that the planner must cover, so the joint bins are drawn.
    Shares, not counts, share one colour scale because the two sides differ in size; a side without
    gaze labels is left out (the report states why) and the other is drawn alone."""
    g = res.info.get("gaze_density")
    if not g:
        return None
    sides = [(name, g[name]) for name in ("synthetic", "real") if g[name].get("counts")]
    if not sides:
        return None
    ye, pe = np.asarray(g["yaw_edges"]), np.asarray(g["pitch_edges"])
    shares = {name: np.asarray(d["counts"], float) / d["n"] for name, d in sides}
    # zoom on the occupied bins (one bin of margin), the same window on both panels
    occupied = np.any([s > 0 for s in shares.values()], axis=0)
    iy, ip = np.nonzero(occupied.any(axis=1))[0], np.nonzero(occupied.any(axis=0))[0]
    ylim = (ye[max(iy[0] - 1, 0)], ye[min(iy[-1] + 2, ye.size - 1)])
    plim = (pe[max(ip[0] - 1, 0)], pe[min(ip[-1] + 2, pe.size - 1)])
    vmax = max(float(s.max()) for s in shares.values())
    fig, axes = plt.subplots(1, len(sides), figsize=(4.6 * len(sides) + 1.2, 3.4), sharex=True, sharey=True, squeeze=False)
    mesh = None
    for ax, (name, d) in zip(axes[0], sides, strict=False):
        masked = np.ma.masked_equal(shares[name].T, 0.0)  # empty bins stay blank, not the lowest colour
        mesh = ax.pcolormesh(ye, pe, masked, cmap="viridis", vmin=0.0, vmax=vmax, shading="flat")
        ax.set_facecolor("#f4f4f4")
        ax.set_xlim(*ylim)
        ax.set_ylim(*plim)
        ax.set_aspect("equal")  # a degree is a degree on both axes: blobs keep their true shape
        ax.set_title(f"{name} (n={d['n']})", color=SYNTH if name == "synthetic" else REAL)
        ax.set_xlabel("gaze yaw (deg, + = image left)")
        ax.grid(color="white", lw=0.4, alpha=0.6)
    axes[0][0].set_ylabel("gaze pitch (deg, + = up)")
    if mesh is not None:
        fig.colorbar(mesh, ax=list(axes[0]), label="share of side's rows per bin")
    return _png(fig)


def coverage_figure(res: AnalysisResult) -> bytes | None:
    """Heat map of synthetic/real count ratio over the first two coverage attributes (summed over the rest)."""
    cov = res.coverage
    attrs = cov.get("attributes") or []
    if len(attrs) < 1 or not cov.get("bins"):
        return None
    from synthgen.analyze.attributes import CATEGORIES

    a0 = attrs[0]
    a1 = attrs[1] if len(attrs) > 1 else None
    rows, cols = list(CATEGORIES[a0]), list(CATEGORIES[a1]) if a1 else ["all"]
    real = np.zeros((len(rows), len(cols)))
    synth = np.zeros_like(real)
    for b, rc, sc in zip(cov["bins"], cov["real_counts"], cov["synth_counts"], strict=True):
        i = rows.index(b[0])
        j = cols.index(b[1]) if a1 else 0
        real[i, j] += rc
        synth[i, j] += sc
    rs, ss = real / max(real.sum(), 1), synth / max(synth.sum(), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(rs > 0, np.log2((ss + 1e-3) / rs), np.nan)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    im = ax.imshow(np.clip(ratio, -5, 5), cmap="RdBu", vmin=-5, vmax=5, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(cols)):
            if real[i, j] or synth[i, j]:
                ax.text(j, i, f"{int(synth[i, j])}/{int(real[i, j])}", ha="center", va="center", fontsize=6)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xticks(range(len(cols)), cols, rotation=40, ha="right", fontsize=8)
    ax.set_ylabel(a0)
    if a1:
        ax.set_xlabel(a1)
    fig.colorbar(im, ax=ax, label="log2 synthetic/real share")
    ax.set_title("coverage: synthetic/real counts per bin (blank: not in real)")
    return _png(fig)


def projection_figure(res: AnalysisResult) -> bytes | None:
    p = res.info.get("projection")
    if not p:
        return None
    x, y, src = np.asarray(p["x"]), np.asarray(p["y"]), np.asarray(p["source"])
    fig, ax = plt.subplots(figsize=(5, 4))
    for name, col in (("synthetic", SYNTH), ("real", REAL)):
        m = src == name
        ax.scatter(x[m], y[m], s=6, alpha=0.6, color=col, label=f"{name} ({int(m.sum())})")
    ax.set_title(f"embeddings, {p['method']} 2-D projection")
    ax.legend(fontsize=8)
    return _png(fig)


def image_grid(images: list[np.ndarray], captions: list[str], cols: int = 8) -> bytes | None:
    if not images:
        return None
    rows = (len(images) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, im, cap in zip(axes.ravel(), images, captions, strict=False):
        ax.imshow(im)
        ax.set_title(cap, fontsize=6)
    return _png(fig)

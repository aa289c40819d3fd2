"""The self-contained HTML report: every figure inlined as base64 PNG, no script, no external link,
so it opens offline and can be attached or archived as one file."""

from __future__ import annotations

import base64
import html
from typing import Any

from synthgen.analyze import plots
from synthgen.analyze.result import AnalysisResult, MetricValue

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4} td.num{text-align:right;font-variant-numeric:tabular-nums}
.na{color:#a33} .demo{background:#fff3cd;border:1px solid #e0c060;padding:10px;margin:12px 0}
.grid{display:flex;flex-wrap:wrap;gap:8px} .grid img{max-width:100%} .muted{color:#666;font-size:12px}
"""


def _img(png: bytes | None, alt: str) -> str:
    if png is None:
        return f'<p class="muted">{html.escape(alt)}: nothing to draw.</p>'
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def metrics_table(metrics: list[MetricValue]) -> str:
    rows = []
    for m in metrics:
        extra = ", ".join(f"{k}={_fmt(v)}" for k, v in m.extra.items())
        if m.value is None:
            val = '<span class="na">not computable</span>'
            note = f'<span class="na">{html.escape(m.reason or "")}</span>'
        else:
            val, note = _fmt(m.value), html.escape(m.meaning)
        rows.append(f"<tr><td>{html.escape(m.scope)}</td><td>{html.escape(m.name)}</td>"
                    f'<td class="num">{val}</td><td>{extra}</td><td>{note}</td></tr>')
    return ("<table><tr><th>scope</th><th>metric</th><th>value</th><th>details</th><th>meaning</th></tr>"
            + "".join(rows) + "</table>")


def gaps_table(gaps: dict[str, Any], limit: int = 25) -> str:
    bins = gaps.get("bins", [])
    if not bins:
        return '<p class="muted">No under-covered bin.</p>'
    attrs = gaps.get("attributes", [])
    head = "".join(f"<th>{html.escape(a)}</th>" for a in attrs)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(b['key'].get(a, '')))}</td>" for a in attrs)
        + f'<td class="num">{b["real_count"]}</td><td class="num">{b["synthetic_count"]}</td>'
        f'<td class="num">{b["target"]:.1f}</td><td class="num">{b["needed"]}</td></tr>'
        for b in bins[:limit]
    )
    more = f'<p class="muted">{len(bins) - limit} more in gaps.json.</p>' if len(bins) > limit else ""
    return (f"<table><tr>{head}<th>real</th><th>synthetic</th><th>target</th><th>needed</th></tr>{body}</table>{more}"
            f"<p>Total synthetic samples needed: <b>{gaps.get('total_needed', 0)}</b>.</p>")


def gaze_density_section(res: AnalysisResult) -> str:
    """The joint gaze figure, its one-line meaning, and a "not computable" note per side without gaze
    labels (the demo reference has none), so a one-sided figure is never mistaken for a comparison."""
    g = res.info.get("gaze_density") or {}
    notes = "".join(
        f'<p class="na">{side} gaze density not computable: {html.escape(g[side].get("reason") or "no gaze labels")}</p>'
        for side in ("synthetic", "real") if side in g and not g[side].get("counts")
    )
    if not g:
        notes = '<p class="na">gaze density not computable: this analysis result holds no joint gaze counts</p>'
    png = plots.gaze_density_figure(res)
    meaning = plots.GAZE_MEANING if not notes else plots.GAZE_MEANING.split(";")[0] + "; no comparison without the other side."
    body = (_img(png, "gaze yaw/pitch density") + f'<p class="muted">{html.escape(meaning)}</p>') if png else ""
    return f'<section id="gaze-density"><h3>Gaze yaw / pitch density</h3>{body}{notes}</section>'


def planned_vs_accepted_section(res: AnalysisResult) -> str:
    """How far curation moved the data set from its plan: JSD (bits) per attribute between the
    plan's requested shares and the accepted rows' (from the published manifest)."""
    cov = res.info.get("planned_vs_accepted")
    if not cov:
        return ""
    rows = "".join(
        f"<tr><td>{html.escape(a)}</td><td>{_fmt(j)}</td><td>"
        + ", ".join(f"{html.escape(b)} {100 * p:.0f}% &rarr; {100 * cov['attributes'][a]['accepted_share'].get(b, 0.0):.0f}%"
                    for b, p in cov["attributes"][a]["planned_share"].items() if p)
        + "</td></tr>"
        for a, j in cov["jsd"].items())
    topup = cov.get("topup_rows", 0)
    return ('<section id="planned-vs-accepted"><h2>Planned vs accepted</h2>'
            f'<p>Jensen-Shannon divergence, base {cov.get("jsd_base", 2)} (bits; 0 = the accepted rows keep the '
            f"plan's shares). Top-up rows: <b>{topup}</b> in {cov.get('topup_rounds', 0)} round(s).</p>"
            f"<table><tr><th>attribute</th><th>JSD (bits)</th><th>planned &rarr; accepted share</th></tr>{rows}</table>"
            "</section>")


def render_report(res: AnalysisResult, grids: dict[str, bytes | None] | None = None) -> str:
    info = res.info
    grids = grids or {}
    demo = ""
    if info.get("demo"):
        demo = ('<div class="demo"><b>DEMO reference.</b> The real side is the small offline demo set '
                "(107 face photos shipped inside scikit-image and insightface: astronaut, 100 LFW faces, "
                "a group photo). It is neither in-cabin nor large: use these numbers to check the pipeline, "
                "not to judge the data set. Import real data with <code>synthgen real import-*</code> and set "
                "<code>analyze.reference</code>.</div>")
    overall = [m for m in res.metrics if m.scope in ("overall", "coverage")]
    per_bin = [m for m in res.metrics if "=" in m.scope]
    attrs = [m for m in res.metrics if m.scope.startswith("attr.")]
    cov = res.coverage
    dropped = "".join(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in cov.get("dropped", {}).items())
    emb = info.get("embedding", {})
    attr_imgs = "".join(_img(plots.attribute_figure(d), f"{a} distribution") for a, d in res.distributions.items() if d.get("bins"))
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>synthgen shift report</title><style>{CSS}</style></head><body>",
        "<h1>Synthetic vs real: distribution shift</h1>",
        demo,
        f"<p>Synthetic rows: <b>{info.get('n_synthetic')}</b> &middot; real rows: <b>{info.get('n_real')}</b> "
        f"(reference: {html.escape(str(info.get('reference')))}) &middot; features: <b>{html.escape(str(info.get('features')))}</b>"
        f" ({emb.get('n_real', 0)} real / {emb.get('n_synthetic', 0)} synthetic with features, dim {emb.get('dim', '-')})"
        f" &middot; synthetic attributes from: {html.escape(str(info.get('synthetic_columns')))}</p>",
        "<h2>Summary metrics</h2>", metrics_table(overall),
        planned_vs_accepted_section(res),
        "<h2>Attributes</h2>", metrics_table(attrs),
        f'<div class="grid">{attr_imgs}</div>',
        gaze_density_section(res),
        "<h2>Joint coverage</h2>",
        f"<p>Bins over: <b>{' x '.join(cov.get('attributes', [])) or 'none'}</b>. "
        f"Real-only bins: {len(cov.get('real_only', []))}; synthetic-only bins: {len(cov.get('synth_only', []))}.</p>",
        f"<ul>{dropped}</ul>" if dropped else "",
        _img(plots.coverage_figure(res), "coverage heat map"),
        "<h3>Under-covered bins (gaps.json, input of plan.mode: targeted)</h3>", gaps_table(res.gaps),
        "<h3>Real samples from the least-covered bins</h3>", _img(grids.get("least_covered"), "least-covered bins"),
        "<h2>Embeddings</h2>", _img(plots.projection_figure(res), "2-D projection"),
        "<h3>Most synthetic-looking samples (domain classifier)</h3>", _img(grids.get("most_synthetic"), "most synthetic-looking"),
        "<h3>Per bin</h3>", metrics_table(per_bin) if per_bin else '<p class="muted">No per-bin metrics.</p>',
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p)

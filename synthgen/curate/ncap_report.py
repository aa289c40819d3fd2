"""The Euro NCAP coverage report of a curated run: planned, rendered and accepted rows per cell of
the driver-monitoring matrix (synthgen.ncap), as JSON, an HTML section and a DVC metrics file.

Why in curate: it is the first stage that knows all three counts (the plan, the rows that were
rendered and labelled, and the accepted ones)."""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from synthgen import ncap
from synthgen.io import atomic_path

logger = logging.getLogger(__name__)


def html_section(m: Mapping[str, Any], max_rows: int = 400) -> str:
    """An HTML ``<section>`` (embeddable in any report): the fill summary, counts per value of each
    dimension, and the cells, unfilled first."""
    esc = html.escape
    parts = [f"<section id='ncap-coverage'><h2>Euro NCAP driver-monitoring coverage</h2>"
             f"<p>{m['cells_filled']} of {m['n_cells']} cells have at least {m['min_count']} accepted rows "
             f"({100 * m['fraction_filled']:.1f}%). Dimensions: {esc(' x '.join(m['dimensions']))}.</p>"]
    for d in m["dimensions"]:
        tot: dict[str, list[int]] = {}
        for c in m["cells"]:
            t = tot.setdefault(str(c[d]), [0, 0, 0])
            t[0] += c["planned"]
            t[1] += c["rendered"]
            t[2] += c["accepted"]
        rows = "".join(f"<tr><td>{esc(k)}</td><td>{v[0]}</td><td>{v[1]}</td><td>{v[2]}</td></tr>"
                       for k, v in sorted(tot.items()))
        parts.append(f"<h3>{esc(d)}</h3><table><tr><th>value</th><th>planned</th><th>rendered</th>"
                     f"<th>accepted</th></tr>{rows}</table>")
    cells = sorted(m["cells"], key=lambda c: (c["accepted"] >= m["min_count"], c["accepted"]))
    head = "".join(f"<th>{esc(d)}</th>" for d in m["dimensions"])
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c[d]))}</td>" for d in m["dimensions"])
                   + f"<td>{c['planned']}</td><td>{c['rendered']}</td><td>{c['accepted']}</td></tr>"
                   for c in cells[:max_rows])
    more = f"<p>{len(cells) - max_rows} more cells in ncap_coverage.json</p>" if len(cells) > max_rows else ""
    parts.append(f"<h3>cells</h3><table><tr>{head}<th>planned</th><th>rendered</th><th>accepted</th></tr>"
                 f"{body}</table>{more}</section>")
    return "".join(parts)


def write_ncap_report(planned: Iterable[Mapping[str, Any]], rendered: Sequence[Mapping[str, Any]],
                      accepted_mask: list[bool], out_dir: Path, cells: Iterable[tuple[Any, ...]] = (),
                      min_count: int = 1) -> dict[str, Any]:
    """Write ``ncap_coverage.json``, ``ncap_coverage.html`` and ``ncap_metrics.json`` to ``out_dir``."""
    m = ncap.matrix(planned, rendered, [r for r, a in zip(rendered, accepted_mask, strict=True) if a], cells, min_count)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = {"n_cells": m["n_cells"], "cells_filled": m["cells_filled"], "fraction_filled": m["fraction_filled"],
               "planned": sum(c["planned"] for c in m["cells"]), "rendered": sum(c["rendered"] for c in m["cells"]),
               "accepted": sum(c["accepted"] for c in m["cells"])}
    page = ("<!doctype html><meta charset='utf-8'><title>Euro NCAP coverage</title><style>table{border-collapse:"
            "collapse;font:12px sans-serif}td,th{border:1px solid #ccc;padding:2px 6px}</style>" + html_section(m))
    for name, text in (("ncap_coverage.json", json.dumps(m, indent=1, default=str)),
                       ("ncap_coverage.html", page), ("ncap_metrics.json", json.dumps(metrics, indent=2))):
        with atomic_path(out_dir / name) as tmp:
            Path(tmp).write_text(text)
    logger.info("ncap coverage: %d/%d cells filled", m["cells_filled"], m["n_cells"])
    return m

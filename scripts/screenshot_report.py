"""Render an analyze report in headless Chromium and save a full-page screenshot.

    .venv/bin/python scripts/screenshot_report.py [REPORT.html] --out report.png

Without a report path, a sample report is built from generated feature tables (no models needed),
so the layout can be checked on any machine with Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa


def sample_report(folder: Path) -> Path:
    from synthgen.analyze.compare import analyze_tables
    from synthgen.analyze.config import AnalyzeParams
    from synthgen.analyze.report import render_report
    from synthgen.io import write_text_atomic
    from synthgen.vocab import EXPRESSIONS, age_group

    rng = np.random.default_rng(0)

    def table(n: int, real: bool) -> pa.Table:
        ages = rng.uniform(15, 80, n) if real else rng.uniform(20, 55, n)
        p = "meas" if real else "req"
        cols = {
            "sample_id": [f"{'r' if real else 's'}{i}" for i in range(n)],
            f"{p}_age": ages, f"{p}_age_group": [age_group(a) for a in ages],
            f"{p}_expression": rng.choice(EXPRESSIONS if real else EXPRESSIONS[:4], n).tolist(),
            f"{p}_gaze_yaw": rng.normal(10 if real else 0, 20, n), f"{p}_gaze_pitch": rng.normal(0, 10, n),
            "meas_identity_embedding": pa.array(list(rng.normal(0 if real else 0.3, 1, (n, 32)).astype(np.float32)),
                                                pa.list_(pa.float32())),
        }
        return pa.table(cols)

    ap = AnalyzeParams(kid_subsets=10, kid_subset_size=200, bootstrap=50, coverage_attributes=["age_group", "expression", "gaze_zone"])
    res = analyze_tables(table(600, False), table(300, True), ap, seed=0, reference_name="sample", demo=True)
    return write_text_atomic(folder / "report.html", render_report(res))


def screenshot(report: Path, out: Path, width: int = 1280, height: int = 6000) -> Path:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        sys.exit("chromium not found: apt-get install -y chromium")
    cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           f"--window-size={width},{height}", f"--screenshot={out.resolve()}", report.resolve().as_uri()]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("report", nargs="?", type=Path)
    ap.add_argument("--out", type=Path, default=Path("report.png"))
    ap.add_argument("--height", type=int, default=6000)
    a = ap.parse_args()
    report = a.report or sample_report(Path(tempfile.mkdtemp(prefix="synthgen-report-")))
    print(screenshot(report, a.out, height=a.height))


if __name__ == "__main__":
    main()

"""DVC drives the same stage functions: `dvc repro` builds the dataset in a fresh git repo, a
changed generation param re-runs generation and what follows (nothing upstream), and a no-op
repro does nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.slow


def _run(cmd: list[str], cwd: Path) -> str:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{cmd} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout + r.stderr


def _project(tmp_path: Path, stages: list[str]) -> Path:
    """A fresh git+DVC project with synthgen's dvc.yaml restricted to ``stages`` and tiny params."""
    proj = tmp_path / "proj"
    proj.mkdir()
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    spec["stages"] = {k: v for k, v in spec["stages"].items() if k in stages}
    if "publish" in spec["stages"] and "curate" not in stages:
        pub = spec["stages"]["publish"]
        pub["cmd"] = "synthgen publish --from generated"
        pub["deps"] = ["${data_dir}/work/${dataset.name}/generated"]
    (proj / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["plan"].update(n=6, shard_size=3, identities=3)
    params["generate"].update(width=96, height=96, workers=1)
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["git", "init", "-q"], proj)
    _run(["git", "config", "user.email", "ci@example.invalid"], proj)
    _run(["git", "config", "user.name", "ci"], proj)
    _run([sys.executable, "-m", "dvc", "init", "-q"], proj)
    return proj


def test_repro_builds_and_reruns_only_downstream(tmp_path: Path) -> None:
    proj = _project(tmp_path, ["plan", "generate", "publish"])
    out = _run([sys.executable, "-m", "dvc", "repro"], proj)
    assert "Running stage 'plan'" in out and "Running stage 'publish'" in out
    ds = proj / "data" / "datasets" / "incabin-faces"
    assert len(list(ds.rglob("*.parquet"))) >= 2
    plan_mtime = (proj / "data/work/incabin-faces/plan.parquet").stat().st_mtime_ns

    out = _run([sys.executable, "-m", "dvc", "repro"], proj)
    assert "Running stage" not in out

    params = yaml.safe_load((proj / "params.yaml").read_text())
    params["generate"]["width"] = 64
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _run([sys.executable, "-m", "dvc", "repro"], proj)
    assert "Running stage 'generate'" in out and "Running stage 'publish'" in out
    assert "Running stage 'plan'" not in out
    assert (proj / "data/work/incabin-faces/plan.parquet").stat().st_mtime_ns == plan_mtime
    import polars as pl

    widths = pl.scan_parquet(str(ds / "**/*.parquet"), hive_partitioning=True).select("width").collect()
    assert set(widths["width"]) == {64}
    # the version folder follows the params: only the new one is present
    assert len([d for d in ds.iterdir() if d.name.startswith("version=")]) == 1


@pytest.mark.slow
def test_repro_with_topup_is_stable(tmp_path: Path) -> None:
    """The curate stage runs the top-up rounds; their folder is its output, so a second repro
    finds nothing to do and `dvc status` reports no changed stage (the plan/generate/label
    outputs are never written by curate)."""
    proj = _project(tmp_path, ["plan", "generate", "label", "curate", "publish"])
    out = _run([sys.executable, "-m", "dvc", "repro"], proj)
    assert "Running stage 'curate'" in out
    work = proj / "data/work/incabin-faces"
    assert (work / "topup").is_dir()
    out = _run([sys.executable, "-m", "dvc", "repro"], proj)
    assert "Running stage" not in out
    status = _run([sys.executable, "-m", "dvc", "status"], proj)
    assert "changed" not in status and "modified" not in status, status

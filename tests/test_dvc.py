"""DVC drives the same stage functions: `dvc repro` builds the dataset in a fresh git repo, a
changed generation param re-runs generation and what follows (nothing upstream), and a no-op
repro does nothing."""

from __future__ import annotations

import json
import os
import shutil
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


def _flow_project(tmp_path: Path) -> Path:
    """A git+DVC project with synthgen's dvc.yaml, .gitignore and commented params.yaml, made tiny."""
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    (proj / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    text = (ROOT / "params.yaml").read_text()
    # curation keeps every labelled row, so that training gets a batch of more than one row
    for old, new in (("  n: 300 ", "  n: 8 "), ("  identities: 60 ", "  identities: 4 "),

                     ("  shard_size: 100 ", "  shard_size: 3 "), ("  width: 256", "  width: 96"),
                     ("  height: 256", "  height: 96"), ("  workers: 0 ", "  workers: 1 "),
                     ("  backbone: resnet18 ", "  backbone: resnet10t "), ("  image_size: 112", "  image_size: 32"),
                     ("  epochs: 5", "  epochs: 1")):
        assert old in text, old
        text = text.replace(old, new)
    import re

    text, n = re.subn(r"^  filters: \[.*\]", "  filters: [label_error]", text, flags=re.M)
    assert n == 1
    (proj / "params.yaml").write_text(text)
    _run(["git", "init", "-q"], proj)
    _run(["git", "config", "user.email", "ci@example.invalid"], proj)
    _run(["git", "config", "user.name", "ci"], proj)
    _run([sys.executable, "-m", "dvc", "init", "-q"], proj)
    return proj


@pytest.fixture(scope="module")
def main_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished main job (`synthgen run` on the tiny project): tests that start from it get
    their own copy (``_copy``), so the job runs once per module instead of once per test."""
    proj = _flow_project(tmp_path_factory.mktemp("main_job"))
    r = _cli(proj, "run")
    assert r.returncode == 0, r.stdout + r.stderr
    return proj


def _copy(proj: Path, tmp_path: Path) -> Path:
    """A copy of a project (git, DVC cache and outputs, timestamps kept) to change freely."""
    dst = tmp_path / "proj"
    shutil.copytree(proj, dst, symlinks=True)
    return dst


def _cli(proj: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
    return subprocess.run([sys.executable, "-m", "synthgen", *args], cwd=proj, env=env,
                          capture_output=True, text=True, timeout=900)


def _published_rows(proj: Path) -> int:
    import polars as pl

    import synthgen.query as q

    return q.scan("incabin-faces", proj / "data").select(pl.len()).collect().item()


def test_run_with_overrides_records_only_the_params_it_used(tmp_path: Path) -> None:
    """`synthgen run --set plan.n=4`: dvc.lock must not claim params.yaml's n=6. Without
    --save-params the run is not recorded (and says why); with it params.yaml gets n=4 (comments
    kept), and dvc.lock and `dvc status` agree with the 4 rows produced."""
    proj = _flow_project(tmp_path)
    r = _cli(proj, "run", "--set", "plan.n=4", "--no-analyze", "--no-train")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "not recorded in dvc.lock" in r.stderr and "plan.n: used 4, params.yaml 8" in r.stderr
    assert not (proj / "dvc.lock").exists()
    assert not (proj / "metrics").exists()  # nor metrics: they would disagree with the record
    assert _published_rows(proj) == 4

    r = _cli(proj, "run", "--set", "plan.n=4", "--no-analyze", "--no-train", "--save-params")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "not recorded" not in r.stderr
    params_text = (proj / "params.yaml").read_text()
    assert yaml.safe_load(params_text)["plan"]["n"] == 4
    assert "# images" in params_text and "# synthgen parameters." in params_text  # comments kept
    lock = yaml.safe_load((proj / "dvc.lock").read_text())
    assert lock["stages"]["plan"]["params"]["params.yaml"]["plan"]["n"] == 4
    stages = ["plan", "generate", "label", "curate", "publish"]
    status = _run([sys.executable, "-m", "dvc", "status", *stages], proj)
    assert "up to date" in status and "changed" not in status, status
    assert _published_rows(proj) == 4
    assert json.loads((proj / "metrics" / "curate.json").read_text())["rows"] == 4


def test_main_job_leaves_dvc_clean_with_metrics_and_plots_in_git(main_job: Path, tmp_path: Path) -> None:
    """The main job (analysis and training included) leaves `dvc status` clean; the DVC metrics
    are small files in git that `dvc metrics show` reads, and `dvc plots show` needs no network."""
    proj = _copy(main_job, tmp_path)
    status = _run([sys.executable, "-m", "dvc", "status"], proj)
    assert "Data and pipelines are up to date" in status, status

    for name in ("curate.json", "shift.json", "train.json"):
        f = proj / "metrics" / name
        assert f.stat().st_size < 4096, name
        assert json.loads(f.read_text()), name
    assert json.loads((proj / "metrics/curate.json").read_text())["rows"] == 8
    # kept in git: not ignored, and `dvc metrics diff` against the commit compares real numbers
    ignored = subprocess.run(["git", "check-ignore", "-q", "metrics/curate.json"], cwd=proj).returncode == 0
    assert not ignored
    _run(["git", "add", "-A"], proj)
    _run(["git", "commit", "-qm", "v1"], proj)
    shown = _run([sys.executable, "-m", "dvc", "metrics", "show"], proj)
    assert "metrics/curate.json" in shown and "acceptance_rate" in shown
    header = shown.splitlines()[0].split()
    assert header[0] == "Path" and 10 <= len(header) <= 25, header  # headline numbers, not 300 columns
    diff = _run([sys.executable, "-m", "dvc", "metrics", "diff", "HEAD", "--all"], proj)
    assert "metrics/curate.json" in diff and "acceptance_rate" in diff

    _run([sys.executable, "-m", "dvc", "plots", "show"], proj)
    page = (proj / "dvc_plots" / "index.html").read_text()
    assert "<img" in page and "cdn." not in page and "https://" not in page
    assert subprocess.run(["git", "check-ignore", "-q", "dvc_plots/index.html"], cwd=proj).returncode == 0
    # the old versions' outputs come back: checkout after a clean commit has nothing to refuse
    _run([sys.executable, "-m", "dvc", "checkout"], proj)


def test_every_tagged_version_is_pushed_and_pulled(tmp_path: Path) -> None:
    """Sharing every version: each tag's commit holds its dvc.lock (dvc.lock is not tracked by
    default, and `dvc push -A` / `--all-tags` push what the committed locks name). A tag on a
    commit without the lock pushes nothing, which is what made an older version unpullable."""
    proj = _project(tmp_path, ["plan", "generate", "publish"])
    remote = tmp_path / "remote"
    _run([sys.executable, "-m", "dvc", "remote", "add", "-d", "store", str(remote)], proj)
    _run(["git", "add", "-A"], proj)
    _run(["git", "commit", "-qm", "project"], proj)
    versions = []
    for width in (96, 64):
        params = yaml.safe_load((proj / "params.yaml").read_text())
        params["generate"]["width"] = width
        (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        _run([sys.executable, "-m", "dvc", "repro"], proj)
        v = next((proj / "data/datasets/incabin-faces").glob("version=*")).name
        versions.append(v)
        _run(["git", "add", "dvc.lock", "params.yaml"], proj)
        _run(["git", "commit", "-qm", f"dataset {v}"], proj)
        _run(["git", "tag", f"dataset/incabin-faces/{v}"], proj)
    assert versions[0] != versions[1]
    _run([sys.executable, "-m", "dvc", "push", "--all-tags"], proj)

    clone = tmp_path / "clone"
    _run(["git", "clone", "-q", str(proj), str(clone)], tmp_path)
    for v in versions:
        _run(["git", "checkout", "-q", f"dataset/incabin-faces/{v}"], clone)
        _run([sys.executable, "-m", "dvc", "pull"], clone)
        got = [d.name for d in (clone / "data/datasets/incabin-faces").glob("version=*")]
        assert got == [v]
        assert _published_rows(clone) == 6


def test_event_triggered_training_is_recorded(tmp_path: Path) -> None:
    """`synthgen run --no-train` leaves `train` pending; the train flow (what the published event
    starts under `synthgen serve`) trains and records its stage, so `dvc status` is clean and a
    later `dvc checkout` knows the model files."""
    proj = _flow_project(tmp_path)
    r = _cli(proj, "run", "--no-train", "--no-analyze")
    assert r.returncode == 0, r.stdout + r.stderr
    status = _run([sys.executable, "-m", "dvc", "status", "train"], proj)
    assert "changed" in status, status
    version = next((proj / "data/datasets/incabin-faces").glob("version=*")).name.removeprefix("version=")
    code = ("import json, sys; from flows.runtime import prefect_api; from flows.train_flow import train_flow\n"
            "with prefect_api():\n"
            f"    s = train_flow('params.yaml', {version!r}, {str(proj)!r})\n"
            "print(json.dumps(s['recorded']))")
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    t = subprocess.run([sys.executable, "-c", code], cwd=proj, env=env, capture_output=True, text=True, timeout=900)
    assert t.returncode == 0, t.stdout + t.stderr
    assert json.loads(t.stdout.strip().splitlines()[-1])["dvc_committed"] == ["train"]
    status = _run([sys.executable, "-m", "dvc", "status", "train"], proj)
    assert "up to date" in status and "changed" not in status, status
    assert json.loads((proj / "metrics/train.json").read_text())
    _run([sys.executable, "-m", "dvc", "checkout", "train"], proj)  # (analyze never ran here)


def test_training_grid_runs_as_queued_dvc_experiments(main_job: Path, tmp_path: Path) -> None:
    """docs/training.md's grid: after the main job (its dvc.lock committed), queued `dvc exp run`
    cells with `-S` overrides train from the cached dataset in DVC's temporary copies, and
    `dvc exp show` lists each cell with its params and its own training metrics."""
    proj = _copy(main_job, tmp_path)
    _run(["git", "add", "-A"], proj)
    _run(["git", "commit", "-qm", "main job"], proj)
    dvc = [sys.executable, "-m", "dvc"]
    _run([*dvc, "exp", "run", "--queue", "-S", "train.adaptation=linear,lora"], proj)
    _run([*dvc, "exp", "run", "--run-all", "-j", "1"], proj)
    queue = _run([*dvc, "queue", "status"], proj)
    assert queue.count("Success") == 2, queue
    shown = json.loads(_run([*dvc, "exp", "show", "--json"], proj))
    cells = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs") or []:
                data = rev.get("data") or {}
                adaptation = data["params"]["params.yaml"]["data"]["train"]["adaptation"]
                cells[adaptation] = data["metrics"]["metrics/train.json"]["data"]
    assert set(cells) == {"linear", "lora"}, shown
    for metrics in cells.values():
        assert metrics and all(isinstance(v, (int, float)) for v in metrics.values())
    # the workspace's own run is untouched: the experiments live in refs, not in params.yaml
    assert yaml.safe_load((proj / "params.yaml").read_text())["train"]["adaptation"] == "full"


def test_headline_metrics_go_to_the_dvc_project_or_nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from a subfolder of a DVC project, the metrics land in the project's metrics/ (where
    dvc.yaml says they are); outside any project no stray metrics/ folder is written, and a run
    whose data_dir lies outside the project leaves the project's committed metrics alone."""
    from synthgen.config import Params
    from synthgen.tracking import export_metrics

    params = Params.model_validate({"data_dir": str(tmp_path / "data")})
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    monkeypatch.chdir(outside)
    assert export_metrics(params, "curate") == []
    assert not (outside / "metrics").exists()

    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    _run([sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], proj)
    monkeypatch.chdir(proj / "sub")
    assert export_metrics(params, "curate") == []  # data_dir (tmp_path/data) is not the project's
    assert not (proj / "metrics").exists()
    inside = params.model_copy(update={"data_dir": proj / "data"})
    written = export_metrics(inside, "curate")
    assert written == [proj / "metrics" / "curate.json"]
    assert json.loads(written[0].read_text()) == {}  # no controllability report yet: no numbers
    assert not (proj / "sub" / "metrics").exists()
    # a relative data_dir is the working folder's: inside the project from its subfolder
    relative = params.model_copy(update={"data_dir": Path("data")})
    assert export_metrics(relative, "curate") == [proj / "metrics" / "curate.json"]


def test_training_with_other_params_leaves_the_projects_metrics_alone(tmp_path: Path) -> None:
    """A triggered training whose params differ from params.yaml is not recorded with DVC, and its
    numbers must not land in the project's metrics/ either (they would describe a model dvc.lock
    knows nothing of)."""
    from flows.train_flow import record_train
    from synthgen.config import load_params

    proj = _flow_project(tmp_path)
    params = load_params(proj / "params.yaml").model_copy(update={"data_dir": proj / "data"})
    drifted = params.model_copy(update={"train": params.train.model_copy(update={"epochs": 7})})
    from prefect.logging import disable_run_logger

    with disable_run_logger():  # Prefect's documented way to call a task's function outside a run
        out = record_train.fn(drifted, str(proj))
    assert "epochs" in out["not_recorded"] and out["dvc_committed"] == []
    assert not (proj / "metrics").exists()


def test_a_run_from_a_subfolder_is_not_the_projects_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """params.yaml's relative data_dir means <project>/data to DVC, but a run started in a subfolder
    (`cd notebooks && synthgen run -p ../params.yaml`) writes ./data there: recording that run would
    commit the root's data/ (stale, or missing) as its version, so it counts as drift."""
    from synthgen.config import load_params
    from synthgen.tracking import params_drift

    proj = _flow_project(tmp_path)
    (proj / "notebooks").mkdir()
    params = load_params(proj / "params.yaml")
    monkeypatch.chdir(proj)
    assert params_drift(params, proj) == []
    monkeypatch.chdir(proj / "notebooks")
    drift = params_drift(params, proj)
    assert len(drift) == 1 and drift[0].startswith("data_dir:") and "notebooks" in drift[0], drift
    # an absolute data_dir that names the project's own folder is the same place from anywhere
    assert params_drift(params.model_copy(update={"data_dir": proj / "data"}), proj) == []

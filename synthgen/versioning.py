"""Record a finished dataset version with DVC (and optionally git), the same way ``dvc repro`` would.

``dvc commit`` writes the stages' dependency and output hashes to dvc.lock and moves the outputs
into the DVC cache, so after a flow run ``dvc status`` is clean and ``dvc repro`` has nothing to do.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

from synthgen.errors import SynthgenError
from synthgen.sections import RunParams

log = logging.getLogger(__name__)


def dvc_root(start: Path | None = None) -> Path | None:
    from dvc.repo import Repo

    try:
        return Path(Repo.find_root(str(start or Path.cwd())))
    except Exception:  # noqa: BLE001 - not inside a DVC repository, whatever DVC raises for it
        return None


def record_version(params: RunParams, version: str, stages: list[str], root: Path | None = None) -> dict[str, Any]:
    root = root or dvc_root()
    out: dict[str, Any] = {"dvc_committed": [], "git_commit": None, "git_tag": None}
    if root is None or not (root / "dvc.yaml").exists():
        log.warning("not inside a DVC project with dvc.yaml: version %s not recorded with DVC", version)
        return out
    if params.record.dvc_commit:
        from dvc.repo import Repo

        # DVC prints its lines through its own handlers; passed on to a root handler (a Prefect
        # run's console) each would print twice.
        logging.getLogger("dvc").propagate = False
        with Repo(str(root)) as repo:
            names = {s.name for s in repo.index.stages}
            for stage in stages:
                if stage in names:
                    repo.commit(stage, force=True)
                    out["dvc_committed"].append(stage)
    if params.record.git_commit or params.record.git_tag:
        out.update(_git_record(root, params, version))
    return out


def _git(root: Path, *args: str) -> str:
    r = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if r.returncode != 0:
        raise SynthgenError(f"git {' '.join(args)} failed: {r.stderr.strip()}", where=str(root),
                            fix="check the repository state, or set record.git_commit/git_tag to false")
    return r.stdout.strip()


# What a recording commit holds: the lock, the params it was made with, and the metrics in git.
RECORDED_FILES = ("dvc.lock", "params.yaml", "dvc.yaml", "metrics")


def _git_record(root: Path, params: RunParams, version: str) -> dict[str, Any]:
    """Commit the record, then tag it. A tag always gets a commit holding this version's
    dvc.lock: `dvc push -A` / `--all-tags` and `dvc pull` at the tag read the lock of the tagged
    commit, so a tag on a commit without it shares nothing (dvc.lock is not tracked by default)."""
    res: dict[str, Any] = {}
    _git(root, "add", "--", *[f for f in RECORDED_FILES if (root / f).exists()])
    staged = subprocess.run(["git", "diff", "--cached", "--quiet"], cwd=root).returncode != 0
    if staged:
        _git(root, "commit", "-m", f"dataset {params.dataset.name} {version}")
    res["git_commit"] = _git(root, "rev-parse", "HEAD")
    if params.record.git_tag:
        tag = f"dataset/{params.dataset.name}/{version}"
        existing = _git(root, "tag", "--list", tag)
        if not existing:
            _git(root, "tag", "-a", tag, "-m", f"synthgen dataset {params.dataset.name} version {version}")
        res["git_tag"] = tag
    return res

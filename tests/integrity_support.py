"""Shared pieces of the integrity tests: a small params file, a reference run made once by the real
stages, copies of it, the real CLI in a subprocess, snapshots of stage outputs and byte flips."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

REPO = Path(__file__).resolve().parents[1]
NAME = "incabin-faces"
STAGE_DIRS = ("generated", "labelled", "curated")


def write_params(folder: Path, data_dir: Path, name: str = "params", **overrides: Any) -> Path:
    """The repository's params.yaml made small: 40 images in 4 shards of 10, 96 px, one labeller,
    one process (the kill tests ask for pools with ``workers``; workers never change the data)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data_dir"] = str(data_dir)
    raw["plan"].update(n=40, shard_size=10, identities=8)
    raw["generate"].update(width=96, height=96, workers=1)
    raw["label"].update(labelers=["mediapipe_detector"], workers=1)
    for dotted, value in overrides.items():
        node = raw
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def run_reference(data_dir: Path, params_file: Path) -> None:
    """plan -> generate -> label -> curate -> publish, in this process, by the stage functions."""
    from synthgen.config import load_params
    from synthgen.stages import (
        run_curate,
        run_generate,
        run_label,
        run_plan,
        run_publish,
    )

    params = load_params(params_file, [])
    run_plan(params)
    run_generate(params, progress=False)
    run_label(params, progress=False)
    run_curate(params, progress=False)
    run_publish(params, progress=False)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(data_dir: Path, stage: str) -> dict[str, str]:
    """Hashes of a stage's data files (shards, plan, published parts and manifest); lock files,
    temp files and the card (which names the data folder) are left out."""
    work = data_dir / "work" / NAME
    if stage == "plan":
        return {"plan.parquet": sha(work / "plan.parquet")} if (work / "plan.parquet").exists() else {}
    if stage == "publish":
        root = data_dir / "datasets" / NAME
        files = [p for p in root.rglob("*") if p.is_file() and p.name not in ("README.md", "_README.md")]
    else:
        root = work / stage
        files = [p for p in root.glob("*") if p.is_file()] if root.exists() else []
    return {str(p.relative_to(root)): sha(p) for p in files
            if not any(part.startswith(".") for part in p.relative_to(root).parts)}


def copy_data(ref: Path, dest: Path, upto: str) -> Path:
    """A copy of the reference data folder holding the plan and the stages up to ``upto`` only."""
    order = ["plan", *STAGE_DIRS, "publish"]
    keep = order[: order.index(upto) + 1]
    work = dest / "work" / NAME
    work.mkdir(parents=True)
    shutil.copy2(ref / "work" / NAME / "plan.parquet", work / "plan.parquet")
    for stage in STAGE_DIRS:
        if stage in keep:
            shutil.copytree(ref / "work" / NAME / stage, work / stage)
    if "curated" in keep and (ref / "work" / NAME / "topup").exists():
        shutil.copytree(ref / "work" / NAME / "topup", work / "topup")  # the curate stage's top-up rounds
    if "publish" in keep:
        shutil.copytree(ref / "datasets", dest / "datasets")
    return dest


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SYNTHGEN_LOCKS_HELD"}
    env.update({"PYTHONPATH": str(REPO), "SYNTHGEN_MODELS_DIR": os.environ.get(
        "SYNTHGEN_MODELS_DIR", str(REPO / "synthgen" / "models" / "files")), **extra})
    return env


def cli_args(stage: str, params_file: Path, *more: str) -> list[str]:
    quiet = ["-q"] if stage in ("generate", "label", "curate") else []
    return [sys.executable, "-m", "synthgen", stage, "-p", str(params_file), *quiet, *more]


def cli(stage: str, params_file: Path, *more: str, timeout: float = 300, **env: str
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_args(stage, params_file, *more), capture_output=True, text=True,
                          env=cli_env(**env), cwd=params_file.parent, timeout=timeout)


def start_cli(stage: str, params_file: Path, *more: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(cli_args(stage, params_file, *more), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(**env), cwd=params_file.parent)


def error_lines(stderr: str) -> list[str]:
    """The CLI's error lines (``error: ...``); native library logs on stderr are ignored."""
    assert "Traceback" not in stderr, stderr[-3000:]
    return [ln for ln in stderr.splitlines() if ln.startswith("error:")]


def one_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The one ``error:`` line of a failed run (exit 2), with the ``Fix:`` line after it if any."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr[-3000:]
    all_lines = proc.stderr.splitlines()
    i = all_lines.index(lines[0])
    fix = all_lines[i + 1] if i + 1 < len(all_lines) and all_lines[i + 1].startswith("Fix:") else ""
    return f"{lines[0]}\n{fix}"


def flip_in_column(path: Path, column: str, n: int = 2) -> None:
    """Flip ``n`` bytes at the end of ``column``'s chunk in the first row group: page data, not a
    header or the footer, so only a page checksum (or a file hash) can notice."""
    md = pq.ParquetFile(path).metadata.row_group(0)
    for i in range(md.num_columns):
        c = md.column(i)
        if c.path_in_schema == column:
            start = c.dictionary_page_offset if c.has_dictionary_page else c.data_page_offset
            end = start + c.total_compressed_size
            break
    else:  # pragma: no cover - a test bug
        raise KeyError(column)
    data = bytearray(path.read_bytes())
    for k in range(n):
        data[end - 2 - k] ^= 0x5A
    path.write_bytes(bytes(data))


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def descendants(pid: int) -> set[int]:
    """All live descendants of ``pid`` (psutil reads them from /proc)."""
    import psutil

    try:
        return {p.pid for p in psutil.Process(pid).children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(pred: Any, timeout: float, step: float = 0.05) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return bool(pred())

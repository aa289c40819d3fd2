"""Bad input stops with one `error:` line (what, where, how to fix), exit code 2, no traceback and
nothing half-written; a bad image among good ones is skipped with a warning, not the whole import.
Everything runs through the real CLI (`synthgen ...`)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from synthgen.cli import app

runner = CliRunner()


def _one_error(result) -> str:
    """Exit 2, no traceback, exactly one `error:` line on stderr; returns that line."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- params --------------------------------------------------------------------------------


def test_params_file_errors(in_tmp: Path) -> None:
    (in_tmp / "adir").mkdir()
    assert "is a directory" in _one_error(runner.invoke(app, ["plan", "-p", "adir"]))
    (in_tmp / "latin1.yaml").write_bytes("plan:\n  n: 5 # 5 \xe9l\xe8ves\n".encode("latin-1"))
    assert "not UTF-8" in _one_error(runner.invoke(app, ["plan", "-p", "latin1.yaml"]))
    (in_tmp / "dup.yaml").write_text("plan:\n  n: 5\nseed: 3\nplan:\n  n: 6\n")
    err = _one_error(runner.invoke(app, ["plan", "-p", "dup.yaml"]))
    assert "'plan' appears twice (lines 1 and 4)" in err
    (in_tmp / "dupinner.yaml").write_text("plan:\n  n: 5\n  n: 7\n")
    assert "'n' appears twice" in _one_error(runner.invoke(app, ["plan", "-p", "dupinner.yaml"]))
    assert not (in_tmp / "data").exists()  # nothing written


def test_set_errors(in_tmp: Path) -> None:
    err = _one_error(runner.invoke(app, ["plan", "--set", "plan.n=[1"]))
    assert "--set: value of plan.n is not valid YAML" in err
    err = _one_error(runner.invoke(app, ["plan", "--set", "plan.nn=3"]))
    assert "--set: unknown parameter 'plan.nn'" in err and "params.yaml" not in err
    assert "unknown parameter 'sead'" in _one_error(runner.invoke(app, ["plan", "--set", "sead=3"]))
    assert "not KEY=VALUE" in _one_error(runner.invoke(app, ["plan", "--set", "plan.n"]))
    # a free-form mapping still takes new keys, and a known key with a bad value names the key
    err = _one_error(runner.invoke(app, ["plan", "--set", "plan.n=-3"]))
    assert "plan.n" in runner.invoke(app, ["plan", "--set", "plan.n=-3"]).stderr and "--set" in err
    assert not (in_tmp / "data").exists()


# --- stages --------------------------------------------------------------------------------


def test_publish_error_names_a_real_command(in_tmp: Path) -> None:
    small = ["--set", "plan.n=4", "--set", "plan.shard_size=2", "--set", "plan.identities=2"]
    assert runner.invoke(app, ["plan", *small]).exit_code == 0
    r = runner.invoke(app, ["publish", *small])
    _one_error(r)
    assert "`synthgen curate`" in r.stderr and "synthgen curated" not in r.stderr
    assert "not a stage folder" in _one_error(runner.invoke(app, ["publish", "--from", "cured"]))


@pytest.mark.slow
def test_curate_on_a_truncated_labelled_shard(in_tmp: Path) -> None:
    from synthgen.config import load_params
    from synthgen.paths import Layout

    args = ["--set", "plan.n=4", "--set", "plan.shard_size=2", "--set", "plan.identities=2",
            "--set", "generate.width=64", "--set", "generate.height=64", "--set", "generate.workers=1",
            "--set", "label.workers=1", "--set", "label.labelers=[mediapipe_detector]"]
    for stage in ("plan", "generate", "label"):
        r = runner.invoke(app, [stage, *args, *(["-q"] if stage != "plan" else [])])
        assert r.exit_code == 0, r.output
    shard = Layout.from_params(load_params("params.yaml", args[1::2])).shard_file("labelled", 1)
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    _one_error(runner.invoke(app, ["curate", *args, "-q"]))


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_disk_full_is_one_error(in_tmp: Path) -> None:
    """A real full disk: a 1 MB tmpfs (skipped where mounting is not permitted)."""
    mnt = in_tmp / "small"
    if not _mount_tmpfs(mnt, "1m"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        args = ["--set", f"data_dir={mnt}/data", "--set", "plan.n=30", "--set", "plan.shard_size=10",
                "--set", "plan.identities=5", "--set", "generate.workers=1"]
        assert runner.invoke(app, ["plan", *args]).exit_code == 0
        err = _one_error(runner.invoke(app, ["generate", *args, "-q"]))
        assert "no space left on the device" in err
        shards = sorted((mnt / "data/work/incabin-faces/generated").glob("shard-*.parquet"))
        assert len(shards) < 3  # stopped early; what is visible is complete
        import pyarrow.parquet as pq

        assert all(pq.read_metadata(s).num_rows == 10 for s in shards)
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_serve_without_a_server_fails_fast(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    start = time.monotonic()
    err = _one_error(runner.invoke(app, ["serve"]))
    assert "PREFECT_API_URL is not set" in err
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing listens on port 9
    assert "no Prefect server answers" in _one_error(runner.invoke(app, ["serve"]))
    assert time.monotonic() - start < 30


# --- real imports --------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with (far too little) real pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _face_png(path: Path) -> None:
    from skimage import data

    from synthgen.images import encode_png

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(np.ascontiguousarray(data.astronaut()[:200, 100:300])))


def _real(*args: str):
    return runner.invoke(app, ["real", *args])


def test_oversized_images_are_skipped_not_fatal(in_tmp: Path) -> None:
    from PIL import Image

    folder = in_tmp / "imgs"
    _face_png(folder / "good.png")
    (folder / "claims_50000.png").write_bytes(_png_header(50_000, 50_000))
    Image.new("1", (20_000, 20_000)).save(folder / "real_20000.png")  # a real 400 MP PNG
    r = _real("import-folder", str(folder), "-o", "real.parquet", "--no-label", "-q")
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert "2 bad rows skipped:" in r.stderr
    assert any("claims_50000.png" in line and "above the 40 MP limit" in line for line in lines), r.stderr
    assert any("real_20000.png" in line and "above the 40 MP limit" in line for line in lines), r.stderr
    import pyarrow.parquet as pq

    assert pq.read_metadata(in_tmp / "real.parquet").num_rows == 1


def test_import_checks_params_and_output_first(in_tmp: Path) -> None:
    folder = in_tmp / "imgs"
    _face_png(folder / "good.png")
    (in_tmp / "bad.yaml").write_text("label:\n  labelers: [no_such_labeller]\n  nope: 1\n")
    err = _one_error(_real("import-folder", str(folder), "-o", "real.parquet", "--params", "bad.yaml"))
    assert "bad.yaml" in err
    (in_tmp / "outdir").mkdir()
    err = _one_error(_real("import-folder", str(folder), "-o", "outdir", "--no-label"))
    assert "outdir: is a directory" in err
    assert "is a directory" in _one_error(_real("import-utkface", str(folder), "-o", "outdir", "--no-label"))
    err = _one_error(_real("import-fairface", str(in_tmp / "x.csv"), "-o", "outdir", "--no-label"))
    assert "is a directory" in err
    assert not (in_tmp / "real.parquet").exists()


def test_label_paths_must_stay_inside_the_folder(in_tmp: Path) -> None:
    folder = in_tmp / "set" / "imgs"
    _face_png(folder / "good.png")
    _face_png(in_tmp / "set" / "outside" / "x.png")  # exists, but outside the image folder
    (folder / "labels.csv").write_text(
        "file,age\ngood.png,30\n../../etc/passwd,40\n../outside/x.png,50\n/etc/hostname,20\n")
    r = _real("import-folder", str(folder), "--labels", str(folder / "labels.csv"), "-o", "real.parquet",
              "--no-label", "-q")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stderr.split())
    assert "../../etc/passwd: path leaves the image folder" in text
    assert "../outside/x.png: path leaves the image folder" in text
    assert "/etc/hostname: absolute path" in text
    import pyarrow.parquet as pq

    t = pq.read_table(in_tmp / "real.parquet")
    assert t.num_rows == 1 and t.column("meas_age").to_pylist() == [30.0]

    (in_tmp / "gaze.csv").write_text("file,yaw,pitch\n../../../../etc/passwd,1,2\n")
    r = _real("import-gaze", str(in_tmp / "gaze.csv"), "-o", "g.parquet", "--no-label")
    assert "path leaves the image folder" in _one_error(r)  # no usable row at all: an error
    assert not (in_tmp / "g.parquet").exists()


@pytest.mark.slow
def test_group_photo_imported_as_one_face_is_warned(in_tmp: Path) -> None:
    import insightface

    src = Path(os.path.dirname(insightface.__file__)) / "data" / "images" / "t1.jpg"
    folder = in_tmp / "imgs"
    folder.mkdir()
    shutil.copy(src, folder / "team.jpg")
    _face_png(folder / "one.png")
    (in_tmp / "p.yaml").write_text("label:\n  labelers: [mediapipe_detector]\n  workers: 1\n")
    r = _real("import-folder", str(folder), "-o", "real.parquet", "--params", "p.yaml", "-q")
    assert r.exit_code == 0, r.output
    text = " ".join(r.stderr.split())
    assert "warning: 1 image(s) show more than one face" in text and "team.jpg" in text
    assert "one.png" not in text.split("warning:")[1]

"""`synthgen query` and the LazyFrame entry point over a published dataset, through the real CLI."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from synthgen import query as q
from synthgen.cli import app
from synthgen.publish.stage import run_publish
from tests.helpers import make_generated, tiny_params

runner = CliRunner()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("q") / "data"
    params = tiny_params(data, n=6, shard_size=3, size=64)
    make_generated(params)
    run_publish(params, source_stage="generated", progress=False)
    return data


def _cli(data_dir: Path, *args: str):
    return runner.invoke(app, ["query", "incabin-faces", "--data-dir", str(data_dir), *args])


def test_scan_is_lazy_and_filters(data_dir: Path) -> None:
    lf = q.scan("incabin-faces", data_dir)
    assert isinstance(lf, pl.LazyFrame)
    df = lf.filter(pl.col("req_age") > 0).select("sample_id", "req_age").collect()
    assert df.height == 6
    assert q.scan("incabin-faces", data_dir, split="train").select(pl.len()).collect().item() <= 6


def test_cli_where_select_and_group_by(data_dir: Path) -> None:
    r = _cli(data_dir, "--where", "req_age >= 0 AND accepted", "--select", "sample_id,req_age")
    assert r.exit_code == 0, r.output
    assert "6 of 6 rows" in r.output
    r = _cli(data_dir, "--group-by", "split", "--select", "req_age")
    assert r.exit_code == 0 and "mean_req_age" in r.output


def test_cli_sql_and_export(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "young.csv"
    r = _cli(data_dir, "--sql", "SELECT sample_id, req_age, image FROM dataset ORDER BY req_age LIMIT 3",
             "--export", str(out))
    assert r.exit_code == 0, r.output
    df = pl.read_csv(out)
    assert df.height == 3 and df["req_age"].is_sorted()
    assert df["image"][0].startswith("<png ")
    pq_out = tmp_path / "all.parquet"
    assert _cli(data_dir, "--export", str(pq_out)).exit_code == 0
    assert pl.read_parquet(pq_out).height == 6


def test_cli_reasons_and_schema(data_dir: Path) -> None:
    r = _cli(data_dir, "--reasons")
    assert r.exit_code == 0 and "(accepted)" in r.output
    r = _cli(data_dir, "--schema")
    assert r.exit_code == 0 and "req_gaze_yaw" in r.output


def test_cli_errors_are_clear(data_dir: Path, tmp_path: Path) -> None:
    r = _cli(data_dir, "--where", "no_such_column > 3")
    assert r.exit_code == 2 and "error:" in r.output and "Traceback" not in r.output
    assert 'unable to find column "no_such_column"' in r.output and "Resolved plan" not in r.output
    # An unknown column in --sql only fails when the lazy query runs: same one-message error.
    r = _cli(data_dir, "--sql", "SELECT req_agee FROM dataset")
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert 'unable to find column "req_agee"' in r.output and 'Did you mean "req_age"' in r.output
    r = runner.invoke(app, ["query", "nope", "--data-dir", str(data_dir)])
    assert r.exit_code == 2 and "not found" in r.output and "incabin-faces" in r.output
    r = _cli(data_dir, "--export", str(tmp_path / "x.xlsx"))
    assert r.exit_code == 2 and ".csv or .parquet" in r.output


def test_cli_help_everywhere() -> None:
    for cmd in ([], ["run"], ["plan"], ["generate"], ["publish"], ["query"], ["serve"]):
        r = runner.invoke(app, [*cmd, "--help"])
        assert r.exit_code == 0 and "Usage" in r.output


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Two versions of one dataset (6 then 9 rows) and a leftover temp folder of a killed publish."""
    import os
    import time

    data = tmp_path_factory.mktemp("qv") / "data"
    old = tiny_params(data, n=6, shard_size=3, size=64)
    make_generated(old)
    v_old = run_publish(old, source_stage="generated", progress=False).version
    new = tiny_params(data, n=9, shard_size=3, size=64)
    make_generated(new)
    r = run_publish(new, source_stage="generated", progress=False)
    # the newer publish is the latest by its manifest's time, whatever the hashes' order
    later = time.time() + 5
    os.utime(r.version_dir / "_manifest.json", (later, later))
    (data / "datasets/incabin-faces/.tmp-version=half/split=train").mkdir(parents=True)
    (data / "datasets/incabin-faces/.tmp-version=half/split=train/part-00000.parquet").write_bytes(b"PAR1")
    return data, v_old, r.version


def test_one_version_by_default_and_on_request(two_versions: tuple[Path, str, str]) -> None:
    data, v_old, v_new = two_versions
    lf = q.scan("incabin-faces", data)
    assert lf.select(pl.len()).collect().item() == 9
    assert set(lf.select("version").collect()["version"]) == {v_new}
    assert q.scan("incabin-faces", data, version=v_old).select(pl.len()).collect().item() == 6
    mixed = q.scan("incabin-faces", data, all_versions=True).group_by("version").len().collect()
    assert dict(mixed.iter_rows()) == {v_old: 6, v_new: 9}
    # a version folder given as the dataset reads that version
    assert q.scan(data / f"datasets/incabin-faces/version={v_old}").select(pl.len()).collect().item() == 6

    r = _cli(data, "--group-by", "version")
    assert r.exit_code == 0, r.output
    assert f"reading incabin-faces version {v_new} (latest of 2" in r.stderr
    assert "1 of 1 rows" in r.stdout and v_new in r.stdout
    r = _cli(data, "--version", v_old, "--sql", "SELECT count(*) AS n FROM dataset")
    assert r.exit_code == 0 and f"version {v_old}" in r.stderr and " 6 " in r.stdout
    r = _cli(data, "--all-versions", "--sql", "SELECT count(*) AS n FROM dataset")
    assert r.exit_code == 0 and "2 versions mixed" in r.stderr and " 15 " in r.stdout
    r = _cli(data, "--version", "vnope")
    assert r.exit_code == 2 and "version 'vnope' not found" in r.stderr and v_old in r.stderr


def _one_error(r) -> str:
    """The CLI's error: exit 2, no traceback, one `error:` line on stderr (after the line saying
    which version is read, when it got that far)."""
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    errors = [line for line in r.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def test_bad_query_input_is_one_error(data_dir: Path, tmp_path: Path) -> None:
    assert "true/false condition" in _one_error(_cli(data_dir, "--where", "1/0"))
    assert "true/false condition" in _one_error(_cli(data_dir, "--where", "req_age"))
    assert "only SELECT" in _one_error(_cli(data_dir, "--sql", "DROP TABLE dataset"))
    assert "only SELECT" in _one_error(_cli(data_dir, "--sql", "CREATE TABLE t AS SELECT 1"))
    assert "--limit -1 is negative" in _one_error(_cli(data_dir, "--limit", "-1"))
    err = _one_error(_cli(data_dir, "--split", "nosuch"))
    assert "no split 'nosuch'" in err
    # a real condition and a WITH query still work
    assert _cli(data_dir, "--where", "req_age > 0 AND accepted").exit_code == 0
    r = _cli(data_dir, "--sql", "WITH a AS (SELECT * FROM dataset) SELECT count(*) AS n FROM a")
    assert r.exit_code == 0, r.output
    (tmp_path / "d.parquet").mkdir()
    assert "is a directory" in _one_error(_cli(data_dir, "--export", str(tmp_path / "d.parquet")))


def test_parquet_export_keeps_images_as_datasets_images(data_dir: Path, tmp_path: Path) -> None:
    import datasets

    out = tmp_path / "accepted.parquet"
    r = _cli(data_dir, "--where", "accepted", "--export", str(out))
    assert r.exit_code == 0, r.output
    assert "wrote 6 rows x" in r.stderr and "images kept in image, control_image" in r.stderr
    assert "req_gaze_yaw" not in r.output  # a summary, not an 80-column table
    ds = datasets.load_dataset("parquet", data_files=str(out), split="train")
    assert isinstance(ds.features["image"], datasets.Image)
    img = ds[0]["image"]
    assert img.size == (64, 64)
    mode = out.stat().st_mode & 0o777
    import os

    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask

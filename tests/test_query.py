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

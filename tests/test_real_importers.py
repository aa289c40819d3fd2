"""Real-data importers: labels normalised to the vocabulary, bad rows reported with file and line."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from synthgen.cli_real import app
from synthgen.errors import DataError
from synthgen.real import import_fairface, import_folder, import_gaze, import_rafdb, import_utkface, read_real
from synthgen.real.rows import merge_labels, rows_to_table


def _img(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    cv2.imwrite(str(path), rng.integers(0, 255, (24, 20, 3), dtype=np.uint8))
    return path


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).drop_columns(["image"]).to_pylist()


def test_folder_with_labels_and_bad_rows(tmp_path: Path):
    for i in range(4):
        _img(tmp_path / "imgs" / f"a{i}.png", i)
    (tmp_path / "imgs" / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "labels.csv").write_text(
        "file,age,gender,expression,gaze_yaw\n"
        "a0.png,34,F,happy,10\n"
        "a1.png,250,male,neutral,0\n"       # line 3: age out of range
        "a2.png,20,male,smirk,0\n"          # line 4: unknown class
        "missing.png,20,male,neutral,0\n"   # line 5: no such file
        "a0.png,50,M,sad,0\n"               # line 6: a0 again: the first line's labels stay
    )
    res = import_folder(tmp_path / "imgs", tmp_path / "out.parquet", tmp_path / "labels.csv", progress=False)
    table = pq.read_table(res.path)
    assert res.rows == 2 and table.num_rows == 2  # a0 (labelled) and a3 (unlabelled)
    by_path = {r["image"]["path"]: r for r in table.to_pylist()}
    a0 = by_path["a0.png"]
    assert (a0["meas_age"], a0["meas_age_group"], a0["meas_gender"], a0["meas_expression"], a0["meas_gaze_yaw"]) == (
        34.0, "30-39", "female", "happiness", 10.0)
    assert a0["source"] == "real" and a0["meas_age_labeler"] == "ground_truth:folder"
    assert a0["image"]["bytes"][:8] == b"\x89PNG\r\n\x1a\n" and (a0["width"], a0["height"]) == (20, 24)
    assert by_path["a3.png"]["meas_age"] is None
    bad = {(Path(b.file).name, b.line): b.reason for b in res.bad}
    assert "out of range" in bad[("labels.csv", 3)]
    assert "unknown expression 'smirk'" in bad[("labels.csv", 4)]
    assert "cannot be read" in bad[("labels.csv", 5)]
    assert "listed twice" in bad[("labels.csv", 6)]
    assert "cannot be decoded" in bad[("broken.jpg", None)]


def test_utkface_names(tmp_path: Path):
    _img(tmp_path / "u" / "25_1_0_20170116174525125.jpg.chip.jpg")
    _img(tmp_path / "u" / "71_0_3_20170117.jpg", 1)
    _img(tmp_path / "u" / "badname.jpg", 2)
    _img(tmp_path / "u" / "30_7_0_2017.jpg", 3)
    res = import_utkface(tmp_path / "u", tmp_path / "utk.parquet", progress=False)
    got = sorted((r["meas_age"], r["meas_age_group"], r["meas_gender"]) for r in _rows(res.path))
    assert got == [(25.0, "20-29", "female"), (71.0, "70+", "male")]
    reasons = sorted(b.reason for b in res.bad)
    assert any("age_gender_race_date" in r for r in reasons) and any("gender code 7" in r for r in reasons)


def test_fairface_csv(tmp_path: Path):
    _img(tmp_path / "train" / "1.jpg")
    _img(tmp_path / "train" / "2.jpg", 1)
    (tmp_path / "fairface_label_train.csv").write_text(
        "file,age,gender,race,service_test\ntrain/1.jpg,more than 70,Male,White,True\n"
        "train/2.jpg,3-9,Female,Black,False\ntrain/2.jpg,10-19,Female,Black,False\n"
        "train/1.jpg,12-15,Male,White,True\n"
    )
    res = import_fairface(tmp_path / "fairface_label_train.csv", tmp_path / "ff.parquet", progress=False)
    rows = sorted((r["meas_age_group"], r["meas_gender"], r["split"]) for r in _rows(res.path))
    assert rows == [("3-9", "female", "train"), ("70+", "male", "train")]
    bad = {b.line: b.reason for b in res.bad}
    assert "listed twice" in bad[4] and "unknown age group '12-15'" in bad[5]


def test_rafdb_order_and_aligned_names(tmp_path: Path):
    for name in ("train_00001_aligned.jpg", "train_00002_aligned.jpg", "test_0001_aligned.jpg", "test_0002_aligned.jpg"):
        _img(tmp_path / "aligned" / name)
    (tmp_path / "list_patition_label.txt").write_text(
        "train_00001.jpg 1\ntrain_00002.jpg 4\ntest_0001.jpg 7\ntest_0002.jpg 9\n\ngarbage\n"
    )
    res = import_rafdb(tmp_path / "list_patition_label.txt", tmp_path / "aligned", tmp_path / "raf.parquet", progress=False)
    got = sorted((r["meas_expression"], r["split"]) for r in _rows(res.path))
    assert got == [("happiness", "train"), ("neutral", "test"), ("surprise", "train")]
    bad = {b.line: b.reason for b in res.bad}
    assert "out of range" in bad[4] and "not 'FILE LABEL'" in bad[6]


def test_gaze_table_radians(tmp_path: Path):
    _img(tmp_path / "g" / "0.png")
    _img(tmp_path / "g" / "1.png", 1)
    pq.write_table(pa.table({"name": ["g/0.png", "g/1.png"], "gy": [0.1, 3.0], "gp": [-0.2, 0.0]}), tmp_path / "gaze.parquet")
    res = import_gaze(tmp_path / "gaze.parquet", tmp_path / "gz.parquet", yaw_column="gy", pitch_column="gp", radians=True, progress=False)
    rows = _rows(res.path)
    assert len(rows) == 1 and rows[0]["meas_gaze_yaw"] == pytest.approx(np.degrees(0.1))
    assert res.bad[0].line == 2 and "out of range" in res.bad[0].reason
    with pytest.raises(DataError, match="no column 'yaw'"):
        import_gaze(tmp_path / "gaze.parquet", tmp_path / "x.parquet", progress=False)


def test_empty_input_is_a_clear_error(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no usable rows"):
        import_folder(tmp_path / "empty", tmp_path / "o.parquet", progress=False)
    assert not (tmp_path / "o.parquet").exists()
    with pytest.raises(DataError, match="real reference not found"):
        read_real(tmp_path / "nope.parquet")


def test_ground_truth_wins_over_labellers():
    imported = rows_to_table([{"sample_id": "a", "meas_age": 30.0}, {"sample_id": "b"}])
    labelled = imported.set_column(imported.column_names.index("meas_age"), "meas_age", pa.array([41.0, 52.0]))
    merged = merge_labels(imported, labelled)
    assert merged.column("meas_age").to_pylist() == [30.0, 52.0]


def test_cli_import_and_error_exit(tmp_path: Path):
    _img(tmp_path / "u" / "25_1_0_2017.jpg")
    runner = CliRunner()
    ok = runner.invoke(app, ["import-utkface", str(tmp_path / "u"), "--out", str(tmp_path / "o.parquet"), "--no-label", "-q"])
    assert ok.exit_code == 0, ok.output
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 1
    bad = runner.invoke(app, ["import-folder", str(tmp_path / "nope"), "--out", str(tmp_path / "x.parquet"), "--no-label"])
    assert bad.exit_code == 2 and "image folder not found" in bad.output and "Traceback" not in bad.output

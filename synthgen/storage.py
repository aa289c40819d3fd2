"""Published versions on object storage (S3 or anything fsspec speaks): upload, list, read.

Object stores have no atomic rename of a folder, so a version is made visible the way Spark's
``_SUCCESS`` does it: every data file is uploaded first and ``_manifest.json`` last. A version
without a manifest is an upload in progress (or a killed one) and every reader here skips it;
readers also read exactly the files the manifest lists, never a glob, so a stray object left
by a killed upload is never mixed in. Version names hash the parameters that shape the data,
so two uploads of one version write the same bytes and a re-upload after a crash is safe.

Endpoint and credentials come from the usual AWS variables (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ...), which s3fs (through botocore), polars and DVC's S3 remote all read.
"""

from __future__ import annotations

import json
import logging
import posixpath
from pathlib import Path
from typing import Any

from synthgen.errors import DataError

logger = logging.getLogger(__name__)

MANIFEST = "_manifest.json"


def is_url(path: str | Path) -> bool:
    """True for ``s3://bucket/...`` and other fsspec URLs (a local path has no scheme)."""
    return "://" in str(path)


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path inside it."""
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise DataError(f"cannot open {url} ({err})", where=url,
                        fix="install the storage extra: pip install 'synthgen[scale]'") from None


def _join(root: str, *parts: str) -> str:
    return posixpath.join(root.rstrip("/"), *parts)


def upload_version(version_dir: Path, dest_root: str) -> str:
    """Copy a published version folder to ``<dest_root>/version=<v>/``; the manifest goes last.

    Returns the version's URL. A version whose remote manifest already matches is not re-sent.
    """
    local_manifest = version_dir / MANIFEST
    if not local_manifest.exists():
        raise DataError(f"{MANIFEST} not found", where=str(version_dir), fix="run `synthgen publish` first")
    manifest = json.loads(local_manifest.read_text())
    fs, root = filesystem(dest_root)
    remote = _join(root, version_dir.name)
    remote_manifest = _join(remote, MANIFEST)
    if fs.exists(remote_manifest) and json.loads(fs.cat_file(remote_manifest)) == manifest:
        logger.info("%s already holds this version", remote)
        return _join(dest_root, version_dir.name)
    if fs.exists(remote_manifest):
        # A different manifest under the same name: hide the old version before its files change.
        fs.rm_file(remote_manifest)
    data = [f["path"] for f in manifest["files"]]
    # then the card, its params file and example images: everything but the manifest, which goes last
    extras = sorted(p.relative_to(version_dir).as_posix() for p in version_dir.rglob("*")
                    if p.is_file() and p.name != MANIFEST and p.relative_to(version_dir).as_posix() not in data)
    names = data + extras
    for rel in names:
        fs.put_file(str(version_dir / rel), _join(remote, rel))
    for f in manifest["files"]:
        size = fs.size(_join(remote, f["path"]))
        if size != f["bytes"]:
            raise DataError(f"uploaded {f['path']} has {size} bytes, the manifest says {f['bytes']}",
                            where=remote, fix="re-run the upload")
    fs.put_file(str(local_manifest), remote_manifest)  # last: this makes the version visible
    logger.info("uploaded %d files to %s", len(names) + 1, remote)
    return _join(dest_root, version_dir.name)


def complete_versions(root_url: str) -> list[str]:
    """Version names under a dataset URL that have a manifest (i.e. finished uploads)."""
    fs, root = filesystem(root_url)
    try:
        entries = fs.ls(root, detail=False, refresh=True)
    except FileNotFoundError:
        return []
    out = []
    for entry in entries:
        name = posixpath.basename(entry.rstrip("/"))
        if name.startswith("version=") and fs.exists(_join(entry, MANIFEST)):
            out.append(name.split("=", 1)[1])
    return sorted(out)


def read_remote_manifest(root_url: str, version: str) -> dict[str, Any]:
    fs, root = filesystem(root_url)
    path = _join(root, f"version={version}", MANIFEST)
    if not fs.exists(path):
        known = complete_versions(root_url)
        raise DataError(f"version {version!r} not found (or its upload has not finished)", where=path,
                        fix=f"complete versions here: {known or 'none'}")
    data: dict[str, Any] = json.loads(fs.cat_file(path))
    return data


def version_files(root_url: str, version: str | None = None) -> list[str]:
    """URLs of the Parquet files of one version, or of every complete version, as their manifests list them."""
    versions = [version] if version is not None else complete_versions(root_url)
    if not versions:
        raise DataError("no complete version", where=root_url,
                        fix="upload one with `synthgen publish --to URL` (versions without _manifest.json are skipped)")
    return [_join(root_url, f"version={v}", f["path"])
            for v in versions for f in read_remote_manifest(root_url, v)["files"]]


def duckdb_connection(url: str) -> Any:
    """A DuckDB connection that reads ``url``'s scheme through fsspec (no httpfs download needed)."""
    import duckdb

    con = duckdb.connect()
    fs, _ = filesystem(url)
    con.register_filesystem(fs)
    return con

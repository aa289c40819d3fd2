"""Atomic file writes: a reader (or a resumed run) never sees a half-written file.

Write to a temp file in the same folder, fsync, then ``os.replace``: on POSIX the rename is atomic,
so the destination either does not exist or is complete.

Temp names are unique and say who made them (``.tmp-<host>-<pid>-<name>.<random>``): a cleanup
removes only the leftovers of processes that are dead, never the temp files of a live run.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synthgen.errors import DataError

TMP_PREFIX = ".tmp-"
# A temp entry whose owner cannot be told (another host, an older name) is removed after this long.
STALE_AFTER_S = 24 * 3600


def host_tag() -> str:
    """Short tag of this machine's name: a pid means something only on the host that made it."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def temp_prefix(name: str) -> str:
    """Prefix of a temp entry made by this process for ``name``."""
    return f"{TMP_PREFIX}{host_tag()}-{os.getpid()}-{name}."


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def temp_owner_alive(name: str) -> bool | None:
    """Whether the process that made the temp entry ``name`` is alive (None: cannot tell here)."""
    rest = name[len(TMP_PREFIX):] if name.startswith(TMP_PREFIX) else ""
    parts = rest.split("-", 2)
    if len(parts) < 3 or parts[0] != host_tag() or not parts[1].isdigit():
        return None
    return pid_alive(int(parts[1]))


def make_temp_dir(parent: str | os.PathLike[str], name: str) -> Path:
    """A new, uniquely named temp folder in ``parent`` (same file system, so it can be renamed)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=temp_prefix(name), dir=parent))
    path.chmod(0o777 & ~_umask())  # mkdtemp makes 0700; a published version gets the usual mode
    return path


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``dest``; on success rename it onto ``dest``, on error delete it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(dest.name), dir=dest.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; a published file gets the usual mode
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, dest)
    except OSError as err:
        tmp_path.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise disk_full(dest) from None
        raise
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process umask (read by setting it and putting it back: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def disk_full(dest: Path) -> DataError:
    return DataError(f"no space left on the device while writing {dest.name}", where=str(dest.parent),
                     fix="free disk space (or point data_dir at a larger disk) and re-run: finished "
                         "files are kept, nothing half-written is left")


def write_bytes_atomic(dest: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return Path(dest)


def write_text_atomic(dest: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(dest, text.encode("utf-8"))


def write_json_atomic(dest: str | os.PathLike[str], obj: Any) -> Path:
    return write_text_atomic(dest, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def clean_stale_temps(folder: str | os.PathLike[str], recursive: bool = True) -> int:
    """Remove temp files and folders that dead runs left behind; returns how many were removed.

    An entry is stale when the process named in it is dead (same host), or, when its owner cannot
    be told, when it is older than ``STALE_AFTER_S``. Live runs' temp entries are never touched."""
    folder = Path(folder)
    if not folder.exists():
        return 0
    n = 0
    entries = folder.rglob(TMP_PREFIX + "*") if recursive else folder.glob(TMP_PREFIX + "*")
    for p in sorted(entries, key=lambda e: len(e.parts), reverse=True):
        alive = temp_owner_alive(p.name)
        if alive is None:
            try:
                alive = time.time() - p.lstat().st_mtime < STALE_AFTER_S
            except FileNotFoundError:
                continue
        if alive:
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def stable_hash(obj: Any, n: int = 16) -> str:
    """Short hex digest of a JSON-able object, independent of dict order."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def csv_text(rows: list[dict[str, Any]], fields: list[str] | None = None) -> str:
    """Rows as CSV text (header from ``fields`` or the first row; keys not in it are ignored), for
    the small plot/metric tables DVC reads."""
    import csv
    import io as _io

    buf = _io.StringIO()
    names = fields if fields is not None else (list(rows[0]) if rows else [])
    if names:
        w = csv.DictWriter(buf, fieldnames=names, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return buf.getvalue()

"""Labelling a table: build the configured labellers once per process, run them on every image.

``label_rows`` adds the ``meas_*`` columns to any row-contract table (synthetic shards, real-data
imports). Large tables are cut into chunks labelled by a pool of processes and by the calling process
itself; each worker builds the models once (mediapipe, dlib, ONNX and tflite sessions take seconds
to load and cannot be pickled), and the caller labels while they start. The workers outlive one
call: a flow labels shard after shard, and each call re-spawning them paid their start-up (about
2 s of CPU) again; they stop after ``IDLE_SHUTDOWN_S`` without work.
Workers are spawned, not forked: a fork copies a parent's model objects whose internal threads did
not survive the fork, which can hang. Every value is a pure function of the image and the params,
so the chunking and the number of workers never change a label.
"""

from __future__ import annotations

import collections
import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from synthgen.contract import MEAS_NAMES, meas_table
from synthgen.errors import ConfigError, DataError, SynthgenError
from synthgen.images import decode_rgb
from synthgen.label.base import DETECTION_KEYS, LABELERS, FaceContext, Labeler
from synthgen.label.config import LabelParams

# Row columns the labellers may look at besides the image: the cabin geometry for gaze zones, and the
# camera matrix a row was made with (a calibrated camera, or a crop that follows a leaning face).
CONTEXT_COLUMNS = ("req_camera", "req_seat", "req_camera_matrix")


def build_labelers(params: LabelParams) -> list[Labeler]:
    """Instantiate ``params.labelers`` in order and check the list can work as a whole."""
    if not params.labelers:
        raise ConfigError("no labellers configured", where="label.labelers",
                          fix=f"list at least a detector, e.g. [{', '.join(LabelParams().labelers)}]")
    labelers: list[Labeler] = []
    available: set[str] = set()
    owner: dict[str, str] = {}
    for i, name in enumerate(params.labelers):
        lab = LABELERS.create(name, params)
        if i == 0 and not set(DETECTION_KEYS) <= set(lab.provides):
            raise ConfigError(f"the first labeller must be a face detector, got {name!r}",
                              where="label.labelers",
                              fix="start the list with mediapipe_detector, dlib_hog or insightface")
        missing = [r for r in lab.requires if r not in available]
        if missing:
            raise ConfigError(
                f"labeller {name!r} needs {', '.join(missing)}, which no labeller before it provides",
                where="label.labelers",
                fix="add the labeller that provides it earlier in the list (e.g. dlib before head_pose, "
                    "mediapipe_mesh and head_pose before iris_gaze)",
            )
        for col in lab.provides:
            if col in owner:
                raise ConfigError(f"{col} is measured by both {owner[col]!r} and {name!r}",
                                  where="label.labelers", fix="keep one of them")
            owner[col] = name
        available.update(lab.provides)
        available.update(lab.exports)
        labelers.append(lab)
    return labelers


_CACHE: dict[tuple[int, str], list[Labeler]] = {}
SCHEDULING_FIELDS = {"workers", "chunk_size", "min_rows_per_worker"}


def get_labelers(params: LabelParams) -> list[Labeler]:
    """Labellers for these params, built once per process (keyed by pid: never reuse a parent's)."""
    # how the work is spread (workers, chunking) does not change the models: not part of the key
    key = (os.getpid(), params.model_dump_json(exclude=SCHEDULING_FIELDS))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = build_labelers(params)
    return _CACHE[key]


def image_bytes(image: dict[str, Any] | None, where: str) -> bytes:
    """PNG/JPEG bytes of an image struct: its bytes, else the file its path names."""
    if image is None:
        raise DataError("row has no image", where=where)
    data = image.get("bytes")
    if data:
        return data
    path = image.get("path")
    if path and Path(path).is_file():
        return Path(path).read_bytes()
    raise DataError("image has neither bytes nor a readable path", where=where)


def label_one(labelers: Sequence[Labeler], image: dict[str, Any] | None, row: dict[str, Any],
              where: str = "image") -> dict[str, Any]:
    """All ``meas_*`` values of one image. Unreadable images and labeller failures are recorded in
    ``meas_error`` (the curate stage rejects them as ``label_error``), never raised."""
    try:
        rgb = decode_rgb(image_bytes(image, where), where=where)
    except SynthgenError as err:
        return {"meas_error": f"unreadable image: {err.what}"}
    ctx = FaceContext(image=rgb, row=row)
    errors = []
    for lab in labelers:
        try:
            lab.label(ctx)
        except Exception as err:  # noqa: BLE001 - one bad image must not stop a shard: it becomes meas_error
            errors.append(f"{lab.name}: {type(err).__name__}: {err}")
    meas = {k: v for k, v in ctx.meas.items() if k in MEAS_NAMES}
    if errors:
        meas["meas_error"] = "; ".join(errors)
    return meas


def _label_chunk(params_json: str, items: list[tuple[dict[str, Any] | None, dict[str, Any], str]]
                 ) -> list[dict[str, Any]]:
    labelers = get_labelers(LabelParams.model_validate_json(params_json))
    return [label_one(labelers, img, row, where) for img, row, where in items]


def _worker_init() -> None:
    # A worker of a killed run must not keep labelling (and holding its models' memory).
    from synthgen.lifeline import die_with_parent

    die_with_parent()
    # One process per core: keep each library to one thread so workers do not fight for cores.
    import cv2
    from threadpoolctl import threadpool_limits

    cv2.setNumThreads(1)
    threadpool_limits(1)  # BLAS/OpenMP (BRISQUE's numpy and scipy)


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """The parent labels chunks beside its workers: one thread per library for that time too."""
    import cv2
    from threadpoolctl import threadpool_limits

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        cv2.setNumThreads(before)


# Seconds the labelling workers wait for the next call before they stop (and free their models).
IDLE_SHUTDOWN_S = 60.0


class _WorkerPool:
    """The spawned labelling workers of this process, kept between ``label_rows`` calls.

    Why: their start-up (imports, model loading: ~2 s of CPU each) was paid on every call, and a
    flow calls once per shard and per top-up round. Kept warm, each later call runs at the
    speed of two warm processes. A broken pool (a worker died) is replaced on the next call; an
    idle one shuts down after ``IDLE_SHUTDOWN_S``; calls from several threads share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._size = 0
        self._users = 0
        self._generation = 0
        self._timer: threading.Timer | None = None
        # A process that is itself a multiprocessing worker (a Prefect process task runner's)
        # joins its children at exit before atexit handlers run, so idle workers would keep it
        # alive forever: stop them in multiprocessing's own exit finalizers, which run before
        # that join (and at exit of any process), and wait for them there: the pool's queues are
        # closed by later finalizers, which could drop the stop messages still on their way.
        Finalize(self, self.close, kwargs={"wait": True}, exitpriority=100)

    def acquire(self, size: int) -> tuple[ProcessPoolExecutor, bool]:
        """The pool, and whether it ran an earlier call (its workers may have died since)."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            pool = self._pool
            if pool is not None and self._users == 0 and (self._size != size or getattr(pool, "_broken", False)):
                pool.shutdown(wait=False, cancel_futures=True)
                pool = self._pool = None
            reused = pool is not None
            if pool is None:
                pool = self._pool = ProcessPoolExecutor(max_workers=size, mp_context=get_context("spawn"),
                                                        initializer=_worker_init)
                self._size = size
            self._users += 1
            return pool, reused

    def release(self, failed: bool) -> None:
        """One call is done with the pool; after a failure it is not trusted for the next one."""
        with self._lock:
            self._users -= 1
            self._generation += 1
            if self._users:
                return
            if failed:
                self._close_locked()
                return
            self._timer = threading.Timer(IDLE_SHUTDOWN_S, self._expire, (self._generation,))
            self._timer.daemon = True
            self._timer.start()

    def _expire(self, generation: int) -> None:
        with self._lock:
            if generation == self._generation and not self._users:
                self._close_locked()

    def _close_locked(self, wait: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait, cancel_futures=True)
            self._pool = None

    def close(self, wait: bool = False) -> None:
        """Stop the workers now (they stop by themselves after ``IDLE_SHUTDOWN_S`` otherwise);
        ``wait`` until they have exited."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._users:
                self._close_locked(wait)

    @property
    def started(self) -> bool:
        return self._pool is not None

    @property
    def pids(self) -> set[int]:
        """Process ids of the live workers (empty before the first call and after a shutdown)."""
        with self._lock:
            procs = getattr(self._pool, "_processes", None) or {}
            return {int(pid) for pid, proc in procs.items() if proc.is_alive()}


WORKERS = _WorkerPool()


def _label_pooled(params_json: str, chunks: list[list[Any]], workers: int, results: list[Any],
                  advance: Callable[[int], None]) -> None:
    """Label the ``chunks`` whose ``results`` are still None with ``workers - 1`` worker processes
    and the calling process itself.

    The caller takes the next chunk whenever its workers hold enough queued work, so the seconds a
    worker needs to start (imports, model loading) are not idle time, and no core sits unused."""
    todo = collections.deque(i for i in range(len(chunks)) if results[i] is None)
    ahead = 2  # chunks queued per worker: enough to keep it busy while the caller labels one
    pool, reused = WORKERS.acquire(workers - 1)
    pending: dict[Future[list[dict[str, Any]]], int] = {}
    failed = True
    try:
        with _single_threaded():

            def collect(futures: Iterable[Future[list[dict[str, Any]]]]) -> None:
                for fut in futures:
                    i = pending.pop(fut)
                    results[i] = fut.result()
                    advance(len(chunks[i]))

            while todo:
                collect([f for f in list(pending) if f.done()])
                if len(pending) < ahead * (workers - 1):
                    i = todo.popleft()
                    pending[pool.submit(_label_chunk, params_json, chunks[i])] = i
                    continue
                i = todo.pop()  # the caller works from the other end of the queue
                results[i] = _label_chunk(params_json, chunks[i])
                advance(len(chunks[i]))
            collect(as_completed(list(pending)))
        failed = False
    except BrokenProcessPool:
        if not reused:
            raise
        # A worker kept from an earlier call died in between (killed, out of memory): label the
        # chunks not yet done with new workers (each label is a pure function of image and params).
        retry = True
    else:
        retry = False
    finally:
        for fut in pending:  # an error or an interrupt: drop the chunks still queued
            fut.cancel()
        WORKERS.release(failed)
    if retry:
        _label_pooled(params_json, chunks, workers, results, advance)


def _items(table: pa.Table) -> list[tuple[dict[str, Any] | None, dict[str, Any], str]]:
    if "image" not in table.column_names:
        raise DataError("table has no 'image' column", fix="label a table that follows synthgen.contract")
    images = table.column("image").to_pylist()
    ids = (table.column("sample_id").to_pylist() if "sample_id" in table.column_names
           else [f"row {i}" for i in range(table.num_rows)])
    ctx_cols = {c: table.column(c).to_pylist() for c in CONTEXT_COLUMNS if c in table.column_names}
    return [(img, {c: v[i] for c, v in ctx_cols.items()}, f"sample {ids[i]}") for i, img in enumerate(images)]


def label_rows(table: pa.Table, params: LabelParams, progress: bool = True) -> pa.Table:
    """``table`` with the ``meas_*`` columns added (earlier ``meas_*`` columns are replaced;
    ``req_*`` and all other columns are kept as they are)."""
    items = _items(table)
    params_json = params.model_dump_json()
    size = params.chunk_size
    chunks = [items[i: i + size] for i in range(0, len(items), size)]
    # A worker costs seconds to start (imports, model loading): only worth it for enough rows.
    workers = min(params.workers or (os.cpu_count() or 1), len(chunks),
                  max(1, len(items) // params.min_rows_per_worker))
    results: list[list[dict[str, Any]] | None] = [None] * len(chunks)
    columns = [TextColumn("[bold]label[/]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task("label", total=len(items))
        if workers <= 1:
            for i, chunk in enumerate(chunks):
                results[i] = _label_chunk(params_json, chunk)
                bar.advance(task, len(chunk))
        else:
            _label_pooled(params_json, chunks, workers, results, lambda k: bar.advance(task, k))
    rows = [m for chunk in results for m in (chunk or [])]
    meas = meas_table(rows)
    keep = [c for c in table.column_names if c not in MEAS_NAMES]
    out = table.select(keep)
    for field in meas.schema:
        out = out.append_column(field, meas.column(field.name))
    return out

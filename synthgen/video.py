"""Clips of a published sequence dataset: the frames of one clip in order, and an MP4 preview.

Why OpenCV's writer: it is already a dependency, and its MPEG-4 Part 2 (``mp4v``) encoder needs no
external ffmpeg; players such as VLC, ffplay and most desktop viewers play the file (some browsers
want H.264, which OpenCV's pip wheels do not ship)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import polars as pl

from synthgen.errors import DataError
from synthgen.images import decode_rgb

logger = logging.getLogger(__name__)


def clip_frames(lf: pl.LazyFrame, sequence_id: str) -> pl.LazyFrame:
    """The rows of one clip, ordered by ``frame_index``."""
    if "sequence_id" not in lf.collect_schema().names():
        raise DataError("this dataset has no sequence columns", where="sequence_id",
                        fix="publish a plan made with plan.kind: sequence")
    return lf.filter(pl.col("sequence_id") == sequence_id).sort("frame_index")


def write_mp4(rows: list[dict[str, Any]], path: str | Path, fps: float, overlay: bool = True) -> Path:
    """Write the ``image`` of each row (in the given order) to an MP4 file, atomically. With
    ``overlay`` each frame shows its index, time and requested gaze zone / eye openness."""
    if not rows:
        raise DataError("no frames to write", where=str(path), fix="check the sequence id (`--select sequence_id`)")
    path = Path(path)
    frames = [decode_rgb(r["image"]["bytes"], where=f"frame {r.get('frame_index')}") for r in rows]
    h, w = frames[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".mp4", dir=path.parent)
    Path(tmp_name).unlink()  # VideoWriter creates the file itself
    writer = cv2.VideoWriter(tmp_name, cv2.VideoWriter.fourcc(*"mp4v"), float(fps), (w, h))
    try:
        if not writer.isOpened():
            raise DataError("OpenCV cannot open an MP4 writer", where=str(path), fix="install opencv-python with video support")
        for r, img in zip(rows, frames, strict=True):
            bgr = np.ascontiguousarray(img[..., ::-1])
            if overlay:
                text = f"{r.get('frame_index', '')} {r.get('t_ms', 0) or 0:.0f}ms {r.get('req_gaze_zone') or ''}"
                cv2.putText(bgr, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
            writer.write(bgr)
    finally:
        writer.release()
        os.close(fd)
    Path(tmp_name).replace(path)
    logger.info("wrote %d frames to %s", len(rows), path)
    return path

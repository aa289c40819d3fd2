"""The curation filters. Each reason code names one cause, so every reject can be explained and
counted (``reject_summary``) and the requested-vs-measured reasons say which attribute disagreed.

A check needs both sides: a row without a requested value (real data has no ``req_*``) or without
a measurement (say, no gaze because the eyes were closed) is not rejected by that check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from synthgen.curate import conditions as cond
from synthgen.curate.base import FILTERS, FilterResult
from synthgen.curate.config import CurateParams
from synthgen.errors import ConfigError, DataError
from synthgen.geometry import angle_diff, angular_error
from synthgen.vocab import EXPRESSIONS


def num(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A numeric column as float64 with NaN for nulls (and all NaN when the column is absent)."""
    if name not in frame.columns:
        return np.full(frame.height, np.nan)
    return frame.get_column(name).cast(pl.Float64).fill_null(np.nan).to_numpy().astype(float)


def strs(frame: pl.DataFrame, name: str) -> list[str | None]:
    return frame.get_column(name).to_list() if name in frame.columns else [None] * frame.height


def _gt(values: np.ndarray, limit: float) -> np.ndarray:
    """values > limit, False where the value is unknown."""
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(values, nan=-np.inf) > limit


def _lt(values: np.ndarray, limit: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return np.nan_to_num(values, nan=np.inf) < limit


def requested_eyes_open(frame: pl.DataFrame) -> np.ndarray:
    if "req_eyes_open" in frame.columns:
        out = frame.get_column("req_eyes_open").fill_null(True).to_numpy().astype(bool)
    else:
        out = ~_lt(num(frame, "req_eye_openness"), 0.5)
    return out & ~cond.effective_closed(frame)  # an eye state can close the eyes too


class LabelError:
    name, kind, reasons = "label_error", "row", ("label_error",)

    def __init__(self, params: CurateParams) -> None:
        pass

    def apply(self, frame: pl.DataFrame, prior: list[list[str]]) -> FilterResult:
        err = frame.get_column("meas_error").is_not_null().to_numpy() if "meas_error" in frame.columns \
            else np.zeros(frame.height, bool)
        return FilterResult({"label_error": err})


class FaceCount:
    name, kind, reasons = "face_count", "row", ("no_face", "multiple_faces")

    def __init__(self, params: CurateParams) -> None:
        pass

    def apply(self, frame: pl.DataFrame, prior: list[list[str]]) -> FilterResult:
        n = num(frame, "meas_face_count")
        hidden = cond.not_visible_enough(frame)  # a face the rule calls hidden may go unseen
        notes = [f"no_face not applied to {int((hidden & (n == 0)).sum())} rows whose face is not visible enough"] \
            if (hidden & (n == 0)).any() else []
        return FilterResult({"no_face": (n == 0) & ~hidden, "multiple_faces": _gt(n, 1)}, notes)


class LowQuality:
    name, kind, reasons = "low_quality", "row", ("low_quality",)

    def __init__(self, params: CurateParams) -> None:
        self.q = params.quality

    def apply(self, frame: pl.DataFrame, prior: list[list[str]]) -> FilterResult:
        q = self.q
        exposure = num(frame, "meas_quality_exposure")
        bad = (
            _lt(num(frame, "meas_quality_face_size"), q.min_face_size)
            | _lt(num(frame, "meas_quality_sharpness"), q.min_sharpness)
            | _lt(exposure, q.min_exposure) | _gt(exposure, q.max_exposure)
            | _gt(num(frame, "meas_quality_clipped"), q.max_clipped)
            | _gt(num(frame, "meas_quality_brisque"), q.max_brisque)
        )
        # Only faces are judged: an image without a face is already rejected as no_face.
        return FilterResult({"low_quality": bad & (num(frame, "meas_face_count") >= 1)})


class Mismatch:
    """Requested vs measured, one reason per attribute."""

    name, kind = "mismatch", "row"
    reasons = ("gaze_mismatch", "head_pose_mismatch", "age_mismatch", "expression_mismatch")

    def __init__(self, params: CurateParams) -> None:
        self.t = params.tolerances

    def apply(self, frame: pl.DataFrame, prior: list[list[str]]) -> FilterResult:
        t = self.t
        gaze_err = angular_error(num(frame, "req_gaze_yaw"), num(frame, "req_gaze_pitch"),
                                      num(frame, "meas_gaze_yaw"), num(frame, "meas_gaze_pitch"))
        gaze = _gt(gaze_err, t.gaze_deg) & requested_eyes_open(frame) & ~cond.eyes_hidden(frame)
        head_err = np.stack([
            np.abs(angle_diff(num(frame, f"req_head_{a}"), num(frame, f"meas_head_{a}")))
            for a in ("yaw", "pitch", "roll")
        ])
        with np.errstate(invalid="ignore"):
            head = _gt(np.where(np.isnan(head_err), -np.inf, head_err).max(axis=0), t.head_pose_deg)
        head &= ~cond.not_visible_enough(frame)
        age = _gt(np.abs(num(frame, "req_age") - num(frame, "meas_age")), t.age_years)
        no_mouth = cond.mouth_hidden(frame) | cond.yawning(frame)  # an unseen mouth shows no expression
        notes = [f"{what} skipped on {int(m.sum())} rows ({why})" for what, m, why in (
            ("expression check", no_mouth, "mouth occluded or yawning"),
            ("gaze check", cond.eyes_hidden(frame) | cond.effective_closed(frame), "eyes hidden or closed"),
            ("head-pose check", cond.not_visible_enough(frame), "face not visible enough")) if m.any()]
        return FilterResult({"gaze_mismatch": gaze, "head_pose_mismatch": head, "age_mismatch": age,
                             "expression_mismatch": self._expression(frame) & ~no_mouth}, notes)

    def _expression(self, frame: pl.DataFrame) -> np.ndarray:
        req = strs(frame, "req_expression")
        probs = frame.get_column("meas_expression_probs").to_list() if "meas_expression_probs" in frame.columns \
            else [None] * frame.height
        intensity = num(frame, "req_expression_intensity")
        out = np.zeros(frame.height, bool)
        k = self.t.expression_top_k
        for i, (r, p) in enumerate(zip(req, probs)):
            if r not in EXPRESSIONS or p is None or len(p) != len(EXPRESSIONS):
                continue
            if r != "neutral" and not np.isnan(intensity[i]) and intensity[i] < self.t.expression_min_intensity:
                continue
            # Stable order: ties resolved by vocabulary order, so the decision is deterministic.
            top = np.argsort(-np.asarray(p, float), kind="stable")[:k]
            out[i] = EXPRESSIONS.index(r) not in top
        return out


def embedding_matrix(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised identity embeddings of the rows that have one, and those rows' indices.
    Rows whose embedding length differs from the most common one (another labeller) are left out."""
    if "meas_identity_embedding" not in frame.columns:
        return np.zeros((0, 0)), np.zeros(0, int)
    embs = frame.get_column("meas_identity_embedding").to_list()
    lengths = [len(e) for e in embs if e is not None]
    if not lengths:
        return np.zeros((0, 0)), np.zeros(0, int)
    dim = max(set(lengths), key=lambda d: (lengths.count(d), -d))
    idx = np.array([i for i, e in enumerate(embs) if e is not None and len(e) == dim], int)
    mat = np.array([embs[i] for i in idx], np.float64).reshape(len(idx), dim)
    norms = np.linalg.norm(mat, axis=1, keepdims=True)
    return mat / np.where(norms > 0, norms, 1.0), idx


def phash_ints(values: list[str | None]) -> np.ndarray:
    """pHash hex strings -> uint64 (0 with a flag for missing ones)."""
    return np.array([int(v, 16) if v else 0 for v in values], dtype=np.uint64)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


class NearDuplicate:
    """Two rows are near duplicates when their identity embeddings (same face), their perceptual
    hashes (same picture) and their measured head pose and gaze (same pose: a whole-image pHash
    barely moves when only the eyes turn, 70 degrees of gaze changed it by 4 bits on renders) are
    all close, and the measured expression is the same. The same face with another gaze or
    expression is variety, not duplication. Clusters are the connected components; the kept member is the one
    with the fewest other reject reasons, then the smallest sample_id."""

    name, kind, reasons = "near_duplicate", "set", ("near_duplicate",)
    block = 2048

    def __init__(self, params: CurateParams) -> None:
        self.p = params.duplicates

    def apply(self, frame: pl.DataFrame, prior: list[list[str]]) -> FilterResult:
        out = np.zeros(frame.height, bool)
        emb, idx = embedding_matrix(frame)
        hashes = strs(frame, "meas_phash")
        keep = np.array([hashes[i] is not None for i in idx], bool)
        emb, idx = emb[keep], idx[keep]
        if len(idx) < 2:
            return FilterResult({"near_duplicate": out})
        ph = phash_ints([hashes[i] for i in idx])
        angles = np.stack([num(frame, c)[idx] for c in
                           ("meas_head_yaw", "meas_head_pitch", "meas_gaze_yaw", "meas_gaze_pitch")], axis=1)
        expr = np.array([str(v) for v in strs(frame, "meas_expression")], object)[idx]
        clip = cond.sequence_ids(frame)[idx]
        uf = _UnionFind(len(idx))
        for start in range(0, len(idx), self.block):
            sims = emb[start: start + self.block] @ emb.T
            rows, cols = np.nonzero(sims >= self.p.min_cosine)
            rows = rows + start
            upper = cols > rows
            rows, cols = rows[upper], cols[upper]
            if rows.size == 0:
                continue
            close = np.bitwise_count(ph[rows] ^ ph[cols]) <= self.p.max_phash_distance
            rows, cols = rows[close], cols[close]
            delta = np.abs(angle_diff(angles[rows], angles[cols]))
            both_missing = np.isnan(angles[rows]) & np.isnan(angles[cols])
            same_pose = np.all(np.where(both_missing, 0.0, np.nan_to_num(delta, nan=np.inf)) <= self.p.max_angle_deg,
                               axis=1)
            same = same_pose & (expr[rows] == expr[cols])
            same &= (clip[rows] == "") & (clip[cols] == "")  # clip frames are alike by design: never cut
            for a, b in zip(rows[same], cols[same]):
                uf.union(int(a), int(b))
        ids = strs(frame, "sample_id")
        clusters: dict[int, list[int]] = {}
        for k in range(len(idx)):
            clusters.setdefault(uf.find(k), []).append(int(idx[k]))
        for members in clusters.values():
            if len(members) < 2:
                continue
            kept = min(members, key=lambda r: (len(prior[r]), str(ids[r]), r))
            for r in members:
                out[r] = r != kept
        return FilterResult({"near_duplicate": out})


def load_reference(path: Path) -> np.ndarray:
    """Reference embeddings (n x d) from .npy or Parquet."""
    if not path.is_file():
        raise ConfigError("identity reference file not found", where=f"curate.identity_reference = {path}",
                          fix="point it at a .npy (N x D) or a Parquet file with an 'embedding' column")
    try:
        if path.suffix == ".npy":
            ref = np.load(path, allow_pickle=False)
        else:
            schema = pq.read_schema(path)
            col = next((c for c in ("embedding", "meas_identity_embedding") if c in schema.names), None)
            if col is None:
                raise DataError("no 'embedding' or 'meas_identity_embedding' column", where=str(path))
            values = [v for v in pq.read_table(path, columns=[col]).column(col).to_pylist() if v is not None]
            ref = np.array(values, np.float64)
    except (OSError, ValueError) as err:
        raise DataError(f"cannot read identity reference ({err})", where=str(path)) from None
    if ref.ndim != 2 or ref.shape[0] == 0:
        raise DataError(f"identity reference must be a non-empty N x D matrix, got shape {ref.shape}", where=str(path))
    ref = ref.astype(np.float64)
    norms = np.linalg.norm(ref, axis=1, keepdims=True)
    return ref / np.where(norms > 0, norms, 1.0)


class IdentityLeak:
    """A synthetic face too close to a real person's face (privacy: a generator may reproduce a
    training identity). Needs real embeddings from the same labeller as the rows'."""

    name, kind, reasons = "identity_leak", "row", ("identity_leak",)

    def __init__(self, params: CurateParams) -> None:
        self.path = params.identity_reference
        self.threshold = params.identity_leak_min_cosine
        self._ref = None if self.path is None else load_reference(Path(self.path))

    def apply(self, frame: pl.DataFrame, prior: list[list[str]]) -> FilterResult:
        out = np.zeros(frame.height, bool)
        if self._ref is None:
            return FilterResult({"identity_leak": out},
                                ["identity_leak skipped: curate.identity_reference is not set"])
        emb, idx = embedding_matrix(frame)
        if len(idx) == 0:
            return FilterResult({"identity_leak": out}, ["identity_leak: no row has an identity embedding"])
        if emb.shape[1] != self._ref.shape[1]:
            raise ConfigError(
                f"identity reference has {self._ref.shape[1]}-d embeddings, the rows {emb.shape[1]}-d",
                where=f"curate.identity_reference = {self.path}",
                fix="compute the reference with the same identity labeller as label.labelers",
            )
        best = np.max(emb @ self._ref.T, axis=1)
        out[idx] = best >= self.threshold
        return FilterResult({"identity_leak": out})


for _cls in (LabelError, FaceCount, LowQuality, Mismatch, NearDuplicate, IdentityLeak):
    FILTERS.register(_cls.name)(_cls)

"""What each work product was made from: a chain of fingerprints plan -> generated -> labelled.

Every stage writes the hash of its fingerprint into its output (the plan's Parquet metadata, each
shard's Parquet metadata, the stage folder's ``_stage.json``), and every stage computes from its
own params the hash its input must carry. An input made with other params (a plan from another
seed, shards from a generate run with other settings) is refused instead of being used.
The curated hash also covers the labelled rows' content (see ``synthgen.curate.stage``), since
curation decides over all rows together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthgen.config import Params
from synthgen.io import sha256_file, stable_hash


# How a stage runs, not what it makes: chunking and process counts never change a value.
_EXECUTION_ONLY = ("workers", "chunk_size", "min_rows_per_worker")


def _section(model: Any) -> dict[str, Any]:
    return {k: v for k, v in model.model_dump(mode="json").items() if k not in _EXECUTION_ONLY}


def _file_hash(path: Path | None) -> str | None:
    return sha256_file(path) if path is not None and Path(path).is_file() else None


def plan_fingerprint(params: Params) -> dict[str, Any]:
    """What ``plan.parquet`` depends on (a targeted plan also on its gaps file's content)."""
    fp: dict[str, Any] = {"seed": params.seed, "plan": params.plan.model_dump(mode="json")}
    if params.plan.mode == "targeted":
        fp["gaps"] = _file_hash(params.plan.gaps)
    return fp


def generate_fingerprint(params: Params) -> dict[str, Any]:
    """What a generated shard depends on; a change discards the old shards."""
    return {"seed": params.seed, "plan": params.plan.model_dump(mode="json"),
            "plan_hash": plan_hash(params), "generate": _section(params.generate)}


def label_fingerprint(params: Params) -> dict[str, Any]:
    """The dataset version is not part of it: it also hashes curate params, which do not change labels."""
    return {"label": _section(params.label), "upstream": generate_hash(params)}


def plan_hash(params: Params) -> str:
    return stable_hash(plan_fingerprint(params))


def generate_hash(params: Params) -> str:
    return stable_hash(generate_fingerprint(params))


def label_hash(params: Params) -> str:
    return stable_hash(label_fingerprint(params))


def expected_hash(params: Params, stage: str) -> str | None:
    """The hash a work product of ``stage`` made with ``params`` carries (None: data-dependent)."""
    return {"plan": plan_hash, "generated": generate_hash, "labelled": label_hash}.get(
        stage, lambda _p: None)(params)

"""What each work product was made from: a chain of fingerprints plan -> generated -> labelled.

Every stage writes the hash of its fingerprint into its output (the plan's Parquet metadata, each
shard's Parquet metadata, the stage folder's ``_stage.json``), and every stage computes from its
own params the hash its input must carry. An input made with other params (a plan from another
seed, shards from a generate run with other settings) is refused instead of being used.
The curated hash also covers the labelled rows' content (see ``synthgen.curate.stage``), since
curation decides over all rows together.

Base layer: the functions take the assembled params (typed ``Any``: each reads the sections its
fingerprint covers, ``seed``, ``plan``, ``generate``, ``label``), so no stage imports another.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthgen.errors import DataError
from synthgen.io import sha256_file, stable_hash
from synthgen.paths import Layout
from synthgen.sections import RunParams
from synthgen.shards import shard_hash
from synthgen.spec import plan_shards

# How a stage runs, not what it makes: chunking and process counts never change a value.
_EXECUTION_ONLY = ("workers", "chunk_size", "min_rows_per_worker")


def _section(model: Any) -> dict[str, Any]:
    return {k: v for k, v in model.model_dump(mode="json").items() if k not in _EXECUTION_ONLY}


def _file_hash(path: Path | None) -> str | None:
    return sha256_file(path) if path is not None and Path(path).is_file() else None


def plan_fingerprint(params: Any) -> dict[str, Any]:
    """What ``plan.parquet`` depends on (a targeted plan also on its gaps file's content)."""
    fp: dict[str, Any] = {"seed": params.seed, "plan": params.plan.model_dump(mode="json")}
    if params.plan.mode == "targeted":
        fp["gaps"] = _file_hash(params.plan.gaps)
    return fp


def generate_fingerprint(params: Any) -> dict[str, Any]:
    """What a generated shard depends on; a change discards the old shards. The backend's code
    version is part of it: a new renderer re-renders every shard (and so relabels them), where
    finished shards of the old one would otherwise be kept beside new ones."""
    return {"seed": params.seed, "plan": params.plan.model_dump(mode="json"),
            "plan_hash": plan_hash(params), "generate": _section(params.generate),
            "generator_code": params.generate.code_version()}


def label_fingerprint(params: Any) -> dict[str, Any]:
    """The dataset version is not part of it: it also hashes curate params, which do not change labels.
    The labellers' code versions are: a new labeller (or library under it) relabels every shard."""
    return {"label": _section(params.label), "upstream": generate_hash(params),
            "labeler_code": params.label.code_versions()}


def plan_hash(params: Any) -> str:
    return stable_hash(plan_fingerprint(params))


def generate_hash(params: Any) -> str:
    return stable_hash(generate_fingerprint(params))


def label_hash(params: Any) -> str:
    return stable_hash(label_fingerprint(params))


def expected_hash(params: Any, stage: str) -> str | None:
    """The hash a work product of ``stage`` made with ``params`` carries (None: data-dependent)."""
    return {"plan": plan_hash, "generated": generate_hash, "labelled": label_hash}.get(
        stage, lambda _p: None)(params)


def require_plan(params: RunParams) -> list[int]:
    """The plan's shard numbers, after checking the plan exists and was made with these params."""
    path = Layout.from_params(params).plan_file
    if not path.exists():
        raise DataError("plan.parquet not found", where=str(path), fix="run `synthgen plan` first")
    have, want = shard_hash(path), plan_hash(params)
    if have != want:
        raise DataError(f"plan.parquet was made with other params (fingerprint {have}, these params "
                        f"expect {want}: seed or plan section differ)", where=str(path),
                        fix="run `synthgen plan` with these params")
    try:
        return plan_shards(path)
    except (OSError, ValueError) as err:
        raise DataError(f"plan.parquet is damaged ({err})", where=str(path),
                        fix="run `synthgen plan` again") from None

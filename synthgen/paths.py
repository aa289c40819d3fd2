"""Where each stage reads and writes. One layout for the CLI, DVC stages and Prefect flows, so
that a scheduled run and ``dvc repro`` write the same files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from synthgen.io import stable_hash
from synthgen.sections import RunParams

# Stages that work shard by shard, in order. Each reads the previous one's shards.
SHARD_STAGES = ("generated", "labelled", "curated")
# What the curated folder holds beside its shards for publish (the manifest and the card): the
# offline models' agreement with the requests, and planned vs accepted (written last).
CURATED_AGREEMENT = "_agreement.json"
CURATED_COVERAGE = "_coverage.json"


def dataset_version(params: RunParams) -> str:
    if params.dataset.version != "auto":
        return params.dataset.version
    from synthgen import __version__

    # The generator's and labellers' code versions too: the same params rendered by another renderer
    # or read by another labeller are other data.
    return "v" + stable_hash({"params": params.shaping_sections(), "synthgen": __version__,
                              "code": params.code_versions()}, n=10)


@dataclass(frozen=True)
class Layout:
    data_dir: Path
    name: str
    version: str

    @classmethod
    def from_params(cls, params: RunParams) -> "Layout":
        return cls(Path(params.data_dir), params.dataset.name, dataset_version(params))

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work" / self.name

    @property
    def plan_file(self) -> Path:
        return self.work_dir / "plan.parquet"

    def stage_dir(self, stage: str) -> Path:
        return self.work_dir / stage

    def shard_file(self, stage: str, shard: int) -> Path:
        return self.stage_dir(stage) / f"shard-{shard:05d}.parquet"

    @property
    def dataset_dir(self) -> Path:
        return self.data_dir / "datasets" / self.name

    @property
    def version_dir(self) -> Path:
        return self.dataset_dir / f"version={self.version}"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports" / self.name

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models" / self.name

    @property
    def topup_root(self) -> Path:
        """Where the top-up rounds keep their own plan, generated and labelled shards (one folder
        that the curate stage owns, so the plan/generate/label stages' outputs never change)."""
        return self.work_dir / "topup"


P = TypeVar("P", bound=RunParams)


def topup_params(params: P) -> P:
    """The same params pointed at the top-up folder: the plan, generate and label stages then read
    and write ``work/<name>/topup/work/<name>/{plan.parquet,generated,labelled}`` with unchanged
    fingerprints (data_dir is not part of any)."""
    return params.model_copy(update={"data_dir": Layout.from_params(params).topup_root})


def topup_shards(params: RunParams) -> dict[int, int]:
    """Shard -> round of every top-up shard (none without a top-up plan). The curated folder holds
    the plan's shards and these: a completeness check expects both."""
    from synthgen.spec import plan_rounds

    plan = Layout.from_params(topup_params(params)).plan_file
    return plan_rounds(plan) if plan.exists() else {}

"""Parameters of the `analyze` stage (the `analyze:` section of params.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from synthgen.sections import RunParams


class FeatureParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field("identity", description="a registered feature extractor: identity, dinov2, clip")
    model: str | None = Field(None, description="dinov2/clip: local folder or cached hub id (default: the extractor's own)")
    batch_size: int = Field(32, ge=1)

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return _registered("extractor", [v])[0]
    device: str = "cpu"


def _registered(kind: str, names: list[str]) -> list[str]:
    from synthgen.analyze.registries import EXTRACTORS, METRICS

    reg = {"extractor": EXTRACTORS, "metric": METRICS}[kind]
    unknown = [n for n in names if n not in reg.names()]
    if unknown:
        raise ValueError(f"unknown {reg.kind} {', '.join(map(repr, unknown))}; choose from: {', '.join(reg.names())}")
    return names


class AnalyzeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: Path | None = Field(
        None,
        description="real reference: a Parquet file or folder in the row contract (from `synthgen real import-*`); "
        "None = the small offline demo reference built from photos shipped in packages",
    )
    synthetic_columns: Literal["meas", "req", "meas_or_req"] = Field(
        "meas_or_req",
        description="which synthetic attributes to compare with the real labels: measured, requested, "
        "or measured where the column exists and requested otherwise",
    )
    accepted_only: bool = Field(True, description="compare only curated-accepted synthetic rows")
    attributes: list[str] = [
        "age", "age_group", "gender", "expression", "gaze_yaw", "gaze_pitch", "gaze_zone",
        "head_yaw", "head_pitch", "head_roll",
    ]
    coverage_attributes: list[str] = ["age_group", "expression", "gaze_zone"]
    coverage_ratio: float = Field(0.5, gt=0, le=1, description="a bin is a gap below this share of its target count")
    min_per_bin: int = Field(5, ge=1, description="smallest target count of a bin the real data holds")
    bin_attribute: str | None = Field("age_group", description="embedding metrics per bin of this attribute too")
    min_bin_samples: int = Field(10, ge=2, description="fewer samples per side in a bin: metric not computable")
    features: FeatureParams = FeatureParams()
    metrics: list[str] = Field(
        ["fd", "kid", "prdc", "mmd", "domain_auc"],
        description="registered shift metrics on the embeddings (domain_auc also ranks the most synthetic-looking images)",
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, v: list[str]) -> list[str]:
        return _registered("metric", v)
    kid_subsets: int = Field(100, ge=1)
    kid_subset_size: int = Field(1000, ge=2)
    nearest_k: int = Field(5, ge=1)
    mmd_max_samples: int = Field(5000, ge=2)
    classifier_folds: int = Field(5, ge=2)
    classifier_max_samples: int = Field(5000, ge=4)
    bootstrap: int = Field(200, ge=10)
    memory_mb: int = Field(512, ge=16, description="block size bound of pairwise-distance work")
    max_rows: int | None = Field(None, ge=1, description="subsample each side to at most this many rows")
    grid_images: int = Field(8, ge=1, le=64, description="images per grid in the report")


class AnalyzeRun(RunParams, Protocol):
    """What the analyze stage reads."""

    @property
    def analyze(self) -> AnalyzeParams: ...

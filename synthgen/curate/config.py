"""Parameters of the `curate` stage (the `curate:` section of params.yaml).

Embedding thresholds are on the cosine of the identity embeddings the label stage wrote; the
defaults suit dlib's ResNet (128-d): different people reach 0.91 at most on the packaged photos,
the same photo flipped or blurred 0.98+; dlib's own "same person" rule, distance < 0.6, is a
cosine of about 0.92 at its typical norm of 1.45.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import Field, model_validator

from synthgen.plan.config import PlanParams
from synthgen.sections import RunParams, Section

DEFAULT_FILTERS = ["label_error", "face_count", "low_quality", "mismatch", "conditions", "near_duplicate",
                   "identity_leak"]


class QualityThresholds(Section):
    min_face_size: float = Field(40.0, ge=0, description="sqrt(face box area) in pixels")
    min_sharpness: float = Field(15.0, ge=0, description="variance of the Laplacian on the 128 px face crop")
    min_exposure: float = Field(0.10, ge=0, le=1, description="mean grey level of the face crop")
    max_exposure: float = Field(0.92, ge=0, le=1)
    max_clipped: float = Field(0.40, ge=0, le=1, description="share of crushed or blown face pixels")
    max_brisque: float = Field(80.0, ge=0, description="BRISQUE of the face crop (lower is better); null passes")

    @model_validator(mode="after")
    def _range(self) -> "QualityThresholds":
        if self.min_exposure >= self.max_exposure:
            raise ValueError("min_exposure must be below max_exposure")
        return self


class Tolerances(Section):
    """Largest accepted disagreement between requested (``req_*``) and measured (``meas_*``)."""

    gaze_deg: float = Field(20.0, gt=0, le=180, description="angle between requested and measured gaze")
    head_pose_deg: float = Field(15.0, gt=0, le=180, description="largest |difference| of yaw, pitch, roll")
    age_years: float = Field(15.0, gt=0, le=100)
    expression_top_k: int = Field(2, ge=1, le=7, description="requested expression must be among the k most "
                                                             "probable measured ones")
    expression_min_intensity: float = Field(0.5, ge=0, le=1, description="weaker requested expressions "
                                                                       "are not checked")


class DuplicateParams(Section):
    min_cosine: float = Field(0.97, gt=0, le=1, description="identity-embedding cosine of near duplicates")
    max_phash_distance: int = Field(8, ge=0, le=64, description="pHash Hamming distance of near duplicates")
    max_angle_deg: float = Field(3.0, ge=0, le=180, description="largest difference of measured head yaw/pitch "
                                                              "and gaze yaw/pitch between near duplicates")


class CurateParams(Section):
    filters: list[str] = Field(default_factory=lambda: list(DEFAULT_FILTERS),
                               description="filters to apply (each adds its reason codes)")
    quality: QualityThresholds = QualityThresholds()
    tolerances: Tolerances = Tolerances()
    duplicates: DuplicateParams = DuplicateParams()
    identity_reference: Path | None = Field(
        None, description="real faces' embeddings (.npy N x D, or Parquet with an 'embedding' or "
                          "'meas_identity_embedding' column); none = identity_leak skipped")
    identity_leak_min_cosine: float = Field(0.92, gt=0, le=1, description="closer than this to any reference "
                                                                         "face = identity_leak")


class CurateRun(RunParams, Protocol):
    """What the curate stage reads (the plan section: for the Euro NCAP coverage report's cells)."""

    @property
    def curate(self) -> CurateParams: ...
    @property
    def plan(self) -> PlanParams: ...

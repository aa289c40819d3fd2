"""Parameters of the `label` stage (the `label:` section of params.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import Field, field_validator

from synthgen.sections import RunParams, Section

DEFAULT_LABELERS = [
    "mediapipe_detector",
    "mediapipe_mesh",
    "dlib",
    "head_pose",
    "iris_gaze",
    "age_gender",
    "fer",
    "quality",
    "eye_aperture",
]


class DetectorParams(Section):
    min_confidence: float = Field(0.5, gt=0, le=1, description="detections below this score are ignored")
    model_selection: int = Field(1, ge=0, le=1, description="BlazeFace: 0 short range (< 2 m), 1 full range")
    hog_upsample: int = Field(0, ge=0, le=2, description="dlib HOG: image upsampling (1 finds smaller faces, "
                                                         "costs 4x, adds false positives)")


class GazeParams(Section):
    """Eye model of the geometric gaze estimate, as fractions of the eye's corner-to-corner width
    (anatomy: eye opening ~30 mm, pupil ~10.5 mm from the eyeball's centre of rotation, the
    corners' midpoint ~4 mm in front of it)."""

    eyeball_radius: float = Field(0.35, gt=0.1, lt=1.0, description="pupil distance from the eye's rotation centre")
    corner_depth: float = Field(0.13, ge=0.0, lt=0.5, description="corners' midpoint in front of the rotation centre")
    max_eye_angle: float = Field(60.0, gt=10, le=89, description="eye-in-head rotation bound (degrees)")
    min_openness: float = Field(0.12, ge=0, lt=1, description="lid gap / eye width below which an eye counts as "
                                                            "closed and gives no gaze")
    vertical_reference: Literal["corners", "head_model"] = Field(
        "corners", description="what the iris's vertical offset is measured from: 'corners' = the landmark "
                               "network's eye corners (they move with the iris, so vertical gaze reads small); "
                               "'head_model' = the fitted 3D mean face's eye corners under the fitted head pose")


class HeadPoseParams(Section):
    cabin_intrinsics: bool = Field(True, description="rows that name req_camera/req_seat use that cabin camera's "
                                                     "pinhole (synthgen.cabin.intrinsics); others use focal_scale")
    focal_scale: float = Field(1.0, gt=0.1, le=10, description="assumed focal length in units of the image's "
                                                               "larger side (no intrinsics in the row contract)")


class QualityParams(Section):
    crop_size: int = Field(128, ge=32, le=512, description="face crop side the quality scores are computed at "
                                                           "(scores comparable across face sizes)")
    brisque: bool = Field(True, description="BRISQUE is the slowest quality score; off = null column")


class InsightFaceParams(Section):
    root: Path | None = Field(None, description="folder holding models/<name>/*.onnx (buffalo_l layout)")
    name: str = Field("buffalo_l", description="model pack folder under <root>/models")
    det_size: int = Field(640, ge=64, le=2048, description="detector input side")
    det_thresh: float = Field(0.5, gt=0, lt=1)


class LabelParams(Section):
    labelers: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LABELERS),
        description="labellers, run in this order; the first must be a face detector",
    )
    workers: int = Field(0, ge=0, le=256, description="processes for labelling; 0 = one per core")
    chunk_size: int = Field(16, ge=1, le=10_000, description="rows per work item of the process pool")
    min_rows_per_worker: int = Field(32, ge=1, description="fewer rows than this per extra process: label "
                                                           "in this process (a worker takes ~5-10 s to start)")
    crop_padding: float = Field(2.0, ge=1.0, le=4.0, description="face-mesh crop side / face box side")
    expression_crop: float = Field(1.1, ge=0.8, le=2.0, description="expression crop side / face box side")
    detector: DetectorParams = DetectorParams()
    head_pose: HeadPoseParams = HeadPoseParams()
    gaze: GazeParams = GazeParams()
    quality: QualityParams = QualityParams()
    insightface: InsightFaceParams = InsightFaceParams()

    def code_versions(self) -> dict[str, str]:
        """Each listed labeller's code version (its registry line names the constant): what, besides
        these params, decides a labelled row."""
        from synthgen.label.base import LABELERS

        return {name: LABELERS.code_version(name) for name in self.labelers}

    @field_validator("labelers")
    @classmethod
    def _known_labelers(cls, v: list[str]) -> list[str]:
        # Checked when params load, before the stage touches its output folder.
        from synthgen.label.base import LABELERS

        unknown = [n for n in v if n not in LABELERS.names()]
        if unknown:
            raise ValueError(f"unknown labeller(s) {unknown}; choose from: {', '.join(LABELERS.names())}")
        return v


class LabelRun(RunParams, Protocol):
    """What the label stage (and real-data labelling) reads."""

    @property
    def label(self) -> LabelParams: ...

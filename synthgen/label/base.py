"""The ``Labeler`` protocol, the per-image state labellers share, and the labeller registry.

A labeller measures one group of attributes (detection, mesh, 68 points + identity, head pose,
gaze, age/gender, expression, quality) on one image and returns ``meas_*`` values. Labellers run
in the order ``label.labelers`` gives; each states which earlier results it ``requires``, so a
list that cannot work (head pose without 68 points) fails at start-up with a clear message,
not image by image. Backends register by name (``@LABELERS.register("name")``); the factory gets
the whole ``label:`` section (LabelParams).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from synthgen.registry import Registry

# Names every detector provides: the face box the other labellers work on.
DETECTION_KEYS = ("meas_face_count", "meas_face_box", "meas_face_conf")


@dataclass
class FaceContext:
    """One image on its way through the labellers.

    ``meas`` collects the ``meas_*`` columns; ``extras`` carries intermediate results that are not
    columns (the head rotation matrix, the PnP translation, the dlib shape object) so that later
    labellers reuse them instead of recomputing. ``row`` holds the row's ``req_camera``/``req_seat``
    (absent on real data)."""

    image: np.ndarray
    row: dict[str, Any] = field(default_factory=dict)
    meas: dict[str, Any] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def box(self) -> np.ndarray | None:
        """The primary face box (x0, y0, x1, y1) in pixels, or None when no face was found."""
        b = self.meas.get("meas_face_box")
        return None if b is None else np.asarray(b, float)

    def has(self, key: str) -> bool:
        return self.meas.get(key) is not None or key in self.extras


@runtime_checkable
class Labeler(Protocol):
    name: str
    #: model identifier written to ``meas_<group>_labeler``
    model: str
    #: ``meas_*`` keys or ``extras`` keys that earlier labellers must provide
    requires: tuple[str, ...]
    #: ``meas_*`` columns this labeller fills (null when it cannot measure)
    provides: tuple[str, ...]
    #: ``extras`` keys it leaves for later labellers
    exports: tuple[str, ...]

    def label(self, ctx: FaceContext) -> None:
        """Measure on ``ctx.image`` and write into ``ctx.meas`` / ``ctx.extras``. Must be deterministic
        and must not raise for a face it cannot measure (leave the values null instead)."""
        ...


def installed(*dists: str) -> str:
    """``name-version`` of each installed distribution (``absent`` where it is not): the part of a
    labeller's code version that its libraries and their bundled models decide."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for name in dists:
        try:
            out.append(f"{name}-{version(name)}")
        except PackageNotFoundError:
            out.append(f"{name}-absent")
    return "+".join(out)


# Each labeller's code version (module:CONSTANT: its own logic's version plus the libraries that run
# its model) is part of the labelled shards' fingerprint and of the dataset version, so a changed
# labeller relabels every shard instead of leaving old labels beside new ones.
LABELERS: Registry[Labeler] = Registry(
    "labeler",
    lazy={
        "mediapipe_detector": "synthgen.label.detect",
        "dlib_hog": "synthgen.label.detect",
        "mediapipe_mesh": "synthgen.label.mesh",
        "mediapipe_iris": "synthgen.label.iris",
        "dlib": "synthgen.label.dlib_face",
        "head_pose": "synthgen.label.head_pose",
        "iris_gaze": "synthgen.label.gaze",
        "age_gender": "synthgen.label.age_gender",
        "fer": "synthgen.label.expression",
        "emotion_cnn": "synthgen.label.emotion_cnn",
        "quality": "synthgen.label.quality",
        "eye_aperture": "synthgen.label.eye_aperture",
        "insightface": "synthgen.label.insightface_backend",
    },
    versions={
        "mediapipe_detector": "synthgen.label.detect:MEDIAPIPE_DETECTOR_VERSION",
        "dlib_hog": "synthgen.label.detect:DLIB_HOG_VERSION",
        "mediapipe_mesh": "synthgen.label.mesh:MEDIAPIPE_MESH_VERSION",
        "mediapipe_iris": "synthgen.label.iris:MEDIAPIPE_IRIS_VERSION",
        "dlib": "synthgen.label.dlib_face:DLIB_VERSION",
        "head_pose": "synthgen.label.head_pose:HEAD_POSE_VERSION",
        "iris_gaze": "synthgen.label.gaze:IRIS_GAZE_VERSION",
        "age_gender": "synthgen.label.age_gender:AGE_GENDER_VERSION",
        "fer": "synthgen.label.expression:FER_VERSION",
        "emotion_cnn": "synthgen.label.emotion_cnn:EMOTION_CNN_VERSION",
        "quality": "synthgen.label.quality:QUALITY_VERSION",
        "eye_aperture": "synthgen.label.eye_aperture:EYE_APERTURE_VERSION",
        "insightface": "synthgen.label.insightface_backend:INSIGHTFACE_VERSION",
    },
)


def crop_square(image: np.ndarray, box: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """A square crop of side ``scale`` x the box's larger side, centred on the box, zero-padded where
    it leaves the image. Returns the crop and its (x0, y0) offset in image pixels, so points found in
    the crop map back by adding the offset."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * scale
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ox, oy = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = max(int(round(side)), 2)
    h, w = image.shape[:2]
    crop = np.zeros((n, n) + image.shape[2:], image.dtype)
    sx0, sy0, sx1, sy1 = max(ox, 0), max(oy, 0), min(ox + n, w), min(oy + n, h)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - oy: sy1 - oy, sx0 - ox: sx1 - ox] = image[sy0:sy1, sx0:sx1]
    return crop, np.array([ox, oy], float)

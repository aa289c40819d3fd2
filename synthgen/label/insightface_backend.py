"""insightface ``FaceAnalysis`` on a local model pack (e.g. buffalo_l), as a detector that also
measures what the pack's models measure (embedding, age/gender, 68 points when present).

insightface ships no weights and, given a pack name it cannot find, tries to download it (minutes
of retries offline). So the folder is checked here first and handed to ``FaceAnalysis`` as a path,
which never downloads. Which columns it fills depends on the pack: a detector is required; a
recogniser adds ``meas_identity_embedding`` (512-d, L2-normalised), a genderage model adds age and
gender, a 3D-68 landmark model adds ``meas_landmarks_68`` (and so enables ``head_pose``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthgen.errors import ConfigError, ModelUnavailableError
from synthgen.label.base import DETECTION_KEYS, LABELERS, FaceContext, installed
from synthgen.label.config import LabelParams
from synthgen.label.detect import set_detections
from synthgen.vocab import age_group

# Bump the leading number when this labeller's output for the same image changes.
INSIGHTFACE_VERSION = "1+" + installed("insightface", "onnxruntime")


def model_pack_dir(root: Path | None, name: str) -> Path:
    """``<root>/models/<name>``, checked to hold ONNX files, without touching the network."""
    if root is None:
        raise ConfigError("the insightface labeller needs a local model folder", where="label.insightface.root",
                          fix="set label.insightface.root to a folder holding models/<name>/*.onnx")
    folder = Path(root).expanduser() / "models" / name
    if not folder.is_dir() or not any(folder.glob("*.onnx")):
        raise ModelUnavailableError(
            "insightface model pack not found (no *.onnx files)", where=str(folder),
            fix=f"copy the {name} pack's ONNX files into {folder}, or set label.insightface.root/.name",
        )
    return folder


class InsightFace:
    name = "insightface"
    requires: tuple[str, ...] = ()
    exports: tuple[str, ...] = ()

    def __init__(self, params: LabelParams) -> None:
        folder = model_pack_dir(params.insightface.root, params.insightface.name)
        from insightface.app import FaceAnalysis

        self.p = params.insightface
        self.model = f"insightface-{self.p.name}"
        self._app = FaceAnalysis(name=str(folder.resolve()), providers=["CPUExecutionProvider"])
        size = self.p.det_size
        self._app.prepare(ctx_id=-1, det_thresh=self.p.det_thresh, det_size=(size, size))
        tasks = set(self._app.models)
        provides = list(DETECTION_KEYS)
        if "recognition" in tasks:
            provides.append("meas_identity_embedding")
        if "genderage" in tasks:
            provides += ["meas_age", "meas_age_group", "meas_gender"]
        if "landmark_3d_68" in tasks:
            provides.append("meas_landmarks_68")
            self.exports = ("lm68",)
        self.provides = tuple(provides)
        self.tasks = tuple(sorted(tasks))

    def label(self, ctx: FaceContext) -> None:
        bgr = np.ascontiguousarray(ctx.image[:, :, ::-1])
        faces = self._app.get(bgr)
        boxes = [np.clip(np.asarray(f.bbox, float), 0, [ctx.width, ctx.height, ctx.width, ctx.height]) for f in faces]
        set_detections(ctx, boxes, [float(f.det_score) for f in faces], self.model)
        if not faces:
            return
        chosen = ctx.box
        assert chosen is not None  # set_detections just chose a box among the faces
        face = next(f for f, b in zip(faces, boxes, strict=True) if np.allclose(b, chosen))
        if "meas_identity_embedding" in self.provides and getattr(face, "embedding", None) is not None:
            ctx.meas["meas_identity_embedding"] = np.asarray(face.normed_embedding, np.float32).tolist()
            ctx.meas["meas_identity_labeler"] = self.model
        if "meas_age" in self.provides and getattr(face, "age", None) is not None:
            ctx.meas.update(meas_age=float(face.age), meas_age_group=age_group(float(face.age)),
                            meas_gender="female" if int(face.gender) == 0 else "male",
                            meas_age_labeler=self.model, meas_gender_labeler=self.model)
        lm = getattr(face, "landmark_3d_68", None)
        if "meas_landmarks_68" in self.provides and lm is not None:
            pts = np.asarray(lm, float)[:, :2]
            ctx.meas["meas_landmarks_68"] = pts.astype(np.float32).ravel().tolist()
            ctx.meas["meas_landmarks_labeler"] = self.model
            ctx.extras["lm68"] = pts


@LABELERS.register("insightface")
def _factory(params: LabelParams) -> InsightFace:
    return InsightFace(params)

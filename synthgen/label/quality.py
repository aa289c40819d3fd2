"""Image quality of the face, plus a perceptual hash of the whole image.

Scores are computed on the face crop resized to ``label.quality.crop_size`` so a threshold means the
same for a 60 px and a 300 px face:
- sharpness: variance of the Laplacian of the grey crop (blur lowers it);
- exposure: mean grey level of the crop in [0, 1]; ``meas_quality_clipped`` the share of pixels
  at <= 4 or >= 251 (crushed shadows, blown highlights);
- BRISQUE (no-reference naturalness, lower is better; brisque 0.2.0's SVM), rounded to 6 decimals:
  its feature pipeline sums in thread-dependent order, so the raw score differs at ~1e-12 between a
  worker process and the parent, and labels must not depend on where they were computed;
- face size: sqrt(box area) in pixels of the original image.
``meas_phash`` (imagehash pHash, 64 bits as 16 hex digits) is over the whole image: it finds
near-identical renders for the near-duplicate filter, face or no face.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from synthgen.label.base import LABELERS, FaceContext, crop_square, installed
from synthgen.label.config import LabelParams

# Bump the leading number when this labeller's output for the same image changes.
QUALITY_VERSION = "1+" + installed("brisque", "imagehash", "opencv-python-headless")

BRISQUE_DECIMALS = 6


def phash_hex(image: np.ndarray) -> str:
    import imagehash
    from PIL import Image

    return str(imagehash.phash(Image.fromarray(image)))


def sharpness(grey: np.ndarray) -> float:
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


class Quality:
    name = "quality"
    requires = ()
    provides = ("meas_quality_sharpness", "meas_quality_exposure", "meas_quality_clipped",
                "meas_quality_brisque", "meas_quality_face_size", "meas_phash")
    exports: tuple[str, ...] = ()

    def __init__(self, params: LabelParams) -> None:
        self.p = params.quality
        self._brisque = None
        if self.p.brisque:
            from brisque import BRISQUE

            self._brisque = BRISQUE(url=False)
        self.model = "laplacian+exposure" + ("+brisque-0.2.0" if self.p.brisque else "") + "+phash"

    def label(self, ctx: FaceContext) -> None:
        ctx.meas["meas_quality_labeler"] = self.model
        ctx.meas["meas_phash"] = phash_hex(ctx.image)
        box = ctx.box
        if box is None:
            return
        crop, _ = crop_square(ctx.image, box, 1.0)
        n = self.p.crop_size
        crop = cv2.resize(crop, (n, n), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
        ctx.meas.update(
            meas_quality_sharpness=sharpness(grey),
            meas_quality_exposure=float(grey.mean() / 255.0),
            meas_quality_clipped=float(np.mean((grey <= 4) | (grey >= 251))),
            meas_quality_face_size=float(math.sqrt(max(box[2] - box[0], 0) * max(box[3] - box[1], 0))),
        )
        if self._brisque is not None and grey.std() > 1.0:
            score = float(self._brisque.score(crop if crop.ndim == 3 else np.dstack([crop] * 3)))
            ctx.meas["meas_quality_brisque"] = round(score, BRISQUE_DECIMALS) if math.isfinite(score) else None


@LABELERS.register("quality")
def _factory(params: LabelParams) -> Quality:
    return Quality(params)

"""Feature extractors for the embedding-level metrics, found by name (``analyze.features.name``).

- ``identity`` (default): the 128-d dlib identity embedding the labellers already stored in
  ``meas_identity_embedding``; offline and free.
- ``dinov2`` / ``clip``: a transformers vision model loaded from a local folder or a hub id that is
  already in the local cache (never downloaded here); absent weights raise ModelUnavailableError.

Each extractor returns ``Features``: one row per usable input row, plus the row indices it kept and
the reasons it skipped the others, so the report can say what was left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

from synthgen.analyze.registries import EXTRACTORS
from synthgen.errors import DataError, ModelUnavailableError

IDENTITY_COLUMN = "meas_identity_embedding"


@dataclass
class Features:
    values: np.ndarray  # (kept rows, dim) float32
    rows: np.ndarray  # indices into the input table
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows


class FeatureExtractor(Protocol):
    name: str

    def extract(self, table: pa.Table, progress: bool = False) -> Features: ...


# ``needs_images`` (a class attribute of every extractor): whether it reads pixels, so the stage
# loads image bytes only for extractors that need them.




@EXTRACTORS.register("identity")
class IdentityEmbedding:
    """Reads the stored embedding: rows without a face (null or empty embedding) are skipped."""

    name = "identity"
    needs_images = False  # reads the labellers' stored embedding column

    def __init__(self, column: str = IDENTITY_COLUMN, **_: Any) -> None:
        self.column = column

    def extract(self, table: pa.Table, progress: bool = False) -> Features:
        if self.column not in table.column_names:
            raise DataError(
                f"column {self.column!r} is missing",
                where="identity features",
                fix="label the rows first (`synthgen label`, or the importers' labelling), or choose analyze.features.name: dinov2/clip",
            )
        vals = table.column(self.column).to_pylist()
        keep, rows, skipped = [], [], {}  # type: list[Any], list[int], dict[str, int]
        dims = {len(v) for v in vals if v}
        if len(dims) > 1:
            raise DataError(f"{self.column} holds vectors of different lengths {sorted(dims)}", where="identity features",
                            fix="re-run the labeller so every embedding comes from the same model")
        for i, v in enumerate(vals):
            if not v:
                skipped["no identity embedding (no face found)"] = skipped.get("no identity embedding (no face found)", 0) + 1
                continue
            arr = np.asarray(v, np.float32)
            if not np.isfinite(arr).all():
                skipped["NaN in identity embedding"] = skipped.get("NaN in identity embedding", 0) + 1
                continue
            keep.append(arr)
            rows.append(i)
        dim = dims.pop() if dims else 0
        values = np.vstack(keep) if keep else np.zeros((0, dim), np.float32)
        return Features(values, np.asarray(rows, np.int64), skipped)


# ImageNet and CLIP normalisations, used when the model folder has no image processor config
_NORMALISE = {
    "dinov2": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "clip": ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)),
}


class _TransformersVision:
    """Shared loading and batching for hub vision backbones."""

    name = ""
    needs_images = True

    def __init__(self, model: str, batch_size: int = 32, device: str = "cpu", image_size: int | None = None, **_: Any) -> None:
        self.model_id, self.batch_size, self.device = model, batch_size, device
        self.model = self._load(model)
        self.model.eval().to(device)
        cfg = self._vision_config()
        self.image_size = int(image_size or getattr(cfg, "image_size", None) or 224)
        self.mean, self.std = _NORMALISE[self.name]

    def _vision_config(self) -> Any:
        return self.model.config

    def _model_class(self) -> Any:
        raise NotImplementedError

    def _load(self, model: str) -> Any:
        cls = self._model_class()
        try:
            return cls.from_pretrained(model, local_files_only=True)
        except (OSError, ValueError) as err:
            raise ModelUnavailableError(
                f"cannot load {self.name} weights {model!r} offline ({type(err).__name__}: {str(err).splitlines()[0]})",
                where="analyze.features.model",
                fix="download the model once where there is network (huggingface-cli download ID) or "
                "point analyze.features.model at a local folder saved with save_pretrained; "
                "or use analyze.features.name: identity",
            ) from None

    def _preprocess(self, images: list[np.ndarray]) -> Any:
        import cv2
        import torch

        s = self.image_size
        batch = np.stack([cv2.resize(im, (s, s), interpolation=cv2.INTER_AREA) for im in images]).astype(np.float32) / 255.0
        batch = np.asarray((batch - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32), np.float32)
        return torch.from_numpy(batch.transpose(0, 3, 1, 2).copy()).to(self.device)

    def _embed(self, pixels: Any) -> Any:
        raise NotImplementedError

    def extract(self, table: pa.Table, progress: bool = False) -> Features:
        import torch
        from rich.progress import Progress

        from synthgen.images import decode_rgb

        if "image" not in table.column_names:
            raise DataError("no 'image' column", where=f"{self.name} features", fix="pass rows that follow the row contract")
        images = table.column("image").to_pylist()
        good, rows, skipped = [], [], {}  # type: list[np.ndarray], list[int], dict[str, int]
        for i, im in enumerate(images):
            try:
                good.append(decode_rgb((im or {}).get("bytes"), where=f"row {i}"))
                rows.append(i)
            except DataError:
                skipped["image missing or unreadable"] = skipped.get("image missing or unreadable", 0) + 1
        out = []
        with Progress(disable=not progress, transient=True) as bar, torch.inference_mode():
            task = bar.add_task(f"{self.name} features", total=len(good))
            for s in range(0, len(good), self.batch_size):
                emb = self._embed(self._preprocess(good[s : s + self.batch_size]))
                out.append(emb.float().cpu().numpy())
                bar.advance(task, len(good[s : s + self.batch_size]))
        dim = out[0].shape[1] if out else 0
        values = np.vstack(out) if out else np.zeros((0, dim), np.float32)
        return Features(values.astype(np.float32), np.asarray(rows, np.int64), skipped)


@EXTRACTORS.register("dinov2")
class Dinov2Features(_TransformersVision):
    """DINOv2 CLS token: self-supervised, sensitive to texture and realism."""

    name = "dinov2"

    def __init__(self, model: str = "facebook/dinov2-small", **kw: Any) -> None:
        super().__init__(model, **kw)

    def _model_class(self) -> Any:
        from transformers import Dinov2Model

        return Dinov2Model

    def _embed(self, pixels: Any) -> Any:
        return self.model(pixel_values=pixels).last_hidden_state[:, 0]


@EXTRACTORS.register("clip")
class ClipFeatures(_TransformersVision):
    """CLIP image tower pooled output: semantic content (age, expression, setting)."""

    name = "clip"

    def __init__(self, model: str = "openai/clip-vit-base-patch32", **kw: Any) -> None:
        super().__init__(model, **kw)

    def _model_class(self) -> Any:
        from transformers import CLIPVisionModel

        return CLIPVisionModel

    def _embed(self, pixels: Any) -> Any:
        return self.model(pixel_values=pixels).pooler_output


def create_extractor(name: str, **options: Any) -> FeatureExtractor:
    return EXTRACTORS.create(name, **options)

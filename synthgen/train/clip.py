"""A vision-language backbone (CLIP through ``transformers``) and its zero-shot baseline.

``train.backbone: clip:<folder>`` loads a CLIP model saved with ``save_pretrained`` (weights,
config and, for zero-shot, the tokenizer) from a local folder: nothing is ever downloaded. The
vision tower then serves as a backbone like any timm model (heads on its pooled class token,
every adaptation mode), and ``train.adaptation: zero_shot`` scores text prompts per class
instead of training anything: the baseline the parameter-efficient methods must beat.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from synthgen.errors import ConfigError, ModelUnavailableError
from synthgen.train.adapters import TokenSequence
from synthgen.train.tasks import CLS_NAMES, CLS_VOCAB, REG_SCALE, REG_SHIFT, TASK_SPECS
from synthgen.vocab import AGE_GROUPS, age_group_range

logger = logging.getLogger(__name__)

PREFIX = "clip:"
# OpenAI CLIP's image normalisation (the processor's defaults).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]

# One phrase per class; every template is filled with it and the text embeddings averaged
# (prompt ensembling, Radford et al. 2021).
TEMPLATES = ("a photo of {}.", "a close-up photo of {}.", "a photo of {} in a car.")
CLASS_PHRASES: dict[str, dict[str, str]] = {
    "expression": {
        "neutral": "a face with a neutral expression", "happiness": "a happy face", "sadness": "a sad face",
        "surprise": "a surprised face", "fear": "a fearful face", "disgust": "a disgusted face",
        "anger": "an angry face",
    },
    "gender": {"female": "a woman", "male": "a man"},
    "age": {
        "0-2": "a baby", "3-9": "a child", "10-19": "a teenager", "20-29": "a person in their twenties",
        "30-39": "a person in their thirties", "40-49": "a person in their forties",
        "50-59": "a person in their fifties", "60-69": "a person in their sixties",
        "70+": "an elderly person over seventy",
    },
}
ZERO_SHOT_TASKS = tuple(CLASS_PHRASES)


def is_clip(backbone: str) -> bool:
    return backbone.startswith(PREFIX)


def clip_folder(backbone: str) -> Path:
    path = Path(backbone.removeprefix(PREFIX)).expanduser()
    if not (path / "config.json").is_file():
        raise ModelUnavailableError(
            "no CLIP model in this folder (config.json missing)",
            where=str(path),
            fix="save one with CLIPModel.save_pretrained(folder) (and its tokenizer for zero-shot), "
            "then set train.backbone: clip:<folder>",
        )
    return path


def load_clip(backbone: str) -> Any:
    """The whole CLIPModel from a local folder (never the hub)."""
    from transformers import CLIPModel

    path = clip_folder(backbone)
    try:
        return CLIPModel.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(f"cannot load the CLIP model ({err})", where=str(path),
                                    fix="point train.backbone at a folder written by CLIPModel.save_pretrained") from None


class ClipVisionBackbone(nn.Module):
    """CLIP's vision tower as a feature extractor: pooled (post-layernorm) class token.

    Position embeddings are interpolated, so any ``train.image_size`` works.
    """

    def __init__(self, clip: Any) -> None:
        super().__init__()
        self.vision = clip.vision_model
        self.num_features = int(clip.config.vision_config.hidden_size)
        self.pretrained_cfg = {"mean": CLIP_MEAN, "std": CLIP_STD}
        self.lora_targets = list(LORA_TARGETS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.vision(pixel_values=x, interpolate_pos_encoding=True).pooler_output

    def prefix_points(self) -> TokenSequence:
        return TokenSequence(self.vision.pre_layrnorm, list(self.vision.encoder.layers), 1, self.num_features)

    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        """timm's grouping protocol, so ``partial`` trains the last encoder layers here too."""
        return {"stem": r"^vision\.(?:embeddings|pre_layrnorm)",
                "blocks": [(r"^vision\.encoder\.layers\.(\d+)", None), (r"^vision\.post_layernorm", (99999,))]}


def _age_midpoints() -> np.ndarray:
    return np.array([sum(age_group_range(g)) / 2 for g in AGE_GROUPS], np.float32)


class ZeroShotClip(nn.Module):
    """CLIP scoring one prompt set per class: the same outputs as a trained network's heads.

    Each task's output has the layout its head would have (see ``tasks.TaskSpec``): logits of
    its classes; for age, first the normalised expected age over the group midpoints, so age MAE
    comes out of the same evaluation as for trained models. Tasks without class prompts (gaze,
    head pose) are not predicted.
    """

    mean: torch.Tensor
    std: torch.Tensor
    age_mid: torch.Tensor

    def __init__(self, clip: Any, tokenizer: Any, tasks: Sequence[str]) -> None:
        super().__init__()
        self.clip = clip.eval()
        self.tasks = [t for t in tasks if t in ZERO_SHOT_TASKS]
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, -1, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, -1, 1, 1) * 255.0, persistent=False)
        self.register_buffer("age_mid", torch.from_numpy((_age_midpoints() - REG_SHIFT[5]) / REG_SCALE[5]),
                             persistent=False)
        with torch.no_grad():
            for t in self.tasks:
                self.register_buffer(f"text_{t}", self._class_embeddings(tokenizer, t), persistent=False)
        self.requires_grad_(False)

    def _class_embeddings(self, tokenizer: Any, task: str) -> torch.Tensor:
        (c,) = TASK_SPECS[task].cls
        vocab = CLS_VOCAB[CLS_NAMES[c]]
        phrases = CLASS_PHRASES[task]
        out = []
        for cls_name in vocab:
            texts = [tmpl.format(phrases[cls_name]) for tmpl in TEMPLATES]
            tok = tokenizer(texts, padding=True, return_tensors="pt")
            emb = self.clip.text_projection(self.clip.text_model(
                input_ids=tok["input_ids"], attention_mask=tok.get("attention_mask")).pooler_output)
            emb = nn.functional.normalize(emb, dim=-1).mean(0)
            out.append(nn.functional.normalize(emb, dim=-1))
        return torch.stack(out)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (images.float() - self.mean) / self.std
        pooled = self.clip.vision_model(pixel_values=x, interpolate_pos_encoding=True).pooler_output
        img = nn.functional.normalize(self.clip.visual_projection(pooled), dim=-1)
        scale = self.clip.logit_scale.exp()
        outs: dict[str, torch.Tensor] = {}
        for t in self.tasks:
            logits = scale * img @ getattr(self, f"text_{t}").T
            if t == "age":
                expected = (logits.softmax(-1) * self.age_mid).sum(-1, keepdim=True)
                logits = torch.cat([expected, logits], dim=1)
            outs[t] = logits
        return outs


def load_tokenizer(backbone: str) -> Any:
    from transformers import AutoTokenizer

    path = clip_folder(backbone)
    try:
        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(f"no tokenizer with the CLIP model ({err})", where=str(path),
                                    fix="save the tokenizer into the same folder (tokenizer.save_pretrained)") from None


def build_zero_shot(backbone: str, tasks: Sequence[str]) -> ZeroShotClip:
    if not is_clip(backbone):
        raise ConfigError(
            f"zero-shot scoring needs a vision-language backbone, not {backbone!r}",
            where="train.backbone",
            fix="set train.backbone: clip:<folder with a CLIP model and its tokenizer>",
        )
    net = ZeroShotClip(load_clip(backbone), load_tokenizer(backbone), tasks)
    if not net.tasks:
        raise ConfigError(
            f"zero-shot has class prompts for {', '.join(ZERO_SHOT_TASKS)} only; train.tasks is {tasks}",
            where="train.tasks", fix="add expression, age or gender to train.tasks",
        )
    skipped = sorted(set(tasks) - set(net.tasks))
    if skipped:
        logger.info("zero-shot: no prompts for %s; those tasks are not evaluated", ", ".join(skipped))
    return net

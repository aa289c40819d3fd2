"""``emotion_cnn``: the FER2013 expression CNN of facial-emotion-recognition 0.3.4 (MIT), in torch.

The package itself cannot be installed (it pins facenet-pytorch, which pins an old torch), so the
set-up fetches only its weights (``python -m synthgen.models.fetch emotion_cnn``, SHA-256 checked)
and the network is written out here, layer for layer as the package defines it (``NetworkV2``:
four reflection-padded 3x3 conv + batch-norm + ReLU blocks, 32-256 channels, strides 1-2-2-2, then
256 -> 7 with a sigmoid), so the state dict loads with strict key and shape checks. The weights
load with ``torch.load(weights_only=True)``: tensors only, no pickled code runs.

Why a second reader: fer is the one the renderer's expressions were tuned against; this one has
another architecture and training run, so agreement between them is the held-out check.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from synthgen.label.base import LABELERS, installed
from synthgen.label.config import LabelParams
from synthgen.label.expression import Fer2013Reader
from synthgen.models.paths import fetched_path

# Bump the leading number when this labeller's output for the same image changes.
EMOTION_CNN_VERSION = "1+" + installed("torch", "opencv-python-headless")


def build_network() -> Any:
    """The package's ``NetworkV2(in_c=1, nl=32, out_f=7)``, with its module names (the state dict's keys)."""
    from torch import nn

    def block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
        return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(c_in, c_out, 3, stride, 0), nn.BatchNorm2d(c_out),
                             nn.ReLU(inplace=True))

    class NetworkV2(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv_1, self.conv_2 = block(1, 32, 1), block(32, 64, 2)
            self.conv_3, self.conv_4 = block(64, 128, 2), block(128, 256, 2)
            self.linear = nn.Sequential(nn.Linear(256 * 6 * 6, 256), nn.ReLU(inplace=True), nn.Linear(256, 7),
                                        nn.Sigmoid())

        def forward(self, x: Any) -> Any:
            x = self.conv_4(self.conv_3(self.conv_2(self.conv_1(x))))
            return self.linear(x.reshape(x.shape[0], -1))

    return NetworkV2()


class EmotionCnn(Fer2013Reader):
    name = "emotion_cnn"
    model = "facial_emotion_recognition-0.3.4-NetworkV2"
    size = 48

    def __init__(self, params: LabelParams) -> None:
        super().__init__(params)
        import torch

        state = torch.load(fetched_path("emotion_cnn"), map_location="cpu", weights_only=True)
        self._torch = torch
        self._net = build_network()
        self._net.load_state_dict(state["network"])  # strict: every key and shape must match
        self._net.eval()

    def _scores(self, grey: np.ndarray) -> np.ndarray:
        # The package's own preprocessing: Resize((48, 48)), ToTensor, Normalize(0.5, 0.5) -> [-1, 1];
        # its output is 7 independent sigmoids, normalised to probabilities by the caller.
        with self._torch.inference_mode():
            out = self._net(self._torch.from_numpy(np.ascontiguousarray(grey))[None, None])
        return np.asarray(out[0].numpy(), np.float64)


@LABELERS.register("emotion_cnn")
def _factory(params: LabelParams) -> EmotionCnn:
    return EmotionCnn(params)

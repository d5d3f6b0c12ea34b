#!/usr/bin/env bash
# Fetch, on a machine with PyPI, the wheels that bench/gpu-check.sh installs on a GPU host with
# no network (Python 3.12, torch 2.11, transformers, peft; no diffusers, no torchao) into .whl/
# (git-ignored; carry it to the host with the working tree).
#   bench/fetch-gpu-wheels.sh [PYTHON_VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-3.12}
# diffusers as this project tests it; torchao 0.17 is the first built against torch 2.11
# (ABI-stable from there on); importlib_metadata is the one diffusers need the host lacks.
WHEELS=(diffusers==0.42.1 torchao==0.17.0 importlib_metadata==8.7.0 zipp==3.23.0)
mkdir -p .whl
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PY" \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform any -d .whl "${WHEELS[@]}"
ls -l .whl

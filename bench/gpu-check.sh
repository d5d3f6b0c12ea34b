#!/usr/bin/env bash
# The one GPU check of the FLUX path (bench/gpu_check.py), ready for a GPU host with no network:
#   bench/fetch-gpu-wheels.sh          # here, with PyPI: wheels into .whl/
#   bench/gpu-check.sh                 # there: installs .whl/ into /tmp/site, then the check
#   bench/gpu-check.sh --tiny          # here: the same code on the tiny model, no install
# Other options go to bench/gpu_check.py (--deadline, --stages, --steps, --size).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [[ " $* " != *" --tiny "* ]]; then
  if ! "$PYTHON" -c 'import diffusers' 2>/dev/null; then
    ls .whl/*.whl >/dev/null 2>&1 || { echo "no wheels in .whl/: run bench/fetch-gpu-wheels.sh first" >&2; exit 2; }
    "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  fi
fi
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
exec "$PYTHON" bench/gpu_check.py "$@"

#!/usr/bin/env bash
# The GPU check, one command from any folder: scripts/gpu_check.py says what it runs, each part's time limit and
# what it writes ($OUT, --out or .gpu-check/results: gpu_check.json, gpu_check.txt, gpu_check.log).
#   scripts/gpu_check.sh                  on a machine with a CUDA device (no network needed)
#   scripts/gpu_check.sh --cpu-dry-run    every part on this CPU at --quick sizes
#   scripts/gpu_check.sh --fetch-wheels   fill .gpu-check/wheels (on a machine with a package index)
# No `set -e`: the driver records each part's failure and goes on; this only finds the machine's Python ($PYTHON,
# else python3) and hands over.
cd "$(dirname "$0")/.." || exit 2
PYTHON=${PYTHON:-$(command -v python3 || command -v python)}
export PYTHONUNBUFFERED=1
exec "$PYTHON" scripts/gpu_check.py "$@"

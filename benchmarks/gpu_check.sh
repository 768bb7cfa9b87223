#!/usr/bin/env bash
# The GPU paths measured on one NVIDIA GPU, in under ~8 minutes: installs scadeploy[gpu], then runs
# benchmarks/gpu_check.py (onnx-cuda parity; ONNX Runtime CUDA, TensorRT when it starts, torch.compile and
# spikingjelly eager on CUDA at batch 1/16/256; the emulator on CUDA against the CPU, bit for bit).
# Writes benchmarks/results/gpu_check.json; exit 2 when no CUDA GPU is present.
#
#   benchmarks/gpu_check.sh [gpu_check.py options]      e.g. --steps latency --batch-sizes 1 16
#
# Environment: PYTHON (default python3), WHEELS=DIR to install from a folder of wheels with no index
# (a machine without network), SKIP_INSTALL=1 to use what is installed, LIMIT_SECONDS (default 480).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pip=("$PY" -m pip install -q --disable-pip-version-check)
if [ "${SKIP_INSTALL:-0}" = 1 ]; then
    :
elif [ -n "${WHEELS:-}" ]; then
    # No index: the machine's own torch stays; the wheels bring onnxruntime-gpu (and tensorrt, spikingjelly, ...).
    "${pip[@]}" --no-index --no-deps --force-reinstall "$WHEELS"/*.whl
    "${pip[@]}" --no-index --no-deps --no-build-isolation -e .
else
    # NOTE: onnxruntime and onnxruntime-gpu install the same module; the GPU build must be written last,
    # so it is reinstalled after the dependencies (which name the CPU build) are in place.
    "${pip[@]}" -c constraints.txt -e '.[gpu]'
    "${pip[@]}" --force-reinstall --no-deps "$(grep -E '^onnxruntime-gpu==' constraints.txt)"
    "${pip[@]}" --no-deps -c constraints.txt spikingjelly
fi
exec timeout "${LIMIT_SECONDS:-480}" "$PY" benchmarks/gpu_check.py "$@"

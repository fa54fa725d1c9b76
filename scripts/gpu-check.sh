#!/usr/bin/env bash
# spurmem's CUDA check: builds the addon against a CUDA libtorch and runs, on the GPU,
#   1. ResNet-50 parity with PyTorch (same weights and inputs, same GPU, TF32 off on both sides);
#   2. ResNet-50 eval and training images/s at 224 px, batch 128: fp32, and bf16 autocast + channels-last,
#      spurmem next to PyTorch (Python) in the same run;
#   3. a `spurmem study` (largest, random_noise, 10 repeats) on a generated dataset in Waterbirds' layout and
#      image size (a quarter of its count: 2,947 JPEGs of 500x375), with the time split into data and compute.
# It prints one summary table and exits non-zero if parity fails. It needs no network.
#
# Usage: scripts/gpu-check.sh [--device cuda|cuda:N|cpu] [--quick] [--no-build] [--out DIR]
#
# libtorch: $LIBTORCH (a libtorch folder), else the libtorch inside the Python torch that $PYTHON imports
# (torch.utils.cmake_prefix_path; default: the first of python3 and /usr/bin/python3 that imports torch).
# Node.js: $NODE, else the bundle's node/bin/node, else `node` on PATH. On a GPU machine without Node.js
# or network, use the offline bundle (`npm run bundle`; see the README, "Running on a GPU").
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda
build=1
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
args+=(--device "$device")

if [ -z "${PYTHON:-}" ]; then
  # the first Python that imports torch: python3 on PATH, else the system one
  PYTHON=python3
  for p in python3 /usr/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import torch' >/dev/null 2>&1; then PYTHON=$p; break; fi
  done
fi
if [ -z "${NODE:-}" ] && [ -x node/bin/node ]; then NODE=$PWD/node/bin/node; fi
NODE=${NODE:-$(command -v node || true)}
if [ -z "$NODE" ] || [ ! -x "$NODE" ]; then
  echo "gpu-check: no Node.js: use the offline bundle (npm run bundle), or set NODE=/path/to/node" >&2
  exit 2
fi
if [ ! -d node_modules ] || [ ! -d dist ]; then
  echo "gpu-check: node_modules/ and dist/ are needed (run npm ci && npx tsc where there is network, and bring them along)" >&2
  exit 2
fi
if [ -z "${LIBTORCH:-}" ] && [ -z "${Torch_DIR:-}" ] && [ "$device" != cpu ]; then
  prefix=$("$PYTHON" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)
  if [ -z "$prefix" ]; then
    echo "gpu-check: set LIBTORCH to a CUDA libtorch folder, or make \$PYTHON import a CUDA torch" >&2
    exit 2
  fi
  export Torch_DIR="$prefix/Torch"
fi
if [ "$build" = 1 ]; then
  echo "gpu-check: building the addon against ${LIBTORCH:-${Torch_DIR:-the system libtorch}}"
  rm -rf build
  if [ -d node_modules/cmake-js ]; then
    build_cmd=(env PATH="$(dirname "$NODE"):$PATH" "$NODE" node_modules/cmake-js/bin/cmake-js build --out build --parallel "$(nproc)")
  else
    build_cmd=(./build-addon)  # the offline bundle: cmake without npm
  fi
  "${build_cmd[@]}" >build-gpu.log 2>&1 || {
    tail -40 build-gpu.log >&2
    echo "gpu-check: the build failed (full log: build-gpu.log)" >&2
    exit 2
  }
fi
export PYTHON
exec "$NODE" scripts/gpu-check.mjs "${args[@]}"

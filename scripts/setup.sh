#!/usr/bin/env bash
# spurmem set-up: system packages, npm dependencies, native addon and TypeScript build.
#
#   npm run setup            everything (as root on Debian/Ubuntu the missing packages are installed
#                            with apt-get; otherwise the exact commands to run are printed)
#   scripts/setup.sh --build only bring node_modules, the addon and dist/ up to date (npm test runs this)
#
# Running it again is quick: each step is skipped when its output is newer than its inputs.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=full
[ "${1:-}" = "--build" ] && mode=build

say() { printf 'spurmem setup: %s\n' "$*"; }

# ---- 1. system packages -----------------------------------------------------------------------------
if [ "$mode" = full ]; then
  # libopenblas0-openmp: a fast BLAS for libtorch (Debian's default libblas3 is the slow reference one)
  # mate-backgrounds: real photos for the tests that compare transforms with torchvision + PIL
  # python3-statsmodels, python3-scipy: the reference intervals and tests the statistics are checked against
  # python3-sklearn: the L1 logistic regression DFR's solver is checked against
  # libjpeg62-turbo-dev: the native JPEG decoder (the library PIL links; without it images go through sharp)
  pkgs=(cmake g++ make zlib1g-dev libjpeg62-turbo-dev libopenblas0-openmp fonts-dejavu-core dataset-fashion-mnist mate-backgrounds python3-torch python3-torchvision python3-statsmodels python3-scipy python3-sklearn)
  # libtorch: Debian's, unless the user points at their own (official zip or a pip torch)
  if [ -z "${LIBTORCH:-}" ] && [ -z "${Torch_DIR:-}" ]; then pkgs=(libtorch-dev "${pkgs[@]}"); fi
  missing=()
  if command -v dpkg >/dev/null 2>&1; then
    for p in "${pkgs[@]}"; do
      dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
  else
    missing=("${pkgs[@]}")
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing ${missing[*]}"
      export DEBIAN_FRONTEND=noninteractive
      if ! apt-get install -y --no-install-recommends "${missing[@]}"; then
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
      fi
    else
      say "these system packages are missing: ${missing[*]}"
      if command -v apt-get >/dev/null 2>&1; then
        echo "  run:  sudo apt-get update && sudo apt-get install -y ${missing[*]}"
      else
        echo "  on Debian/Ubuntu: sudo apt-get install -y ${missing[*]}"
        echo "  elsewhere: install cmake, a C++17 compiler and zlib, and point LIBTORCH at a libtorch folder"
        echo "  (https://pytorch.org, 'LibTorch', or: LIBTORCH=\$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))'))"
      fi
      echo "  then run: npm run setup"
      exit 1
    fi
  fi
fi

# ---- 2. npm dependencies ----------------------------------------------------------------------------
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund
fi

# ---- 3. native addon --------------------------------------------------------------------------------
addon=build/Release/spurmem.node
stale=0
if [ ! -f "$addon" ]; then stale=1
elif [ -n "$(find native CMakeLists.txt -newer "$addon" -print -quit)" ]; then stale=1
fi
if [ "$stale" = 1 ]; then
  say "building the native addon (cmake-js, libtorch)"
  jobs=$(nproc 2>/dev/null || echo 2)
  npx cmake-js build --out build --parallel "$jobs"
fi

# ---- 4. TypeScript ----------------------------------------------------------------------------------
stamp=dist/.build-stamp
if [ ! -f "$stamp" ] || [ -n "$(find src tsconfig.json package.json -newer "$stamp" -print -quit)" ]; then
  say "compiling TypeScript"
  npx tsc -p tsconfig.json
  touch "$stamp"
fi
[ "$mode" = full ] && say "ready: try  npx spurmem --help"
exit 0

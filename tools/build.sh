#!/usr/bin/env bash
# Configures and builds into build/ (Release). CUDA code is compiled whenever nvcc is present,
# for sm_90 unless CMAKE_CUDA_ARCHITECTURES says otherwise.
# Usage: tools/build.sh [--target T]... [cmake configure arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/deps.sh
targets=()
while [ $# -gt 0 ] && [ "$1" = "--target" ]; do targets+=(--target "$2"); shift 2; done
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)" "${targets[@]}"

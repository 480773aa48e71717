#!/usr/bin/env bash
# tests/cuda_emu/run.sh [BUILD_DIR]: checks the logic of every CUDA kernel WITHOUT a GPU. The kernel sources of
# kernels/cuda/ are compiled as host C++ (transform.py rewrites the <<<>>> launches; emu.h runs each block as
# blockDim threads with a barrier, shared memory as statics) and compared with the CPU table on small and odd
# shapes, with and without split-K. It cannot see GPU-only faults (alignment, real races, timing): the GPU
# tests (tools/gpu_check.sh) remain the word on those. Needs BUILD_DIR/kernels/libunet_kernels_cpu.a.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="${1:-$ROOT/build-cuda}"
CPU_LIB="$BUILD/kernels/libunet_kernels_cpu.a"
RESTORE_CPU_LIB="$BUILD/restore/libunet_restore_kernels_cpu.a"
CUDA_INC="${CUDA_HOME:-/usr/local/cuda}/include"
for lib in "$CPU_LIB" "$RESTORE_CPU_LIB"; do
  [[ -f "$lib" ]] || { echo "no $lib: cmake --build $BUILD --target unet_kernels_cpu unet_restore_kernels_cpu" >&2; exit 2; }
done
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/inc/kernels/cuda"
for h in common.cuh implicit_gemm.cuh; do  # the headers that launch kernels
  python3 "$HERE/transform.py" "$ROOT/kernels/cuda/$h" "$WORK/inc/kernels/cuda/$h"
done
srcs=("$HERE/fake_rt.cpp" "$HERE/harness.cpp")
for cu in "$ROOT"/kernels/cuda/*.cu "$ROOT"/restore/kernels/cuda/*.cu; do
  name="$(basename "$cu" .cu)"
  [[ "$name" == table ]] && continue
  python3 "$HERE/transform.py" "$cu" "$WORK/gen_$name.cpp"
  srcs+=("$WORK/gen_$name.cpp")
done
flags=(-std=c++20 -O1 -w -pthread -I"$HERE" -I"$WORK/inc" -I"$ROOT" -I"$CUDA_INC")
objs=()
for s in "${srcs[@]}"; do
  o="$WORK/$(basename "$s" .cpp).o"
  g++ "${flags[@]}" -c "$s" -o "$o"
  objs+=("$o")
done
g++ -pthread "${objs[@]}" "$RESTORE_CPU_LIB" "$CPU_LIB" -fopenmp -o "$WORK/cuda_emu"
"$WORK/cuda_emu"

#!/usr/bin/env bash
# tests/cuda_emu/run.sh [BUILD_DIR]: checks the logic of every CUDA kernel WITHOUT a GPU. The kernel sources of
# kernels/cuda/ are compiled as host C++ (transform.py rewrites the <<<>>> launches; emu.h runs each block's
# threads as fibers that meet at barriers, shared memory as statics; ptx.cuh here replaces kernels/cuda/ptx.cuh
# with host versions of cp.async, cvt and mma) and compared with the CPU table on small and odd shapes, with and
# without split-K: harness.cpp (every kernel, FP32) and tc_harness.cpp (the tensor-core convolutions, TF32 and
# BF16). It cannot see GPU-only faults (real races, timing, the hardware's rounding of sums): the GPU tests
# (tools/gpu_check.sh) remain the word on those. Needs BUILD_DIR/kernels/libunet_kernels_cpu.a.
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
for h in "$ROOT"/kernels/cuda/*.cuh; do  # headers may launch kernels
  [[ "$(basename "$h")" == ptx.cuh ]] && continue
  python3 "$HERE/transform.py" "$h" "$WORK/inc/kernels/cuda/$(basename "$h")"
done
cp "$HERE/ptx.cuh" "$WORK/inc/kernels/cuda/ptx.cuh"
srcs=("$HERE/fake_rt.cpp")
for cu in "$ROOT"/kernels/cuda/*.cu "$ROOT"/restore/kernels/cuda/*.cu; do
  name="$(basename "$cu" .cu)"
  [[ "$name" == table ]] && continue
  python3 "$HERE/transform.py" "$cu" "$WORK/gen_$name.cpp"
  srcs+=("$WORK/gen_$name.cpp")
done
flags=(-std=c++20 -O1 -w -pthread -I"$HERE" -I"$WORK/inc" -I"$ROOT" -I"$CUDA_INC")
objs=()
pids=()
for s in "${srcs[@]}" "$HERE/harness.cpp" "$HERE/tc_harness.cpp"; do  # EMU_JOBS compilers at a time
  o="$WORK/$(basename "$s" .cpp).o"
  g++ "${flags[@]}" -c "$s" -o "$o" &
  pids+=($!)
  [[ "$s" == */harness.cpp || "$s" == */tc_harness.cpp ]] || objs+=("$o")
  if (( ${#pids[@]} >= ${EMU_JOBS:-2} )); then wait "${pids[0]}"; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p"; done
g++ -pthread "${objs[@]}" "$WORK/harness.o" "$RESTORE_CPU_LIB" "$CPU_LIB" -fopenmp -o "$WORK/cuda_emu"
g++ -pthread "${objs[@]}" "$WORK/tc_harness.o" "$RESTORE_CPU_LIB" "$CPU_LIB" -fopenmp -o "$WORK/cuda_emu_tc"
for prog in cuda_emu cuda_emu_tc; do
  start=$SECONDS
  "$WORK/$prog"
  echo "$prog: $((SECONDS - start)) s"
done

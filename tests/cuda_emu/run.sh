#!/usr/bin/env bash
# tests/cuda_emu/run.sh [BUILD_DIR]: checks the logic of every CUDA kernel WITHOUT a GPU. The kernel sources of
# kernels/cuda/ and restore/kernels/cuda/ (their tables included) are compiled as host C++ (transform.py rewrites
# the <<<>>> launches; emu.h runs each block's threads as fibers that meet at barriers, shared memory as statics;
# ptx.cuh here replaces kernels/cuda/ptx.cuh with host versions of cp.async, cvt and mma), and the op table's
# tiny rows (tests/op_rows.cpp, compiled here without CUDA: buffers in host memory) run on these
# emulated tables and on the CPU's, compared as tests/gpu compares the GPU (tests/row_check.h), with 1 SM (no
# split-K) and 132 SMs (split-K where the reduction allows). Then tc_harness.cpp holds the tensor-core
# convolutions (TF32, BF16) to FP32's tolerance against the CPU reference at the same precision (both take the
# same rounded operands). It cannot see GPU-only faults (alignment, real races, timing, the hardware's rounding
# of sums): the GPU tests (tools/gpu_check.sh) remain the word on those. Needs the CPU kernel libraries of
# BUILD_DIR (kernels/libunet_kernels_cpu.a, restore/libunet_restore_kernels_cpu.a).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BUILD="${1:-$ROOT/build-cuda}"
CPU_LIB="$BUILD/kernels/libunet_kernels_cpu.a"
RESTORE_CPU_LIB="$BUILD/restore/libunet_restore_kernels_cpu.a"
CUDA_INC="${CUDA_HOME:-/usr/local/cuda}/include"
JOBS="$(nproc)"
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
srcs=("$HERE/fake_rt.cpp" "$HERE/harness.cpp" "$ROOT/tests/op_table.cpp" "$ROOT/tests/op_rows.cpp"
      "$ROOT/tests/row_check.cpp" "$ROOT/engine/tensor.cpp" "$ROOT/engine/backend_nocuda.cpp"
      "$ROOT/engine/op_timing.cpp" "$ROOT/engine/graph.cpp")
for cu in "$ROOT"/kernels/cuda/*.cu "$ROOT"/restore/kernels/cuda/*.cu; do
  name="${cu#"$ROOT"/}" && name="${name%.cu}" && name="${name//\//_}"  # kernels_cuda_table, restore_kernels_cuda_table, ...
  python3 "$HERE/transform.py" "$cu" "$WORK/gen_$name.cpp"
  srcs+=("$WORK/gen_$name.cpp")
done
# -O1: the emulation's time is its threads, not its arithmetic. UNET_WITH_CUDA stays undefined: the engine
# and the op table use host memory and the CPU table for their own buffers.
flags=(-std=c++20 -O1 -w -pthread -I"$HERE" -I"$WORK/inc" -I"$ROOT" -I"$CUDA_INC")
printf '%s\n' "${srcs[@]}" | xargs -P "$JOBS" -I{} sh -c 'g++ "$@" -c "{}" -o "'"$WORK"'/$(basename "{}" .cpp).o"' _ "${flags[@]}"
g++ -pthread "$WORK"/*.o "$RESTORE_CPU_LIB" "$CPU_LIB" -fopenmp -o "$WORK/cuda_emu"
mkdir "$WORK/tc"
g++ "${flags[@]}" -c "$HERE/tc_harness.cpp" -o "$WORK/tc/tc_harness.o"
kernel_objs=()
for o in "$WORK"/*.o; do [[ "$o" == */harness.o ]] || kernel_objs+=("$o"); done
g++ -pthread "${kernel_objs[@]}" "$WORK/tc/tc_harness.o" "$RESTORE_CPU_LIB" "$CPU_LIB" -fopenmp -o "$WORK/cuda_emu_tc"
# The launchers read the SM count once per process: one process per count, side by side (tc_harness keeps one
# device per SM count itself).
"$WORK/cuda_emu" 1 > "$WORK/sms1.log" 2>&1 & one=$!
"$WORK/cuda_emu" 132 > "$WORK/sms132.log" 2>&1 & many=$!
rc=0
wait "$one" || rc=1
wait "$many" || rc=1
"$WORK/cuda_emu_tc" > "$WORK/tc.log" 2>&1 || rc=1
cat "$WORK/sms1.log" "$WORK/sms132.log" "$WORK/tc.log"
total=$(cat "$WORK/sms1.log" "$WORK/sms132.log" "$WORK/tc.log" | grep -oE '[0-9]+ failures' | awk '{s += $1} END {print s + 0}')
echo "$total failures"
[[ $rc -eq 0 && $total -eq 0 ]]

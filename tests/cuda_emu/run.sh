#!/usr/bin/env bash
# tests/cuda_emu/run.sh [BUILD_DIR]: checks the logic of every CUDA kernel WITHOUT a GPU. The kernel sources of
# kernels/cuda/ and restore/kernels/cuda/ (their tables included) are compiled as host C++ (transform.py rewrites
# the <<<>>> launches; emu.h runs each block as blockDim threads with a barrier, shared memory as statics), and
# the op table's tiny rows (tests/op_rows.cpp, compiled here without CUDA: buffers in host memory) run on these
# emulated tables and on the CPU's, compared as tests/gpu compares the GPU (tests/row_check.h), with 1 SM (no
# split-K) and 132 SMs (split-K where the reduction allows). It cannot see GPU-only faults (alignment, real
# races, timing): the GPU tests (tools/gpu_check.sh) remain the word on those. Needs the CPU kernel libraries of
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
for h in common.cuh implicit_gemm.cuh; do  # the headers that launch kernels
  python3 "$HERE/transform.py" "$ROOT/kernels/cuda/$h" "$WORK/inc/kernels/cuda/$h"
done
srcs=("$HERE/fake_rt.cpp" "$HERE/harness.cpp" "$ROOT/tests/op_table.cpp" "$ROOT/tests/op_rows.cpp"
      "$ROOT/tests/row_check.cpp" "$ROOT/engine/tensor.cpp" "$ROOT/engine/backend_nocuda.cpp")
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
# The launchers read the SM count once per process: one process per count, side by side.
"$WORK/cuda_emu" 1 > "$WORK/sms1.log" 2>&1 & one=$!
"$WORK/cuda_emu" 132 > "$WORK/sms132.log" 2>&1 & many=$!
rc=0
wait "$one" || rc=1
wait "$many" || rc=1
cat "$WORK/sms1.log" "$WORK/sms132.log"
total=$(cat "$WORK/sms1.log" "$WORK/sms132.log" | grep -oE '[0-9]+ failures' | awk '{s += $1} END {print s + 0}')
echo "$total failures"
[[ $rc -eq 0 && $total -eq 0 ]]

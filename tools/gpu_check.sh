#!/usr/bin/env bash
# gpu_check.sh: build and check the CUDA backend on a GPU machine, in one go.
#
#   tools/gpu_check.sh --fetch-deps   on a Debian machine with apt (this workspace): download the .deb files of
#                                     the libraries the build needs into .deps/ (git-ignored)
#   tools/gpu_check.sh [options]      on the GPU machine, from the repository root with .deps/ carried along:
#                                     unpack .deps/*.deb into .deps/root, configure for sm_90, build the GPU
#                                     tests and benchmark, run ./unet_gpu_tests (full output), run bench_gpu
#                                     (console output; JSON to $OUT/bench_gpu.json) and print a summary last.
# Options:
#   --tests-only | --bench-only       run one half
#   --filter REGEX                    passed to bench_gpu as --benchmark_filter
#   --all                             build every target, not only unet_gpu_tests and bench_gpu
# Environment: OUT (where logs and the JSON go; default build-gpu/out), BUILD (default build-gpu),
#              JOBS (default: all cores), CUDNN_ROOT (a cuDNN install, if not in the CUDA toolkit),
#              GPU_CHECK_CMAKE_ARGS (extra configure arguments, whitespace-separated).
# Exit status: 0 when the GPU tests pass (or were skipped for want of a device), 1 otherwise.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
# Headers, CMake configs and shared libraries of Catch2 v2, Google Benchmark, libtiff (and the libraries
# libtiff.so.6 links that a minimal image may lack), nlohmann-json and stb. zlib, zstd and xz are left to
# the system: every Debian or Ubuntu image has them, and an older copy must not shadow its own.
PKGS=(catch2 libbenchmark-dev libbenchmark1debian libtiff-dev libtiff6 libjpeg62-turbo libjbig0 libdeflate0
      liblerc4 libwebp7 nlohmann-json3-dev libstb-dev)

if [[ "${1:-}" == "--fetch-deps" ]]; then
  set -e
  mkdir -p "$DEPS"
  cd "$DEPS"
  rm -f ./*.deb
  apt-get download "${PKGS[@]}"
  echo "fetched into $DEPS:"
  ls -l ./*.deb
  exit 0
fi

RUN_TESTS=1 RUN_BENCH=1 BUILD_ALL=0 FILTER=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tests-only) RUN_BENCH=0 ;;
    --bench-only) RUN_TESTS=0 ;;
    --all) BUILD_ALL=1 ;;
    --filter) FILTER="$2"; shift ;;
    *) echo "gpu_check.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done

BUILD="${BUILD:-$ROOT/build-gpu}"
OUT="${OUT:-$BUILD/out}"
JOBS="${JOBS:-$(nproc)}"
mkdir -p "$OUT"
section() { printf '\n==== %s ====\n' "$*"; }

section "machine"
grep PRETTY_NAME /etc/os-release 2>/dev/null || true
nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not available"
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
nvcc --version | tail -n 2
cmake --version | head -n 1
g++ --version | head -n 1

# --- dependencies: unpack the carried .debs into a private prefix -------------------------------------------
section "dependencies"
PREFIX="$DEPS/root"
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
shopt -s nullglob
debs=("$DEPS"/*.deb)
if [[ ${#debs[@]} -eq 0 ]]; then
  echo "no .deb files in $DEPS: relying on the system's packages (fetch them with --fetch-deps and carry .deps)"
else
  mkdir -p "$PREFIX"
  for deb in "${debs[@]}"; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$deb" "$PREFIX"
    else  # a .deb is an ar archive holding data.tar.*
      tmp="$(mktemp -d)"
      (cd "$tmp" && ar x "$deb" && tar -xf data.tar.* -C "$PREFIX")
      rm -rf "$tmp"
    fi
  done
  echo "unpacked ${#debs[@]} packages into $PREFIX"
fi
export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# cuDNN, for the benchmark's baselines: the CUDA toolkit's, the system's, or the one pip installed for PyTorch.
if [[ -z "${CUDNN_ROOT:-}" ]]; then
  cuda_root="$(dirname "$(dirname "$(command -v nvcc)")")"
  if [[ ! -f "$cuda_root/include/cudnn.h" && ! -f /usr/include/cudnn.h && ! -f /usr/local/include/cudnn.h ]]; then
    CUDNN_ROOT="$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))' 2>/dev/null || true)"
    if [[ -z "$CUDNN_ROOT" ]]; then
      CUDNN_ROOT="$(python3 -c 'import nvidia.cudnn, os; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null || true)"
    fi
  fi
fi
if [[ -n "${CUDNN_ROOT:-}" ]]; then
  echo "cuDNN from $CUDNN_ROOT"
  export LD_LIBRARY_PATH="$CUDNN_ROOT/lib:$LD_LIBRARY_PATH"
fi

# --- configure and build --------------------------------------------------------------------------------
section "configure"
cmake_args=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
            "-DCMAKE_PREFIX_PATH=$PREFIX/usr"
            "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$LIBDIR")
[[ -n "${CUDNN_ROOT:-}" ]] && cmake_args+=("-DCUDNN_ROOT=$CUDNN_ROOT")
# shellcheck disable=SC2206  # extra arguments are whitespace-separated on purpose
[[ -n "${GPU_CHECK_CMAKE_ARGS:-}" ]] && cmake_args+=(${GPU_CHECK_CMAKE_ARGS})
cmake "${cmake_args[@]}" 2>&1 | tee "$OUT/configure.log"
if [[ ${PIPESTATUS[0]} -ne 0 ]]; then
  echo "gpu_check.sh: configure failed (see above)"; exit 1
fi

section "build"
targets=(--target unet_gpu_tests bench_gpu)
[[ $BUILD_ALL -eq 1 ]] && targets=()
cmake --build "$BUILD" -j "$JOBS" "${targets[@]}" > "$OUT/build.log" 2>&1
build_rc=$?
grep -E "error|warning" "$OUT/build.log" | head -n 60 || true
if [[ $build_rc -ne 0 ]]; then
  tail -n 60 "$OUT/build.log"
  echo "gpu_check.sh: build failed (full log: $OUT/build.log)"; exit 1
fi
echo "built: $BUILD/tests/unet_gpu_tests $BUILD/bench/bench_gpu"

# --- the GPU tests --------------------------------------------------------------------------------------
tests_rc=0
if [[ $RUN_TESTS -eq 1 ]]; then
  section "unet_gpu_tests"
  (cd "$BUILD/tests" && ./unet_gpu_tests --durations yes) 2>&1 | tee "$OUT/gpu_tests.log"
  tests_rc=${PIPESTATUS[0]}
fi

# --- the GPU benchmark ----------------------------------------------------------------------------------
bench_rc=0
if [[ $RUN_BENCH -eq 1 ]]; then
  section "bench_gpu"
  bench_args=(--benchmark_format=console --benchmark_out="$OUT/bench_gpu.json" --benchmark_out_format=json
              --benchmark_counters_tabular=true)
  [[ -n "$FILTER" ]] && bench_args+=("--benchmark_filter=$FILTER")
  "$BUILD/bench/bench_gpu" "${bench_args[@]}" 2>&1 | tee "$OUT/bench_gpu.log"
  bench_rc=${PIPESTATUS[0]}
fi

# --- summary --------------------------------------------------------------------------------------------
section "summary"
if [[ $RUN_TESTS -eq 1 ]]; then
  case $tests_rc in
    0) echo "unet_gpu_tests: PASSED" ;;
    77) echo "unet_gpu_tests: SKIPPED (no CUDA device)" ;;
    *) echo "unet_gpu_tests: FAILED (exit $tests_rc)"; grep -E "FAIL|FAILED|REQUIRE" "$OUT/gpu_tests.log" | head -n 40 ;;
  esac
  grep -E "test cases:|assertions:" "$OUT/gpu_tests.log" | tail -n 2 || true
fi
if [[ $RUN_BENCH -eq 1 && -s "$OUT/bench_gpu.json" ]] && command -v python3 >/dev/null; then
  python3 - "$OUT/bench_gpu.json" <<'PY'
import json, sys
rows = json.load(open(sys.argv[1])).get("benchmarks", [])
print(f"{'benchmark':58} {'ms':>9} {'GFLOP/s':>9} {'GB/s':>8} {'vs cuDNN':>9} {'vs memcpy':>9} {'vs SGEMM':>9}")
def f(r, k, fmt):
    return format(r[k], fmt) if k in r else "-"
for r in rows:
    if r.get("error_occurred"):
        print(f"{r['name']:58} SKIPPED: {r.get('error_message', '')}")
        continue
    print(f"{r['name']:58} {f(r,'ms','9.3f'):>9} {f(r,'GFLOP/s','9.0f'):>9} {f(r,'GB/s','8.0f'):>8} "
          f"{f(r,'ratio_to_cudnn','9.2f'):>9} {f(r,'ratio_to_memcpy','9.2f'):>9} {f(r,'ratio_to_sgemm','9.2f'):>9}")
PY
elif [[ $RUN_BENCH -eq 1 ]]; then
  echo "bench_gpu: exit $bench_rc, no JSON (see $OUT/bench_gpu.log)"
fi
echo "logs: $OUT"

[[ $tests_rc -eq 0 || $tests_rc -eq 77 ]] && [[ $bench_rc -eq 0 ]] && exit 0
exit 1

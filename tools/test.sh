#!/usr/bin/env bash
# The test command: install what is missing, build everything, check the sources' format
# (tools/check_format.sh), run every test; then build the CPU
# engine again with clang, AddressSanitizer and UndefinedBehaviorSanitizer (build-asan/), run its
# fast tests and each fuzz target for a bounded number of inputs (docs/robustness.md).
# GPU tests report "Skipped" (with the reason in their output) on a machine without a GPU.
# UNET_SKIP_SANITIZE=1 runs the first stage only.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash tools/build.sh "$@"
bash tools/check_format.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900
ctest --test-dir build -R gpu_tests --verbose 2>/dev/null | grep -E "SKIPPED|GPU:|Passed|Failed" || true
echo "tests: $(( $(date +%s) - start )) s"
[ "${UNET_SKIP_SANITIZE:-0}" = 1 ] && exit 0

stage=$(date +%s)
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang \
      -DUNET_FUZZ=ON -DUNET_WITH_CUDA=OFF -DUNET_BUILD_BENCH=OFF >/dev/null
cmake --build build-asan -j"$(nproc)"
# The command-line scripts are left to the first stage: they cap virtual memory (ulimit -v), which
# AddressSanitizer's shadow memory cannot live under.
ASAN_OPTIONS=detect_leaks=1 ctest --test-dir build-asan --output-on-failure -j"$(nproc)" --timeout 900 -E "^cli_|^gpu_tests$"
echo "sanitizer build and tests: $(( $(date +%s) - stage )) s; all tests: $(( $(date +%s) - start )) s"

#!/usr/bin/env bash
# The test command: install what is missing, build everything, run every test.
# GPU tests report "Skipped" (with the reason in their output) on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh "$@"
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900
ctest --test-dir build -R gpu_tests --verbose 2>/dev/null | grep -E "SKIPPED|GPU:|Passed|Failed" || true

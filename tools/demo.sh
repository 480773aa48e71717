#!/usr/bin/env bash
# The main job (engine stage): build, then run the CPU benchmark of the reference conv3x3.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
./build/bench/bench_cpu --benchmark_filter=conv3x3_forward

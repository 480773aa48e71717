#!/usr/bin/env bash
# gpu_check.sh: the GPU proof in one run: build, cross-check every kernel against the CPU, sanitize,
# benchmark against cuDNN and PyTorch, predict, and train the paper's network for the time left.
#
#   tools/gpu_check.sh --fetch [--isbi DIR]   on a Debian machine with apt and this repository's git history:
#        fetch what a GPU machine without a package registry lacks, into git-ignored folders: the .deb files of
#        the build's libraries (.deps/), the ISBI 2012 training set from DIR (its train-volume.tif and
#        train-labels.tif, or train/image and train/label folders: .data/isbi2012/; phase 7 trains on all
#        but the last 5 slices and validates on those) and the commit stamp (.deps/stamp*). --fetch-deps: the
#        .deb files only;
#        --stamp: the stamp only (after a new commit).
#   tools/gpu_check.sh [--phases LIST] [--dry-run]   on the GPU machine, from the repository root, with .deps and
#        .data carried along. Phases (numbers or names, e.g. --phases 2,3 or --phases tests,sanitize):
#          1 build     configure for sm_90 and build what the run needs, -j$(nproc); the compiler's errors first
#          2 tests     unet_gpu_tests whole: one line per op-table row and output, bitwise reproducibility per op
#          3 sanitize  compute-sanitizer memcheck, racecheck, synccheck, initcheck over the [sanitize] tests
#          4 bench     bench_gpu: the 23 convolutions beside cuDNN (fma, tf32, bf16), the memory-bound ops
#          5 torch     one training step beside PyTorch (4 modes) and 3 steps of both from the same weights
#          6 predict   512x512 (one tile; 8-fold TTA) and 4096x4096: time and peak memory; PyTorch's forward
#          7 train     unet train with the paper's configuration on ISBI for the time left (>= 3 min)
#        Each phase runs under its own time limit; one that fails or overruns is reported and the run goes on.
#        --dry-run (or no GPU) walks every phase on this machine: builds, lists what each would run, runs the
#        CPU-side checks at small sizes, and writes the summary with the GPU figures "not measured".
# Output: $OUT (default $BUILD/out) gets summary.md (the report, ready to commit as
# bench/results/gpu-<date>-<commit>.md; rewritten after every phase), results.json (every figure),
# results.tar.gz (every phase's log and machine-readable results) and loss.png; the phases' folders are in
# $WORK (default $OUT/phases), e.g. $WORK/7-train/run/checkpoint.safetensors.
# Environment: BUILD (default build-gpu), OUT, WORK, JOBS (default: all cores), CUDNN_ROOT, PYTHON (with
# torch; default python3), GPU_CHECK_BUDGET (seconds for the whole run, default 540), GPU_CHECK_DEADLINE
# (hard end, default 585), GPU_CHECK_CMAKE_ARGS, GPU_CHECK_BENCH_FILTER (bench_gpu --benchmark_filter),
# BUDGET_<PHASE> (seconds, e.g. BUDGET_BENCH=150), GPU_CHECK_BUDGET_SCALE (multiplies the phases' default limits;
# default 1, or 4 without a GPU).
# Exit status: 0 when every phase that ran passed or was skipped for want of a GPU; 1 otherwise.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPS="$ROOT/.deps"
DATA="$ROOT/.data"
# Headers, CMake configs and shared libraries of Catch2 v2, Google Benchmark, libtiff (and the libraries
# libtiff.so.6 links that a minimal image may lack), nlohmann-json and stb. zlib, zstd and xz are left to
# the system: every Debian or Ubuntu image has them, and an older copy must not shadow its own.
PKGS=(catch2 libbenchmark-dev libbenchmark1debian libtiff-dev libtiff6 libjpeg62-turbo libjbig0 libdeflate0
      liblerc4 libwebp7 nlohmann-json3-dev libstb-dev)

# --- here: fetch what travels ----------------------------------------------------------------------------
fetch_debs() {
  mkdir -p "$DEPS" && (cd "$DEPS" && rm -f ./*.deb && apt-get download "${PKGS[@]}") || return 1
  echo "fetched into $DEPS: $(ls "$DEPS"/*.deb | wc -l) packages, $(du -shc "$DEPS"/*.deb | tail -1 | cut -f1)"
}
# The commit and a checksum of every tracked file, so that a machine without the git history can tell
# which commit it runs and whether its tree differs.
stamp() {
  mkdir -p "$DEPS"
  (cd "$ROOT" && git rev-parse HEAD > "$DEPS/stamp" && git log -1 --format=%cI >> "$DEPS/stamp" &&
   git ls-files -z | xargs -0 sha1sum > "$DEPS/stamp.sha1") || return 1
  local dirty; dirty="$(cd "$ROOT" && git status --porcelain --untracked-files=no | wc -l)"
  echo "stamped $(head -c 12 "$DEPS/stamp") ($dirty tracked files modified since)"
}
fetch_isbi() {  # fetch_isbi DIR: the ISBI 2012 training set, as PNG folders (split here) or as its two stacks
  local src="$1" dst="$DATA/isbi2012"
  rm -rf "$dst" && mkdir -p "$dst" || return 1
  if [[ -d "$src/train/image" && -d "$src/train/label" ]]; then  # the last 5 slices validate
    local imgs=("$src"/train/image/*) labs=("$src"/train/label/*) n i part
    n=${#imgs[@]}
    [[ $n -eq ${#labs[@]} && $n -gt 5 ]] || { echo "$src/train: $n images, ${#labs[@]} labels" >&2; return 1; }
    mkdir -p "$dst"/{train,val}/{image,label}
    for ((i = 0; i < n; ++i)); do
      part=train; ((i >= n - 5)) && part=val
      cp "${imgs[i]}" "$dst/$part/image/" && cp "${labs[i]}" "$dst/$part/label/" || return 1
    done
  elif [[ -f "$src/train-volume.tif" && -f "$src/train-labels.tif" ]]; then
    cp "$src/train-volume.tif" "$src/train-labels.tif" "$dst/" || return 1
  else
    echo "$src has neither train-volume.tif + train-labels.tif nor train/image + train/label" >&2
    return 1
  fi
  echo "ISBI 2012 into $dst: $(ls "$dst" | tr '\n' ' ')($(find "$dst" -type f | wc -l) files, $(du -sh "$dst" | cut -f1))"
}

case "${1:-}" in
  --fetch-deps) fetch_debs; exit $? ;;
  --stamp) stamp; exit $? ;;
  --fetch)
    isbi="${ISBI2012_DIR:-}"
    [[ "${2:-}" == "--isbi" ]] && isbi="${3:-}"
    fetch_debs && stamp || exit 1
    if [[ -n "$isbi" ]]; then fetch_isbi "$isbi" || exit 1
    else echo "no --isbi DIR: phase 7 will train on the 6 bundled slices of tests/data/isbi"; fi
    echo "travels with the working tree (git-ignored): .deps .data  ($(du -shc "$DEPS" "$DATA" 2>/dev/null | tail -1 | cut -f1))"
    exit 0 ;;
esac

# --- the run ---------------------------------------------------------------------------------------------
DRY_RUN=0 PHASES="1,2,3,4,5,6,7"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --phases) PHASES="$2"; shift ;;
    *) echo "gpu_check.sh: unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done

export ROOT DEPS DATA DRY_RUN
export BUILD="${BUILD:-$ROOT/build-gpu}"
export OUT="${OUT:-$BUILD/out}"
export WORK="${WORK:-$OUT/phases}"
export JOBS="${JOBS:-$(nproc)}"
export PYTHON="${PYTHON:-python3}"
BUDGET="${GPU_CHECK_BUDGET:-540}"
DEADLINE="${GPU_CHECK_DEADLINE:-585}"
mkdir -p "$OUT" "$WORK"
T0=$EPOCHREALTIME
elapsed() { awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%d", b - a }'; }
section() { printf '\n==== %s ====\n' "$*"; }

NAMES=(- build tests sanitize bench torch predict train)
declare -A CAP=([build]=150 [tests]=75 [sanitize]=100 [bench]=140 [torch]=130 [predict]=45 [train]=0)
want() {  # want N: is phase N in --phases?
  local p
  for p in ${PHASES//,/ }; do [[ "$p" == "$1" || "$p" == "${NAMES[$1]}" ]] && return 0; done
  return 1
}

# --- machine, dependencies, cuDNN ------------------------------------------------------------------------
section "machine"
command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
PREFIX="$BUILD/deps-root"  # unpacked here, not in .deps: .deps travels as the .deb files only
LIBDIR="$PREFIX/usr/lib/x86_64-linux-gnu"
shopt -s nullglob
debs=("$DEPS"/*.deb)
if [[ ${#debs[@]} -gt 0 && ! -f "$PREFIX/.unpacked" ]]; then
  mkdir -p "$PREFIX"
  for deb in "${debs[@]}"; do
    if command -v dpkg >/dev/null; then dpkg -x "$deb" "$PREFIX"
    else (tmp="$(mktemp -d)" && cd "$tmp" && ar x "$deb" && tar -xf data.tar.* -C "$PREFIX"; rm -rf "$tmp"); fi
  done
  touch "$PREFIX/.unpacked"
  echo "unpacked ${#debs[@]} packages into $PREFIX"
fi
[[ -d "$LIBDIR" ]] && export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PREFIX LIBDIR
# cuDNN, for the benchmark's baselines: the CUDA toolkit's, the system's, or the one pip installed for PyTorch.
if [[ -z "${CUDNN_ROOT:-}" ]] && command -v nvcc >/dev/null; then
  cuda_root="$(dirname "$(dirname "$(command -v nvcc)")")"
  if [[ ! -f "$cuda_root/include/cudnn.h" && ! -f /usr/include/cudnn.h && ! -f /usr/local/include/cudnn.h ]]; then
    CUDNN_ROOT="$("$PYTHON" -c 'import nvidia.cudnn, os; print(list(nvidia.cudnn.__path__)[0])' 2>/dev/null || true)"
  fi
fi
if [[ -n "${CUDNN_ROOT:-}" ]]; then
  export CUDNN_ROOT
  export LD_LIBRARY_PATH="$CUDNN_ROOT/lib:${LD_LIBRARY_PATH:-}"
fi
HAVE_GPU=0
nvidia-smi -L >/dev/null 2>&1 && HAVE_GPU=1
[[ $DRY_RUN -eq 1 ]] && HAVE_GPU=0
export HAVE_GPU
bash "$ROOT/tools/gpu_check_phases.sh" machine "$WORK" 2>&1 | tee "$WORK/machine.log"
printf '{"budget": %s, "deadline": %s, "dry_run": %s, "phases": "%s", "started": "%s"}\n' "$BUDGET" "$DEADLINE" \
  "$([[ $DRY_RUN -eq 1 ]] && echo true || echo false)" "$PHASES" "$(date -u +%FT%TZ)" > "$WORK/run.json"

# Writes summary.md and results.json, packs every phase's results, copies the loss curve: after each phase,
# so that a run cut off at its time limit still leaves what it finished.
bundle() {
  "$PYTHON" "$ROOT/tools/gpu_summary.py" "$WORK" --out "$OUT" > "$WORK/summary.log" 2>&1 ||
    python3 "$ROOT/tools/gpu_summary.py" "$WORK" --out "$OUT" > "$WORK/summary.log" 2>&1 ||
    echo "gpu_check.sh: the summary writer failed (see $WORK/summary.log)"
  [[ -f "$WORK/7-train/run/loss.png" ]] && cp "$WORK/7-train/run/loss.png" "$OUT/loss.png"
  # (tar exits 1 when a log grows while it reads it: the phase that calls this is still writing its own)
  (cd "$WORK" && tar -czf "$OUT/results.tar.gz.tmp" --warning=no-file-changed --exclude='*.safetensors' \
     --exclude='*.npy' --exclude=./7-train/data . ; [[ $? -le 1 ]] && mv "$OUT/results.tar.gz.tmp" "$OUT/results.tar.gz")
}

export -f bundle  # the training phase refreshes the report after each of its segments

# run_phase N BUDGET: the phase in its own process under `timeout`; its folder gets log.txt and result.json.
failed=0
run_phase() {
  local n="$1" budget="$2" name="${NAMES[$1]}" dir="$WORK/$1-${NAMES[$1]}"
  rm -rf "$dir" && mkdir -p "$dir"
  section "phase $n: $name (budget $budget s, at $(elapsed) s into the run)"
  local t0=$EPOCHREALTIME rc
  BUDGET_S="$budget" timeout -k 10 "$budget" bash "$ROOT/tools/gpu_check_phases.sh" "$name" "$dir" 2>&1 |
    tee "$dir/log.txt"
  rc=${PIPESTATUS[0]}
  local secs; secs="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
  local status=passed reason=""
  case $rc in
    0) ;;
    3) status=skipped ;;
    124|137) status=timeout; reason="stopped at its time limit of $budget s" ;;
    *) status=failed ;;
  esac
  [[ -s "$dir/reason" ]] && reason="$(head -c 600 "$dir/reason" | tr -d '"\\' | paste -sd';' | sed 's/;/; /g')${reason:+; $reason}"
  [[ $status == failed || $status == timeout ]] && failed=1
  printf '{"phase": %d, "name": "%s", "status": "%s", "reason": "%s", "seconds": %s, "budget": %d, "exit": %d}\n' \
    "$n" "$name" "$status" "$reason" "$secs" "$budget" "$rc" > "$dir/result.json"
  echo "---- phase $n $name: $status in $secs s${reason:+ ($reason)}"
  bundle
}

# The caps are for a GPU machine with 16 cores; a machine without a GPU (the dry run) usually has fewer.
SCALE="${GPU_CHECK_BUDGET_SCALE:-$([[ $HAVE_GPU -eq 1 ]] && echo 1 || echo 4)}"
for n in 1 2 3 4 5 6; do
  want "$n" || continue
  cap=$(( ${CAP[${NAMES[$n]}]} * SCALE ))
  var="BUDGET_${NAMES[$n]^^}"
  run_phase "$n" "${!var:-$cap}"
done
if want 7; then
  # The paper's training run gets what is left of the budget, at least 3 minutes, never past the deadline.
  left=$((BUDGET - $(elapsed)))
  ((left < 180)) && left=180
  ((left > DEADLINE - $(elapsed) - 5)) && left=$((DEADLINE - $(elapsed) - 5))
  ((left < 30)) && left=30
  run_phase 7 "${BUDGET_TRAIN:-$left}"
fi

section "summary ($(elapsed) s)"
bundle
cat "$OUT/summary.md" 2>/dev/null | head -n 60
echo "..."
echo "report: $OUT/summary.md   figures: $OUT/results.json   logs: $OUT/results.tar.gz   phases: $WORK"
exit $failed

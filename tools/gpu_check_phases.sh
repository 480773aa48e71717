#!/usr/bin/env bash
# The phases of tools/gpu_check.sh, one per call: gpu_check_phases.sh PHASE DIR. The driver runs each under
# `timeout` with the environment it sets up (ROOT, BUILD, DEPS, DATA, PREFIX, LIBDIR, CUDNN_ROOT, PYTHON, JOBS,
# HAVE_GPU, DRY_RUN, WORK, BUDGET_S) and reads the exit status: 0 passed, 3 skipped, anything else failed.
# A phase writes its logs and machine-readable results into DIR (tools/gpu_summary.py reads them) and, when it
# skips or fails, the reason into DIR/reason. Without a GPU (HAVE_GPU=0) every phase still checks what it can
# on the CPU (binaries built, the tests and rows it would run, the CPU side of its comparisons at small sizes).
set -uo pipefail
PHASE="$1"
DIR="$2"
mkdir -p "$DIR"
cd "$ROOT" || exit 1

skip() { echo "$*" > "$DIR/reason"; echo "SKIPPED: $*"; exit 3; }
fail() { echo "$*" > "$DIR/reason"; echo "FAILED: $*"; exit 1; }
now() { awk -v t="$EPOCHREALTIME" 'BEGIN { printf "%d", t }'; }
START=$(now)
left() { echo $((BUDGET_S - ($(now) - START))); }  # seconds left in this phase
json_get() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get(sys.argv[2], ""))' "$@" 2>/dev/null; }
NO_GPU="no GPU$([[ $DRY_RUN -eq 1 ]] && echo " (dry run)")"
TESTS="$BUILD/tests/unet_gpu_tests"
BENCH="$BUILD/bench/bench_gpu"
BU="$BUILD/bench/bench_unet"
UNET="$BUILD/tools/unet"
TORCH_OK=""
have_torch() {  # asked once per phase (importing torch takes seconds)
  [[ -z "$TORCH_OK" ]] && { "$PYTHON" -c "import torch, numpy, safetensors" >/dev/null 2>&1 && TORCH_OK=1 || TORCH_OK=0; }
  [[ $TORCH_OK -eq 1 ]]
}

# The network the comparisons use: the paper's on a GPU; on the CPU a small one with all 23 convolutions.
if [[ $HAVE_GPU -eq 1 ]]; then DEV=cuda BASE=64 TILE=572; else DEV=cpu BASE=8 TILE=252; fi
ISBI="$DATA/isbi2012"
IMG="$ROOT/tests/data/isbi/image/00.png" LAB="$ROOT/tests/data/isbi/label/00.png"  # ISBI slice 00, for the tile

phase_machine() {  # machine.json: the versions the report names
  local gpu driver mem cuda_drv nvcc_v cudnn_h="" torch_json="{}" csan="" commit="" commit_note=""
  gpu="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
  driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)"
  mem="$(nvidia-smi --query-gpu=memory.total --format=csv,noheader 2>/dev/null | head -1)"
  cuda_drv="$(nvidia-smi 2>/dev/null | grep -o 'CUDA Version: [0-9.]*' | head -1 | cut -d' ' -f3)"
  nvcc_v="$(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*, V[0-9.]*' | head -1)"
  for h in "${CUDNN_ROOT:-/nonexistent}/include/cudnn_version.h" "$(dirname "$(dirname "$(command -v nvcc)")")/include/cudnn_version.h" \
           /usr/include/cudnn_version.h /usr/include/x86_64-linux-gnu/cudnn_version.h; do
    if [[ -f "$h" ]]; then
      cudnn_h="$(awk '/#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) /{v[$2]=$3} END{print v["CUDNN_MAJOR"]"."v["CUDNN_MINOR"]"."v["CUDNN_PATCHLEVEL"]}' "$h")"
      break
    fi
  done
  have_torch && torch_json="$(timeout 60 "$PYTHON" tools/bench_torch.py versions 2>/dev/null | tail -1)"
  csan="$( (compute-sanitizer --version || /usr/local/cuda/bin/compute-sanitizer --version) 2>/dev/null | grep -o 'Version [0-9.]*' | head -1)"
  if git rev-parse HEAD >/dev/null 2>&1; then
    commit="$(git rev-parse HEAD)"
    [[ -n "$(git status --porcelain --untracked-files=no)" ]] && commit_note="with local changes"
  elif [[ -f "$DEPS/stamp" ]]; then
    commit="$(head -1 "$DEPS/stamp")"
    local bad; bad="$(sha1sum -c --quiet "$DEPS/stamp.sha1" 2>/dev/null | grep -c FAILED)"
    [[ "$bad" -gt 0 ]] && commit_note="working tree differs from it in $bad files: $(sha1sum -c --quiet "$DEPS/stamp.sha1" 2>/dev/null | grep FAILED | cut -d: -f1 | head -5 | tr '\n' ' ')"
    [[ "$bad" -eq 0 ]] && commit_note="working tree matches the stamp"
  fi
  GPU="$gpu" DRIVER="$driver" MEM="$mem" CUDA_DRV="$cuda_drv" NVCC_V="$nvcc_v" CUDNN_H="$cudnn_h" TORCH_JSON="$torch_json" \
  CSAN="$csan" COMMIT="$commit" COMMIT_NOTE="$commit_note" \
  OS="$(grep -s PRETTY_NAME /etc/os-release | cut -d'"' -f2)" CPU="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)" \
  CMAKE_V="$(cmake --version 2>/dev/null | head -1)" GXX_V="$(g++ --version 2>/dev/null | head -1)" \
  python3 - "$DIR/machine.json" <<'PY'
import datetime, json, os, sys
e = os.environ
try:
    torch = json.loads(e["TORCH_JSON"])
except ValueError:
    torch = {}
now = datetime.datetime.now(datetime.timezone.utc)
d = {"gpu": e["GPU"], "driver": e["DRIVER"], "gpu_memory": e["MEM"], "cuda_driver_api": e["CUDA_DRV"],
     "nvcc": e["NVCC_V"], "cudnn_header": e["CUDNN_H"], "cudnn_root": e.get("CUDNN_ROOT", ""), "torch": torch,
     "compute_sanitizer": e["CSAN"], "commit": e["COMMIT"], "commit_note": e["COMMIT_NOTE"],
     "date": now.strftime("%Y-%m-%d"), "time": now.strftime("%H:%M:%S"), "os": e["OS"], "cpu": e["CPU"].strip(),
     "cores": os.cpu_count(), "cmake": e["CMAKE_V"], "gxx": e["GXX_V"], "have_gpu": e["HAVE_GPU"] == "1",
     "dry_run": e["DRY_RUN"] == "1"}
json.dump(d, open(sys.argv[1], "w"), indent=2)
print(json.dumps(d, indent=2))
PY
}

phase_build() {
  local args=(-S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90)
  [[ -d "$PREFIX/usr" ]] && args+=("-DCMAKE_PREFIX_PATH=$PREFIX/usr" "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$LIBDIR")
  [[ -n "${CUDNN_ROOT:-}" ]] && args+=("-DCUDNN_ROOT=$CUDNN_ROOT")
  # shellcheck disable=SC2206  # extra arguments are whitespace-separated on purpose
  [[ -n "${GPU_CHECK_CMAKE_ARGS:-}" ]] && args+=(${GPU_CHECK_CMAKE_ARGS})
  # An existing build folder is reused as configured (a new configure would relink it all): a fresh
  # machine configures; GPU_CHECK_RECONFIGURE=1 forces it.
  if [[ ! -f "$BUILD/CMakeCache.txt" || "${GPU_CHECK_RECONFIGURE:-0}" == 1 ]]; then
    cmake "${args[@]}" > "$DIR/configure.log" 2>&1 || { tail -n 30 "$DIR/configure.log"; fail "configure failed: $(grep -m1 -i error "$DIR/configure.log")"; }
    grep -E "CUDA backend|cuDNN|bench_gpu" "$DIR/configure.log"
  else
    echo "reusing the configured build folder $BUILD"
  fi
  grep -qE "^CMAKE_CUDA_COMPILER:[A-Z]+=/" "$BUILD/CMakeCache.txt" || fail "this build has no CUDA backend (nvcc not found?)"
  grep "CMAKE_CUDA_ARCHITECTURES:" "$BUILD/CMakeCache.txt"
  # In order of need, each failing fast with the compiler's first error: the tests (and the engine), then
  # the command line and the whole-network benchmark, then bench_gpu (cuDNN's API is its own risk).
  local group rc=0 built=()
  for group in "unet_gpu_tests" "unet bench_unet" "bench_gpu"; do
    local t=() g
    for g in $group; do t+=(--target "$g"); done
    echo "building $group ..."
    if ! cmake --build "$BUILD" -j "$JOBS" "${t[@]}" >> "$DIR/build.log" 2>&1; then
      rc=1
      echo "---- the compiler's first error ($group):"
      grep -m1 -B3 -A12 -E "error|Error [0-9]" "$DIR/build.log"
      echo "$group: $(grep -m1 -E 'error' "$DIR/build.log" | cut -c1-300)" >> "$DIR/reason"
    else
      built+=($group)
    fi
  done
  grep -E "warning" "$DIR/build.log" | sort -u | head -n 20
  printf '%s\n' "${built[@]}" > "$DIR/targets.txt"
  echo "built: ${built[*]:-nothing}"
  [[ $rc -eq 0 ]] || exit 1
}

phase_tests() {
  [[ -x "$TESTS" ]] || skip "unet_gpu_tests was not built"
  "$TESTS" --list-test-names-only > "$DIR/test_cases.txt" 2>/dev/null
  local cases; cases="$(grep -c . "$DIR/test_cases.txt")"
  [[ $cases -gt 0 ]] || fail "unet_gpu_tests lists no test cases"
  if [[ $HAVE_GPU -eq 0 ]]; then
    "$TESTS" > "$DIR/gpu_tests.log" 2>&1
    local rc=$?
    [[ $rc -eq 77 ]] || fail "without a device unet_gpu_tests should exit 77 (skipped), got $rc: $(head -3 "$DIR/gpu_tests.log")"
    skip "$NO_GPU: unet_gpu_tests ($cases test cases) exits 77 with '$(head -1 "$DIR/gpu_tests.log")'"
  fi
  rm -f "$DIR/rows.tsv"
  (cd "$BUILD/tests" && UNET_GPU_REPORT="$DIR/rows.tsv" ./unet_gpu_tests --durations yes) > "$DIR/gpu_tests.log" 2>&1
  local rc=$?
  grep -E "^GPU:|FAIL|not bitwise|FAILED|REQUIRE|test cases|assertions|SKIPPED" "$DIR/gpu_tests.log" | head -n 60
  local rows fails  # (grep -c prints 0 and exits 1 when nothing matches; nothing at all without the file)
  rows="$(grep -c '^row' "$DIR/rows.tsv" 2>/dev/null)"; rows="${rows:-0}"
  fails="$(grep -c 'FAIL' "$DIR/rows.tsv" 2>/dev/null)"
  echo "$rows outputs compared, ${fails:-0} failed (out of tolerance or a guard overwritten)"
  [[ $rows -gt 0 ]] || fail "no op-table row reported (exit $rc)"
  [[ $rc -eq 0 ]] || fail "unet_gpu_tests exit $rc: $(grep -m3 -E 'FAILED|with expansion' "$DIR/gpu_tests.log" | tr '\n' ' ')"
}

phase_sanitize() {
  [[ -x "$TESTS" ]] || skip "unet_gpu_tests was not built"
  local csan; csan="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)"
  "$TESTS" --list-test-names-only "[sanitize]" > "$DIR/sanitize_cases.txt" 2>/dev/null
  local cases; cases="$(grep -c . "$DIR/sanitize_cases.txt")"
  [[ $cases -gt 0 ]] || fail "no test case carries the [sanitize] tag"
  [[ $HAVE_GPU -eq 1 ]] || skip "$NO_GPU: would run $cases [sanitize] test cases under memcheck, racecheck, synccheck, initcheck; compute-sanitizer ${csan:+found at $csan}${csan:-not found here}"
  [[ -n "$csan" ]] || fail "compute-sanitizer not found (PATH, /usr/local/cuda/bin)"
  local tool bad=0 slice=$(( BUDGET_S / 4 - 3 ))
  printf 'tool\terrors\twarnings\texit\tseconds\n' > "$DIR/sanitize.tsv"
  for tool in memcheck racecheck synccheck initcheck; do
    local env=() extra=() t0 rc errors warnings
    # memcheck and initcheck see a tensor's end only without the caching allocator's size classes.
    [[ $tool == memcheck || $tool == initcheck ]] && env=(UNET_CUDA_ALLOCATOR=exact)
    [[ $tool == memcheck ]] && extra=(--leak-check no)
    t0=$(now)
    (cd "$BUILD/tests" && env "${env[@]}" timeout -k 5 "$slice" "$csan" --tool "$tool" --print-limit 25 "${extra[@]}" \
       ./unet_gpu_tests "[sanitize]") > "$DIR/$tool.log" 2>&1
    rc=$?
    errors="$(grep -oE '(ERROR SUMMARY: [0-9]+ error|\(([0-9]+) errors)' "$DIR/$tool.log" | grep -oE '[0-9]+' | tail -1)"
    warnings="$(grep -oE '[0-9]+ warnings\)' "$DIR/$tool.log" | grep -oE '[0-9]+' | tail -1)"
    printf '%s\t%s\t%s\t%s\t%s\n' "$tool" "${errors:--}" "${warnings:-0}" "$rc" "$(( $(now) - t0 ))" >> "$DIR/sanitize.tsv"
    echo "$tool: ${errors:-no summary} errors, ${warnings:-0} warnings, tests exit $rc, $(( $(now) - t0 )) s"
    grep -m5 -E "^========= (Invalid|Race|Barrier|Uninitialized|Error|Program hit)" "$DIR/$tool.log"
    if [[ -z "$errors" || "$errors" != 0 || $rc -ne 0 ]]; then
      bad=1
      echo "$tool: ${errors:-no ERROR SUMMARY} errors, tests exit $rc" >> "$DIR/reason"
    fi
  done
  [[ $bad -eq 0 ]] || exit 1
}

phase_bench() {
  [[ -x "$BENCH" ]] || skip "bench_gpu was not built"
  local rows; rows="$("$BENCH" --benchmark_list_tests 2>/dev/null | grep -c /)"
  [[ $rows -gt 0 ]] || fail "bench_gpu lists no rows"
  [[ $HAVE_GPU -eq 1 ]] || skip "$NO_GPU: bench_gpu would time $rows rows ($("$BENCH" --benchmark_list_tests | grep -c '^cudnn_') cuDNN baselines)"
  local args=(--jsonl "$DIR/bench.jsonl" --benchmark_counters_tabular=true)
  [[ -n "${GPU_CHECK_BENCH_FILTER:-}" ]] && args+=("--benchmark_filter=$GPU_CHECK_BENCH_FILTER")
  rm -f "$DIR/bench.jsonl"
  "$BENCH" "${args[@]}" > "$DIR/bench_gpu.log" 2>&1
  local rc=$?
  head -n 3 "$DIR/bench_gpu.log"
  echo "$(grep -c . "$DIR/bench.jsonl" 2>/dev/null || echo 0) rows measured, $(grep -c '"error"' "$DIR/bench.jsonl" 2>/dev/null || echo 0) with an error"
  grep '"error"' "$DIR/bench.jsonl" 2>/dev/null | head -n 5
  [[ $rc -eq 0 ]] || fail "bench_gpu exit $rc: $(tail -2 "$DIR/bench_gpu.log" | tr '\n' ' ')"
}

phase_torch() {
  [[ -x "$BU" ]] || skip "bench_unet was not built"
  "$BU" init --out "$DIR/model.safetensors" --base "$BASE" --seed 1 || fail "bench_unet init failed"
  "$BU" sample --image "$IMG" --labels "$LAB" --tile "$TILE" --out "$DIR/tile" || fail "bench_unet sample failed"
  # 3 steps without dropout (the frameworks draw different masks), FP32, in both.
  "$BU" step --model "$DIR/model.safetensors" --tile-dir "$DIR/tile" --device "$DEV" --steps 3 --dropout 0 \
    --json "$DIR/ours_steps.json" || fail "bench_unet step failed"
  local notes=() rc=0
  if have_torch; then
    "$PYTHON" tools/bench_torch.py steps --model "$DIR/model.safetensors" --tile-dir "$DIR/tile" --device "$DEV" \
      --steps 3 --compare "$DIR/ours_steps.json" --rtol 1e-4 --json "$DIR/torch_steps.json"
    [[ $? -eq 0 ]] || { rc=1; echo "the 3-step losses differ beyond 1e-4 (torch_steps.json)" >> "$DIR/reason"; }
  else
    notes+=("$PYTHON cannot import torch, numpy and safetensors: no PyTorch figures")
  fi
  if [[ $HAVE_GPU -eq 1 ]]; then
    # Each timing ends with 3 steps whose ops are timed one by one (op_times: where the step's time goes).
    "$BU" step --model "$DIR/model.safetensors" --tile-dir "$DIR/tile" --device cuda --steps 3 --time-steps 20 \
      --warmup 3 --op-times 3 --json "$DIR/ours_time.json" || { rc=1; echo "timing our step failed" >> "$DIR/reason"; }
    for prec in tf32 bf16; do  # the step on tensor cores (ours_time_<prec>.json)
      "$BU" step --model "$DIR/model.safetensors" --tile-dir "$DIR/tile" --device cuda --precision $prec --steps 3 \
        --time-steps 10 --warmup 2 --op-times 3 --json "$DIR/ours_time_$prec.json" ||
        { rc=1; echo "timing our $prec step failed" >> "$DIR/reason"; }
    done
    for prec in fp32 tf32 bf16; do  # the same steps replayed as one CUDA graph each (ours_time_<prec>_graph.json)
      "$BU" step --model "$DIR/model.safetensors" --tile-dir "$DIR/tile" --device cuda --precision $prec --steps 3 \
        --time-steps 10 --warmup 2 --cuda-graph on --json "$DIR/ours_time_${prec}_graph.json" ||
        { rc=1; echo "timing our $prec step as a CUDA graph failed" >> "$DIR/reason"; }
    done
    for prec in fp32 tf32 bf16; do  # same seed, same tile: the replayed steps must give the eager steps' bits
      local eager="$DIR/ours_time_$prec.json"
      [[ $prec == fp32 ]] && eager="$DIR/ours_time.json"
      [[ "$(json_get "$eager" losses)" == "$(json_get "$DIR/ours_time_${prec}_graph.json" losses)" ]] ||
        { rc=1; echo "$prec: the losses with a CUDA graph differ from the eager ones" >> "$DIR/reason"; }
    done
    if have_torch && [[ $(left) -lt 20 ]]; then
      notes+=("no time left for the PyTorch timings")
    elif have_torch; then  # torch.compile last: its compilation may not fit in what is left
      timeout -k 5 $(( $(left) - 3 )) "$PYTHON" tools/bench_torch.py time --model "$DIR/model.safetensors" \
        --tile-dir "$DIR/tile" --device cuda --modes fp32,tf32,bf16,compile --time-steps 20 --json "$DIR/torch_time.json"
      local trc=$?
      [[ $trc -eq 124 || $trc -eq 137 ]] && notes+=("PyTorch timing stopped at the phase's limit (modes done: see torch_time.json)")
      [[ $trc -ne 0 && $trc -ne 124 && $trc -ne 137 ]] && { rc=1; echo "bench_torch.py time exit $trc" >> "$DIR/reason"; }
    fi
  else
    notes+=("$NO_GPU: step times not measured (the 3-step comparison ran on the CPU, base $BASE, tile $TILE)")
  fi
  [[ ${#notes[@]} -gt 0 ]] && printf '%s\n' "${notes[@]}" >> "$DIR/reason"
  [[ $rc -eq 0 ]] || exit 1
  [[ $HAVE_GPU -eq 1 ]] || exit 3
}

phase_predict() {
  [[ -x "$BU" ]] || skip "bench_unet was not built"
  local model="$WORK/5-torch/model.safetensors"
  [[ -f "$model" ]] || { model="$DIR/model.safetensors"; "$BU" init --out "$model" --base "$BASE" --seed 1 || fail "init failed"; }
  if [[ $HAVE_GPU -eq 0 ]]; then  # the plumbing at a small size on the CPU
    "$BU" predict --model "$model" --size 100 --one-tile --device cpu --repeats 1 --json "$DIR/plumbing.json" ||
      fail "bench_unet predict failed on the CPU"
    skip "$NO_GPU: prediction walked on the CPU (100x100 in $(json_get "$DIR/plumbing.json" tiles) tile), GPU times not measured"
  fi
  local rc=0
  "$BU" predict --model "$model" --size 512 --one-tile --repeats 5 --device cuda --json "$DIR/p512.json" || rc=1
  "$BU" predict --model "$model" --size 512 --one-tile --tta --repeats 3 --device cuda --json "$DIR/p512_tta.json" || rc=1
  "$BU" predict --model "$model" --size 4096 --repeats 2 --device cuda --json "$DIR/p4096.json" || rc=1
  if have_torch && [[ -f "$DIR/p512.json" ]]; then
    "$PYTHON" tools/bench_torch.py forward --model "$model" --tile "$(json_get "$DIR/p512.json" tile)" --device cuda \
      --json "$DIR/torch_forward.json" || rc=1
  fi
  [[ $rc -eq 0 ]] || fail "a prediction run failed (see log.txt)"
}

phase_train() {
  [[ -x "$UNET" && -x "$BU" ]] || skip "unet or bench_unet was not built"
  local tr_img tr_lab va_img va_lab data_note=""
  if [[ -f "$ISBI/train-volume.tif" ]]; then  # the 30 slices: 25 to train, the last 5 to validate
    "$BU" slices --images "$ISBI/train-volume.tif" --labels "$ISBI/train-labels.tif" --val-last 5 --out "$DIR/data" ||
      fail "could not split the ISBI stacks"
    tr_img="$DIR/data/train/image" tr_lab="$DIR/data/train/label" va_img="$DIR/data/val/image" va_lab="$DIR/data/val/label"
  elif [[ -d "$ISBI/train/image" && -d "$ISBI/val/image" ]]; then
    tr_img="$ISBI/train/image" tr_lab="$ISBI/train/label" va_img="$ISBI/val/image" va_lab="$ISBI/val/label"
  else  # the bundled sample: slices 00-04 to train, 05 to validate
    data_note="ISBI 2012 not carried (.data/isbi2012, tools/gpu_check.sh --fetch --isbi DIR): trained on the 6 bundled slices"
    mkdir -p "$DIR/data"/{train,val}/{image,label}
    local f
    for f in "$ROOT"/tests/data/isbi/image/0[0-4].png; do ln -sf "$f" "$DIR/data/train/image/"; done
    for f in "$ROOT"/tests/data/isbi/label/0[0-4].png; do ln -sf "$f" "$DIR/data/train/label/"; done
    ln -sf "$ROOT/tests/data/isbi/image/05.png" "$DIR/data/val/image/"
    ln -sf "$ROOT/tests/data/isbi/label/05.png" "$DIR/data/val/label/"
    tr_img="$DIR/data/train/image" tr_lab="$DIR/data/train/label" va_img="$DIR/data/val/image" va_lab="$DIR/data/val/label"
  fi
  # The paper's configuration is unet train's default (U-Net 64..1024, 572 tiles, SGD 0.99, Eq. 2 weights with
  # w0 10 and sigma 5, dropout 0.5, elastic deformations); the CPU walk uses a tiny network.
  local cfg=(--device cuda) seg=200 step=50 reserve=25 val_every=100
  if [[ $HAVE_GPU -eq 0 ]]; then cfg=(--device cpu --depth 2 --base 4 --tile 108); seg=3 step=1 reserve=10 val_every=3; fi
  local step_ms; step_ms="$(json_get "$WORK/5-torch/ours_time.json" step_ms_median)"
  if [[ $HAVE_GPU -eq 1 && -n "$step_ms" ]]; then  # the first segment: about 45 s at the measured step time
    seg=$(python3 -c "print(max(50, int(45000 / ($step_ms * 1.3)) // 50 * 50))")
  fi
  local run="$DIR/run" it=0 n=0 its=""
  printf 'segment\tend_iteration\twall_s\tits_per_s\n' > "$DIR/segments.tsv"
  [[ -n "$data_note" ]] && echo "$data_note" > "$DIR/note"
  echo "training set $tr_img, validation $va_img; first segment $seg iterations"
  while :; do
    local t0 rc resume=()
    [[ $(left) -gt $((reserve + 10)) ]] || { echo "no time left for a segment" >> "$DIR/reason"; break; }
    [[ $it -gt 0 ]] && resume=(--resume "$run/checkpoint.safetensors")
    t0=$EPOCHREALTIME
    timeout -k 5 $(( $(left) - 5 )) "$UNET" train --images "$tr_img" --labels "$tr_lab" --val-images "$va_img" \
      --val-labels "$va_lab" --out "$run" "${cfg[@]}" --iterations 100000 --stop-at $((it + seg)) --val-every $val_every \
      --checkpoint-every 100000 --seed 1 "${resume[@]}" > "$DIR/segment$n.log" 2>&1
    rc=$?
    local wall; wall="$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
    tr '\r' '\n' < "$DIR/segment$n.log" | grep -E "^\[(train|val)\]|error" | grep -v "iteration [0-9]*/[0-9]* " | tail -n 4
    [[ $rc -eq 0 ]] || { echo "segment $n: unet train exit $rc: $(tr '\r' '\n' < "$DIR/segment$n.log" | grep -m1 error)" >> "$DIR/reason"; break; }
    it=$((it + seg))
    its="$(tr '\r' '\n' < "$DIR/segment$n.log" | grep -oE '[0-9.]+ it/s' | tail -1 | cut -d' ' -f1)"
    printf '%d\t%d\t%s\t%s\n' "$n" "$it" "$wall" "${its:-}" >> "$DIR/segments.tsv"
    cp "$run/val.csv" "$DIR/val_$n.csv" 2>/dev/null  # a resumed run rewrites val.csv with its own points
    echo "segment $n: iterations up to $it in $wall s (${its:-?} it/s in the loop)"
    # Rand and pixel errors of this checkpoint on the validation slices, in the background.
    cp "$run/checkpoint.safetensors" "$DIR/eval_$it.safetensors"
    ( "$UNET" eval --model "$DIR/eval_$it.safetensors" --images "$va_img" --labels "$va_lab" --device "${cfg[1]}" \
        --format json -o "$DIR/eval_$it.json" > "$DIR/eval_$it.log" 2>&1; rm -f "$DIR/eval_$it.safetensors" ) &
    n=$((n + 1))
    declare -F bundle > /dev/null && bundle  # the report so far, in case the run is stopped from outside
    # The next segment: about 60 s at the measured rate (its start-up included), while the budget allows.
    local overhead per_s
    per_s="$(python3 -c "print($seg / max($wall, 0.1))")"
    if [[ $HAVE_GPU -eq 1 ]]; then
      seg=$(python3 -c "l=$(left) - $reserve; print(int(min(60, l) * $per_s * 0.95) // $step * $step if l > 15 else 0)")
    else
      [[ $n -ge 2 ]] && seg=0
    fi
    [[ $seg -ge $step ]] || break
  done
  echo "waiting for the evaluations ..."
  wait
  [[ $it -gt 0 ]] || fail "no training segment finished"
  for f in loss.csv val.csv loss.png; do [[ -s "$run/$f" ]] || fail "unet train wrote no $f"; done
  [[ $HAVE_GPU -eq 1 ]] || skip "$NO_GPU: the segmented run, resume and evaluation walked on the CPU with a tiny network ($it iterations)"
}

"phase_$PHASE"

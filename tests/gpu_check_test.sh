#!/usr/bin/env bash
# tools/gpu_check.sh without a GPU. Usage: gpu_check_test.sh summary | dry-run BUILD_DIR
#   summary   the report writer (tools/gpu_summary.py) on the recorded example of tests/data/gpu_check/example
#             (invented figures in every phase's file formats, with a failed phase, one stopped at its time limit,
#             one cut off, a failed cuDNN row, an overwritten guard, a timed row that is no paper layer, a missing
#             PyTorch mode) must write expected_summary.md exactly and a
#             results.json with every phase; on an empty run folder it must still write a report.
#             After a deliberate change of the report: python3 tools/gpu_summary.py tests/data/gpu_check/example
#             --out /tmp/x && cp /tmp/x/summary.md tests/data/gpu_check/expected_summary.md
#   dry-run   tools/gpu_check.sh --dry-run on the already built BUILD_DIR: every phase walks (skipping its GPU
#             work with the reason, running its CPU side), exit 0, and what comes back fits the rule for the
#             GPU machine's returned files (at most 8 files in $OUT, the report and the results bundle among them).
set -euo pipefail
source "$(dirname "$0")/script_lib.sh"

case "$1" in
summary)
  python3 "$ROOT/tools/gpu_summary.py" "$ROOT/tests/data/gpu_check/example" --out "$T/a" > "$T/a.txt"
  diff -u "$ROOT/tests/data/gpu_check/expected_summary.md" "$T/a/summary.md" || fail "summary.md differs from the expected one"
  grep -qx "1:passed 2:failed 3:failed 4:timeout 5:passed 6:passed 7:cut off" "$T/a.txt" || fail "statuses: $(cat "$T/a.txt")"
  python3 - "$T/a/results.json" <<'PY' || fail "results.json incomplete"
import json, sys
r = json.load(open(sys.argv[1]))
p = r["phases"]
assert set(p) == {"build", "tests", "sanitize", "bench", "torch", "predict", "train"}, p.keys()
assert len(p["tests"]["data"]["rows"]) == 9 and p["tests"]["data"]["rows"][-1]["status"] == "FAIL guard cuda" and p["tests"]["data"]["bitwise"]["conv3x3_backward_weight"]["not_bitwise"] == 1
assert p["bench"]["data"]["convs"][0]["ours"]["ms"] == 0.2 and len(p["bench"]["data"]["errors"]) == 1
assert len(p["bench"]["data"]["memory"]) == 3 and p["bench"]["data"]["other"][0]["shape"] == "4x64x570x570x64"
assert p["train"]["data"]["evals"]["900"]["rand_error"] == 0.2  # JSON keys are strings
assert r["machine"]["gpu"].startswith("EXAMPLE")
PY
  mkdir -p "$T/empty"
  python3 "$ROOT/tools/gpu_summary.py" "$T/empty" > /dev/null || fail "the writer fails on an empty run"
  grep -q "| 4 | kernels beside cuDNN | not run |" "$T/empty/summary.md" || fail "an empty run should list every phase as not run"
  echo "gpu_summary: all checks passed" ;;
dry-run)
  BUILD="$2" OUT="$T/out" PYTHON=python3 bash "$ROOT/tools/gpu_check.sh" --dry-run > "$T/log.txt" 2>&1 ||
    { tail -n 40 "$T/log.txt"; fail "the dry run exited non-zero"; }
  for f in summary.md results.json results.tar.gz; do [[ -s "$T/out/$f" ]] || fail "no $f in OUT"; done
  files="$(find "$T/out" -maxdepth 1 -type f | wc -l)"
  [[ $files -le 8 ]] || fail "OUT holds $files files at its top (the GPU machine returns at most 8)"
  grep -q "Dry run on a machine without a GPU" "$T/out/summary.md" || fail "the report does not say it is a dry run"
  python3 - "$T/out/results.json" <<'PY' || { cat "$T/out/summary.md"; fail "phase statuses of the dry run"; }
import json, sys
p = json.load(open(sys.argv[1]))["phases"]
st = {k: v["result"]["status"] for k, v in p.items()}
assert st["build"] == "passed", st
assert all(st[k] == "skipped" for k in ("tests", "sanitize", "bench", "torch", "predict", "train")), st
assert "would run" in p["sanitize"]["result"]["reason"] and "rows" in p["bench"]["result"]["reason"]
assert p["train"]["data"]["segments"] and p["torch"]["data"]["ours_steps"]["losses"]
PY
  tar -tzf "$T/out/results.tar.gz" > "$T/bundle.txt"
  for f in machine.json 1-build/result.json 5-torch/ours_steps.json 7-train/segments.tsv; do
    grep -q "$f" "$T/bundle.txt" || fail "results.tar.gz lacks $f"
  done
  ! grep -q "safetensors" "$T/bundle.txt" || fail "results.tar.gz carries checkpoints"
  echo "gpu_check --dry-run: all checks passed ($(grep -c '^---- phase' "$T/log.txt") phases)" ;;
*) fail "usage: $0 summary | dry-run BUILD_DIR" ;;
esac

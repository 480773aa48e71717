#!/usr/bin/env bash
# bench_unet (bench/bench_unet.cpp) on the CPU: a checkpoint and a tile made by it, the training step's
# losses (reproducible; unchanged without an update and dropout; changed by an update, and by dropout masks),
# its op times, the step's shape checks, the prediction figures, and the split of a stack into slices. Usage: bench_unet_test.sh BENCH_UNET
set -euo pipefail
source "$(dirname "$0")/script_lib.sh"
B="$1"
losses() { python3 -c 'import json,sys; print(" ".join("%.9g" % v for v in json.load(open(sys.argv[1]))["losses"]))' "$1"; }

"$B" init --out "$T/m.safetensors" --base 4 --depth 2 --seed 3
"$B" sample --image "$DATA/image/00.png" --labels "$DATA/label/00.png" --tile 92 --depth 2 --out "$T/tile"
for f in x labels weights; do [ -s "$T/tile/$f.npy" ] || fail "sample did not write $f.npy"; done

step() { "$B" step --model "$T/m.safetensors" --tile-dir "$T/tile" --device cpu --steps 3 "$@" > /dev/null; }
step --dropout 0 --json "$T/a.json"
step --dropout 0 --json "$T/b.json"
a="$(losses "$T/a.json")"; b="$(losses "$T/b.json")"
[ "$(wc -w <<<"$a")" -eq 3 ] || fail "expected 3 losses, got '$a'"
[ "$a" = "$b" ] || fail "the same steps gave different losses: '$a' vs '$b'"
python3 - "$a" <<'PY' || fail "losses not finite and positive, or the updates changed nothing: $a"
import math, sys
v = [float(x) for x in sys.argv[1].split()]
assert all(math.isfinite(x) and x > 0 for x in v) and len(set(v)) == 3
PY
step --dropout 0 --lr 1e-30 --json "$T/c.json"   # an update too small to change a float
c="$(losses "$T/c.json")"
python3 - "$c" "$a" <<'PY' || fail "without an update the loss must stay the first loss: '$c' (first of '$a')"
import sys
c, a = [float(x) for x in sys.argv[1].split()], float(sys.argv[2].split()[0])
assert c == [a, a, a]
PY
step --lr 1e-30 --dropout 0.5 --json "$T/d.json"
d="$(losses "$T/d.json")"
python3 -c 'import sys; v = sys.argv[1].split(); assert len(set(v)) == 3' "$d" || fail "dropout masks must differ per step: '$d'"
# --op-times: each op of two more steps timed; the ops of the network, forward and backward, and the update,
# summing to most of the steps' wall time and never more.
step --dropout 0.5 --op-times 2 --json "$T/e.json"
python3 - "$T/e.json" <<'PY' || fail "op times: $(cat "$T/e.json")"
import json, sys
e = json.load(open(sys.argv[1]))
ops = {o["op"]: o for o in e["op_times"]}
for name in ("conv3x3_relu", "conv3x3_relu backward", "conv3x3_relu_concat backward", "maxpool2x2", "upconv2x2",
             "dropout backward", "softmax_xent", "sgd_momentum"):
    assert name in ops and ops[name]["ms"] > 0, name
# per step, at depth 2: two 3x3 convolutions on each level down and at the bottom, and one more on each level up
# (after the one that reads the concatenation); dropout after the last level down and at the bottom
assert ops["sgd_momentum"]["calls"] == 1 and ops["dropout"]["calls"] == 2 and ops["conv1x1"]["calls"] == 1
assert ops["conv3x3_relu"]["calls"] == 2 * 2 + 2 + 2 and ops["conv3x3_relu_concat"]["calls"] == 2
ms = [o["ms"] for o in e["op_times"]]
assert ms == sorted(ms, reverse=True) and abs(sum(ms) - e["op_ms_sum"]) < 1e-3 * e["op_ms_sum"]
assert 0.5 * e["op_times_wall_ms"] < e["op_ms_sum"] <= e["op_times_wall_ms"], (e["op_ms_sum"], e["op_times_wall_ms"])
PY
out=$("$B" step --model "$T/m.safetensors" --tile-dir "$T/tile" --device cpu --steps 1 --cuda-graph on 2>&1) &&
  fail "--cuda-graph on accepted on the CPU"
grep -q "needs --device cuda" <<<"$out" || fail "unexpected error: $out"

# Labels that do not match the tile's output are refused with the sizes (a 108 tile gives 68x68).
"$B" sample --image "$DATA/image/00.png" --labels "$DATA/label/00.png" --tile 108 --depth 2 --out "$T/t108" > /dev/null
cp "$T/tile/labels.npy" "$T/t108/labels.npy"
out=$("$B" step --model "$T/m.safetensors" --tile-dir "$T/t108" --device cpu --steps 1 2>&1) && fail "mismatched labels accepted"
grep -q "labels.npy / weights.npy are 52x52" <<<"$out" || fail "unexpected error: $out"

"$B" predict --model "$T/m.safetensors" --size 100 --device cpu --repeats 2 --json "$T/p.json" > /dev/null
python3 - "$T/p.json" <<'PY' || fail "prediction JSON: $(cat "$T/p.json")"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["size"] == 100 and p["tiles"] >= 1 and p["seconds_median"] > 0 and len(p["seconds"]) == 2
# the map is a probability map: its classes sum to 1 per pixel, so the checksum is 2 runs x pixels
assert abs(p["checksum"] - 2 * 100 * 100) < 1e-2 * 100 * 100, p["checksum"]
PY
# slices: a stack split into PNG folders (a single image is a one-slice stack); the slice decodes to the same
# pixels and labels as its source.
"$B" slices --images "$DATA/image/03.png" --labels "$DATA/label/03.png" --val-last 0 --out "$T/sl" > /dev/null
"$B" sample --image "$T/sl/train/image/00.png" --labels "$T/sl/train/label/00.png" --tile 92 --depth 2 --out "$T/s1" > /dev/null
"$B" sample --image "$DATA/image/03.png" --labels "$DATA/label/03.png" --tile 92 --depth 2 --out "$T/s2" > /dev/null
for f in x labels weights; do cmp -s "$T/s1/$f.npy" "$T/s2/$f.npy" || fail "slices changed $f of the slice"; done
out=$("$B" slices --images "$DATA/image/03.png" --labels "$DATA/label/03.png" --val-last 1 --out "$T/sl2" 2>&1) &&
  fail "--val-last 1 of a one-slice stack accepted"
grep -q "leaves no training slice" <<<"$out" || fail "unexpected error: $out"
echo "bench_unet: all checks passed"

#!/usr/bin/env bash
# The command line under abuse: options out of range, damaged checkpoints, a memory cap, resumes with
# changed options, Ctrl-C (SIGINT) and kill -9 during training. Every refusal must name the option
# or file and the value; an interrupted run must resume to exactly the state of an uninterrupted
# one, loss.csv without a hole. Usage: cli_robustness_test.sh UNET_BINARY
set -euo pipefail
source "$(dirname "$0")/script_lib.sh"
UNET="$1"
# The networks here are tiny: one thread runs them fastest, and never spin-waits for a busy core.
export OMP_NUM_THREADS=1
TRAIN=("$UNET" train --images "$DATA/image" --labels "$DATA/label" --device cpu --depth 2 --base 4 --tile 108
       --val-split 1 --val-every 4 --quiet)

# ---- options: no wrap-around, no NaN, ranges named --------------------------------------------------
expect_error "--tile = 4294967340 is out of range" "${TRAIN[@]}" --out "$T/o" --tile 4294967340
expect_error "--seed = -1 is out of range" "${TRAIN[@]}" --out "$T/o" --seed -1
expect_error "--lr wants a finite number, got \"nan\"" "${TRAIN[@]}" --out "$T/o" --lr nan
expect_error "--iterations wants a whole number, got \"1e3\"" "${TRAIN[@]}" --out "$T/o" --iterations 1e3
expect_error "--depth = 40 is out of range" "${TRAIN[@]}" --out "$T/o" --depth 40
expect_error "--precision must be fp32, tf32 or bf16, got 'fp16'" "${TRAIN[@]}" --out "$T/o" --precision fp16
expect_error "the CPU computes the convolutions in fp32" "${TRAIN[@]}" --out "$T/o" --precision tf32
# A tile the machine cannot hold: refused up front with the memory it needs and the largest that fits.
expect_error "largest tile that fits" "$UNET" train --images "$DATA/image" --labels "$DATA/label" --device cpu \
  --out "$T/o" --tile 8188 --quiet

# ---- a small run to work on ----------------------------------------------------------------------------
"${TRAIN[@]}" --out "$T/ref" --iterations 12 --checkpoint-every 3 > /dev/null
CKPT="$T/ref/checkpoint.safetensors"
expect_error "--batch = 4294967297 is out of range" "$UNET" predict --model "$CKPT" --input "$DATA/image/05.png" \
  -o "$T/p" --batch 4294967297
# bf16 on the CPU: where it has AVX-512 BF16 (avx512_bf16 in /proc/cpuinfo's flags), else refused naming it.
if grep -qw avx512_bf16 /proc/cpuinfo 2> /dev/null; then
  "$UNET" predict --model "$CKPT" --input "$DATA/image/05.png" -o "$T/p_bf16" --device cpu --precision bf16 > /dev/null
  [[ -s "$T/p_bf16_mask.png" ]] || fail "predict --device cpu --precision bf16 wrote no prediction"
  "${TRAIN[@]}" --out "$T/bf16" --iterations 2 --precision bf16 > /dev/null
else
  expect_error "precision bf16 needs a CPU with AVX-512 BF16" "$UNET" predict --model "$CKPT" \
    --input "$DATA/image/05.png" -o "$T/p" --device cpu --precision bf16
fi

# ---- damaged checkpoints: edit the safetensors header's metadata or one weight ----------------------------
edit() {  # edit IN OUT PYTHON-STATEMENT (on `meta`, a dict, and `data`, a bytearray of the tensor bytes)
  python3 - "$1" "$2" "$3" <<'EOF'
import json, struct, sys
src, dst, stmt = sys.argv[1:4]
b = open(src, "rb").read()
n = struct.unpack("<Q", b[:8])[0]
header = json.loads(b[8:8 + n])
meta, data = header["__metadata__"], bytearray(b[8 + n:])
exec(stmt)
text = json.dumps(header).encode()
text += b" " * (-len(text) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + bytes(data))
EOF
}
PRED=(--input "$DATA/image/05.png" -o "$T/p")
edit "$CKPT" "$T/depth.st" 'meta["depth"] = "40"'
expect_error "depth = 40 is out of range" "$UNET" predict --model "$T/depth.st" "${PRED[@]}"
edit "$CKPT" "$T/base.st" 'meta["base"] = "512"'
expect_error "has shape [512,1,3,3], but the file's has shape [4,1,3,3]" "$UNET" predict --model "$T/base.st" "${PRED[@]}"
edit "$CKPT" "$T/wrap.st" 'meta["base"] = str(2**32 + 4)'
expect_error "\"base\" = 4294967300 is out of range" "$UNET" predict --model "$T/wrap.st" "${PRED[@]}"
edit "$CKPT" "$T/stof.st" 'meta["dropout"] = "x"'
expect_error "\"dropout\" = \"x\" is not a finite number" "$UNET" predict --model "$T/stof.st" "${PRED[@]}"
edit "$CKPT" "$T/iter.st" 'meta["iteration"] = "-100"'
expect_error "\"iteration\" = -100 is out of range" "${TRAIN[@]}" --out "$T/ref" --resume "$T/iter.st"
edit "$CKPT" "$T/nan.st" 'data[0:4] = struct.pack("<f", float("nan"))'
expect_error "non-finite" "$UNET" predict --model "$T/nan.st" "${PRED[@]}"
expect_error "non-finite" "$UNET" eval --model "$T/nan.st" --images "$DATA/image/05.png" --labels "$DATA/label/05.png"

# ---- a crafted TIFF under a memory cap: a clear refusal, not std::bad_alloc -------------------------------
python3 - "$T/huge.tif" <<'EOF'
import struct, sys
tags = [(256, 4, 1048576), (257, 4, 2048), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 110), (278, 4, 2048),
        (279, 4, 1048576 * 2048 - 1)]
ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", t, ty, 1, v) for t, ty, v in tags) + b"\0" * 4
open(sys.argv[1], "wb").write(b"II*\0" + struct.pack("<I", 8) + ifd + b"\x40" * 38)
EOF
[ "$(stat -c %s "$T/huge.tif")" -eq 148 ] || fail "the crafted TIFF should be 148 bytes"
out=$( (ulimit -v 1000000; "$UNET" predict --model "$CKPT" --input "$T/huge.tif" -o "$T/h") 2>&1) && fail "huge.tif was accepted"
grep -qF "declares 2147483648 bytes" <<<"$out" || fail "huge.tif: $out"

# ---- a NaN in a float input is refused when read, naming the pixel (restore here; train/predict alike) ----
python3 - "$T/nan.npy" <<'EOF'
import struct, sys
h = "{'descr': '<f4', 'fortran_order': False, 'shape': (16, 16), }"
h += " " * (63 - (10 + len(h)) % 64) + "\n"
vals = [0.5] * 256
vals[3 * 16 + 5] = float("nan")
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + struct.pack("<256f", *vals))
EOF
expect_error "nan.npy' holds NaN at x=5, y=3" "$UNET" restore --phase "$T/nan.npy" --dic "$T/nan.npy" -o "$T/f.tif"

# ---- resume: recorded options are taken from the checkpoint, changed ones refused unless allowed ----------
"${TRAIN[@]}" --out "$T/r" --iterations 12 --checkpoint-every 3 --stop-at 6
expect_error "--tile 124 (checkpoint: 108)" "${TRAIN[@]}" --out "$T/r" --resume "$T/r/checkpoint.safetensors" --tile 124
expect_error "--extend-to" "${TRAIN[@]}" --out "$T/r" --resume "$T/r/checkpoint.safetensors" --iterations 20
"$UNET" train --images "$DATA/image" --labels "$DATA/label" --device cpu --val-split 1 --val-every 4 --quiet \
  --out "$T/r" --resume "$T/r/checkpoint.safetensors"   # architecture, tile and schedule from the checkpoint
cmp -s "$T/r/checkpoint.safetensors" "$CKPT" || fail "a resume taking its options from the checkpoint differs"
cmp -s "$T/r/loss.csv" "$T/ref/loss.csv" || fail "the resumed loss.csv differs"

# ---- Ctrl-C: the first SIGINT finishes the iteration, checkpoints, says how to resume, exits 130 ----------
LONG=("${TRAIN[@]}" --iterations 300 --checkpoint-every 25 --val-every 100)
"${LONG[@]}" --out "$T/full"
"${LONG[@]}" --out "$T/int" 2> "$T/int.log" &
pid=$!
for _ in $(seq 600); do [ -s "$T/int/val.csv" ] && break; sleep 0.05; done  # well into the run
kill -INT "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 130 ] || fail "SIGINT: exit status $status, expected 130: $(cat "$T/int.log")"
grep -q "interrupted by signal 2 after iteration [0-9]* of 300" "$T/int.log" || fail "SIGINT: no message: $(cat "$T/int.log")"
grep -q -- "--resume $T/int/checkpoint.safetensors" "$T/int.log" || fail "SIGINT: no resume command"
"${LONG[@]}" --out "$T/int" --resume "$T/int/checkpoint.safetensors"
for f in checkpoint.safetensors loss.csv val.csv; do
  cmp -s "$T/int/$f" "$T/full/$f" || fail "after Ctrl-C and resume, $f differs from the uninterrupted run's"
done

# A second signal ends the process at once.
"${LONG[@]}" --out "$T/int2" --iterations 100000 2> /dev/null &
pid=$!
for _ in $(seq 600); do [ -s "$T/int2/val.csv" ] && break; sleep 0.05; done
kill -TERM "$pid"; kill -TERM "$pid"
status=0
wait "$pid" || status=$?
[ "$status" -eq 143 ] || fail "two SIGTERMs: exit status $status, expected 143"

# ---- kill -9 at random moments: each resume continues, and the end is the uninterrupted run's ------------
for i in 1 2 3 4 5 6; do
  "${LONG[@]}" --out "$T/k" $( [ -f "$T/k/checkpoint.safetensors" ] && echo --resume "$T/k/checkpoint.safetensors") \
    > /dev/null 2>&1 &
  pid=$!
  sleep "0.$((RANDOM % 9 + 1))"
  kill -9 "$pid" 2> /dev/null || true
  wait "$pid" 2> /dev/null || true
done
while :; do
  if [ -f "$T/k/checkpoint.safetensors" ]; then
    "${LONG[@]}" --out "$T/k" --resume "$T/k/checkpoint.safetensors" 2> "$T/k.log" && break
    grep -q "finished run" "$T/k.log" && break
    fail "resume after kill -9: $(cat "$T/k.log")"
  else
    "${LONG[@]}" --out "$T/k" && break
  fi
done
for f in checkpoint.safetensors loss.csv; do
  cmp -s "$T/k/$f" "$T/full/$f" || fail "after kill -9 and resumes, $f differs from the uninterrupted run's"
done
[ -z "$(ls "$T/k" | grep '\.tmp\.')" ] || fail "temporary files left in $T/k: $(ls "$T/k")"
echo "cli robustness test passed"

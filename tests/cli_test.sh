#!/usr/bin/env bash
# End-to-end test of the `unet` command line on the bundled ISBI sample: train (tiny, CPU), resume
# rules, predict, eval (from the model and from the written maps), weightmap, augment, and the
# errors a user meets first. Usage: cli_test.sh UNET_BINARY
set -euo pipefail
source "$(dirname "$0")/script_lib.sh"
UNET="$1"

# Tiny training run: 2 iterations of a depth-2, base-4 network on 108 px tiles, slice 05 held out.
"$UNET" train --images "$DATA/image" --labels "$DATA/label" --val-split 1 --out "$T/run" --device cpu \
  --depth 2 --base 4 --tile 108 --iterations 2 --val-every 2 --checkpoint-every 1 --quiet
for f in checkpoint.safetensors best.safetensors loss.csv loss.png val.csv; do
  [ -s "$T/run/$f" ] || fail "train did not write $f"
done
[ "$(wc -l < "$T/run/loss.csv")" -eq 3 ] || fail "loss.csv should hold a header and 2 rows"
expect_error "finished run" "$UNET" train --images "$DATA/image" --labels "$DATA/label" --out "$T/run" \
  --depth 2 --base 4 --tile 108 --resume "$T/run/checkpoint.safetensors" --quiet
"$UNET" train --images "$DATA/image" --labels "$DATA/label" --val-split 1 --out "$T/run" --device cpu \
  --depth 2 --base 4 --tile 108 --resume "$T/run/checkpoint.safetensors" --extend-to 3 --val-every 0 --quiet
[ "$(wc -l < "$T/run/loss.csv")" -eq 4 ] || fail "the extended run should continue the loss curve"

# Prediction writes every output; eval reads both a model and the written maps.
"$UNET" predict --model "$T/run/checkpoint.safetensors" --input "$DATA/image/05.png" -o "$T/p/s05" --npy \
  --labels "$DATA/label/05.png" > "$T/predict.txt"
grep -q "pixel error" "$T/predict.txt" || fail "predict --labels printed no pixel error"
for f in s05_probs.tif s05_probs.npy s05_mask.png s05_overlay.png; do [ -s "$T/p/$f" ] || fail "predict did not write $f"; done
"$UNET" eval --probs "$T/p/s05_probs.tif" --labels "$DATA/label/05.png" > "$T/eval1.txt"
"$UNET" eval --model "$T/run/checkpoint.safetensors" --images "$DATA/image/05.png" --labels "$DATA/label/05.png" \
  --format json -o "$T/eval2.json"
grep -q "best warping error" "$T/eval1.txt" || fail "eval table lacks the warping error"
grep -q '"rand_error"' "$T/eval2.json" || fail "eval json lacks the Rand error"

"$UNET" weightmap --labels "$DATA/label/00.png" -o "$T/w.png" > /dev/null
[ -s "$T/w.png" ] && [ -s "$T/w.tif" ] || fail "weightmap outputs missing"
"$UNET" augment --image "$DATA/image/00.png" --labels "$DATA/label/00.png" -o "$T/aug" --count 2 > /dev/null
[ "$(ls "$T/aug" | wc -l)" -ge 2 ] || fail "augment wrote no samples"

# Errors a user meets first: an invalid tile, a mis-encoded label, a missing file, a corrupt checkpoint.
expect_error "nearest valid sizes" "$UNET" train --images "$DATA/image" --labels "$DATA/label" --out "$T/x" \
  --tile 570 --iterations 1 --quiet
printf 'P5\n2 2\n255\n\x00\x80\xff\x00' > "$T/bad_label.pgm"
expect_error "bad_label.pgm" "$UNET" weightmap --labels "$T/bad_label.pgm" -o "$T/bw.png"
expect_error "no_such.png" "$UNET" predict --model "$T/run/checkpoint.safetensors" --input "$T/no_such.png" -o "$T/q"
head -c 100 "$T/run/checkpoint.safetensors" > "$T/cut.safetensors"
expect_error "cut.safetensors" "$UNET" predict --model "$T/cut.safetensors" --input "$DATA/image/05.png" -o "$T/q"
expect_error "unknown option --iterationz" "$UNET" train --iterationz 3
expect_error "--cuda-graph must be on or off" "$UNET" train --images "$DATA/image" --labels "$DATA/label" \
  --out "$T/x" --device cpu --cuda-graph yes --quiet
expect_error "--cuda-graph on needs --device cuda" "$UNET" train --images "$DATA/image" --labels "$DATA/label" \
  --out "$T/x" --device cpu --depth 2 --base 4 --tile 108 --iterations 1 --cuda-graph on --quiet
expect_error "cuda_graph needs the GPU" "$UNET" predict --model "$T/run/checkpoint.safetensors" \
  --input "$DATA/image/05.png" -o "$T/q" --device cpu --cuda-graph on
# Every subcommand answers --help with its own options, and a wrong option points there.
for c in train predict eval weightmap augment restore plot export info inspect device; do
  "$UNET" "$c" --help > "$T/help.txt" || fail "unet $c --help failed"
  grep -q "^usage: unet $c" "$T/help.txt" || fail "unet $c --help: no usage line"
done
"$UNET" predict --help | grep -q -- "--tta " || fail "unet predict --help does not list --tta"
"$UNET" --help | grep -q "^  restore " || fail "unet --help does not list restore"
expect_error "unet predict --help lists the options" "$UNET" predict --bogus 1
# Optimizers, schedules and batches of tiles. A resumed run takes them from its checkpoint; another
# optimizer is refused, and other recorded options need --allow-changes.
"$UNET" train --images "$DATA/image" --labels "$DATA/label" --val-split 1 --out "$T/adam" --device cpu \
  --depth 2 --base 4 --tile 108 --iterations 2 --optimizer adam --lr 0.001 --lr-poly 0.9 --warmup 1 --batch 2 \
  --val-every 0 --checkpoint-every 1 --stop-at 1 --quiet
expect_error "--optimizer adam" "$UNET" train --images "$DATA/image" --labels "$DATA/label" --out "$T/adam" \
  --resume "$T/adam/checkpoint.safetensors" --optimizer sgd --quiet
expect_error "--batch 3 (checkpoint: 2)" "$UNET" train --images "$DATA/image" --labels "$DATA/label" --out "$T/adam" \
  --resume "$T/adam/checkpoint.safetensors" --batch 3 --quiet
expect_error "--lr-poly 0.5 (checkpoint: 0.899999976)" "$UNET" train --images "$DATA/image" --labels "$DATA/label" \
  --out "$T/adam" --resume "$T/adam/checkpoint.safetensors" --lr-poly 0.5 --quiet
"$UNET" train --images "$DATA/image" --labels "$DATA/label" --out "$T/adam" --device cpu \
  --resume "$T/adam/checkpoint.safetensors" --val-every 0 --quiet
[ "$(wc -l < "$T/adam/loss.csv")" -eq 3 ] || fail "the resumed Adam run should hold 2 iterations"
expect_error '"rmsprop"' "$UNET" train --images "$DATA/image" --labels "$DATA/label" --out "$T/x" --depth 2 \
  --base 4 --tile 108 --iterations 1 --optimizer rmsprop --quiet
expect_error "--lr-poly" "$UNET" train --images "$DATA/image" --labels "$DATA/label" --out "$T/x" --depth 2 \
  --base 4 --tile 108 --iterations 1 --lr-step 5 --lr-poly 0.9 --quiet

# Shipping a model: a half-precision export predicts like the checkpoint; info shows its notes; plot
# compares runs' curves.
"$UNET" export --model "$T/run/checkpoint.safetensors" -o "$T/m16.safetensors" --fp16 --note recipe=cli --note heldout=none > /dev/null
"$UNET" info --model "$T/m16.safetensors" > "$T/info.txt"
grep -q "storage: F16" "$T/info.txt" && grep -q "note.recipe: cli" "$T/info.txt" && grep -q "note.heldout: none" "$T/info.txt" || fail "info lacks the export's notes"
grep -q "train.optimizer: sgd" "$T/info.txt" && grep -q "train.lr-poly: 0" "$T/info.txt" ||
  fail "the checkpoint lacks its recorded training options"
"$UNET" predict --model "$T/m16.safetensors" --input "$DATA/image/05.png" -o "$T/p16/s05" > /dev/null
[ -s "$T/p16/s05_mask.png" ] || fail "predict with an exported model wrote no mask"
"$UNET" plot -o "$T/curves.png" --series "$T/run/loss.csv=sgd;$T/adam/loss.csv=adam" --smooth 2 > /dev/null
[ -s "$T/curves.png" ] || fail "plot wrote nothing"
expect_error "no column" "$UNET" plot -o "$T/c2.png" --series "$T/run/loss.csv" --column rand

# Training diagnostics: per-layer weight change from the seed's initial weights, dead channels on an image.
"$UNET" inspect --model "$T/run/checkpoint.safetensors" --image "$DATA/image/05.png" --tile 108 > "$T/inspect.txt"
grep -q "^down.0.conv1.weight " "$T/inspect.txt" && grep -q "^bottom.conv2 " "$T/inspect.txt" ||
  fail "inspect lacks a layer: $(cat "$T/inspect.txt")"
expect_error "inspect tile" "$UNET" inspect --model "$T/run/checkpoint.safetensors" --image "$DATA/image/05.png" --tile 107

# The shipped model by its short name (models/isbi2012-membranes.safetensors of this tree).
if [ -f "$ROOT/models/isbi2012-membranes.safetensors" ]; then
  "$UNET" predict --model isbi2012 --input "$DATA/test/00.png" -o "$T/shipped/t00" > /dev/null
  [ -s "$T/shipped/t00_overlay.png" ] || fail "predict --model isbi2012 wrote no overlay"
  "$UNET" eval --model isbi2012 --images "$DATA/heldout/image/08.png" --labels "$DATA/heldout/label/08.png" > "$T/e.txt"
  grep -q "V_info" "$T/e.txt" || fail "eval of the shipped model lacks V_info"
fi
expect_error "isbi2012" "$UNET" predict --model isbi2013 --input "$DATA/image/05.png" -o "$T/q"

echo "cli test passed"

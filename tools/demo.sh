#!/usr/bin/env bash
# The main job, in two parts, on the ISBI 2012 sample bundled in tests/data/isbi:
#  1. the shipped model (models/isbi2012-membranes.safetensors, trained on all 22 labelled slices) segments
#     slice 00 of the challenge's test volume, which nobody labelled: seconds, no training;
#  2. a short training run from scratch on slices 00-04 (slice 05 validates), with the CPU recipe of
#     docs/training.md scaled to a few minutes.
# Then the figures on the 4 held-out slices (05, 08, 14, 20), measured now, side by side: the best global
# threshold of the raw slices, the short run, and the shipped recipe trained without them
# (isbi2012-heldout: models/README.md).
# Outputs under out/demo/. Extra arguments go to `unet train` (e.g. --iterations 3000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh --target unet   # the command line only; tests and benchmarks: tools/test.sh
UNET=./build/tools/unet
DATA=tests/data/isbi
HELD=(--images "$DATA/heldout/image" --labels "$DATA/heldout/label")
OUT=out/demo
mkdir -p "$OUT"
$UNET device
if $UNET device | grep -q "no CUDA device"; then GPU=0; DEV=(--device cpu); else GPU=1; DEV=(--device cuda); fi

echo
echo "== 1. The shipped model segments a slice of the challenge's test volume (nobody labelled it)"
$UNET info --model isbi2012 | grep -E "^(file|network|note\.)" || true
start=$(date +%s)
$UNET predict --model isbi2012 --images "$DATA/test/00.png" -o "$OUT/shipped_test00" "${DEV[@]}"
echo "segmented in $(( $(date +%s) - start )) s: $OUT/shipped_test00_overlay.png (membranes tinted red)"

echo
echo "== 2. Training from scratch on 5 slices"
# Adam: with SGD at momentum 0.99 and batch 1 the deep layers barely move in a budget of minutes
# (docs/training.md). The plain cross-entropy (w0 0): the demo is judged by pixel error, which the
# paper's border weights trade away; add --w0 10 --balance max-one to train with Eq. 2.
RECIPE=(--optimizer adam --lr 0.0003 --w0 0 --balance none)
if [ $GPU = 0 ]; then
  CONFIG=(--device cpu --base 16 --tile 316 --iterations 1000 --val-every 250 --checkpoint-every 250)
else  # the paper's network
  CONFIG=(--device cuda --base 64 --tile 572 --iterations 3000 --val-every 500 --checkpoint-every 500)
fi
start=$(date +%s)
$UNET train --images "$DATA/image" --labels "$DATA/label" --val-split 1 --out "$OUT/run" "${RECIPE[@]}" \
  "${CONFIG[@]}" "$@"
minutes=$(( ($(date +%s) - start + 30) / 60 ))
$UNET predict --model "$OUT/run/checkpoint.safetensors" --images "$DATA/image/05.png" --labels "$DATA/label/05.png" \
  -o "$OUT/run_slice05" "${DEV[@]}"

echo
echo "== Held-out slices 05, 08, 14, 20 (each at its best threshold; lower errors, higher V are better)"
# The raw slice as a probability map: its best global threshold is the baseline to beat.
$UNET eval --probs "$DATA/heldout/image" --labels "$DATA/heldout/label" -o "$OUT/raw_heldout.txt" > /dev/null
$UNET eval --model "$OUT/run/checkpoint.safetensors" "${HELD[@]}" "${DEV[@]}" -o "$OUT/run_heldout.txt" > /dev/null
$UNET eval --model isbi2012-heldout "${HELD[@]}" "${DEV[@]}" -o "$OUT/shipped_heldout.txt" > /dev/null
# "mean over N slice(s) ...: pixel error P, Rand error R (thinned T), warping error W, ...; V_rand A, V_info B"
row() {  # row LABEL FILE
  tail -1 "$2" | sed -E 's/.*pixel error ([0-9.]+), Rand error ([0-9.]+) \(thinned [0-9.]+\), warping error ([0-9.]+).*V_rand ([0-9.]+), V_info ([0-9.]+).*/\1 \2 \3 \4 \5/' |
    awk -v l="$1" '{printf "%-44s %8s %8s %9s %8s %8s\n", l, $1, $2, $3, $4, $5}'
}
printf "%-44s %8s %8s %9s %8s %8s\n" "" "pixel" "Rand" "warping" "V_rand" "V_info"
row "best global threshold of the raw slice" "$OUT/raw_heldout.txt"
row "this run ($minutes min, 5 slices)" "$OUT/run_heldout.txt"
row "the shipped recipe (18 slices, 10000 it.)" "$OUT/shipped_heldout.txt"
echo
echo "results: $OUT/shipped_test00_overlay.png  $OUT/run_slice05_overlay.png  $OUT/run/loss.png"

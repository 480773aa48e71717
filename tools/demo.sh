#!/usr/bin/env bash
# The main job: build, train a U-Net on the ISBI 2012 sample bundled in tests/data/isbi (slices
# 00-04), segment slice 05 which it did not train on, and write the prediction, the mask and an
# overlay under out/demo/. With a GPU it trains the paper's network (64 base channels, 572 tiles);
# on the CPU a reduced one (16 base channels, 316 tiles, 1000 iterations): about 6 minutes on 2 idle cores.
# Extra arguments go to `unet train` (e.g. --iterations 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh --target unet   # the command line only; tests and benchmarks: tools/test.sh
UNET=./build/tools/unet
DATA=tests/data/isbi
OUT=out/demo
$UNET device
# The loss is the plain (unweighted) cross-entropy here: the demo is judged by pixel error, which the
# paper's border weights (w0 = 10, for separating touching cells) trade away; add --w0 10 --balance
# max-one to train with Eq. 2 instead. lr 0.002 with momentum 0.99 (higher rates stall on dead ReLUs), cut to 0.0006 after 700
# iterations. Batch-1 SGD is noisy: the slice is segmented with best.safetensors, the weights that
# validated best.
LOSS=(--w0 0 --balance none --lr 0.002 --lr-step 700 --lr-gamma 0.3)
if $UNET device | grep -q "no CUDA device"; then
  CONFIG=(--device cpu --base 16 --tile 316 --iterations 1000 --val-every 100 --checkpoint-every 250)
  PREDICT=(--device cpu)
else
  CONFIG=(--device cuda --base 64 --tile 572 --iterations 3000 --val-every 250 --checkpoint-every 250)
  PREDICT=(--device cuda --tta)
fi
# Slice 05 is held out (--val-split 1 takes the last image): validated on during training and
# segmented afterwards.
$UNET train --images $DATA/image --labels $DATA/label --val-split 1 --out $OUT "${LOSS[@]}" "${CONFIG[@]}" "$@"
$UNET predict --model $OUT/best.safetensors --images $DATA/image/05.png --labels $DATA/label/05.png \
  -o $OUT/slice05 "${PREDICT[@]}"
echo "results: $OUT/slice05_mask.png  $OUT/slice05_overlay.png  $OUT/slice05_probs.tif  $OUT/loss.png"

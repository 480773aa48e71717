#!/usr/bin/env bash
# The main job: build, train a U-Net on the ISBI 2012 sample bundled in tests/data/isbi (slices
# 00-04), segment slice 05 which it did not train on, and write the prediction, the mask and an
# overlay under out/demo/. With a GPU it trains the paper's network (64 base channels, 572 tiles);
# on the CPU a reduced one (16 base channels, 316 tiles) that finishes in a few minutes.
# Extra arguments go to `unet train` (e.g. --iterations 2000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build.sh
UNET=./build/tools/unet
DATA=tests/data/isbi
OUT=out/demo
$UNET device
if $UNET device | grep -q "no CUDA device"; then
  CONFIG=(--device cpu --base 16 --tile 316 --iterations 300 --lr 0.02 --val-every 100 --checkpoint-every 100)
else
  CONFIG=(--device cuda --base 64 --tile 572 --iterations 2000 --lr 0.01 --val-every 250 --checkpoint-every 250)
fi
# Slice 05 is held out (--val-split 1 takes the last image): validated on during training and
# segmented afterwards.
$UNET train --images $DATA/image --labels $DATA/label --val-split 1 --out $OUT "${CONFIG[@]}" "$@"
$UNET predict --model $OUT/checkpoint.safetensors --input $DATA/image/05.png --labels $DATA/label/05.png \
  -o $OUT/slice05 --tta
echo "results: $OUT/slice05_mask.png  $OUT/slice05_overlay.png  $OUT/slice05_probs.tif  $OUT/loss.png"

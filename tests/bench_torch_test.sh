#!/usr/bin/env bash
# The cross-framework check of tools/bench_torch.py on the CPU: from the same checkpoint and the same tile,
# three training steps of our engine (bench_unet step) and of the PyTorch module of docs/checkpoints.md
# must give the same losses within 1e-4 relative (the whole step: forward, weighted loss, backward, SGD
# with momentum). Skipped (exit 77) when the Python given (UNET_TORCH_PYTHON, else python3) lacks torch,
# numpy or safetensors. Usage: bench_torch_test.sh BENCH_UNET
set -euo pipefail
source "$(dirname "$0")/script_lib.sh"
B="$1"
PY="${UNET_TORCH_PYTHON:-python3}"
if ! "$PY" -c "import torch, numpy, safetensors" 2>/dev/null; then
  echo "SKIPPED: $PY cannot import torch, numpy and safetensors (set UNET_TORCH_PYTHON to a Python that can)"
  exit 77
fi
# A depth-4, base-8 network (all 23 convolutions, 0.5 M parameters) on a 252 tile (68x68 output).
"$B" init --out "$T/m.safetensors" --base 8 --depth 4 --seed 5
"$B" sample --image "$ROOT/tests/data/isbi/image/02.png" --labels "$ROOT/tests/data/isbi/label/02.png" --tile 252 \
  --augment-seed 9 --out "$T/tile"
"$B" step --model "$T/m.safetensors" --tile-dir "$T/tile" --device cpu --steps 3 --dropout 0 --json "$T/ours.json"
"$PY" "$ROOT/tools/bench_torch.py" steps --model "$T/m.safetensors" --tile-dir "$T/tile" --device cpu --steps 3 \
  --compare "$T/ours.json" --rtol 1e-4 --json "$T/torch.json"

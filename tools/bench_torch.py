#!/usr/bin/env python3
"""bench_torch.py: the paper's U-Net in PyTorch beside ours, from the same weights on the same tile.

The network is the plain module of docs/checkpoints.md (unpadded 3x3 convolutions, 2x2 max-pools,
ConvTranspose2d up-convolutions, centre crop-and-concatenate, 1x1 head, dropout at the end of the
contracting path); its state_dict names are those of our checkpoints, so it starts from exactly our
weights. The loss is ours: the weighted pixel-wise cross-entropy averaged over the N*H*W output pixels;
the optimiser is torch.optim.SGD (momentum 0.99, no dampening), which is our update rule.

  bench_torch.py steps   --model CKPT --tile-dir DIR [--steps 3] [--compare OURS.json] [--rtol 1e-4]
        FP32 with TF32 off, dropout off: the loss of each step (before its update). With --compare (the
        JSON of `bench_unet step` on the same checkpoint and tile), both columns side by side and the
        largest relative difference; exit 1 when it exceeds --rtol.
  bench_torch.py time    --model CKPT --tile-dir DIR [--modes fp32,tf32,bf16,compile] [--time-steps 20]
        median wall time of one training step (device synchronised after each) in each mode:
        fp32 = eager FP32, TF32 off; tf32 = eager, TF32 convolutions and matmuls; bf16 = bfloat16
        autocast with channels-last tensors; compile = torch.compile of the fp32 model (TF32 off).
  bench_torch.py forward --model CKPT --tile T [--batch 1]
        median time of the inference forward pass (FP32, TF32 off, no autograd) and peak memory.
  bench_torch.py versions
        PyTorch, CUDA, cuDNN and device, as JSON.
Every subcommand writes its figures as JSON to --json (after each mode for `time`, so a run cut short
keeps the modes it finished). DIR holds x.npy, labels.npy, weights.npy (bench_unet sample).
"""
import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file


class Double(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3)  # unpadded
        self.conv2 = nn.Conv2d(cout, cout, 3)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))))


class Up(Double):
    def __init__(self, cin, cout):
        super().__init__(2 * cout, cout)
        self.upconv = nn.ConvTranspose2d(cin, cout, 2, stride=2)


def crop(skip, h, w):
    dy, dx = (skip.shape[2] - h) // 2, (skip.shape[3] - w) // 2
    return skip[:, :, dy:dy + h, dx:dx + w]


class UNet(nn.Module):
    def __init__(self, in_channels=1, classes=2, depth=4, base=64, dropout=0.5):
        super().__init__()
        ch = [base << l for l in range(depth + 1)]
        self.down = nn.ModuleList(Double(in_channels if l == 0 else ch[l - 1], ch[l]) for l in range(depth))
        self.bottom = Double(ch[depth - 1], ch[depth])
        self.up = nn.ModuleDict({str(l): Up(ch[l + 1], ch[l]) for l in reversed(range(depth))})
        self.head = nn.Conv2d(base, classes, 1)
        self.p, self.depth = dropout, depth

    def forward(self, x):
        skips = []
        for l, d in enumerate(self.down):
            x = d(x)
            if l == self.depth - 1:
                x = F.dropout(x, self.p, self.training)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = F.dropout(self.bottom(x), self.p, self.training)
        for l in reversed(range(self.depth)):
            u = self.up[str(l)]
            x = u.upconv(x)
            x = u(torch.cat([crop(skips[l], x.shape[2], x.shape[3]), x], 1))
        return self.head(x)


def load_model(path, device, dropout=None):
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    cfg = {k: int(meta[k]) for k in ("in_channels", "classes", "depth", "base")}
    net = UNet(**cfg, dropout=float(meta.get("dropout", 0.5)) if dropout is None else dropout)
    state = {k: v for k, v in load_file(path).items() if not k.startswith("optim.")}
    net.load_state_dict(state, strict=True)
    return net.to(device), cfg


def load_tile(d, device):
    x = np.load(os.path.join(d, "x.npy")).astype(np.float32)
    lab = np.load(os.path.join(d, "labels.npy"))
    w = np.load(os.path.join(d, "weights.npy")).astype(np.float32)
    if x.ndim == 2:
        x = x[None]
    return (torch.from_numpy(x)[None].to(device), torch.from_numpy(lab.astype(np.int64))[None].to(device),
            torch.from_numpy(w)[None].to(device))


def weighted_xent(logits, labels, weights):
    # ours: (1/(N*H*W)) sum w(x) (-log p_label(x))
    return (weights * F.cross_entropy(logits.float(), labels, reduction="none")).mean()


def set_tf32(on):
    """TF32 for convolutions and matmuls on or off (the newer API where PyTorch has it)."""
    prec = "tf32" if on else "ieee"
    try:
        torch.backends.cuda.matmul.fp32_precision = prec
        torch.backends.cudnn.conv.fp32_precision = prec
    except AttributeError:
        torch.backends.cuda.matmul.allow_tf32 = on
        torch.backends.cudnn.allow_tf32 = on


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def write_json(path, obj):
    if not path:
        return
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def pick_device(name):
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def make_step(net, opt, x, lab, w, autocast):
    def step():
        opt.zero_grad(set_to_none=False)
        with autocast():
            loss = weighted_xent(net(x), lab, w)
        loss.backward()
        opt.step()
        return loss
    return step


def cmd_steps(a):
    dev = pick_device(a.device)
    set_tf32(False)
    torch.backends.cudnn.benchmark = False
    net, cfg = load_model(a.model, dev, dropout=0.0)
    net.train()
    x, lab, w = load_tile(a.tile_dir, dev)
    opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum, dampening=0.0, weight_decay=0.0)
    step = make_step(net, opt, x, lab, w, contextlib.nullcontext)
    losses = [float(step().item()) for _ in range(a.steps)]
    out = {"what": "training steps, FP32 (TF32 off), dropout off", "device": str(dev), "tile": int(x.shape[-1]),
           "lr": a.lr, "momentum": a.momentum, "torch_losses": losses}
    rc = 0
    if a.compare:
        with open(a.compare) as f:
            ours = json.load(f)["losses"]
        n = min(len(ours), len(losses))
        diffs = [abs(losses[i] - ours[i]) / max(abs(ours[i]), 1e-12) for i in range(n)]
        ok = n == a.steps and all(d <= a.rtol for d in diffs)
        out.update({"our_losses": ours, "rel_diff": diffs, "max_rel_diff": max(diffs) if diffs else None,
                    "rtol": a.rtol, "ok": ok})
        print(f"{'step':>4} {'ours':>14} {'PyTorch':>14} {'rel. diff':>10}")
        for i in range(n):
            print(f"{i + 1:>4} {ours[i]:>14.8f} {losses[i]:>14.8f} {diffs[i]:>10.2e}")
        print(f"largest relative difference {max(diffs):.2e} (tolerance {a.rtol:g}): {'ok' if ok else 'FAIL'}")
        rc = 0 if ok else 1
    else:
        for i, l in enumerate(losses):
            print(f"step {i + 1} loss {l:.8f}")
    write_json(a.json, out)
    return rc


def cmd_time(a):
    dev = pick_device(a.device)
    torch.backends.cudnn.benchmark = True  # cuDNN's fastest algorithms, as our baseline rows use
    x0, lab, w = load_tile(a.tile_dir, dev)
    out = {"what": "training step time", "device": str(dev), "tile": int(x0.shape[-1]), "time_steps": a.time_steps,
           "modes": {}}
    for mode in [m for m in a.modes.split(",") if m]:
        if mode not in ("fp32", "tf32", "bf16", "compile"):
            raise SystemExit(f"bench_torch.py: unknown mode {mode}")
        set_tf32(mode == "tf32" or mode == "bf16")
        net, _ = load_model(a.model, dev, dropout=a.dropout)
        net.train()
        x = x0
        autocast = contextlib.nullcontext
        if mode == "bf16":
            net = net.to(memory_format=torch.channels_last)
            x = x0.contiguous(memory_format=torch.channels_last)
            autocast = lambda: torch.autocast(device_type=dev.type, dtype=torch.bfloat16)  # noqa: E731
        opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum, dampening=0.0)
        model = torch.compile(net) if mode == "compile" else net
        step = make_step(model, opt, x, lab, w, autocast)
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        t0 = time.perf_counter()
        first = float(step().item())  # compiles in compile mode
        sync(dev)
        first_s = time.perf_counter() - t0
        for _ in range(a.warmup):
            step()
        sync(dev)
        ms = []
        for _ in range(a.time_steps):
            t = time.perf_counter()
            loss = step()
            loss.item()
            sync(dev)
            ms.append(1e3 * (time.perf_counter() - t))
        r = {"step_ms_median": statistics.median(ms), "step_ms_min": min(ms), "step_ms": ms,
             "first_step_s": first_s, "first_loss": first}
        if dev.type == "cuda":
            r["max_memory_allocated"] = torch.cuda.max_memory_allocated(dev)
            r["max_memory_reserved"] = torch.cuda.max_memory_reserved(dev)
        out["modes"][mode] = r
        print(f"{mode:8} step median {r['step_ms_median']:9.2f} ms (min {r['step_ms_min']:.2f}); "
              f"first step {first_s:.1f} s", flush=True)
        write_json(a.json, out)
        del model, net, opt, step
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return 0


def cmd_forward(a):
    dev = pick_device(a.device)
    set_tf32(False)
    torch.backends.cudnn.benchmark = True
    net, cfg = load_model(a.model, dev)
    net.eval()
    g = torch.Generator().manual_seed(7)
    x = torch.rand((a.batch, cfg["in_channels"], a.tile, a.tile), generator=g).to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    with torch.no_grad():
        for _ in range(a.warmup):
            y = torch.softmax(net(x), 1)
        sync(dev)
        ms = []
        for _ in range(a.repeats):
            t = time.perf_counter()
            y = torch.softmax(net(x), 1)
            sync(dev)
            ms.append(1e3 * (time.perf_counter() - t))
    out = {"what": "inference forward + softmax, FP32 (TF32 off)", "device": str(dev), "tile": a.tile,
           "tile_out": int(y.shape[-1]), "batch": a.batch, "ms_median": statistics.median(ms), "ms": ms}
    if dev.type == "cuda":
        out["max_memory_allocated"] = torch.cuda.max_memory_allocated(dev)
        out["max_memory_reserved"] = torch.cuda.max_memory_reserved(dev)
    print(f"forward tile {a.tile} batch {a.batch}: median {out['ms_median']:.2f} ms")
    write_json(a.json, out)
    return 0


def cmd_versions(a):
    out = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        out["device"] = torch.cuda.get_device_name(0)
    print(json.dumps(out))
    write_json(a.json, out)
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default="auto")
    common.add_argument("--json", default="")
    train = argparse.ArgumentParser(add_help=False)
    train.add_argument("--model", required=True)
    train.add_argument("--tile-dir", required=True)
    train.add_argument("--lr", type=float, default=0.002)
    train.add_argument("--momentum", type=float, default=0.99)
    s = sub.add_parser("steps", parents=[common, train])
    s.add_argument("--steps", type=int, default=3)
    s.add_argument("--compare", default="")
    s.add_argument("--rtol", type=float, default=1e-4)
    t = sub.add_parser("time", parents=[common, train])
    t.add_argument("--modes", default="fp32,tf32,bf16,compile")
    t.add_argument("--time-steps", type=int, default=20)
    t.add_argument("--warmup", type=int, default=3)
    t.add_argument("--dropout", type=float, default=None, help="default: the checkpoint's")
    f = sub.add_parser("forward", parents=[common])
    f.add_argument("--model", required=True)
    f.add_argument("--tile", type=int, required=True)
    f.add_argument("--batch", type=int, default=1)
    f.add_argument("--warmup", type=int, default=3)
    f.add_argument("--repeats", type=int, default=10)
    sub.add_parser("versions", parents=[common])
    a = p.parse_args(argv)
    return {"steps": cmd_steps, "time": cmd_time, "forward": cmd_forward, "versions": cmd_versions}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

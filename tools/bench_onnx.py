#!/usr/bin/env python3
"""ONNX Runtime beside this project's CPU backend: the same U-Net, the same weights, the same machine.

The network is exported to ONNX straight from a unet-cuda checkpoint (safetensors: the tensor names of
docs/checkpoints.md), one static-shape graph per tile size: Conv/Relu/MaxPool, ConvTranspose, Slice +
Concat for the crop-and-copy, the 1x1 head and a Softmax. Then, with the same number of threads each:

  check     ONNX Runtime's probabilities for one 572 tile against `unet predict`'s (max |difference|);
  forward   one forward pass, timed by bench_cpu (unet_forward rows) and by ONNX Runtime, alternated;
  predict   `unet predict` of a 512x512 slice end to end (process start to files written) against the
            same pipeline around ONNX Runtime (read, tile with mirroring, run, softmax, write);
  shared    the forward again with one busy process beside it: how much each slows down.

Needs numpy, onnx and onnxruntime (pip install numpy onnx onnxruntime), and a build with bench_cpu
and unet. Without --checkpoint, He-initialised checkpoints are written for the bases asked for (the
speed does not depend on the weights' values). bench_cpu times its own He-initialised network of the
same architecture.

  python3 tools/bench_onnx.py [--bases 64,16] [--rounds 3] [--threads 2] [--md out.md]
  python3 tools/bench_onnx.py --pipeline MODEL.onnx IMAGE.pgm OUT_PREFIX TILE THREADS   (internal)
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- safetensors ---------------------------------------------------------------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", f"{name}: {t['dtype']} (only F32 checkpoints)"
        a, b = t["data_offsets"]
        tensors[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(t["shape"])
    return tensors, meta


def write_safetensors(path, named, meta):
    header, offset, blobs = {"__metadata__": meta}, 0, []
    for name, arr in named:
        b = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def unet_parameters(base, depth=4, cin=1, classes=2):
    """(name, shape, fan_in) in the order of unet/model.cpp."""
    ps, c = [], cin
    def pair(prefix, a, b):
        return [(prefix + ".conv1.weight", (b, a, 3, 3), 9 * a), (prefix + ".conv1.bias", (b,), 0),
                (prefix + ".conv2.weight", (b, b, 3, 3), 9 * b), (prefix + ".conv2.bias", (b,), 0)]
    for l in range(depth):
        ps += pair(f"down.{l}", c, base << l)
        c = base << l
    ps += pair("bottom", c, base << depth)
    c = base << depth
    for l in reversed(range(depth)):
        o = base << l
        ps += [(f"up.{l}.upconv.weight", (c, o, 2, 2), c), (f"up.{l}.upconv.bias", (o,), 0)]
        ps += pair(f"up.{l}", 2 * o, o)
        c = o
    ps += [("head.weight", (classes, c, 1, 1), c), ("head.bias", (classes,), 0)]
    return ps


def random_checkpoint(path, base, seed=0):
    rng = np.random.default_rng(seed)
    named = [(n, (rng.standard_normal(s) * np.sqrt(2.0 / fan)).astype(np.float32) if fan else np.zeros(s, np.float32))
             for n, s, fan in unet_parameters(base)]
    meta = {"format": "unet-cuda/1", "in_channels": "1", "classes": "2", "depth": "4", "base": str(base),
            "dropout": "0.5", "iteration": "0", "total_iterations": "0", "rng_seed": "0", "rng_offset": "0",
            "lr": "0", "has_momentum": "0"}
    write_safetensors(path, named, meta)


# ---- ONNX export ---------------------------------------------------------------------------------

def export_onnx(tensors, meta, tile, path):
    """The checkpoint's U-Net as an ONNX graph for 1 x in_channels x tile x tile inputs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    depth, cin, classes = int(meta["depth"]), int(meta["in_channels"]), int(meta["classes"])
    nodes, inits, count = [], [], [0]

    def name(prefix):
        count[0] += 1
        return f"{prefix}_{count[0]}"

    def init(key):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(tensors[key]), key))
        return key

    def conv(x, prefix, k=3):
        y = name("conv")
        nodes.append(helper.make_node("Conv", [x, init(prefix + ".weight"), init(prefix + ".bias")], [y],
                                      kernel_shape=[k, k]))
        return y

    def relu(x):
        y = name("relu")
        nodes.append(helper.make_node("Relu", [x], [y]))
        return y

    def double(x, prefix):
        return relu(conv(relu(conv(x, prefix + ".conv1")), prefix + ".conv2"))

    x, s, skips = "input", tile, []
    for l in range(depth):
        x = double(x, f"down.{l}")
        s -= 4
        skips.append((x, s))
        y = name("pool")
        nodes.append(helper.make_node("MaxPool", [x], [y], kernel_shape=[2, 2], strides=[2, 2]))
        x, s = y, s // 2
    x, s = double(x, "bottom"), s - 4
    for l in reversed(range(depth)):
        y = name("up")
        nodes.append(helper.make_node("ConvTranspose", [x, init(f"up.{l}.upconv.weight"), init(f"up.{l}.upconv.bias")],
                                      [y], kernel_shape=[2, 2], strides=[2, 2]))
        s *= 2
        skip, ss = skips[l]
        o = (ss - s) // 2
        starts, ends, axes = name("starts"), name("ends"), name("axes")
        for n_, v in ((starts, [o, o]), (ends, [o + s, o + s]), (axes, [2, 3])):
            inits.append(numpy_helper.from_array(np.array(v, dtype=np.int64), n_))
        crop, cat = name("crop"), name("cat")
        nodes.append(helper.make_node("Slice", [skip, starts, ends, axes], [crop]))
        nodes.append(helper.make_node("Concat", [crop, y], [cat], axis=1))
        x, s = double(cat, f"up.{l}"), s - 4
    logits = conv(x, "head", 1)
    nodes.append(helper.make_node("Softmax", [logits], ["probs"], axis=1))
    graph = helper.make_graph(nodes, "unet", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, cin, tile, tile])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, classes, s, s])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="unet-cuda")
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return s


def session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


# ---- the prediction pipeline around ONNX Runtime (run as its own process, like unet predict) -------

def read_pgm(path):
    with open(path, "rb") as f:
        data = f.read()
    parts, pos = [], 0
    while len(parts) < 4:  # P5 width height maxval, whitespace separated
        while data[pos:pos + 1].isspace():
            pos += 1
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        parts.append(data[pos:end])
        pos = end
    w, h = int(parts[1]), int(parts[2])
    return np.frombuffer(data[pos + 1:pos + 1 + w * h], dtype=np.uint8).reshape(h, w)


def write_png_gray(path, img):
    raw = b"".join(b"\x00" + row.tobytes() for row in img)
    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xffffffff)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", img.shape[1], img.shape[0], 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def pipeline(model, image, prefix, tile, threads):
    """unet predict's steps: read, normalise, overlap-tile with mirroring, softmax, write."""
    sess = session(model, threads)
    img = read_pgm(image).astype(np.float32) / 255.0
    h, w = img.shape
    out = sess.get_outputs()[0].shape[2]
    step, border = out - out % 16, (tile - out) // 2
    rows = 1 if h <= out else 1 + (h - out + step - 1) // step
    cols = 1 if w <= out else 1 + (w - out + step - 1) // step
    padded = np.pad(img, ((border, border + rows * step + out), (border, border + cols * step + out)), mode="reflect")
    probs = np.zeros((2, h, w), np.float32)
    for r in range(rows):
        for c in range(cols):
            y0, x0 = r * step, c * step
            p = sess.run(None, {"input": padded[None, None, y0:y0 + tile, x0:x0 + tile]})[0][0]
            hh = step if r + 1 < rows else h - y0
            ww = step if c + 1 < cols else w - x0
            probs[:, y0:y0 + hh, x0:x0 + ww] = p[:, :hh, :ww]
    np.save(prefix + "_probs.npy", probs)
    write_png_gray(prefix + "_mask.png", (np.argmax(probs, axis=0) * 255).astype(np.uint8))


# ---- the comparison ------------------------------------------------------------------------------

def write_pgm(path, img):
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (img.shape[1], img.shape[0]) + img.astype(np.uint8).tobytes())


def bench_ours(bench, base, tile, threads):
    """Seconds per forward, from bench_cpu's unet_forward row."""
    env = dict(os.environ, UNET_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
    r = subprocess.run([bench, f"--benchmark_filter=^unet_forward/base:{base}/tile:{tile}/", "--benchmark_format=json"],
                       env=env, capture_output=True, text=True, check=True)
    row = json.loads(r.stdout)["benchmarks"][0]
    return row["real_time"] * {"ms": 1e-3, "s": 1.0, "us": 1e-6}[row["time_unit"]]


def bench_ort(sess, tile, min_time=2.0):
    x = np.random.default_rng(1).random((1, 1, tile, tile), dtype=np.float32)
    sess.run(None, {"input": x})
    n, t0 = 0, time.perf_counter()
    while True:
        sess.run(None, {"input": x})
        n += 1
        if time.perf_counter() - t0 >= min_time:
            return (time.perf_counter() - t0) / n


def timed(cmd, env):
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - t0


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else 0.5 * (v[len(v) // 2 - 1] + v[len(v) // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", nargs=5, metavar=("MODEL", "IMAGE", "PREFIX", "TILE", "THREADS"))
    ap.add_argument("--checkpoint", help="a unet-cuda checkpoint (default: He-initialised ones, per base)")
    ap.add_argument("--bases", default="64,16")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", default=os.path.join(ROOT, "build/bench/bench_cpu"))
    ap.add_argument("--unet", default=os.path.join(ROOT, "build/tools/unet"))
    ap.add_argument("--no-shared", action="store_true", help="skip the busy-neighbour measurement")
    ap.add_argument("--md", help="also write the tables to this markdown file")
    a = ap.parse_args()
    if a.pipeline:
        m, img, prefix, tile, threads = a.pipeline
        pipeline(m, img, prefix, int(tile), int(threads))
        return
    import onnxruntime
    tmp = tempfile.mkdtemp(prefix="bench_onnx_")
    env = dict(os.environ, UNET_NUM_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    lines = [f"ONNX Runtime {onnxruntime.__version__}, {a.threads} threads each, {a.rounds} alternated rounds "
             f"(medians); load average at start {os.getloadavg()[0]:.2f}", ""]
    rng = np.random.default_rng(5)
    bases = [int(b) for b in a.bases.split(",")]
    ckpts = {}
    for base in bases:
        ckpts[base] = a.checkpoint or os.path.join(tmp, f"base{base}.safetensors")
        if not a.checkpoint:
            random_checkpoint(ckpts[base], base)

    # check: one 572 tile (a 388 x 388 image is exactly its output), ours against ONNX Runtime
    lines += ["| check (tile 572) | max abs difference of probabilities |", "|---|---|"]
    img = rng.integers(0, 256, (388, 388)).astype(np.uint8)
    write_pgm(os.path.join(tmp, "check.pgm"), img)
    for base in bases:
        t, meta = read_safetensors(ckpts[base])
        export_onnx(t, meta, 572, os.path.join(tmp, "m572.onnx"))
        subprocess.run([a.unet, "predict", "--model", ckpts[base], "--input", os.path.join(tmp, "check.pgm"), "-o",
                        os.path.join(tmp, "ours"), "--tile", "572", "--npy"], env=env, check=True, capture_output=True)
        ours = np.load(os.path.join(tmp, "ours_probs.npy"))
        x = np.pad(img.astype(np.float32) / 255.0, 92, mode="reflect")[None, None]
        theirs = session(os.path.join(tmp, "m572.onnx"), a.threads).run(None, {"input": x})[0][0]
        lines.append(f"| base {base} | {np.abs(ours - theirs).max():.2e} |")
    lines.append("")

    # forward, alternated
    lines += ["| forward | ours | ONNX Runtime | ours / ORT | GFLOP/s ours, ORT |", "|---|---|---|---|---|"]
    flops = {}
    for base in bases:
        for tile in (572, 316) if base == 16 else (572,):
            t, meta = read_safetensors(ckpts[base])
            onnx_path = os.path.join(tmp, f"b{base}_{tile}.onnx")
            export_onnx(t, meta, tile, onnx_path)
            sess = session(onnx_path, a.threads)
            ours, theirs = [], []
            for _ in range(a.rounds):
                ours.append(bench_ours(a.bench, base, tile, a.threads))
                theirs.append(bench_ort(sess, tile))
            o, r = median(ours), median(theirs)
            gf = forward_gflop(base, tile)
            flops[(base, tile)] = (o, r)
            lines.append(f"| base {base}, tile {tile} ({gf:.1f} GFLOP) | {o:.3f} s | {r:.3f} s | {o / r:.2f} | "
                         f"{gf / o:.0f}, {gf / r:.0f} |")
    lines.append("")

    # predict of a 512 x 512 slice, end to end, alternated (both with the tile unet predict picks)
    lines += ["| predict 512x512 (one process each) | ours | ONNX Runtime pipeline | ours / ORT |", "|---|---|---|---|"]
    slice_img = os.path.join(tmp, "slice.pgm")
    write_pgm(slice_img, rng.integers(0, 256, (512, 512)))
    for base in bases:
        t, meta = read_safetensors(ckpts[base])
        for tile in (700, 572):
            onnx_path = os.path.join(tmp, f"p{base}_{tile}.onnx")
            export_onnx(t, meta, tile, onnx_path)
            ours_cmd = [a.unet, "predict", "--model", ckpts[base], "--input", slice_img, "-o", os.path.join(tmp, "po")]
            if tile != 700:
                ours_cmd += ["--tile", str(tile)]
            ort_cmd = [sys.executable, os.path.abspath(__file__), "--pipeline", onnx_path, slice_img,
                       os.path.join(tmp, "pt"), str(tile), str(a.threads)]
            ours, theirs = [], []
            for _ in range(a.rounds):
                ours.append(timed(ours_cmd, env))
                theirs.append(timed(ort_cmd, env))
            o, r = median(ours), median(theirs)
            label = "automatic tile (700, 1 tile)" if tile == 700 else "tile 572 (4 tiles)"
            lines.append(f"| base {base}, {label} | {o:.2f} s | {r:.2f} s | {o / r:.2f} |")
    lines.append("")

    # the forward with one busy process beside it
    if not a.no_shared:
        lines += ["| forward beside one busy process | ours | ONNX Runtime | slowdown ours, ORT |", "|---|---|---|---|"]
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for base in bases:
                tile = 572
                t, meta = read_safetensors(ckpts[base])
                sess = session(os.path.join(tmp, f"b{base}_{tile}.onnx"), a.threads)
                ours, theirs = [], []
                for _ in range(a.rounds):
                    ours.append(bench_ours(a.bench, base, tile, a.threads))
                    theirs.append(bench_ort(sess, tile))
                o, r = median(ours), median(theirs)
                qo, qr = flops[(base, tile)]
                lines.append(f"| base {base}, tile {tile} | {o:.3f} s | {r:.3f} s | {o / qo:.2f}x, {r / qr:.2f}x |")
        finally:
            busy.kill()
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if a.md:
        with open(a.md, "w") as f:
            f.write(text + "\n")


def forward_gflop(base, tile, depth=4, cin=1, classes=2):
    f, s, c = 0.0, tile, cin
    for l in range(depth):
        o = base << l
        f += 2 * 9 * (c * o * (s - 2) ** 2 + o * o * (s - 4) ** 2)
        s, c = (s - 4) // 2, o
    b = base << depth
    f += 2 * 9 * (c * b * (s - 2) ** 2 + b * b * (s - 4) ** 2)
    s, c = s - 4, b
    for l in reversed(range(depth)):
        o = base << l
        f += 2 * 4 * c * o * s * s
        s *= 2
        f += 2 * 9 * (2 * o * o * (s - 2) ** 2 + o * o * (s - 4) ** 2)
        s, c = s - 4, o
    return (f + 2 * c * classes * s * s) * 1e-9


if __name__ == "__main__":
    main()

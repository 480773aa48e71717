#!/usr/bin/env python3
"""gpu_summary.py WORK [--out DIR]: the report of a tools/gpu_check.sh run.

Reads the run's folder WORK (machine.json, run.json, and one folder per phase, N-name/, holding result.json
and the phase's own results: rows.tsv, sanitize.tsv, bench.jsonl, *_steps.json, *_time.json, p*.json,
segments.tsv, run/val.csv, eval_*.json ...) and writes into DIR (default WORK):
  summary.md    the Markdown report, ready to commit as bench/results/gpu-<date>-<commit>.md;
  results.json  every figure, machine-readable.
Anything a phase did not produce reads "not measured"; a phase folder without result.json is a phase the
run was cut off in. Python 3 standard library only (it also runs where PyTorch is not installed).
"""
import argparse
import glob
import json
import math
import os
import re
import sys

NM = "not measured"


# --- reading -----------------------------------------------------------------------------------------------

def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_tsv(path):
    try:
        with open(path) as f:
            return [line.rstrip("\n").split("\t") for line in f if line.strip()]
    except OSError:
        return []


def read_text(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def num(v):
    try:
        x = float(v)
        return x if math.isfinite(x) else None
    except (TypeError, ValueError):
        return None


# --- formatting --------------------------------------------------------------------------------------------

def ms(v):
    v = num(v)
    if v is None:
        return NM
    return f"{v:.3f} ms" if v < 10 else f"{v:.1f} ms"


def ratio(v):
    v = num(v)
    return NM if v is None else f"{v:.2f}"


def secs(v):
    v = num(v)
    return NM if v is None else (f"{v:.3f} s" if v < 1 else f"{v:.1f} s")


def mib(v):
    v = num(v)
    return NM if v is None else f"{v / 2**20:,.0f} MiB"


def plain(v, fmt="{:.4f}"):
    v = num(v)
    return NM if v is None else fmt.format(v)


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def geomean(vals):
    vals = [v for v in vals if v and v > 0]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


# --- the phases' results -----------------------------------------------------------------------------------

PHASES = {1: "build", 2: "tests", 3: "sanitize", 4: "bench", 5: "torch", 6: "predict", 7: "train"}
TITLES = {1: "build (sm_90)", 2: "GPU cross-check against the CPU", 3: "compute-sanitizer",
          4: "kernels beside cuDNN", 5: "training step beside PyTorch", 6: "prediction",
          7: "the paper's training run"}


def phase_status(work, n):
    d = os.path.join(work, f"{n}-{PHASES[n]}")
    if not os.path.isdir(d):
        return d, {"status": "not run"}
    r = load_json(os.path.join(d, "result.json"))
    if r is None:  # the run was cut off inside this phase
        r = {"status": "cut off", "reason": "the run ended inside this phase"}
        note = read_text(os.path.join(d, "reason")).strip()
        if note:
            r["reason"] += "; " + note
    return d, r


def parse_tests(d):
    rows, bitwise = [], {}
    for r in read_tsv(os.path.join(d, "rows.tsv")):
        if len(r) < 7:
            continue
        if r[0] == "row":
            rows.append({"op": r[1], "shape": r[2], "out": int(r[3]), "rel_error": num(r[4]), "tol": num(r[5]),
                         "ok": r[6] == "ok", "status": r[6]})
        elif r[0] == "bitwise":
            b = bitwise.setdefault(r[1], {"bitwise": 0, "not_bitwise": 0})
            b["bitwise" if r[6] == "bitwise" else "not_bitwise"] += 1
    log = read_text(os.path.join(d, "gpu_tests.log"))
    gpu = re.search(r"^GPU: (.*)$", log, re.M)
    cases = re.findall(r"^(All tests passed.*|test cases:.*)$", log, re.M)
    return {"rows": rows, "bitwise": bitwise, "gpu": gpu.group(1) if gpu else None,
            "catch_summary": cases[-1] if cases else None,
            "test_cases": len([l for l in read_text(os.path.join(d, "test_cases.txt")).splitlines() if l.strip()])}


def parse_sanitize(d):
    out = []
    for r in read_tsv(os.path.join(d, "sanitize.tsv"))[1:]:
        if len(r) >= 5:
            out.append({"tool": r[0], "errors": None if r[1] == "-" else int(r[1]), "warnings": int(r[2] or 0),
                        "exit": int(r[3]), "seconds": num(r[4])})
    cases = [l for l in read_text(os.path.join(d, "sanitize_cases.txt")).splitlines() if l.strip()]
    return {"tools": out, "test_cases": cases}


CONV_RE = re.compile(r"^(ours|ours_tf32|ours_bf16|cudnn_fma|cudnn_tf32|cudnn_bf16|cudnn_tf32_nhwc|cudnn_bf16_nhwc)/"
                     r"((?:conv3x3|conv1x1|upconv2x2)_"
                     r"(forward|backward_data|backward_weight))/([^/]+)/(\d+to\d+@\d+x\d+)")


def parse_bench(d):
    convs, layers, memory, other, errors = {}, [], [], [], []
    for line in read_text(os.path.join(d, "bench.jsonl")).splitlines():
        try:
            r = json.loads(line)
        except ValueError:
            continue
        name = r.get("name", "")
        if "error" in r:
            errors.append({"name": name.split("/iterations")[0], "error": r["error"]})
        m = CONV_RE.match(name)
        if m:
            impl, op, pas, layer, shape = m.groups()
            key = (layer, pas)
            if key not in convs:
                convs[key] = {"layer": layer, "shape": shape, "op": op, "pass": pas}
                layers.append(key)
            if "error" not in r:
                convs[key][impl] = r
        elif name.startswith("ours/"):
            # ours/<op>/<sizes>[/<variant>]/iterations:N/...: the op table's other timed rows; memory-bound ones
            # carry ratio_memcpy.
            parts = name.split("/iterations")[0].split("/")
            row = {"op": parts[1], "shape": " ".join(parts[2:]), **{k: v for k, v in r.items() if k != "name"}}
            (memory if "ratio_memcpy" in r or "error" in r and "GFLOP/s" not in r else other).append(row)
    return {"convs": [convs[k] for k in layers], "memory": memory, "other": other, "errors": errors}


def parse_torch(d):
    return {k: load_json(os.path.join(d, f"{k}.json"))
            for k in ("ours_steps", "torch_steps", "ours_time", "ours_time_tf32", "ours_time_bf16", "ours_time_fp32_graph",
                      "ours_time_tf32_graph", "ours_time_bf16_graph", "torch_time")}


def parse_predict(d):
    return {k: load_json(os.path.join(d, f"{k}.json")) for k in ("p512", "p512_tta", "p4096", "torch_forward", "plumbing")}


EVAL_RE = re.compile(r"mean over (\d+) slice\(s\).*?pixel error ([\d.]+), Rand error ([\d.]+) \(thinned ([\d.]+)\), "
                     r"warping error ([\d.eE+-]+)")


def parse_eval(d, it):
    """Mean ISBI scores over the validation slices of the checkpoint at iteration `it`."""
    slices = load_json(os.path.join(d, f"eval_{it}.json"))
    if isinstance(slices, list) and slices:
        def mean(key):
            v = [num(s.get("best", {}).get(key, {}).get("value")) for s in slices]
            v = [x for x in v if x is not None]
            return sum(v) / len(v) if v else None
        return {"slices": len(slices), "pixel_error": mean("pixel_error"), "rand_error": mean("rand_error"),
                "rand_error_thinned": mean("rand_error_thinned"), "warping_error": mean("warping_error")}
    m = EVAL_RE.search(read_text(os.path.join(d, f"eval_{it}.log")))
    if m:
        return {"slices": int(m.group(1)), "pixel_error": num(m.group(2)), "rand_error": num(m.group(3)),
                "rand_error_thinned": num(m.group(4)), "warping_error": num(m.group(5))}
    return None


def parse_train(d):
    segs = [{"segment": int(r[0]), "end_iteration": int(r[1]), "wall_s": num(r[2]), "its_per_s": num(r[3])}
            for r in read_tsv(os.path.join(d, "segments.tsv"))[1:] if len(r) >= 4]
    # unet train rewrites val.csv with its own invocation's points: the phase keeps each segment's copy.
    val = {}
    for path in sorted(glob.glob(os.path.join(d, "val_*.csv"))) + [os.path.join(d, "run", "val.csv")]:
        for r in (l.split(",") for l in read_text(path).splitlines()[1:]):
            if len(r) >= 3:
                val[int(r[0])] = {"iteration": int(r[0]), "loss": num(r[1]), "pixel_error": num(r[2])}
    val = [val[k] for k in sorted(val)]
    losses = [num(l.split(",")[1]) for l in read_text(os.path.join(d, "run", "loss.csv")).splitlines()[1:] if "," in l]
    evals = {s["end_iteration"]: parse_eval(d, s["end_iteration"]) for s in segs}
    return {"segments": segs, "val": val, "evals": evals, "iterations": len(losses),
            "loss_first": losses[0] if losses else None, "loss_last_100": sum(losses[-100:]) / len(losses[-100:]) if losses else None,
            "note": read_text(os.path.join(d, "note")).strip() or None,
            "loss_png": os.path.exists(os.path.join(d, "run", "loss.png"))}


PARSERS = {2: parse_tests, 3: parse_sanitize, 4: parse_bench, 5: parse_torch, 6: parse_predict, 7: parse_train}


# --- the report --------------------------------------------------------------------------------------------

def cudnn_version(v):
    """cuDNN's version number (e.g. 91900) as 9.19.0."""
    try:
        v = int(v)
        return f"{v // 10000}.{v % 10000 // 100}.{v % 100}"
    except (TypeError, ValueError):
        return str(v)


def machine_table(m, run, total_s):
    t = m.get("torch") or {}
    commit = m.get("commit") or "unknown"
    rows = [("device", f"{m.get('gpu') or 'no GPU'}" + (f", {m['gpu_memory']}" if m.get("gpu_memory") else "")),
            ("driver", f"{m.get('driver') or NM}" + (f" (CUDA {m['cuda_driver_api']})" if m.get("cuda_driver_api") else "")),
            ("CUDA toolkit", f"nvcc {m.get('nvcc') or NM}"),
            ("cuDNN", f"{m.get('cudnn_header') or NM} (headers the benchmark was built with)"
                      + (f"; PyTorch's {cudnn_version(t['cudnn'])}" if t.get("cudnn") else "")),
            ("PyTorch", f"{t.get('torch', NM)}" + (f" (CUDA {t['torch_cuda']})" if t.get("torch_cuda") else "")),
            ("compute-sanitizer", m.get("compute_sanitizer") or NM),
            ("commit", f"`{commit[:12]}`" + (f" ({m['commit_note']})" if m.get("commit_note") else "")),
            ("date", f"{m.get('date', NM)} {m.get('time', '')} UTC"),
            ("host", f"{m.get('cores', '?')} cores, {m.get('cpu') or '?'}; {m.get('os') or '?'}; {m.get('gxx') or ''}"),
            ("run", f"{total_s:.0f} s (budget {run.get('budget', '?')} s, phases {run.get('phases', '?')})")]
    return table(["", ""], rows)


def section_tests(data):
    rows = data["rows"]
    if not rows:
        return f"Rows compared: {NM}.\n"
    bad = [r for r in rows if not r["ok"]]
    worst = max(rows, key=lambda r: (r["rel_error"] if r["rel_error"] is not None else math.inf) / max(r["tol"] or 1e-30, 1e-30))
    out = [f"{len(rows)} outputs of {len({(r['op'], r['shape']) for r in rows})} rows compared with the CPU: "
           + ("all within tolerance, guards intact" if not bad
              else f"**{len(bad)} failed** (out of tolerance, or a guard past the output overwritten)")
           + f"; closest to its tolerance: {worst['op']} {worst['shape']} output {worst['out']}, "
             f"rel. error {plain(worst['rel_error'], '{:.2e}')} (tol {plain(worst['tol'], '{:.0e}')})."]
    if data.get("catch_summary"):
        out.append(f"Catch2: {data['catch_summary']}.")
    if bad:
        out.append("\n" + table(["op", "shape", "out", "rel. error", "tol", "status"],
                                [(r["op"], r["shape"], r["out"], plain(r["rel_error"], "{:.2e}"), plain(r["tol"], "{:.0e}"),
                                  r["status"]) for r in bad]))
    if data["bitwise"]:
        out.append("\nTwo GPU runs from the same inputs, bit for bit (every op must match: no kernel uses atomics, "
                   "split-K partial sums are reduced in a fixed order):\n")
        out.append(table(["op", "outputs bitwise", "not bitwise"],
                         [(op, b["bitwise"], b["not_bitwise"]) for op, b in sorted(data["bitwise"].items())]))
    out.append("\n<details><summary>every row</summary>\n")
    out.append(table(["op", "shape", "out", "rel. error", "tol", ""],
                     [(r["op"], r["shape"], r["out"], plain(r["rel_error"], "{:.2e}"), plain(r["tol"], "{:.0e}"),
                       "ok" if r["ok"] else "**FAIL**") for r in rows]))
    out.append("\n</details>")
    return "\n".join(out) + "\n"


def section_sanitize(data):
    if not data["tools"]:
        return f"Error counts: {NM}" + (f" ({len(data['test_cases'])} [sanitize] test cases listed)." if data["test_cases"] else ".") + "\n"
    return (f"Over the {len(data['test_cases']) or '?'} `[sanitize]` test cases (memcheck and initcheck with "
            "`UNET_CUDA_ALLOCATOR=exact`: every tensor its own allocation):\n\n"
            + table(["tool", "errors", "warnings", "tests' exit", "time"],
                    [(t["tool"], NM if t["errors"] is None else t["errors"], t["warnings"], t["exit"], secs(t["seconds"]))
                     for t in data["tools"]]) + "\n")


def section_bench(data):
    convs = data["convs"]
    if not convs:
        return f"Per-layer times: {NM}.\n"
    impls = ("cudnn_fma", "cudnn_tf32", "cudnn_bf16")
    rows, tot = [], {k: 0.0 for k in ("ours",) + impls}
    complete = {k: True for k in tot}
    for c in convs:
        o = c.get("ours", {})
        row = [c["layer"], c["shape"], c["pass"], ms(o.get("ms")), plain(o.get("GFLOP/s"), "{:,.0f}")]
        for k in ("ours",) + impls:
            v = num(c.get(k, {}).get("ms"))
            if v is None:
                complete[k] = False
            else:
                tot[k] += v
        for k in impls:
            row += [ms(c.get(k, {}).get("ms")), ratio(o.get("ratio_" + k.split("_")[1]))]
        rows.append(row)
    out = ["Our kernels (FP32) and cuDNN's fastest algorithm found in the same run, per convolution of the paper's "
           "network (batch 1, 572x572 tile); ratio = our time / cuDNN's (below 1: ours is faster). Medians of single "
           "timed calls.\n",
           table(["layer", "shape", "pass", "ours", "GFLOP/s", "cuDNN fma", "ratio", "cuDNN tf32", "ratio",
                  "cuDNN bf16", "ratio"], rows)]
    summ = []
    for k in ("ours",) + impls:
        label = "ours (FP32)" if k == "ours" else f"cuDNN {k.split('_')[1]}"
        g = geomean([num(c.get("ours", {}).get("ratio_" + k.split("_")[1])) for c in convs]) if k != "ours" else None
        summ.append((label, (ms(tot[k]) if complete[k] else f"{ms(tot[k])} (incomplete)"),
                     ratio(tot["ours"] / tot[k]) if k != "ours" and tot[k] > 0 and complete[k] and complete["ours"] else "",
                     ratio(g) if g else ""))
    n_layers = len({c["layer"] for c in convs})
    out.append(f"\nAll {len(convs)} rows measured ({n_layers} of the 23 convolutions, up to three passes each; all 69 "
               "make one training step's convolution work):\n")
    out.append(table(["", "total", "ours / this", "geometric mean of per-row ratios"], summ))
    tc = [c for c in convs if "ours_tf32" in c or "ours_bf16" in c]
    if tc:
        out.append("\nOurs on tensor cores (TF32 and BF16 products, FP32 tensors) beside cuDNN in the same arithmetic "
                   "(NCHW, and NHWC for the 3x3 forwards); ratio = ours / cuDNN NCHW:\n")
        out.append(table(["layer", "pass", "ours tf32", "cuDNN tf32", "ratio", "cuDNN tf32 NHWC", "ours bf16",
                          "cuDNN bf16", "ratio", "cuDNN bf16 NHWC"],
                         [(c["layer"], c["pass"],
                           ms(c.get("ours_tf32", {}).get("ms")), ms(c.get("cudnn_tf32", {}).get("ms")),
                           ratio(c.get("ours_tf32", {}).get("ratio_tf32")), ms(c.get("cudnn_tf32_nhwc", {}).get("ms")),
                           ms(c.get("ours_bf16", {}).get("ms")), ms(c.get("cudnn_bf16", {}).get("ms")),
                           ratio(c.get("ours_bf16", {}).get("ratio_bf16")), ms(c.get("cudnn_bf16_nhwc", {}).get("ms")))
                          for c in tc]))
    if data["memory"]:
        out.append("\nMemory-bound ops (ratio to a device-to-device copy of the same bytes, and to cuDNN's op where "
                   "it has one):\n")
        out.append(table(["op", "shape", "time", "GB/s", "vs copy", "vs cuDNN"],
                         [(r["op"], r["shape"], ms(r.get("ms")), plain(r.get("GB/s"), "{:,.0f}"),
                           ratio(r.get("ratio_memcpy")), ratio(r.get("ratio_cudnn")) if "ratio_cudnn" in r else "")
                          for r in data["memory"]]))
    if data.get("other"):
        out.append("\nThe other rows of the op table the benchmark times (batch 4, null bias, stencils, earlier shapes):\n")
        out.append(table(["op", "shape", "time", "GFLOP/s", "GB/s"],
                         [(r["op"], r["shape"], ms(r.get("ms")), plain(r.get("GFLOP/s"), "{:,.0f}"),
                           plain(r.get("GB/s"), "{:,.0f}")) for r in data["other"]]))
    if data["errors"]:
        out.append("\nRows that failed:\n")
        out.append(table(["row", "error"], [(e["name"], e["error"][:160]) for e in data["errors"]]))
    return "\n".join(out) + "\n"


def op_time_table(data, top=16):
    """Where our step's time goes, op by op (bench_unet step --op-times), in each precision measured."""
    runs = [(p, data.get(k) or {}) for p, k in (("FP32", "ours_time"), ("TF32", "ours_time_tf32"), ("BF16", "ours_time_bf16"))]
    runs = [(p, r) for p, r in runs if r.get("op_times")]
    if not runs:
        return ""
    per = {p: {o["op"]: o for o in r["op_times"]} for p, r in runs}
    last = per[runs[-1][0]]
    names = sorted({n for p in per for n in per[p]}, key=lambda n: -(last.get(n) or {}).get("ms", 0.0))
    rows = []
    for n in names[:top]:
        calls = next((per[p][n]["calls"] for p, _ in runs if n in per[p]), "")
        rows.append([n, calls] + [f"{per[p][n]['ms']:.3f}" if n in per[p] else "-" for p, _ in runs])
    if len(names) > top:
        rows.append([f"the other {len(names) - top} ops", ""] +
                    [f"{sum(per[p][n]['ms'] for n in names[top:] if n in per[p]):.3f}" for p, _ in runs])
    rows.append(["sum of the ops", ""] + [plain(r.get("op_ms_sum"), "{:.3f}") for _, r in runs])
    rows.append(["wall time of a step (timed with the ops)", ""] + [plain(r.get("op_times_wall_ms"), "{:.3f}")
                                                                     for _, r in runs])
    return ("\nWhere a step's time goes: the device's milliseconds per step by op (CUDA events around each op, "
            f"{int(num(runs[0][1].get('op_times_steps')) or 0)} eager steps; a backward pass as \"<op> backward\"), "
            "largest in the last precision first:\n\n" + table(["op", "calls", *[p for p, _ in runs]], rows))


def section_torch(data):
    out = []
    ot, tt = data.get("ours_time") or {}, data.get("torch_time") or {}
    modes = tt.get("modes", {})
    ours_ms = num(ot.get("step_ms_median"))
    labels = {"fp32": ("PyTorch eager", "FP32, TF32 off"), "tf32": ("PyTorch eager", "TF32"),
              "bf16": ("PyTorch eager", "BF16 autocast, channels-last"),
              "compile": ("PyTorch torch.compile", "FP32, TF32 off")}
    rows = [("unet-cuda", "FP32 (FMA)", ms(ours_ms), "1.00" if ours_ms else NM, mib(ot.get("bytes_reserved")), "")]
    same = []  # the graph's losses against the eager run's, same precision, same seed (dropout on)
    for k, prec in (("ours_time_tf32", "TF32 tensor cores"), ("ours_time_bf16", "BF16 tensor cores"),
                    ("ours_time_fp32_graph", "FP32 (FMA), CUDA graph"), ("ours_time_tf32_graph", "TF32, CUDA graph"),
                    ("ours_time_bf16_graph", "BF16, CUDA graph")):
        r = data.get(k) or {}
        t = num(r.get("step_ms_median"))
        if t:
            rows.append(("unet-cuda", prec, ms(t), ratio(t / ours_ms) if ours_ms else NM, mib(r.get("bytes_reserved")), ""))
        eager_key = "ours_time" if k == "ours_time_fp32_graph" else k[:-len("_graph")]
        eager = (data.get(eager_key) or {}).get("losses") if k.endswith("_graph") else None
        if eager and r.get("losses"):
            same.append(f"{prec.split(',')[0]} " + ("the same bits" if eager == r["losses"] else
                                                    f"**DIFFERENT** ({r['losses']} against {eager})"))
    for k, (impl, prec) in labels.items():
        r = modes.get(k, {})
        t = num(r.get("step_ms_median"))
        rows.append((impl, prec, ms(t), ratio(t / ours_ms) if t and ours_ms else NM, mib(r.get("max_memory_reserved")),
                     f"first step {secs(r.get('first_step_s'))}" if r else ""))
    out.append(f"One training step (batch 1, {ot.get('tile', tt.get('tile', 572))}x{ot.get('tile', tt.get('tile', 572))} "
               "tile, weighted loss, SGD momentum 0.99, dropout 0.5), median wall time with the device synchronised "
               "after each step; time / ours (above 1: PyTorch is slower):\n")
    out.append(table(["implementation", "arithmetic", "step", "time / ours", "peak memory (reserved)", ""], rows))
    if same:
        out.append("\nThe three first losses with a CUDA graph (step 1 eager, 2 captured, 3 replayed) against the eager "
                   "run's: " + "; ".join(same) + ".\n")
    out.append(op_time_table(data))
    st = data.get("torch_steps") or {}
    if st.get("our_losses"):
        where = f"on {st.get('device', '?')}, tile {st.get('tile', '?')}"
        out.append(f"\nThree steps from the same weights and the same tile, FP32, dropout off ({where}); "
                   f"tolerance {st.get('rtol')} relative: **{'ok' if st.get('ok') else 'FAIL'}**\n")
        out.append(table(["step", "unet-cuda loss", "PyTorch loss", "rel. difference"],
                         [(i + 1, plain(a, "{:.8f}"), plain(b, "{:.8f}"), plain(c, "{:.2e}"))
                          for i, (a, b, c) in enumerate(zip(st["our_losses"], st["torch_losses"], st["rel_diff"]))]))
    else:
        ours = (data.get("ours_steps") or {}).get("losses")
        out.append(f"\nThree steps from the same weights: {NM}" + (f" (ours alone: {', '.join(plain(x, '{:.6f}') for x in ours)})" if ours else "") + ".")
    return "\n".join(out) + "\n"


def section_predict(data):
    tf = data.get("torch_forward") or {}
    rows = []
    for key, what in (("p512", "512x512, one tile"), ("p512_tta", "512x512, one tile, 8-fold TTA"),
                      ("p4096", "4096x4096")):
        r = data.get(key) or {}
        rows.append((what, f"{r.get('tile', '?')} -> {r.get('tile_out', '?')}" if r else NM, r.get("tiles", NM),
                     r.get("batch", NM), secs(r.get("seconds_median")), mib(r.get("bytes_reserved")),
                     mib(r.get("peak_bytes_in_use"))))
    out = ["Overlap-tile prediction of a random image (mirror extrapolation, softmax, the map streamed band by band "
           "to the host), median of repeated runs; memory: the engine's caching allocator (reserved = held from the "
           "driver, peak = the most handed out at once):\n",
           table(["image", "tile (in -> out)", "tiles", "batch", "time", "GPU memory reserved", "peak in use"], rows)]
    out.append(f"\nPyTorch's forward + softmax on the same tile{' (' + str(tf['tile']) + ' px)' if tf.get('tile') else ''} (FP32, TF32 off, no "
               f"autograd): {ms(tf.get('ms_median'))}, peak reserved {mib(tf.get('max_memory_reserved'))}.")
    p = data.get("plumbing")
    if p:
        out.append(f"\n(Dry run: prediction walked on the CPU, {p.get('size')}x{p.get('size')} in {p.get('tiles')} tile.)")
    return "\n".join(out) + "\n"


def section_train(data, stem, dry):
    segs = data["segments"]
    if not segs:
        return f"Training: {NM}.\n"
    last = segs[-1]
    wall = sum(s["wall_s"] or 0 for s in segs)
    its = [s["its_per_s"] for s in segs if s["its_per_s"]]
    config = ("a depth-2, base-4 network on 108x108 tiles on the CPU (the dry run's walk; on a GPU: the paper's "
              "configuration)" if dry else
              "the paper's configuration (U-Net 64..1024 channels, 572x572 tiles, batch 1, SGD momentum 0.99, "
              "lr 0.002, Eq. 2 weights w0 10 sigma 5, dropout 0.5, elastic deformations)")
    out = [f"`unet train` with {config}, run in "
           f"{len(segs)} segments resumed from their checkpoints: **{last['end_iteration']} iterations** in "
           f"{wall:.0f} s, {plain(its[-1] if its else None, '{:.2f}')} iterations/s in the training loop "
           f"(validation included); loss {plain(data['loss_first'])} at the first iteration, "
           f"{plain(data['loss_last_100'])} averaged over the last {min(100, data['iterations'])}."]
    if data.get("note"):
        out.append(f"\n{data['note']}.")
    evals = data["evals"]
    vrows = []
    for v in data["val"]:
        e = evals.get(v["iteration"]) or {}
        isbi = [plain(e.get(k), f) for k, f in (("pixel_error", "{:.4f}"), ("rand_error", "{:.4f}"),
                                                 ("rand_error_thinned", "{:.4f}"), ("warping_error", "{:.6f}"))] if e else [""] * 4
        vrows.append((v["iteration"], plain(v["loss"]), plain(v["pixel_error"]), *isbi))
    for it, e in sorted(evals.items()):
        if e and not any(v["iteration"] == it for v in data["val"]):
            vrows.append((it, "", "", plain(e.get("pixel_error")), plain(e.get("rand_error")),
                          plain(e.get("rand_error_thinned")), plain(e.get("warping_error"), "{:.6f}")))
    vrows.sort(key=lambda r: r[0])
    out.append("\nValidation on the held-out slices: loss and pixel mismatch at 0.5 every 100 iterations; at the end of "
               "each segment the ISBI 2012 scores (each slice at its best threshold, mean over slices):\n")
    out.append(table(["iteration", "val loss", "pixel mismatch", "ISBI pixel error", "Rand error", "Rand (thinned)",
                      "warping error"], vrows))
    if data["loss_png"]:
        out.append(f"\n![loss curve]({stem}-loss.png)")
    return "\n".join(out) + "\n"


def write_report(work, out_dir):
    machine = load_json(os.path.join(work, "machine.json")) or {}
    run = load_json(os.path.join(work, "run.json")) or {}
    results = {"machine": machine, "run": run, "phases": {}}
    status, data, total = {}, {}, 0.0
    for n in PHASES:
        d, r = phase_status(work, n)
        status[n] = r
        total += num(r.get("seconds")) or 0.0
        data[n] = PARSERS[n](d) if n in PARSERS and os.path.isdir(d) else None
        results["phases"][PHASES[n]] = {"result": r, "data": data[n]}
    date = machine.get("date", "undated")
    commit = (machine.get("commit") or "unknown")[:7]
    stem = f"gpu-{date}-{commit}"
    dry = machine.get("dry_run") or not machine.get("have_gpu")
    md = [f"# GPU check: {machine.get('gpu') or 'no GPU'}, {date}, commit {commit}", ""]
    if dry:
        md += ["**Dry run on a machine without a GPU**: every phase walked, the GPU figures are *not measured*. "
               "Run `tools/gpu_check.sh` on a GPU machine for the real report.", ""]
    md += [f"Written by `tools/gpu_check.sh` (docs/gpu.md). To keep it: copy this file to `bench/results/{stem}.md`"
           + (f" and `loss.png` beside it as `bench/results/{stem}-loss.png`" if (data.get(7) or {}).get("loss_png") else "")
           + ".", "", machine_table(machine, run, total), "", "## Phases", ""]
    md.append(table(["#", "phase", "status", "time", "budget", "note"],
                    [(n, TITLES[n], status[n].get("status", "?"), f"{status[n]['seconds']:.1f} s" if "seconds" in status[n] else "",
                      f"{status[n]['budget']} s" if "budget" in status[n] else "", (status[n].get("reason") or "")[:300])
                     for n in PHASES]))
    md.append("")
    sections = {2: section_tests, 3: section_sanitize, 4: section_bench, 5: section_torch, 6: section_predict}
    for n, title in TITLES.items():
        if n == 1:
            continue
        md.append(f"## {n}. {title[0].upper() + title[1:]}\n")
        if data[n] is None:
            md.append(f"{NM} (phase {status[n].get('status')}).\n")
        elif n == 7:
            md.append(section_train(data[n], stem, dry))
        else:
            md.append(sections[n](data[n]))
    os.makedirs(out_dir, exist_ok=True)
    for name, text in (("summary.md", "\n".join(md)), ("results.json", json.dumps(results, indent=1, default=str) + "\n")):
        tmp = os.path.join(out_dir, name + ".tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(out_dir, name))
    return status


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("work")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    status = write_report(a.work, a.out or a.work)
    print(" ".join(f"{n}:{r.get('status')}" for n, r in status.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Interleaved conv2d / conv2d_backward ratios against PyTorch for one dtype,
every algorithm, every conv layer of suite.json.

    python benchmarks/conv_ratios.py --threads 2 --dtype float64
    python benchmarks/conv_ratios.py --threads 2 --backward --layers lenet_c2,cifar_res64

`python -m fastconv.bench` is the main harness (float32, ceilings, JSON,
plots); this script adds float64 and a compact table of the three
algorithms side by side.  Timing: rounds of (auto, direct, im2col, torch)
in rotating order, each sample preceded by an untimed call, median of the
rounds after a warm-up; the backward compares the three gradients with
torch.autograd.grad of input, weight and bias.
"""
import argparse
import json
import time

import numpy as np
import torch

import fastconv as fc
from fastconv.bench.suite import load_suite


def _median_times(fns, rounds, repeats):
    for fn in fns:
        fn()
    samples = [[] for _ in fns]
    for k in range(rounds):
        for j in range(len(fns)):
            i = (j + k) % len(fns)
            fns[i]()
            t = time.perf_counter()
            for _ in range(repeats):
                fns[i]()
            samples[i].append((time.perf_counter() - t) / repeats)
    return [float(np.median(s)) for s in samples]


def _layer_fns(layer, dtype, backward):
    N, C, H, W, K, R, S = (layer[k] for k in ("N", "C", "H", "W", "K", "R", "S"))
    kw = dict(stride=layer["stride"], padding=layer["padding"],
              dilation=layer["dilation"], groups=layer["groups"])
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // layer["groups"], R, S)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    flops = fc.shapes.conv2d_flops(x.shape, w.shape, **kw)
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    if not backward:
        fns = [lambda a=a: fc.conv2d(x, w, b, algorithm=a, **kw)
               for a in ("auto", "direct", "im2col")]
        fns.append(lambda: torch.nn.functional.conv2d(tx, tw, tb, **kw))
        return fns, flops
    g = rng.standard_normal(fc.conv2d(x, w, b, **kw).shape).astype(dtype)
    fns = [lambda a=a: fc.conv2d_backward(g, x, w, algorithm=a, **kw)
           for a in ("auto", "direct", "im2col")]
    px, pw, pb = (t.clone().requires_grad_() for t in (tx, tw, tb))
    out = torch.nn.functional.conv2d(px, pw, pb, **kw)
    tg = torch.from_numpy(g)
    fns.append(lambda: torch.autograd.grad(out, (px, pw, pb), tg, retain_graph=True))
    return fns, 2 * flops


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    ap.add_argument("--backward", action="store_true")
    ap.add_argument("--layers", default="")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--json")
    args = ap.parse_args()
    fc.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    dtype = np.dtype(args.dtype)
    layers = load_suite()["conv2d"]
    if args.layers:
        layers = [L for L in layers if L["name"] in args.layers.split(",")]
    print(f"conv2d{' backward' if args.backward else ''}, {dtype}, {args.threads} "
          f"thread(s), {time.strftime('%Y-%m-%d %H:%M')}, load {np.round(__import__('os').getloadavg(), 2).tolist()}")
    print(f"{'layer':18s} {'auto':>7s} {'direct':>7s} {'im2col':>7s}   torch GFLOP/s  (speedups vs torch)")
    rows, logs = [], {"auto": [], "direct": [], "im2col": []}
    with torch.inference_mode(mode=not args.backward):
        for L in layers:
            fns, flops = _layer_fns(L, dtype, args.backward)
            probe = time.perf_counter(); fns[3](); once = time.perf_counter() - probe
            repeats = max(1, min(50, int(0.02 / max(once, 1e-6))))
            t_auto, t_dir, t_im, t_torch = _median_times(fns, args.rounds, repeats)
            sp = [t_torch / t for t in (t_auto, t_dir, t_im)]
            for key, v in zip(logs, sp):
                logs[key].append(np.log(v))
            rows.append({"layer": L["name"], "speedup_auto": sp[0], "speedup_direct": sp[1],
                         "speedup_im2col": sp[2], "torch_gflops": flops / t_torch / 1e9})
            print(f"{L['name']:18s} {sp[0]:6.2f}x {sp[1]:6.2f}x {sp[2]:6.2f}x   {flops / t_torch / 1e9:8.1f}",
                  flush=True)
    gm = {k: float(np.exp(np.mean(v))) for k, v in logs.items()}
    print("geomean            " + " ".join(f"{gm[k]:6.2f}x" for k in logs))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"dtype": str(dtype), "threads": args.threads, "backward": args.backward,
                       "rows": rows, "geomean": gm}, f, indent=1)


if __name__ == "__main__":
    main()

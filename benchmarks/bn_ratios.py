"""Batch norm and fused conv-BN-ReLU against PyTorch and ONNX Runtime.

Every number is a ratio measured in one run, interleaved (A B A B ...),
median of several repeats after a warm-up, with the same thread count for
everyone (torch.set_num_threads, fastconv.set_num_threads, ONNX Runtime's
intra_op_num_threads).  Batch norm is memory-bound, so its rate is also
given in GB/s against a ~256 MB np.copyto measured in the same run.

    python benchmarks/bn_ratios.py                 # both tables, 2 threads
    python benchmarks/bn_ratios.py --only bn --repeats 21
    python benchmarks/bn_ratios.py --only conv --layers vgg_512x14,r50_3x3_512x7

Layers come from fastconv/bench/suite.json.  Needs torch; the ONNX Runtime
column needs onnxruntime and onnx (the `bench` extra) and is left out
without them.
"""
import os
import sys

# Before any OpenMP runtime loads (fastconv's and the one torch bundles
# both read these at load time).  --passive: idle threads sleep at once.
# Otherwise both runtimes spin for fastconv's default 3000 rounds, then
# sleep, and ONNX Runtime's threads spin during a run and stop at its end
# (session.force_spinning_stop; its default keeps them spinning for
# milliseconds after each run, which slows whatever is timed next).
if __name__ == "__main__" and "--passive" in sys.argv:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
elif __name__ == "__main__" and "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "3000")   # fastconv/_config.py

import argparse
import json
import math
import statistics
import time

import numpy as np

import fastconv as fc
from fastconv import _params, conv as fc_conv

SUITE = os.path.join(os.path.dirname(fc.__file__), "bench", "suite.json")


# --------------------------------------------------------------------------
# timing

def interleaved(fns, repeats, warmup=2, min_time=0.02, settle=True, gap=0.0):
    """Median and minimum seconds per call of each callable in `fns` (a
    dict), timed in rounds A B C, B C A, C A B ...; a callable faster than
    min_time is run several times per sample (the same count in every
    round).  fastconv, PyTorch and ONNX Runtime each keep their own thread
    pool, whose threads spin a while after a call and slow whatever runs
    next: with `settle`, each sample follows one untimed call of the same
    callable, and the rotation makes every callable follow every other
    equally often.  `gap` seconds of sleep before each sample let threads
    that spin for milliseconds after a call (ONNX Runtime's) stop first."""
    loops = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            fn()
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        loops[name] = max(1, int(min_time / max(dt, 1e-7)))
    samples = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        # rotated each round, so that each callable follows each other one
        # equally often (a runtime's spinning threads slow the next one)
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, n = fns[name], loops[name]
            if gap:
                time.sleep(gap)
            if settle:   # the other runtimes' spinning threads go idle
                fn()
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - t0) / n)
    return ({name: statistics.median(v) for name, v in samples.items()},
            {name: min(v) for name, v in samples.items()})


def copy_bandwidth(repeats):
    """GB/s of np.copyto between two 256 MB float32 arrays (read + write)."""
    src = np.ones(64 << 20, np.float32)
    dst = np.empty_like(src)
    t, _ = interleaved({"copy": lambda: np.copyto(dst, src)}, repeats, warmup=1)
    return 2 * src.nbytes / t["copy"] / 1e9


def geomean(values):
    return math.exp(sum(math.log(v) for v in values) / len(values))


# --------------------------------------------------------------------------
# batch norm: training forward + backward

def bn_cases(layer, torch, rng):
    N, C, H, W = (layer[k] for k in "NCHW")
    shape = (N, C, H, W)
    x = (rng.uniform(-2, 2, (1, C, 1, 1))
         + rng.standard_normal(shape)).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    w = rng.uniform(0.5, 2, C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    rm, rv = np.zeros(C, np.float32), np.ones(C, np.float32)

    def fc_fwd():
        return fc.batch_norm(x, rm, rv, w, b, training=True)

    def fc_bwd():
        return fc.batch_norm_backward(g, x, w, training=True)

    def fc_both():
        fc.batch_norm(x, rm, rv, w, b, training=True)
        fc.batch_norm_backward(g, x, w, training=True)

    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    tw, tb = torch.from_numpy(w), torch.from_numpy(b)
    trm, trv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    aten = torch.ops.aten
    saved = aten.native_batch_norm(tx, tw, tb, trm, trv, True, 0.1, 1e-5)

    def torch_fwd():
        return aten.native_batch_norm(tx, tw, tb, trm, trv, True, 0.1, 1e-5)

    def torch_bwd():
        return aten.native_batch_norm_backward(
            tg, tx, tw, trm, trv, saved[1], saved[2], True, 1e-5,
            [True, True, True])

    def torch_both():
        _, mean, invstd = aten.native_batch_norm(tx, tw, tb, trm, trv, True,
                                                 0.1, 1e-5)
        aten.native_batch_norm_backward(tg, tx, tw, trm, trv, mean, invstd,
                                        True, 1e-5, [True, True, True])

    xr, wr, br = (t.clone().requires_grad_(True) for t in (tx, tw, tb))

    def torch_autograd():
        y = torch.nn.functional.batch_norm(xr, trm, trv, wr, br, training=True)
        torch.autograd.grad(y, (xr, wr, br), tg)

    return {"fc": fc_both, "torch_aten": torch_both, "torch_autograd": torch_autograd,
            "fc_fwd": fc_fwd, "torch_fwd": torch_fwd, "fc_bwd": fc_bwd,
            "torch_bwd": torch_bwd}, x.nbytes


def run_bn(layers, torch, repeats, copy_gbs):
    rng = np.random.default_rng(0)
    rows = []
    for layer in layers:
        fns, nbytes = bn_cases(layer, torch, rng)
        t, tmin = interleaved(fns, repeats)
        torch_best = min(t["torch_aten"], t["torch_autograd"])
        # least traffic: forward reads x, writes y; backward reads x and
        # grad_output, writes grad_input: five tensors
        gbs = 5 * nbytes / t["fc"] / 1e9
        rows.append(dict(
            name=layer["name"], shape=f'{layer["N"]}x{layer["C"]}x{layer["H"]}x{layer["W"]}',
            fc_us=t["fc"] * 1e6, aten_us=t["torch_aten"] * 1e6,
            autograd_us=t["torch_autograd"] * 1e6,
            speedup=torch_best / t["fc"],
            speedup_min=min(tmin["torch_aten"], tmin["torch_autograd"]) / tmin["fc"],
            fwd=t["torch_fwd"] / t["fc_fwd"], bwd=t["torch_bwd"] / t["fc_bwd"],
            gbs=gbs, frac=gbs / copy_gbs))
    return rows


def print_bn(rows, copy_gbs):
    print(f"\n### Batch norm: training forward + backward, float32 "
          f"(np.copyto {copy_gbs:.1f} GB/s)\n")
    print("| layer | N x C x H x W | fastconv us | torch aten us | torch autograd us "
          "| speedup | (of mins) | fwd | bwd | GB/s | of copy |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f'| {r["name"]} | {r["shape"]} | {r["fc_us"]:.0f} | {r["aten_us"]:.0f} '
              f'| {r["autograd_us"]:.0f} | {r["speedup"]:.2f}x | {r["speedup_min"]:.2f}x '
              f'| {r["fwd"]:.2f}x | {r["bwd"]:.2f}x | {r["gbs"]:.1f} | {r["frac"]:.0%} |')
    print(f'\ngeometric mean speedup over PyTorch (the faster of aten and '
          f'autograd): {geomean([r["speedup"] for r in rows]):.2f}x of medians, '
          f'{geomean([r["speedup_min"] for r in rows]):.2f}x of minima')


# --------------------------------------------------------------------------
# conv2d -> batch_norm (eval) -> relu

def ort_session(layer, w, b, rm, rv, gamma, beta, eps, threads, entries):
    """An ONNX Runtime session of Conv -> BatchNormalization -> Relu, with
    the session config `entries` (a dict), or None without
    onnxruntime/onnx."""
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    N, C, H, W = (layer[k] for k in "NCHW")
    K, R, S = layer["K"], layer["R"], layer["S"]
    p, st, d = layer["padding"], layer["stride"], layer["dilation"]
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (w, "W"), (b, "B"), (gamma, "gamma"), (beta, "beta"), (rm, "mean"),
        (rv, "var"))]
    nodes = [
        helper.make_node("Conv", ["x", "W", "B"], ["c"], kernel_shape=[R, S],
                         strides=[st, st], pads=[p, p, p, p], dilations=[d, d],
                         group=layer["groups"]),
        helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"],
                         ["bn"], epsilon=eps),
        helper.make_node("Relu", ["bn"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "conv_bn_relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [N, C, H, W])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    for key, value in entries.items():
        opts.add_session_config_entry(key, value)
    return ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])


def conv_cases(layer, torch, rng, threads):
    N, C, H, W = (layer[k] for k in "NCHW")
    K, R, S, G = layer["K"], layer["R"], layer["S"], layer["groups"]
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = (rng.standard_normal((K, C // G, R, S)) / math.sqrt(C // G * R * S)).astype(np.float32)
    b = rng.standard_normal(K).astype(np.float32) * 0.1
    rm = rng.standard_normal(K).astype(np.float32) * 0.1
    rv = rng.uniform(0.5, 2, K).astype(np.float32)
    gamma = rng.uniform(0.5, 2, K).astype(np.float32)
    beta = rng.standard_normal(K).astype(np.float32) * 0.1
    eps = 1e-5
    kw = dict(stride=layer["stride"], padding=layer["padding"],
              dilation=layer["dilation"], groups=G)

    def fc_bn():
        return fc.conv2d_bn(x, w, b, rm, rv, gamma, beta, **kw, eps=eps,
                            activation="relu")

    fw, fb = fc.fuse_conv_bn(w, b, rm, rv, gamma, beta, eps)
    p = _params.conv_params(x.shape, w.shape, **kw)

    def fc_prefolded():   # the convolution alone, weights folded beforehand
        return fc_conv._run_conv(x, fw, fb, p, "auto", None, relu=True)

    def fc_fold():
        return fc.fuse_conv_bn(w, b, rm, rv, gamma, beta, eps)

    F = torch.nn.functional
    tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
    trm, trv, tg, tbeta = (torch.from_numpy(a) for a in (rm, rv, gamma, beta))

    def torch_eager():
        with torch.no_grad():
            y = F.conv2d(tx, tw, tb, **kw)
            y = F.batch_norm(y, trm, trv, tg, tbeta, training=False, eps=eps)
            return F.relu(y)

    fns = {"fc": fc_bn, "fc_prefolded": fc_prefolded, "fc_fold": fc_fold,
           "torch": torch_eager}
    passive = os.environ.get("OMP_WAIT_POLICY") == "PASSIVE"
    sess = ort_session(layer, w, b, rm, rv, gamma, beta, eps, threads,
                       {"session.intra_op.allow_spinning": "0"} if passive
                       else {"session.force_spinning_stop": "1"})
    if sess is not None:
        feed = {"x": x}
        fns["ort"] = lambda: sess.run(None, feed)
        ref = torch_eager().numpy()
        got = sess.run(None, feed)[0]
        assert np.allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max()), \
            f"{layer['name']}: ONNX Runtime disagrees with torch"
    ref = torch_eager().numpy()
    got = fc_bn()
    assert np.allclose(got, ref, rtol=1e-3, atol=1e-3 * np.abs(ref).max()), \
        f"{layer['name']}: fastconv disagrees with torch"
    return fns, p


def run_conv(layers, torch, repeats, threads, gap):
    rng = np.random.default_rng(1)
    rows = []
    for layer in layers:
        fns, p = conv_cases(layer, torch, rng, threads)
        t, tmin = interleaved(fns, repeats, gap=gap)
        has_ort = "ort" in t
        rows.append(dict(
            name=layer["name"], gflop=p.flops / 1e9,
            fc_ms=t["fc"] * 1e3, pre_ms=t["fc_prefolded"] * 1e3,
            fold_ms=t["fc_fold"] * 1e3, torch_ms=t["torch"] * 1e3,
            ort_ms=t["ort"] * 1e3 if has_ort else None,
            algo=fc_conv.choose_algorithm(p, np.dtype(np.float32)),
            gflops=p.flops / t["fc"] / 1e9,
            vs_torch=t["torch"] / t["fc"],
            vs_torch_min=tmin["torch"] / tmin["fc"],
            vs_ort=t["ort"] / t["fc"] if has_ort else None,
            vs_ort_min=tmin["ort"] / tmin["fc"] if has_ort else None,
            pre_vs_ort=t["ort"] / t["fc_prefolded"] if has_ort else None))
    return rows


def print_conv(rows):
    print("\n### conv2d_bn(activation='relu'), float32, against PyTorch eager "
          "(conv2d, batch_norm, relu) and ONNX Runtime (Conv+BatchNormalization+Relu)\n")
    print("| layer | algo | GFLOP | fastconv ms | GFLOP/s | torch ms | ORT ms "
          "| vs torch | (of mins) | vs ORT | (of mins) | fold ms | prefolded ms "
          "| prefolded vs ORT |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")

    def f(v, fmt):
        return "-" if v is None else format(v, fmt)
    for r in rows:
        print(f'| {r["name"]} | {r["algo"]} | {r["gflop"]:.3f} | {r["fc_ms"]:.2f} '
              f'| {r["gflops"]:.0f} | {r["torch_ms"]:.2f} | {f(r["ort_ms"], ".2f")} '
              f'| {r["vs_torch"]:.2f}x | {r["vs_torch_min"]:.2f}x '
              f'| {f(r["vs_ort"], ".2f")}x | {f(r["vs_ort_min"], ".2f")}x '
              f'| {r["fold_ms"]:.3f} | {r["pre_ms"]:.2f} | {f(r["pre_vs_ort"], ".2f")}x |')

    def gm(key):
        return geomean([r[key] for r in rows])
    print(f'\ngeometric mean vs torch eager: {gm("vs_torch"):.2f}x (of minima '
          f'{gm("vs_torch_min"):.2f}x)' + (
              f'; vs ONNX Runtime: {gm("vs_ort"):.2f}x (of minima {gm("vs_ort_min"):.2f}x)'
              if all(r["vs_ort"] for r in rows) else "; ONNX Runtime not installed"))
    print(f'below 1.2x torch: {[r["name"] for r in rows if r["vs_torch"] < 1.2]}; '
          f'below 1.0x ORT: {[r["name"] for r in rows if r["vs_ort"] and r["vs_ort"] < 1.0]}')


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--only", choices=["bn", "conv"])
    ap.add_argument("--layers", help="comma-separated layer names")
    ap.add_argument("--json", help="also write the rows to this file")
    ap.add_argument("--passive", action="store_true",
                    help="idle threads sleep instead of spinning, for everyone "
                         "(OMP_WAIT_POLICY=PASSIVE, ONNX Runtime allow_spinning=0): "
                         "spinning threads lose to other processes on a "
                         "shared, oversubscribed machine")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(args.threads)
    fc.set_num_threads(args.threads)
    with open(SUITE) as f:
        suite = json.load(f)
    pick = set(args.layers.split(",")) if args.layers else None

    def chosen(kind):
        return [l for l in suite[kind] if pick is None or l["name"] in pick]
    print(f"fastconv {fc.__version__} ({fc._kernels.isa_active()}), torch "
          f"{torch.__version__}, {args.threads} threads, median of {args.repeats}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}, "
          f"GOMP_SPINCOUNT={os.environ.get('GOMP_SPINCOUNT', 'default')}, "
          f"load average {os.getloadavg()[0]:.1f}")
    copy_before = copy_bandwidth(5)
    out = {}
    if args.only in (None, "bn") and chosen("batch_norm"):
        bn_rows = run_bn(chosen("batch_norm"), torch, args.repeats, copy_before)
        out["bn"] = bn_rows
    if args.only in (None, "conv") and chosen("conv2d"):
        gap = 0.0
        out["conv"] = run_conv(chosen("conv2d"), torch, args.repeats, args.threads, gap)
    copy_after = copy_bandwidth(5)
    copy_gbs = statistics.mean([copy_before, copy_after])
    print(f"np.copyto: {copy_before:.1f} GB/s before, {copy_after:.1f} GB/s after")
    if "bn" in out:
        for r in out["bn"]:
            r["frac"] = r["gbs"] / copy_gbs
        print_bn(out["bn"], copy_gbs)
    if "conv" in out:
        print_conv(out["conv"])
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

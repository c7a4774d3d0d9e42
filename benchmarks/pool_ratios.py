"""Pooling: fastconv against PyTorch (CPU) and against memory speed.

For every pool2d layer of fastconv/bench/suite.json (float32), in one
interleaved run (fastconv and torch in turn, the order alternating each
round, np.copyto samples among them), each sample preceded by one untimed
call of the same function, medians after a warm-up:

- forward (max: without indices), forward with indices (max only) and
  backward; torch's backward is called as its ATen op
  (max_pool2d_with_indices_backward / avg_pool2d_backward), no autograd;
- speedup = torch time / fastconv time (medians; "of mins": the same ratio
  of the fastest samples);
- %copy = (bytes moved / fastconv time) / (np.copyto bandwidth), bytes moved
  being the least a kernel must touch: input read once + output written
  once (+ the int64 indices, written by the forward with indices, read by
  the backward); copyto's bandwidth counts its read and its write of a
  ~256 MB array in the same way.  Above 100%: the layer's data (re-used
  call after call) sits partly in the 32 MB L3.

    python benchmarks/pool_ratios.py [--threads 2] [--repeats 15] [--passive]
                                     [--markdown] [--layers a,b]

--passive sets OMP_WAIT_POLICY=PASSIVE before the OpenMP runtimes load
(fastconv's and torch's), as benchmarks/bn_ratios.py does: on a shared,
oversubscribed machine spinning workers lose their CPU and every parallel
region then waits for a scheduler tick (medians in multiples of 4-8 ms for
both libraries); sleeping workers cost a wake-up (10-200 us) instead.
"""
import os
import sys

if __name__ == "__main__" and "--passive" in sys.argv:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

import argparse
import json
import platform
import statistics
import time

import numpy as np

import fastconv as fc

SUITE = os.path.join(os.path.dirname(fc.__file__), "bench", "suite.json")


def timed(fn, min_time):
    """Seconds per call of fn after one untimed call, calling it often
    enough to last min_time."""
    fn()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        t = time.perf_counter() - t0
        if t >= min_time:
            return t / n
        n = max(n * 2, int(n * min_time / max(t, 1e-9)) + 1)


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except OSError:
        return float("nan")


def layer_cases(layer, torch):
    """[(kind, fastconv callable, torch callable, bytes moved)] of a layer."""
    F = torch.nn.functional
    aten = torch.ops.aten
    rng = np.random.default_rng(0)
    N, C, H, W = layer["N"], layer["C"], layer["H"], layer["W"]
    k, s, p, ceil = layer["kernel"], layer["stride"], layer["padding"], layer["ceil_mode"]
    x = rng.standard_normal((N, C, H, W), dtype=np.float32)
    xt = torch.from_numpy(x)
    cases = []
    if layer["op"] == "max":
        y, idx = fc.max_pool2d(x, k, s, p, 1, ceil, return_indices=True)
        g = rng.standard_normal(y.shape, dtype=np.float32)
        gt, it = torch.from_numpy(g), torch.from_numpy(idx)
        cases.append(("fwd", lambda: fc.max_pool2d(x, k, s, p, 1, ceil),
                      lambda: F.max_pool2d(xt, k, s, p, 1, ceil),
                      x.nbytes + y.nbytes))
        cases.append(("fwd+idx", lambda: fc.max_pool2d(x, k, s, p, 1, ceil, True),
                      lambda: F.max_pool2d(xt, k, s, p, 1, ceil, True),
                      x.nbytes + y.nbytes + idx.nbytes))
        cases.append(("bwd", lambda: fc.max_pool2d_backward(g, idx, x.shape),
                      lambda: aten.max_pool2d_with_indices_backward(
                          gt, xt, [k, k], [s, s], [p, p], [1, 1], ceil, it),
                      g.nbytes + idx.nbytes + x.nbytes))
    else:
        cip = layer.get("count_include_pad", True)
        y = fc.avg_pool2d(x, k, s, p, ceil, cip)
        g = rng.standard_normal(y.shape, dtype=np.float32)
        gt = torch.from_numpy(g)
        cases.append(("fwd", lambda: fc.avg_pool2d(x, k, s, p, ceil, cip),
                      lambda: F.avg_pool2d(xt, k, s, p, ceil, cip),
                      x.nbytes + y.nbytes))
        cases.append(("bwd", lambda: fc.avg_pool2d_backward(g, x.shape, k, s, p, ceil, cip),
                      lambda: aten.avg_pool2d_backward(gt, xt, [k, k], [s, s], [p, p],
                                                       ceil, cip, None),
                      g.nbytes + x.nbytes))
    return cases


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--min-time", type=float, default=0.02,
                    help="seconds each sample lasts at least (calls are repeated)")
    ap.add_argument("--copy-mb", type=int, default=256)
    ap.add_argument("--layers", default="", help="comma-separated layer names")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--passive", action="store_true",
                    help="OMP_WAIT_POLICY=PASSIVE for both OpenMP runtimes (see above)")
    args = ap.parse_args(argv)

    import torch
    torch.set_num_threads(args.threads)
    fc.set_num_threads(args.threads)
    with open(SUITE) as f:
        layers = json.load(f)["pool2d"]
    if args.layers:
        wanted = set(args.layers.split(","))
        layers = [l for l in layers if l["name"] in wanted]

    src = np.random.default_rng(1).standard_normal(args.copy_mb * 2**18, dtype=np.float32)
    dst = np.empty_like(src)
    copy = lambda: np.copyto(dst, src)  # noqa: E731
    copy_bytes = 2 * src.nbytes

    cases = [(l["name"], kind, f_fc, f_t, nbytes)
             for l in layers for kind, f_fc, f_t, nbytes in layer_cases(l, torch)]
    # warm-up: every callable once, and the copy
    copy()
    for _, _, f_fc, f_t, _ in cases:
        f_fc()
        f_t()
    samples = {(name, kind): ([], []) for name, kind, *_ in cases}
    copy_times = []
    load_start = load_average()
    for rnd in range(args.repeats):
        copy_times.append(timed(copy, args.min_time))
        for name, kind, f_fc, f_t, _ in cases:
            a, b = samples[(name, kind)]
            if rnd % 2 == 0:
                a.append(timed(f_fc, args.min_time))
                b.append(timed(f_t, args.min_time))
            else:
                b.append(timed(f_t, args.min_time))
                a.append(timed(f_fc, args.min_time))
    load_end = load_average()
    copy_bw = copy_bytes / statistics.median(copy_times)

    rows = []
    for name, kind, _, _, nbytes in cases:
        a, b = samples[(name, kind)]
        t_fc, t_t = statistics.median(a), statistics.median(b)
        rows.append((name, kind, t_fc, t_t, t_t / t_fc, min(b) / min(a),
                     nbytes / t_fc / copy_bw))

    def geo(vals):
        return float(np.exp(np.mean(np.log(vals))))

    head = (f"np.copyto bandwidth: {copy_bw / 1e9:.1f} GB/s (read + write of "
            f"{src.nbytes / 2**20:.0f} MB); threads {args.threads}; torch "
            f"{torch.__version__}; fastconv ISA {fc._kernels.isa_active()}; "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'default')}; "
            f"load average {load_start:.1f} -> {load_end:.1f}; "
            f"{time.strftime('%Y-%m-%d %H:%M')}")
    if args.markdown:
        print(head + "\n")
        print("| layer | pass | fastconv (ms) | torch (ms) | speedup | (of mins) | % copy bw |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for name, kind, t_fc, t_t, sp, spm, frac in rows:
            print(f"| {name} | {kind} | {t_fc * 1e3:.3f} | {t_t * 1e3:.3f} | "
                  f"{sp:.2f} | {spm:.2f} | {100 * frac:.0f}% |")
        print()
    else:
        print(head)
        print(f"{'layer':18s} {'pass':8s} {'fc ms':>9s} {'torch ms':>9s} "
              f"{'speedup':>8s} {'of mins':>8s} {'%copy':>6s}")
        for name, kind, t_fc, t_t, sp, spm, frac in rows:
            print(f"{name:18s} {kind:8s} {t_fc * 1e3:9.3f} {t_t * 1e3:9.3f} "
                  f"{sp:8.2f} {spm:8.2f} {100 * frac:5.0f}%")
    bullet = "- " if args.markdown else ""
    for kind in ("fwd", "fwd+idx", "bwd"):
        sel = [r for r in rows if r[1] == kind]
        if sel:
            print(f"{bullet}geomean speedup {kind}: {geo([r[4] for r in sel]):.2f} "
                  f"(of mins {geo([r[5] for r in sel]):.2f}); min %copy {kind}: "
                  f"{100 * min(r[6] for r in sel):.0f}%")
    fwd_all = [r for r in rows if r[1] != "bwd"]
    print(f"{bullet}geomean speedup, all forward rows: {geo([r[4] for r in fwd_all]):.2f}")
    print(f"{bullet}machine: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}, numpy {np.__version__}")

if __name__ == "__main__":
    main()

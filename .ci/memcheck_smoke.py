"""Every op of fastconv once or twice, forward and backward, at every ISA
level this process may run, on small shapes that still reach the kernels'
special walks -- the workload `.ci/memcheck` runs under valgrind.  It checks
its results against fastconv.reference, so a run that computes garbage
without touching bad memory still fails.

Under valgrind the CPU reports no AVX-512, so the AVX-512-only kernels
(channels-last, depthwise 3x3) are left to the AddressSanitizer run."""
import sys

import numpy as np

import fastconv as fc
from fastconv import _kernels, reference as ref

RNG = np.random.default_rng(0)
CONV_CASES = [
    # x shape, weight shape, keyword arguments
    ((2, 3, 13, 11), (5, 3, 3, 3), dict(padding=1)),
    ((1, 8, 9, 9), (16, 8, 3, 3), dict(stride=2, padding=(1, 0))),
    ((2, 4, 12, 12), (6, 2, 3, 3), dict(groups=2, dilation=2, padding="same")),
    ((1, 6, 10, 10), (6, 1, 3, 3), dict(groups=6, padding=1)),
    ((1, 16, 5, 5), (8, 16, 1, 1), {}),
    ((1, 32, 7, 7), (32, 32, 3, 3), dict(padding=1)),
    ((1, 2, 30, 4), (3, 2, 5, 3), dict(padding=((2, 1), (0, 2)), stride=(1, 2))),
]


def check(name, got, want):
    got, want = np.asarray(got), np.asarray(want)
    tol = 1e-4 if got.dtype == np.float32 else 1e-10
    scale = max(1.0, float(np.max(np.abs(want), initial=0.0)))
    if got.shape != want.shape or not np.allclose(got, want, rtol=tol, atol=tol * scale):
        sys.exit(f"memcheck smoke: {name}: result differs from the reference")


def conv_ops(dtype):
    for i, (xs, ws, kw) in enumerate(CONV_CASES):
        x = RNG.standard_normal(xs).astype(dtype)
        w = RNG.standard_normal(ws).astype(dtype)
        b = RNG.standard_normal(ws[0]).astype(dtype)
        want = ref.conv2d(x, w, b, **kw)
        gy = RNG.standard_normal(want.shape).astype(dtype)
        want_grads = ref.conv2d_backward(gy, x, w, **kw)
        for algorithm in ("direct", "im2col", "auto"):
            tag = f"conv case {i} {algorithm}"
            check(tag, fc.conv2d(x, w, b, algorithm=algorithm, **kw), want)
            for g, r in zip(fc.conv2d_backward(gy, x, w, algorithm=algorithm, **kw),
                            want_grads):
                check(tag + " backward", g, r)
        c = ws[0]
        mean, var = RNG.standard_normal(c).astype(dtype), RNG.random(c).astype(dtype) + 0.5
        gamma, beta = RNG.standard_normal(c).astype(dtype), RNG.standard_normal(c).astype(dtype)
        check(f"conv_bn case {i}",
              fc.conv2d_bn(x, w, b, mean, var, gamma, beta, activation="relu", **kw),
              ref.conv2d_bn(x, w, b, mean, var, gamma, beta, activation="relu", **kw))


def pool_ops(dtype):
    x = RNG.standard_normal((2, 3, 14, 13)).astype(dtype)
    for args in [dict(kernel_size=2), dict(kernel_size=3, stride=2, padding=1),
                 dict(kernel_size=3, stride=1, padding=1),
                 dict(kernel_size=(3, 2), stride=2, ceil_mode=True),
                 dict(kernel_size=(14, 13))]:
        y, idx = fc.max_pool2d(x, return_indices=True, **args)
        want, want_idx = ref.max_pool2d(x, return_indices=True, **args)
        check(f"max_pool2d {args}", y, want)
        check(f"max_pool2d indices {args}", idx, want_idx)
        check(f"max_pool2d no indices {args}", fc.max_pool2d(x, **args), want)
        gy = RNG.standard_normal(y.shape).astype(dtype)
        check(f"max_pool2d_backward {args}", fc.max_pool2d_backward(gy, idx, x.shape),
              ref.max_pool2d_backward(gy, idx, x.shape))
        y = fc.avg_pool2d(x, count_include_pad=False, **args)
        check(f"avg_pool2d {args}", y, ref.avg_pool2d(x, count_include_pad=False, **args))
        check(f"avg_pool2d_backward {args}",
              fc.avg_pool2d_backward(gy, x.shape, count_include_pad=False, **args),
              ref.avg_pool2d_backward(gy, x.shape, count_include_pad=False, **args))
    y = fc.max_pool2d(x, 2, dilation=2, padding=1)
    check("max_pool2d dilated", y, ref.max_pool2d(x, 2, dilation=2, padding=1))


def batch_norm_ops(dtype):
    for shape in [(4, 5, 6, 7), (2, 3, 1, 1), (3, 16, 32, 32)]:
        x = RNG.standard_normal(shape).astype(dtype) + 3
        c = shape[1]
        gamma, beta = RNG.standard_normal(c).astype(dtype), RNG.standard_normal(c).astype(dtype)
        for training in (True, False):
            stats = [np.zeros(c, dtype), np.ones(c, dtype)]
            want_stats = [s.copy() for s in stats]
            y = fc.batch_norm(x, *stats, gamma, beta, training=training)
            want = ref.batch_norm(x, *want_stats, gamma, beta, training=training)
            check(f"batch_norm {shape} training={training}", y, want)
            check("running statistics", np.stack(stats), np.stack(want_stats))
            gy = RNG.standard_normal(shape).astype(dtype)
            kw = dict(running_mean=stats[0], running_var=stats[1], training=training)
            for g, r in zip(fc.batch_norm_backward(gy, x, gamma, **kw),
                            ref.batch_norm_backward(gy, x, gamma, **kw)):
                check(f"batch_norm_backward {shape} training={training}", g, r)


def failed_allocations(dtype):
    """Every allocation of a few calls fails in turn: the error paths must
    free what they took (a leak there shows in memcheck's leak report)."""
    x = RNG.standard_normal((2, 8, 12, 12)).astype(dtype)
    w = RNG.standard_normal((16, 8, 3, 3)).astype(dtype)
    g = RNG.standard_normal((2, 16, 12, 12)).astype(dtype)
    calls = [lambda a=a: fc.conv2d(x, w, padding=1, stride=s, algorithm=a)
             for a in ("direct", "im2col") for s in (1, 2)]
    calls += [lambda a=a: fc.conv2d_backward(g, x, w, padding=1, algorithm=a)
              for a in ("direct", "im2col")]
    calls += [lambda: fc.avg_pool2d_backward(x[:, :, :6, :6], x.shape, 3, 2, 1),
              lambda: fc.max_pool2d(x, 3, 2, 1, return_indices=True),
              lambda: fc.batch_norm(x, np.zeros(8, dtype), np.ones(8, dtype), training=True),
              lambda: fc.batch_norm_backward(x, x, training=True)]
    failures = 0
    for call in calls:
        for n in range(1, 100):
            _kernels.fail_allocation_after(n)
            try:
                call()
            except MemoryError:
                failures += 1
                continue
            finally:
                left = _kernels.allocations_left()
                _kernels.fail_allocation_after(0)
            if left > 0:
                break
    if failures == 0:
        sys.exit("memcheck smoke: the allocation-failure injection never fired")


def main():
    best = _kernels.isa_detect()
    order = ["generic", "avx2", "avx512"]
    levels = order[: order.index(best) + 1]
    for threads in (1, 2):
        fc.set_num_threads(threads)
        for level in levels:
            _kernels.isa_select(level)
            for dtype in (np.float32, np.float64):
                conv_ops(dtype)
                pool_ops(dtype)
                batch_norm_ops(dtype)
                failed_allocations(dtype)
            print(f"memcheck smoke: threads={threads} isa={level}: ok", flush=True)
    _kernels.isa_select(best)


if __name__ == "__main__":
    main()

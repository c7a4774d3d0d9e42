"""Size limits: a big convolution within a bounded peak memory, and outputs
too large to allocate failing cleanly (MemoryError or ValueError, never a
crash or a half-written result)."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastconv as fc

# Runs in a child process so that its peak resident size is the convolution's
# alone, not whatever this test process reached before.
_PEAK_SCRIPT = textwrap.dedent("""
    import json, resource, sys
    import numpy as np
    import fastconv as fc

    def peak():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    algorithm = sys.argv[1]
    rng = np.random.default_rng(7)
    w = rng.standard_normal((64, 64, 3, 3), dtype=np.float32) / 24
    b = rng.standard_normal(64, dtype=np.float32)
    fc.conv2d(np.ones((1, 64, 8, 8), np.float32), w, b, padding=1)  # warm-up
    base = peak()
    x = np.empty((1, 64, 1536, 1536), np.float32)
    for c in range(64):          # filled plane by plane: no temporary copy
        x[0, c] = rng.standard_normal((1536, 1536), dtype=np.float32)
    y = fc.conv2d(x, w, b, padding=1, algorithm=algorithm)
    used = peak() - base
    # Six output windows (corners, edges, middle) recomputed on their crop
    # of the input with an independent method.
    worst = 0.0
    for r, s in [(0, 0), (0, 1530), (1530, 0), (1530, 1530), (700, 3), (768, 900)]:
        r0, s0 = max(r - 1, 0), max(s - 1, 0)
        crop = x[:, :, r0:r + 7, s0:s + 7].astype(np.float64)
        pad = ((0, 0), (0, 0), (1 if r == 0 else 0, 1 if r + 6 == 1536 else 0),
               (1 if s == 0 else 0, 1 if s + 6 == 1536 else 0))
        crop = np.pad(crop, pad)
        want = np.zeros((64, 6, 6))
        for i in range(3):
            for j in range(3):
                want += np.einsum("kc,chw->khw", w[:, :, i, j].astype(np.float64),
                                  crop[0, :, i:i + 6, j:j + 6])
        want += b[:, None, None]
        worst = max(worst, float(np.max(np.abs(y[0, :, r:r + 6, s:s + 6] - want))))
    print(json.dumps({"used": used, "in_out": x.nbytes + y.nbytes,
                      "shape": list(y.shape), "worst": worst,
                      "finite": bool(np.isfinite(y).all())}))
""")


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col"])
def test_big_convolution_peak_memory(algorithm, tmp_path):
    """1 x 64 x 1536 x 1536, 3x3: correct, and the process's peak memory grows
    by less than 4x the input plus the output."""
    # cwd: away from the source tree, whose fastconv/ has no built extension
    run = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, algorithm], cwd=tmp_path,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    r = json.loads(run.stdout.strip().splitlines()[-1])
    assert r["shape"] == [1, 64, 1536, 1536]
    assert r["finite"]
    assert r["worst"] < 1e-3, f"largest error {r['worst']}"
    assert r["used"] < 4 * r["in_out"], (
        f"peak grew by {r['used'] / 2**20:.0f} MiB, limit 4 x "
        f"{r['in_out'] / 2**20:.0f} MiB")


# Calls whose output (or gradient) cannot exist: each must raise MemoryError
# or ValueError (NumPy's "array is too big") before any kernel runs.
_HUGE = [
    ("conv2d_output", lambda: fc.conv2d(np.ones((1, 1, 1, 1), np.float32),
                                        np.ones((1, 1, 1, 1), np.float32), padding=2**21)),
    ("conv2d_channels", lambda: fc.conv2d(
        np.ones((1, 1, 4, 4), np.float32), np.broadcast_to(np.float32(1), (2**36, 1, 1, 1)))),
    ("conv2d_bn_output", lambda: fc.conv2d_bn(
        np.ones((1, 1, 1, 1)), np.ones((1, 1, 1, 1)), None, np.zeros(1), np.ones(1),
        np.ones(1), np.zeros(1), padding=2**21, activation="relu")),
    ("conv2d_backward_input", lambda: fc.conv2d_backward(
        np.ones((1, 1, 1, 1)), np.broadcast_to(np.float64(1), (1, 1, 2**22, 2**22)),
        np.broadcast_to(np.float64(1), (1, 1, 2**22, 2**22)))),
    ("max_pool2d_backward_input", lambda: fc.max_pool2d_backward(
        np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), (1, 1, 2**24, 2**24))),
    ("avg_pool2d_input", lambda: fc.avg_pool2d(
        np.broadcast_to(np.float32(1), (2**34, 1, 2, 2)), 2)),
    ("batch_norm_input", lambda: fc.batch_norm(
        np.broadcast_to(np.float32(1), (2**34, 1, 2, 2)), np.zeros(1, np.float32),
        np.ones(1, np.float32))),
]


@pytest.mark.parametrize("name,call", _HUGE, ids=[c[0] for c in _HUGE])
def test_unallocatable_sizes_fail_cleanly(name, call):
    with pytest.raises((MemoryError, ValueError)):
        call()
    # and the library still works afterwards
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(fc.conv2d(x, np.ones((1, 1, 1, 1))), x)


# ---------------------------------------------------------------------------
# Workspaces that cannot be allocated.  The kernels' allocations all pass one
# gate (src/workspace.c) that the tests can tell to fail the n-th request from
# now; walking n up from 1 fails each allocation of a call in turn.

def _ops():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 12, 12))
    w = rng.standard_normal((16, 8, 3, 3))
    b = rng.standard_normal(16)
    dw = rng.standard_normal((8, 1, 3, 3))
    gy = rng.standard_normal((2, 16, 12, 12))
    gp = rng.standard_normal((2, 8, 6, 6))
    mean, var = rng.standard_normal(16), rng.random(16) + 0.5
    gamma, beta = rng.standard_normal(16), rng.standard_normal(16)
    _, idx = fc.reference.max_pool2d(x, 3, 2, 1, return_indices=True)
    ops = []
    for dtype in (np.float32, np.float64):
        x_, w_, b_, dw_, gy_, gp_ = (a.astype(dtype) for a in (x, w, b, dw, gy, gp))
        bn = [a.astype(dtype) for a in (mean, var, gamma, beta)]
        tag = np.dtype(dtype).name
        for algorithm in ("direct", "im2col"):
            ops += [
                (f"conv2d_{algorithm}_{tag}", lambda m, a=algorithm, x_=x_, w_=w_, b_=b_:
                 m.conv2d(x_, w_, b_, padding=1, **({"algorithm": a} if m is fc else {}))),
                (f"conv2d_strided_{algorithm}_{tag}", lambda m, a=algorithm, x_=x_, w_=w_:
                 m.conv2d(x_, w_, stride=2, dilation=2, padding=2,
                          **({"algorithm": a} if m is fc else {}))),
                (f"depthwise_{algorithm}_{tag}", lambda m, a=algorithm, x_=x_, dw_=dw_:
                 m.conv2d(x_, dw_, padding=1, groups=8,
                          **({"algorithm": a} if m is fc else {}))),
                (f"conv2d_backward_{algorithm}_{tag}", lambda m, a=algorithm, x_=x_, w_=w_, gy_=gy_:
                 m.conv2d_backward(gy_, x_, w_, padding=1,
                                   **({"algorithm": a} if m is fc else {}))),
                (f"conv2d_bn_{algorithm}_{tag}", lambda m, a=algorithm, x_=x_, w_=w_, b_=b_, bn=bn:
                 m.conv2d_bn(x_, w_, b_, *bn, padding=1, activation="relu",
                             **({"algorithm": a} if m is fc else {}))),
            ]
        ops += [
            (f"max_pool2d_{tag}", lambda m, x_=x_:
             m.max_pool2d(x_, 3, 2, 1, return_indices=True)),
            (f"max_pool2d_backward_{tag}", lambda m, gp_=gp_:
             m.max_pool2d_backward(gp_, idx, (2, 8, 12, 12))),
            (f"avg_pool2d_{tag}", lambda m, x_=x_:
             m.avg_pool2d(x_, 3, 2, 1, count_include_pad=False)),
            (f"avg_pool2d_backward_{tag}", lambda m, gp_=gp_:
             m.avg_pool2d_backward(gp_, (2, 8, 12, 12), 3, 2, 1)),
            (f"batch_norm_train_{tag}", lambda m, x_=x_, bn=bn:
             m.batch_norm(x_, np.zeros(8, dtype), np.ones(8, dtype), bn[2][:8], bn[3][:8],
                          training=True)),
            (f"batch_norm_backward_{tag}", lambda m, x_=x_, bn=bn:
             m.batch_norm_backward(x_ * 0.5, x_, bn[2][:8], training=True)),
        ]
    # float32 3x3 layers that "auto" sends to Winograd (with AVX-512):
    # forward, fused, and the input gradient
    xw = rng.standard_normal((1, 32, 32, 32)).astype(np.float32)
    ww = rng.standard_normal((32, 32, 3, 3)).astype(np.float32)
    gw = rng.standard_normal((1, 32, 32, 32)).astype(np.float32)
    bn32 = [a[:16].repeat(2).astype(np.float32) for a in (mean, var, gamma, beta)]
    ops += [
        ("conv2d_auto_winograd_float32", lambda m: m.conv2d(xw, ww, padding=1)),
        ("conv2d_bn_auto_winograd_float32", lambda m:
         m.conv2d_bn(xw, ww, None, *bn32, padding=1, activation="relu")),
        ("conv2d_backward_auto_winograd_float32", lambda m:
         m.conv2d_backward(gw, xw, ww, padding=1)),
    ]
    # ... and to F(2x2, 5x5): LeNet's 14 x 14 images; weights scaled so that
    # outputs are of order 1, where the absolute 1e-4 below is the
    # project's 2e-5 of the largest output (sums of 400 products reach 80)
    x5 = rng.standard_normal((12, 16, 14, 14)).astype(np.float32)
    w5 = (rng.standard_normal((32, 16, 5, 5)) / 20).astype(np.float32)
    ops += [
        ("conv2d_auto_winograd5x5_float32", lambda m: m.conv2d(x5, w5, padding=2)),
        ("conv2d_bn_auto_winograd5x5_float32", lambda m:
         m.conv2d_bn(x5, w5, None, *bn32, padding=2, activation="relu")),
    ]
    # ... and to the streamed GEMM: 7x7 under 128 x 128 x 3 x 3 weights
    xs = rng.standard_normal((1, 128, 7, 7)).astype(np.float32)
    ws = rng.standard_normal((128, 128, 3, 3)).astype(np.float32)
    bn128 = [a[:16].repeat(8).astype(np.float32) for a in (mean, var, gamma, beta)]
    ops += [
        ("conv2d_auto_streamed_float32", lambda m: m.conv2d(xs, ws, padding=1)),
        ("conv2d_bn_auto_streamed_float32", lambda m:
         m.conv2d_bn(xs, ws, None, *bn128, padding=1, activation="relu")),
    ]
    return ops


_OPS = _ops()


def _flat(result):
    return [np.asarray(r) for r in (result if isinstance(result, tuple) else (result,))]


def test_allocation_gate_fires():
    """The injection itself works: the first allocation of an im2col
    convolution fails, the second call is unaffected."""
    from fastconv import _kernels
    x, w = np.ones((1, 2, 5, 5)), np.ones((3, 2, 3, 3))
    _kernels.fail_allocation_after(1)
    try:
        with pytest.raises(MemoryError, match="allocate"):
            fc.conv2d(x, w, algorithm="im2col")
        assert _kernels.allocations_left() == 0
    finally:
        _kernels.fail_allocation_after(0)
    np.testing.assert_allclose(fc.conv2d(x, w, algorithm="im2col"), np.full((1, 3, 3, 3), 18.0))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name,call", _OPS, ids=[o[0] for o in _OPS])
def test_failed_workspace_allocation_raises_memory_error(name, call, threads):
    """Each allocation of the call fails in turn: the call raises MemoryError
    (nothing else), and once the injection is off the same call is right."""
    from fastconv import _kernels
    want = _flat(call(fc.reference))
    before = fc.get_num_threads()
    fc.set_num_threads(threads)
    failures = 0
    try:
        for n in range(1, 400):
            _kernels.fail_allocation_after(n)
            try:
                got = _flat(call(fc))
            except MemoryError as exc:
                failures += 1
                assert "allocate" in str(exc)
                continue
            finally:
                left = _kernels.allocations_left()
                _kernels.fail_allocation_after(0)
            for g, r in zip(got, want):
                np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)
            if left > 0:        # fewer than n requests: every one has failed once
                break
        else:
            pytest.fail("the call kept making allocations")
    finally:
        fc.set_num_threads(before)
    # (a call with no allocation, e.g. the depthwise 3x3 plane kernel, has
    # failures == 0 and was checked once above)
    for g, r in zip(_flat(call(fc)), want):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-4)

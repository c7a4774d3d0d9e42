"""The C batch-norm kernels and the fused conv-BN(-ReLU) path, beyond the
general oracle suite: precision of the statistics (float32 input with a
large mean), both work plans of the kernels (pieces of long runs, rows of
short runs: several blocks, column chunks, short super-rows, tails, 2-D
inputs), every instruction-set level, thread-count
invariance, running statistics of any float type and stride, and conv2d_bn
against PyTorch's conv2d -> batch_norm(eval) -> relu.

Runs on its own too:
    PYTHONPATH=. pytest tests/test_batchnorm_kernels.py
"""
import contextlib

import numpy as np
import pytest

import fastconv as fc
from fastconv import reference
from _helpers import isa_level, isa_levels

LEVELS = isa_levels()
RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-11}


@contextlib.contextmanager
def threads(n):
    previous = fc.get_num_threads()
    fc.set_num_threads(n)
    try:
        yield
    finally:
        fc.set_num_threads(previous)


@pytest.fixture(params=LEVELS)
def level(request):
    with isa_level(request.param):
        yield request.param


def close(actual, expected, dtype, what, rtol=None):
    """max|actual - expected| <= rtol * max(1, max|expected|), dtype checked."""
    dtype = np.dtype(dtype)
    assert actual.dtype == dtype, f"{what}: dtype {actual.dtype}, expected {dtype}"
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape}"
    if not expected.size:
        return
    err = np.abs(actual.astype(np.float64) - expected).max()
    tol = (rtol or RTOL[dtype]) * max(1.0, np.abs(expected).max())
    assert err <= tol, f"{what}: max abs error {err:.3e} > {tol:.3e}"


def bn_data(shape, dtype, seed, mean=0.0, spread=1.0):
    rng = np.random.default_rng(seed)
    C = shape[1]
    b = (1, C) + (1,) * (len(shape) - 2)
    offset = mean + rng.uniform(-2, 2, C).reshape(b)
    scale = spread * rng.uniform(0.5, 2, C).reshape(b)
    x = (offset + scale * rng.standard_normal(shape)).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(-2, 2, C).astype(dtype)
    bias = rng.standard_normal(C).astype(dtype)
    rm = rng.standard_normal(C).astype(dtype)
    rv = rng.uniform(0.5, 2, C).astype(dtype)
    return x, g, w, bias, rm, rv


def stats64(x):
    """Exact-enough float64 mean and biased variance per channel (two-pass)."""
    axes = (0,) + tuple(range(2, x.ndim))
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes)
    shape = (1, -1) + (1,) * (x.ndim - 2)
    var = ((x64 - mean.reshape(shape)) ** 2).mean(axis=axes)
    return mean, var


# --------------------------------------------------------------------------
# precision: float32 input with a large mean

@pytest.mark.parametrize("shape", [(8, 3, 32, 32), (16, 2, 64, 64), (4096, 3)],
                         ids=str)
def test_float32_large_mean_statistics(level, shape):
    """Mean 1e4, std about 1: float32 sums of x and x^2 would lose the
    variance entirely (1e8 against 1 in 24 bits); fastconv's statistics,
    shifted sums in double, match float64 to double precision and the
    output matches the float64 computation to float32 precision."""
    x, g, w, b, _, _ = bn_data(shape, np.float32, 1, mean=1e4)
    C = shape[1]
    mean, var = stats64(x)
    M = x.size // C
    rm, rv = np.zeros(C), np.ones(C)           # float64 running statistics
    y = fc.batch_norm(x, rm, rv, w, b, training=True, momentum=1.0)
    # momentum 1: the running statistics are the batch's, unbiased
    np.testing.assert_allclose(rm, mean, rtol=1e-14)
    np.testing.assert_allclose(rv, var * M / (M - 1), rtol=1e-9)
    close(y, reference.batch_norm(x.astype(np.float64), None, None,
                                  w.astype(np.float64), b.astype(np.float64),
                                  training=True), np.float32, "y")
    # what a float32 one-pass sum of squares would give: useless
    axes = (0,) + tuple(range(2, x.ndim))
    naive = (np.square(x).mean(axis=axes, dtype=np.float32)
             - np.square(x.mean(axis=axes, dtype=np.float32)))
    assert np.abs(naive - var).max() > 0.05 * var.max()
    # backward through the same statistics
    gx, gw, gb = fc.batch_norm_backward(g, x, w, training=True)
    egx, egw, egb = reference.batch_norm_backward(
        g.astype(np.float64), x.astype(np.float64), w.astype(np.float64),
        training=True)
    close(gx, egx, np.float32, "grad_input")
    close(gw, egw, np.float32, "grad_weight")
    close(gb, egb, np.float32, "grad_bias")


def test_float64_large_mean_statistics(level):
    """float64 input with mean 1e8 and std 1: still the variance to about
    1e-9 relative (a one-pass double sum of squares would keep ~0 digits)."""
    x, g, w, b, _, _ = bn_data((4, 3, 40, 40), np.float64, 2, mean=1e8)
    mean, var = stats64(x)
    M = x.size // 3
    rm, rv = np.zeros(3), np.zeros(3)
    fc.batch_norm(x, rm, rv, training=True, momentum=1.0)
    np.testing.assert_allclose(rm, mean, rtol=1e-15)
    np.testing.assert_allclose(rv, var * M / (M - 1), rtol=1e-9)


# --------------------------------------------------------------------------
# blocking, splitting and tails against the reference, at every ISA level

SHAPES = [
    # short runs (HW < 64): sums per position of stacked rows
    (2, 3),                 # 2-D: rows of 3, 22 rows to a super-row
    (64, 5),                # the last super-row short
    (20000, 5),             # several blocks of super-rows
    (7, 1100),              # two column chunks
    (130, 40, 7, 7),        # column chunks across channels, a short block
    (300, 7, 3),            # 3-D
    (2, 3, 1, 1),
    (5, 7, 3, 5),
    # long runs: pieces in memory order
    (2, 3, 17, 19),         # tails shorter than a vector
    (1, 2, 70, 70),         # runs longer than a block (4096 values): pieces
    (40, 2, 33, 31),
    (3, 40, 9, 9),
    (1, 256, 14, 14),       # a suite layer
]


@pytest.mark.parametrize("affine", [(True, True), (False, False), (True, False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_matches_reference(level, shape, dtype, affine):
    x, g, w, b, rm, rv = bn_data(shape, dtype, sum(shape))
    w = w if affine[0] else None
    b = b if affine[1] else None
    # training forward with the running statistics updated
    rm1, rv1, rm2, rv2 = rm.copy(), rv.copy(), rm.copy(), rv.copy()
    y = fc.batch_norm(x, rm1, rv1, w, b, training=True, momentum=0.3)
    ey = reference.batch_norm(x, rm2, rv2, w, b, training=True, momentum=0.3)
    close(y, ey, dtype, "train y")
    close(rm1, rm2, dtype, "running_mean")
    close(rv1, rv2, dtype, "running_var")
    # eval forward
    close(fc.batch_norm(x, rm, rv, w, b), reference.batch_norm(x, rm, rv, w, b),
          dtype, "eval y")
    # backward, both modes
    for training in (True, False):
        kw = dict(training=training, running_mean=rm, running_var=rv)
        got = fc.batch_norm_backward(g, x, w, **kw)
        want = reference.batch_norm_backward(g, x, w, **kw)
        for a, e, name in zip(got, want, ("grad_input", "grad_weight", "grad_bias")):
            close(a, e, dtype, f"{name} (training={training})")


def test_empty_batch_eval(level):
    x = np.zeros((0, 3, 4, 4), np.float32)
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    y = fc.batch_norm(x, rm, rv)
    assert y.shape == x.shape and y.dtype == np.float32
    gx, gw, gb = fc.batch_norm_backward(x, x, running_mean=rm, running_var=rv,
                                        training=False)
    assert gx.shape == x.shape and np.all(gw == 0) and np.all(gb == 0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_isa_levels_agree(dtype):
    x, g, w, b, rm, rv = bn_data((3, 5, 23, 29), dtype, 3)
    results = []
    for lvl in LEVELS:
        with isa_level(lvl):
            results.append((fc.batch_norm(x, None, None, w, b, training=True),)
                           + fc.batch_norm_backward(g, x, w, training=True))
    for other in results[1:]:
        for a, e in zip(other, results[0]):
            close(a, e, dtype, "ISA levels")


@pytest.mark.parametrize("shape", [(8, 3, 64, 64), (32, 64, 7, 7), (4, 40),
                                   (20000, 5), (130, 40, 7, 7)], ids=str)
def test_thread_count_invariant(level, shape):
    """The work split depends on the shape only, and partial statistics
    merge in a fixed order: the same bits with 1, 2 or 3 threads."""
    x, g, w, b, rm, rv = bn_data(shape, np.float32, 4)
    outs = []
    for n in (1, 2, 3):
        with threads(n):
            rm1, rv1 = rm.copy(), rv.copy()
            outs.append((fc.batch_norm(x, rm1, rv1, w, b, training=True), rm1, rv1,
                         fc.batch_norm(x, rm, rv, w, b))
                        + fc.batch_norm_backward(g, x, w, training=True)
                        + fc.batch_norm_backward(g, x, w, running_mean=rm,
                                                 running_var=rv, training=False))
    for other in outs[1:]:
        for a, e in zip(other, outs[0]):
            assert np.array_equal(a, e)


# --------------------------------------------------------------------------
# running statistics as the caller keeps them

def test_running_stats_any_stride_and_type():
    x, _, w, b, _, _ = bn_data((4, 3, 5, 5), np.float32, 5)
    mean, var = stats64(x)
    M = x.size // 3
    unbiased = var * M / (M - 1)
    mo = 0.25

    # reversed float32 view, and a float64 field of a packed record array
    # (stride 12 bytes: not a whole number of float64s)
    buf_m = np.arange(3, dtype=np.float32)
    rm = buf_m[::-1]
    rec = np.zeros(3, dtype=[("v", "<f8"), ("pad", "<i4")])
    rec["v"] = [1.0, 2.0, 3.0]
    rv = rec["v"]
    assert rv.strides[0] == 12
    rm0, rv0 = rm.astype(np.float64), rv.copy()
    fc.batch_norm(x, rm, rv, w, b, training=True, momentum=mo)
    np.testing.assert_allclose(buf_m[::-1], (1 - mo) * rm0 + mo * mean, rtol=1e-6)
    np.testing.assert_allclose(rec["v"], (1 - mo) * rv0 + mo * unbiased, rtol=1e-12)
    assert np.all(rec["pad"] == 0)
    assert rm.dtype == np.float32 and rv.dtype == np.float64


# --------------------------------------------------------------------------
# fused conv-BN(-ReLU) inference

CONV_CASES = [
    # N, C, H, W, K, R, S, stride, padding, dilation, groups
    (2, 3, 12, 12, 8, 3, 3, 1, 1, 1, 1),
    (1, 16, 15, 17, 24, 3, 3, 1, 1, 1, 1),
    (2, 8, 14, 14, 16, 1, 1, 1, 0, 1, 1),
    (1, 3, 23, 23, 8, 7, 7, 2, 3, 1, 1),
    (1, 12, 16, 16, 12, 3, 3, 1, 1, 1, 12),
    (1, 8, 20, 20, 8, 3, 3, 1, 2, 2, 1),
    (1, 32, 7, 7, 32, 3, 3, 1, 1, 1, 1),
]


def conv_bn_data(case, dtype, seed, bias=True, affine=True):
    N, C, H, W, K, R, S, st, pad, dil, G = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((K, C // G, R, S)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype) if bias else None
    rm = rng.standard_normal(K).astype(dtype)
    rv = rng.uniform(0.2, 3, K).astype(dtype)
    gamma = rng.uniform(-2, 2, K).astype(dtype) if affine else None
    beta = rng.standard_normal(K).astype(dtype) if affine else None
    kw = dict(stride=st, padding=pad, dilation=dil, groups=G)
    return x, w, b, rm, rv, gamma, beta, kw


def torch_conv_bn_relu(torch, x, w, b, rm, rv, gamma, beta, kw, eps, relu):
    F = torch.nn.functional
    t = lambda a: None if a is None else torch.from_numpy(np.asarray(a, np.float64))
    y = F.conv2d(t(x), t(w), t(b), **kw)
    y = F.batch_norm(y, t(rm), t(rv), t(gamma), t(beta), training=False, eps=eps)
    return (F.relu(y) if relu else y).numpy()


@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col"])
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_bn_matches_torch(torch, level, case, dtype, activation, algorithm):
    """conv2d_bn == PyTorch conv2d -> batch_norm(eval) -> relu, to 1e-5 of
    the result's scale (float32; float64 to 1e-11)."""
    for bias, affine in ((True, True), (False, False)):
        x, w, b, rm, rv, gamma, beta, kw = conv_bn_data(case, dtype, sum(case),
                                                        bias, affine)
        y = fc.conv2d_bn(x, w, b, rm, rv, gamma, beta, **kw, eps=1e-3,
                         activation=activation, algorithm=algorithm)
        want = torch_conv_bn_relu(torch, x, w, b, rm, rv, gamma, beta, kw, 1e-3,
                                  activation == "relu")
        close(y, want, dtype, f"conv2d_bn bias={bias} affine={affine}",
              rtol=1e-5 if dtype == np.float32 else 1e-11)
        if activation == "relu":
            assert (y >= 0).all()


@pytest.mark.parametrize("wdtype, sdtype", [(np.float32, np.float32),
                                            (np.float32, np.float64),
                                            (np.float64, np.float32)])
def test_fuse_conv_bn_formula(wdtype, sdtype):
    """w' = w * gamma / sqrt(var + eps), b' = (b - mean) * gamma /
    sqrt(var + eps) + beta, computed in float64, in the weight's dtype
    (rounded once from the float64 value)."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal((6, 4, 3, 3)).astype(wdtype)
    b, rm, beta = (rng.standard_normal(6).astype(sdtype) for _ in range(3))
    rv = rng.uniform(0.1, 2, 6).astype(sdtype)
    gamma = rng.uniform(-2, 2, 6).astype(sdtype)
    fw, fb = fc.fuse_conv_bn(w, b, rm, rv, gamma, beta, eps=1e-4)
    s = gamma.astype(np.float64) / np.sqrt(rv.astype(np.float64) + 1e-4)
    ew = (w.astype(np.float64) * s[:, None, None, None]).astype(wdtype)
    eb = ((b.astype(np.float64) - rm) * s + beta).astype(wdtype)
    assert fw.dtype == fb.dtype == np.dtype(wdtype)
    assert fw.flags.c_contiguous and fb.flags.c_contiguous
    assert np.array_equal(fw, ew) and np.array_equal(fb, eb)
    # bias and the affine optional: 0, 1, 0
    fw, fb = fc.fuse_conv_bn(w, None, rm, rv, None, None)
    s = 1 / np.sqrt(rv.astype(np.float64) + 1e-5)
    assert np.array_equal(fw, (w.astype(np.float64) * s[:, None, None, None]).astype(wdtype))
    assert np.array_equal(fb, (-rm.astype(np.float64) * s).astype(wdtype))


def test_conv2d_bn_relu_nan_and_out():
    """NaN in the input propagates through the fused ReLU (as torch.relu);
    out= receives the result."""
    x, w, b, rm, rv, gamma, beta, kw = conv_bn_data(CONV_CASES[0], np.float32, 8)
    x[0, 0, 5, 5] = np.nan
    out = np.empty((2, 8, 12, 12), np.float32)
    y = fc.conv2d_bn(x, w, b, rm, rv, gamma, beta, **kw, activation="relu", out=out)
    assert y is out
    assert np.isnan(y[0, :, 4:7, 4:7]).all() and not np.isnan(y[1]).any()

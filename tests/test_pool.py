"""max_pool2d, avg_pool2d and their backward ops against the PyTorch oracle.

Max pooling's indices are compared exactly with PyTorch's (flat h * W + w
into each (n, c) plane), including windows holding NaN (a NaN wins), ties
(the first in row-major order wins) and all -inf windows.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastconv as fc
from _helpers import (FLOAT_DTYPES, assert_close, assert_identical,
                      avg_pool_kwargs, distinct, max_pool_kwargs, pool_configs,
                      randn, rng_for, seeds, t64)

# Tests not split into reference / fast pairs take the `api` fixture
# (conftest.py): the reference once, and the fast API at every ISA level.


def _max_pool_torch(torch, xt, cfg, return_indices=False):
    return torch.nn.functional.max_pool2d(
        xt, cfg["kernel_pair"], cfg["stride_pair"], cfg["padding_pair"],
        cfg["dilation_pair"], ceil_mode=cfg["ceil_mode"],
        return_indices=return_indices)


def _avg_pool_torch(torch, xt, cfg):
    return torch.nn.functional.avg_pool2d(
        xt, cfg["kernel_pair"], cfg["stride_pair"], cfg["padding_pair"],
        ceil_mode=cfg["ceil_mode"], count_include_pad=cfg["count_include_pad"],
        divisor_override=cfg["divisor_override"])


def make_input(cfg, kind):
    """Pooling input of one of several kinds of data."""
    rng = rng_for(cfg["seed"])
    shape, dt = cfg["x_shape"], cfg["dtype"]
    if kind == "normal":
        return randn(rng, shape, dt)
    if kind == "distinct":
        return distinct(rng, shape, dt)
    if kind == "ties":              # many equal values in every window
        return rng.integers(-1, 2, size=shape).astype(dt)
    if kind == "specials":          # NaN, -inf and +inf here and there
        x = randn(rng, shape, dt)
        u = rng.random(shape)
        x[u < 0.12] = np.nan
        x[(u >= 0.12) & (u < 0.3)] = -np.inf
        x[(u >= 0.3) & (u < 0.33)] = np.inf
        return x
    if kind == "all_neg_inf":       # every window all -inf; some planes NaN
        x = np.full(shape, -np.inf, dt)
        if x.size:
            x.reshape(-1, *shape[2:])[0, 0, 0] = np.nan
        return x
    raise AssertionError(kind)


MAX_KINDS = ["normal", "distinct", "ties", "specials", "all_neg_inf"]


# ---------------------------------------------------------------------------
# max_pool2d

def check_max_pool(torch, ops, cfg, kind):
    x = make_input(cfg, kind)
    x0 = x.copy()
    y, idx = ops.max_pool2d(x, **max_pool_kwargs(cfg), return_indices=True)
    assert_identical(x, x0, "input modified")
    y_only = ops.max_pool2d(x, **max_pool_kwargs(cfg))
    assert isinstance(y_only, np.ndarray)
    assert_identical(y_only, y, "max_pool2d without indices")
    yt, it = _max_pool_torch(torch, t64(torch, x), cfg, return_indices=True)
    assert_close(y, yt, cfg["dtype"], f"max_pool2d ({kind})")
    assert idx.dtype == np.int64
    assert idx.flags.c_contiguous and y.flags.c_contiguous
    assert_identical(idx, it.numpy(), f"max_pool2d indices ({kind})")


@given(cfg=pool_configs("max"), kind=st.sampled_from(MAX_KINDS))
def test_reference_max_pool2d_matches_torch(torch, cfg, kind):
    check_max_pool(torch, fc.reference, cfg, kind)


@given(cfg=pool_configs("max"), kind=st.sampled_from(MAX_KINDS))
def test_max_pool2d_matches_torch(torch, isa, cfg, kind):
    check_max_pool(torch, fc, cfg, kind)


MAX_NAMED = [
    dict(x_shape=(2, 3, 8, 8), kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False),
    dict(x_shape=(1, 4, 112, 112), kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False),
    dict(x_shape=(2, 2, 7, 9), kernel_size=(3, 2), stride=(2, 3), padding=(1, 1), dilation=1, ceil_mode=True),
    dict(x_shape=(1, 3, 10, 10), kernel_size=3, stride=1, padding=1, dilation=2, ceil_mode=False),
    dict(x_shape=(1, 2, 5, 5), kernel_size=2, stride=2, padding=1, dilation=1, ceil_mode=True),
    dict(x_shape=(0, 2, 5, 5), kernel_size=2, stride=None, padding=0, dilation=1, ceil_mode=False),
    dict(x_shape=(2, 17, 9, 19), kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=True),
    dict(x_shape=(1, 1, 4, 4), kernel_size=4, stride=1, padding=2, dilation=1, ceil_mode=False),
]


def _pairs(cfg):
    p = lambda v: (v, v) if isinstance(v, int) else tuple(v)  # noqa: E731
    return dict(cfg, kernel_pair=p(cfg["kernel_size"]),
                stride_pair=p(cfg["stride"] if cfg["stride"] is not None else cfg["kernel_size"]),
                padding_pair=p(cfg["padding"]),
                dilation_pair=p(cfg.get("dilation", 1)))


@pytest.mark.parametrize("kind", MAX_KINDS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", range(len(MAX_NAMED)))
def test_max_pool2d_named(torch, api, case, dtype, kind):
    cfg = _pairs(dict(MAX_NAMED[case], dtype=dtype, seed=case))
    check_max_pool(torch, api, cfg, kind)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_max_pool2d_nan_and_inf_windows(torch, api, dtype):
    """Hand-made windows: NaN wins over +inf and later NaN replaces an earlier
    one (PyTorch's scan); all -inf windows point at their first element."""
    ops = api
    x = np.array([[[[1.0, np.nan, 3.0, -np.inf],
                    [np.inf, np.nan, -np.inf, -np.inf],
                    [0.5, 0.5, 2.0, 2.0],
                    [0.5, 0.5, 2.0, np.inf]]]], dtype=dtype)
    y, idx = ops.max_pool2d(x, 2, return_indices=True)
    yt, it = torch.nn.functional.max_pool2d(t64(torch, x), 2, return_indices=True)
    assert_close(y, yt, dtype, "values")
    assert_identical(idx, it.numpy(), "indices")
    # the same expectations, written out
    assert np.isnan(y[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 5
    assert y[0, 0, 0, 1] == 3.0 and idx[0, 0, 0, 1] == 2
    assert y[0, 0, 1, 0] == 0.5 and idx[0, 0, 1, 0] == 8
    assert y[0, 0, 1, 1] == np.inf and idx[0, 0, 1, 1] == 15
    # padding never wins, an all -inf window points at its first element
    x = np.full((1, 1, 3, 3), -np.inf, dtype)
    y, idx = ops.max_pool2d(x, 2, stride=2, padding=1, return_indices=True)
    yt, it = torch.nn.functional.max_pool2d(t64(torch, x), 2, 2, 1, return_indices=True)
    assert_close(y, yt, dtype, "-inf values")
    assert_identical(idx, it.numpy(), "-inf indices")


# ---------------------------------------------------------------------------
# max_pool2d_backward

def check_max_pool_backward(torch, ops, cfg, kind):
    x = make_input(cfg, kind)
    y, idx = ops.max_pool2d(x, **max_pool_kwargs(cfg), return_indices=True)
    g = randn(rng_for(cfg["seed"] + 1), y.shape, cfg["dtype"])
    g0, idx0 = g.copy(), idx.copy()
    gi = ops.max_pool2d_backward(g, idx, x.shape)
    assert_identical(g, g0, "grad_output modified")
    assert_identical(idx, idx0, "indices modified")
    xt = t64(torch, x, True)
    _max_pool_torch(torch, xt, cfg).backward(t64(torch, g))
    expected = xt.grad if xt.grad is not None else np.zeros(x.shape)
    assert_close(gi, expected, cfg["dtype"], "max_pool2d_backward")
    assert gi.flags.c_contiguous


@given(cfg=pool_configs("max"), kind=st.sampled_from(["distinct", "ties"]))
def test_reference_max_pool2d_backward_matches_torch(torch, cfg, kind):
    check_max_pool_backward(torch, fc.reference, cfg, kind)


@given(cfg=pool_configs("max"), kind=st.sampled_from(["distinct", "ties"]))
def test_max_pool2d_backward_matches_torch(torch, isa, cfg, kind):
    check_max_pool_backward(torch, fc, cfg, kind)


@given(N=st.integers(0, 2), C=st.integers(1, 3), H=st.integers(1, 6),
       W=st.integers(1, 6), P=st.integers(1, 5), Q=st.integers(1, 5),
       dtype=st.sampled_from(FLOAT_DTYPES), seed=seeds)
def test_max_pool2d_backward_scatter_adds(api, N, C, H, W, P, Q, dtype, seed):
    """Arbitrary (valid) indices, repeats included: each gradient is added at
    its index, written as a plain loop."""
    rng = rng_for(seed)
    g = randn(rng, (N, C, P, Q), dtype)
    idx = rng.integers(0, H * W, size=(N, C, P, Q))
    expected = np.zeros((N, C, H * W))
    for n in range(N):
        for c in range(C):
            for p in range(P):
                for q in range(Q):
                    expected[n, c, idx[n, c, p, q]] += float(g[n, c, p, q])
    gi = api.max_pool2d_backward(g, idx, (N, C, H, W))
    assert_close(gi, expected.reshape(N, C, H, W), dtype, "scatter-add")
    # int32 indices and a list for input_shape give the same
    gi32 = api.max_pool2d_backward(g, idx.astype(np.int32), [N, C, H, W])
    assert_identical(gi32, gi, "int32 indices")


# ---------------------------------------------------------------------------
# avg_pool2d

def check_avg_pool(torch, ops, cfg, kind):
    x = make_input(cfg, kind)
    x0 = x.copy()
    y = ops.avg_pool2d(x, **avg_pool_kwargs(cfg))
    assert_identical(x, x0, "input modified")
    expected = _avg_pool_torch(torch, t64(torch, x), cfg)
    assert_close(y, expected, cfg["dtype"], f"avg_pool2d ({kind})")
    assert y.flags.c_contiguous


def check_avg_pool_backward(torch, ops, cfg):
    x = make_input(cfg, "normal")
    xt = t64(torch, x, True)
    yt = _avg_pool_torch(torch, xt, cfg)
    g = randn(rng_for(cfg["seed"] + 1), tuple(yt.shape), cfg["dtype"])
    g0 = g.copy()
    gi = ops.avg_pool2d_backward(g, x.shape, **avg_pool_kwargs(cfg))
    assert_identical(g, g0, "grad_output modified")
    yt.backward(t64(torch, g))
    expected = xt.grad if xt.grad is not None else np.zeros(x.shape)
    assert_close(gi, expected, cfg["dtype"], "avg_pool2d_backward")
    assert gi.flags.c_contiguous


@given(cfg=pool_configs("avg"), kind=st.sampled_from(["normal", "specials"]))
def test_reference_avg_pool2d_matches_torch(torch, cfg, kind):
    check_avg_pool(torch, fc.reference, cfg, kind)


@given(cfg=pool_configs("avg"), kind=st.sampled_from(["normal", "specials"]))
def test_avg_pool2d_matches_torch(torch, isa, cfg, kind):
    check_avg_pool(torch, fc, cfg, kind)


@given(cfg=pool_configs("avg"))
def test_reference_avg_pool2d_backward_matches_torch(torch, cfg):
    check_avg_pool_backward(torch, fc.reference, cfg)


@given(cfg=pool_configs("avg"))
def test_avg_pool2d_backward_matches_torch(torch, isa, cfg):
    check_avg_pool_backward(torch, fc, cfg)


AVG_NAMED = [
    dict(x_shape=(2, 3, 8, 8), kernel_size=2, stride=None, padding=0),
    dict(x_shape=(1, 4, 9, 9), kernel_size=3, stride=2, padding=1),
    dict(x_shape=(2, 2, 7, 9), kernel_size=(3, 2), stride=(2, 3), padding=(1, 1)),
    dict(x_shape=(1, 2, 5, 5), kernel_size=2, stride=2, padding=1),
    dict(x_shape=(1, 3, 6, 6), kernel_size=3, stride=2, padding=1),
    dict(x_shape=(0, 2, 5, 5), kernel_size=2, stride=None, padding=0),
    dict(x_shape=(2, 17, 7, 19), kernel_size=7, stride=1, padding=3),   # global-ish
]


@pytest.mark.parametrize("divisor_override", [None, 3, -2])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", range(len(AVG_NAMED)))
def test_avg_pool2d_named(torch, api, case, dtype, ceil_mode,
                          count_include_pad, divisor_override):
    cfg = _pairs(dict(AVG_NAMED[case], dtype=dtype, seed=case, ceil_mode=ceil_mode,
                      count_include_pad=count_include_pad,
                      divisor_override=divisor_override))
    cfg.pop("dilation_pair")
    ops = api
    check_avg_pool(torch, ops, cfg, "normal")
    check_avg_pool_backward(torch, ops, cfg)


# ---------------------------------------------------------------------------
# layouts, dtypes

def _views(a):
    yield np.asfortranarray(a)
    big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
    v = big[tuple(slice(1, None, 2) for _ in a.shape)]
    v[...] = a
    yield v
    yield np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    ro = a.copy()
    ro.setflags(write=False)
    yield ro


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_pool_layouts_identical(api, dtype):
    ops = api
    rng = rng_for(3)
    x = randn(rng, (2, 3, 9, 8), dtype)
    y, idx = ops.max_pool2d(x, 3, 2, 1, return_indices=True)
    a = ops.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    g = randn(rng, y.shape, dtype)
    gm = ops.max_pool2d_backward(g, idx, x.shape)
    ga = ops.avg_pool2d_backward(g, x.shape, 3, 2, 1, count_include_pad=False)
    for xv in _views(x):
        yv, iv = ops.max_pool2d(xv, 3, 2, 1, return_indices=True)
        assert_identical(yv, y, "max_pool2d")
        assert_identical(iv, idx, "max_pool2d indices")
        assert_identical(ops.avg_pool2d(xv, 3, 2, 1, count_include_pad=False), a, "avg_pool2d")
    for gv in _views(g):
        assert_identical(ops.max_pool2d_backward(gv, idx, x.shape), gm, "max backward")
        assert_identical(ops.avg_pool2d_backward(gv, x.shape, 3, 2, 1,
                                                 count_include_pad=False), ga, "avg backward")
    for iv in _views(idx):
        assert_identical(ops.max_pool2d_backward(g, iv, x.shape), gm, "indices layout")


@pytest.mark.parametrize("xd,expected", [(np.int64, np.float64), (np.int32, np.float64),
                                         (np.uint8, np.float64), (np.float16, np.float32)])
def test_pool_dtype_promotion(torch, api, xd, expected):
    ops = api
    rng = rng_for(4)
    x = rng.integers(0, 50, size=(2, 2, 6, 7)).astype(xd)
    y, idx = ops.max_pool2d(x, 2, return_indices=True)
    yt, it = torch.nn.functional.max_pool2d(t64(torch, x), 2, return_indices=True)
    assert_close(y, yt, expected, "max_pool2d")
    assert_identical(idx, it.numpy(), "indices")
    a = ops.avg_pool2d(x, 3, 1, 1)
    assert_close(a, torch.nn.functional.avg_pool2d(t64(torch, x), 3, 1, 1), expected, "avg")
    g = rng.integers(-3, 4, size=y.shape).astype(xd if xd != np.uint8 else np.int16)
    assert ops.max_pool2d_backward(g, idx, x.shape).dtype == expected
    assert ops.avg_pool2d_backward(g, x.shape, 2).dtype == expected
    # nested lists: computed in float64
    yl, il = ops.max_pool2d(x.tolist(), 2, return_indices=True)
    assert_close(yl, yt, np.float64, "max_pool2d of lists")
    assert_identical(il, it.numpy(), "indices of lists")
    assert_close(ops.avg_pool2d(x.tolist(), 3, 1, 1),
                 torch.nn.functional.avg_pool2d(t64(torch, x), 3, 1, 1), np.float64, "avg lists")
    gl = ops.max_pool2d_backward(g.tolist(), il.tolist(), list(x.shape))
    assert_close(gl, ops.max_pool2d_backward(g.astype(np.float64), idx, x.shape),
                 np.float64, "backward of lists")


# ---------------------------------------------------------------------------
# strides, kernels and dilations past the input (found by tests/test_fuzz.py)
#
# A stride larger than the padded input leaves one output along its axis, and
# so does a ceil_mode window running far past the input's end; such values
# are valid up to the bounds that _params puts on them (a stride up to
# INT64_MAX; a kernel size, dilation and dilated window up to GRID_MAX), and
# a ValueError naming the argument past them.  They reached the kernels as
# they were: above 2**63 the shim raised OverflowError, and just below it the
# kernels' index arithmetic (stride + padding, (kernel - 1) * dilation)
# overflowed int64: wrong results, and a corrupted heap for
# max_pool2d(x, 4, stride=2**63 - 1, padding=2).  Each in-bound case is
# compared here with PyTorch on the same window spelled with small values;
# values past the bounds are replaced by the largest in-bound ones.

INT64_MAX = 2**63 - 1   # the largest stride
GRID_MAX = 2**62 - 1    # the largest kernel size, dilation, dilated window
HUGE = [2**31, 2**62 - 1, 2**62 + 3, 2**63 - 1, 2**63, 2**64, 10**30]


def _check_pools_against_torch(torch, ops, x, kw, kw_torch, dtype, avg=True):
    F = torch.nn.functional
    xt = t64(torch, x)
    y, idx = ops.max_pool2d(x, **kw, return_indices=True)
    yt, it = F.max_pool2d(xt, **kw_torch, return_indices=True)
    assert_close(y, yt, dtype, f"max_pool2d {kw}")
    assert_identical(idx, it.numpy(), f"max_pool2d indices {kw}")
    g = randn(rng_for(7), y.shape, dtype)
    xg = t64(torch, x, True)
    F.max_pool2d(xg, **kw_torch).backward(t64(torch, g))
    assert_close(ops.max_pool2d_backward(g, idx, x.shape), xg.grad, dtype,
                 f"max_pool2d_backward {kw}")
    if not avg:
        return
    kw = {k: v for k, v in kw.items() if k != "dilation"}
    kw_torch = {k: v for k, v in kw_torch.items() if k != "dilation"}
    for cip in (True, False):
        for div in (None, 3):
            extra = dict(count_include_pad=cip, divisor_override=div)
            a = ops.avg_pool2d(x, **kw, **extra)
            assert_close(a, F.avg_pool2d(xt, **kw_torch, **extra), dtype, f"avg_pool2d {kw}")
            xg = t64(torch, x, True)
            F.avg_pool2d(xg, **kw_torch, **extra).backward(t64(torch, g))
            assert_close(ops.avg_pool2d_backward(g, x.shape, **kw, **extra), xg.grad,
                         dtype, f"avg_pool2d_backward {kw}")


def _check_pools_refuse(ops, x, kw, msg, avg=True):
    """Each pooling op that takes the geometry raises main's ValueError."""
    with pytest.raises(ValueError, match=msg):
        ops.max_pool2d(x, **kw)
    with pytest.raises(ValueError, match=msg):
        ops.max_pool2d(x, **kw, return_indices=True)
    if not avg:
        return
    kw = {k: v for k, v in kw.items() if k != "dilation"}
    with pytest.raises(ValueError, match=msg):
        ops.avg_pool2d(x, **kw)
    with pytest.raises(ValueError, match=msg):
        ops.avg_pool2d_backward(np.ones(x.shape[:2] + (1, 2), x.dtype), x.shape, **kw)


@pytest.mark.parametrize("huge", HUGE)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_pool_stride_past_the_input(torch, api, dtype, huge):
    # 2 x 9 planes: enough for the kernels' plane-parallel paths too
    x = randn(rng_for(5), (2, 9, 5, 6), dtype)
    stride = min(huge, INT64_MAX)
    for k, p in ((2, 1), (3, 1), (4, 2), (5, 2)):
        for ceil_mode in (False, True):
            kw = dict(kernel_size=(k, 3), stride=(huge, 2), padding=(p, 1),
                      ceil_mode=ceil_mode, dilation=1)
            if huge > INT64_MAX:
                _check_pools_refuse(api, x, kw, rf"^stride\[0\]: expected an int <= "
                                                rf"{INT64_MAX}, got {huge}$")
            kw = dict(kw, stride=(stride, 2))
            kw_torch = dict(kw, stride=(5 + 2 * p, 2))     # past the input as well
            _check_pools_against_torch(torch, api, x, kw, kw_torch, dtype)


@pytest.mark.parametrize("huge", HUGE)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_pool_window_far_past_the_input(torch, api, dtype, huge):
    """ceil_mode: one window of a huge kernel (and stride), holding the whole
    padded input; and a huge dilation whose second tap lies far past it."""
    x = randn(rng_for(6), (2, 9, 5, 6), dtype)
    kernel, stride = min(huge, GRID_MAX), min(huge, INT64_MAX)
    for p in (0, 1, 2):
        kw = dict(kernel_size=(huge, 2), stride=(stride, 2), padding=(p, 1),
                  ceil_mode=True, dilation=1)
        if huge > GRID_MAX:
            _check_pools_refuse(api, x, kw, rf"^kernel_size\[0\]: expected an int <= "
                                            rf"{GRID_MAX}, got {huge}$")
        if huge > INT64_MAX:
            _check_pools_refuse(api, x, dict(kw, kernel_size=(kernel, 2), stride=(huge, 2)),
                                rf"^stride\[0\]: expected an int <= {INT64_MAX}, got {huge}$")
        kw = dict(kw, kernel_size=(kernel, 2))
        kw_torch = dict(kw, kernel_size=(5 + 2 * p, 2), stride=(5 + 2 * p, 2))
        _check_pools_against_torch(torch, api, x, kw, kw_torch, dtype)
    # the second tap of a 3-tap window far past the input; the largest
    # in-bound dilation makes the dilated window GRID_MAX long (with the
    # largest stride, which leaves that window one output)
    geometry = [((GRID_MAX - 1) // 2, INT64_MAX)]
    kw = dict(kernel_size=(3, 2), stride=(stride, 2), padding=(0, 1), ceil_mode=True,
              dilation=(huge // 3 + 5, 1))
    if huge // 3 + 5 > GRID_MAX:
        _check_pools_refuse(api, x, kw, rf"^dilation\[0\]: expected an int <= "
                                        rf"{GRID_MAX}, got {huge // 3 + 5}$", avg=False)
    elif 2 * (huge // 3 + 5) + 1 > GRID_MAX:
        _check_pools_refuse(api, x, kw, r"^dilation: the dilated window \(\d+ x 2\) is too "
                                        r"large for 64-bit indexing", avg=False)
    else:
        geometry.append((huge // 3 + 5, stride))
    for d, s in geometry:
        kw = dict(kw, dilation=(d, 1), stride=(s, 2))
        kw_torch = dict(kw, kernel_size=(1, 2), stride=(5, 2), dilation=1)
        _check_pools_against_torch(torch, api, x, kw, kw_torch, dtype, avg=False)


def test_pool_validation_time_does_not_grow_with_the_kernel(api):
    """The check that no window lies wholly in the padding walked every tap
    of the first windows in Python: hours for kernel_size=2**41."""
    import time
    start = time.perf_counter()
    x = np.arange(1.0, 26.0).reshape(1, 1, 5, 5)
    kw = dict(kernel_size=(2**41, 1), stride=1, padding=(2**40, 0))
    assert fc.shapes.pool2d_output_shape(x.shape, **kw) == (1, 1, 6, 5)
    if api is fc:    # the reference's max pool materialises the taps
        y, idx = fc.max_pool2d(x, **kw, return_indices=True)
        assert_identical(y, np.broadcast_to(x[:, :, 4:], (1, 1, 6, 5)), "max")
        assert_identical(idx, np.broadcast_to(np.arange(20, 25), (1, 1, 6, 5)), "indices")
    a = api.avg_pool2d(x, **kw, count_include_pad=False)
    assert_close(a, np.broadcast_to(x.mean(axis=2, keepdims=True), (1, 1, 6, 5)),
                 np.float64, "avg")
    assert api.avg_pool2d(np.zeros((0, 3, 5, 5)), **kw).shape == (0, 3, 6, 5)
    assert time.perf_counter() - start < 5.0

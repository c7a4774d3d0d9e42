"""The pooling kernels (src/pool.c and its micro-kernels) against
fastconv.reference, at every instruction-set level.

The oracle suite (test_pool.py) compares with PyTorch on small random
problems; this file aims at what those reach rarely: rows several vectors
wide with a partial last vector, each micro-kernel variant (2x2/s2, 3x3/s2,
stride 1, stride 2, gathered strides of 3 and more, dilation), the border
columns computed outside the micro-kernels, global average pooling, each
backward expansion path; and at the kernels' own promises: a NaN anywhere
in a window, in any lane, wins (the last NaN's index is kept); the forward
without indices gives the same values; results do not depend on the thread
count or the instruction-set level (max pooling: bit for bit).

Self-contained: its fixtures have their own names (pool_isa), so it runs
with or without the suite's conftest.py.
"""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import reference
from _helpers import isa_level, isa_levels

LEVELS = isa_levels()
DTYPES = (np.float32, np.float64)
RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-12}


@contextlib.contextmanager
def threads(n):
    previous = fc.get_num_threads()
    fc.set_num_threads(n)
    try:
        yield n
    finally:
        fc.set_num_threads(previous)


@pytest.fixture(params=LEVELS)
def pool_isa(request):
    with isa_level(request.param) as level:
        yield level


def identical(a, b, what):
    assert a.dtype == b.dtype and a.shape == b.shape, \
        f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    same = np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if not same:
        bad = np.argwhere(~((a == b) | (np.isnan(a) & np.isnan(b))
                            if a.dtype.kind == "f" else a == b))
        where = tuple(bad[0])
        raise AssertionError(f"{what}: differ at {len(bad)} places, first {where}: "
                             f"{a[where]!r} vs {b[where]!r}")


def close(actual, expected, dtype, what):
    """NaN and inf where expected has them; elsewhere within
    RTOL * max(1, max|expected|)."""
    dtype = np.dtype(dtype)
    assert actual.dtype == dtype and actual.shape == expected.shape, what
    a, e = actual.astype(np.float64), np.asarray(expected, np.float64)
    assert np.array_equal(np.isnan(a), np.isnan(e)), f"{what}: NaN positions differ"
    finite = np.isfinite(e)
    assert np.array_equal(a[~finite & ~np.isnan(e)], e[~finite & ~np.isnan(e)]), \
        f"{what}: infinities differ"
    if finite.any():
        err = np.abs(a[finite] - e[finite]).max()
        tol = RTOL[dtype] * max(1.0, np.abs(e[finite]).max())
        assert err <= tol, f"{what}: max abs error {err:.3g} > {tol:.3g}"


def make(rng, shape, dtype, kind):
    if kind == "normal":
        return rng.standard_normal(shape).astype(dtype)
    if kind == "ties":
        return rng.integers(-1, 2, size=shape).astype(dtype)
    if kind == "specials":
        x = rng.standard_normal(shape).astype(dtype)
        u = rng.random(shape)
        x[u < 0.08] = np.nan
        x[(u >= 0.08) & (u < 0.2)] = -np.inf
        x[(u >= 0.2) & (u < 0.23)] = np.inf
        return x
    if kind == "neg_inf":
        x = np.full(shape, -np.inf, dtype)
        x[..., ::7, ::5] = np.nan
        return x
    raise AssertionError(kind)


# (kernel, stride, padding, dilation, ceil_mode): every micro-kernel variant
# (k2s2, k3s2, run-time width with stride 1, 2, 3, 4) and border shapes.
MAX_GEOMETRIES = [
    (2, 2, 0, 1, False), (2, 2, 1, 1, True), (3, 2, 1, 1, False),
    (3, 2, 0, 1, True), (3, 2, 1, 2, False), (3, 1, 1, 1, False),
    (2, 1, 0, 2, False), (3, 3, 1, 1, True), (4, 3, 2, 1, False),
    (5, 4, 2, 1, True), ((2, 3), (1, 2), (1, 1), (2, 1), True),
    ((3, 2), (2, 2), (1, 0), 1, False), ((1, 3), (1, 2), 0, (1, 2), False),
    (1, 1, 0, 1, False),
]
WIDTHS = (5, 17, 38, 71)     # one partial vector .. several and a tail


@pytest.mark.parametrize("kind", ["normal", "ties", "specials", "neg_inf"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", range(len(MAX_GEOMETRIES)))
def test_max_pool2d_paths(pool_isa, geom, dtype, kind):
    k, s, p, d, ceil = MAX_GEOMETRIES[geom]
    rng = np.random.default_rng(geom)
    for W in WIDTHS:
        x = make(rng, (2, 3, 9, W), dtype, kind)
        y_ref, i_ref = reference.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
        y, i = fc.max_pool2d(x, k, s, p, d, ceil, return_indices=True)
        identical(y, y_ref, f"values W={W}")
        identical(i, i_ref, f"indices W={W}")
        identical(fc.max_pool2d(x, k, s, p, d, ceil), y, f"without indices W={W}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k,s", [(2, 2), (3, 2), (3, 1), (2, 3)])
def test_max_pool2d_nan_at_every_tap_and_lane(pool_isa, k, s, dtype):
    """One NaN (or two) at each position of the windows of one output row,
    every lane: NaN wins, the last NaN's index is kept."""
    W = s * 40 + k
    base = np.arange(3 * W, dtype=dtype).reshape(1, 1, 3, W)[:, :, :k]
    for tap in range(k * k):
        r, c = divmod(tap, k)
        x = base.copy()
        x[0, 0, r, c::s] = np.nan
        if tap + 1 < k * k:
            r2, c2 = divmod(tap + 1, k)
            x[0, 0, r2, c2::2 * s] = -np.nan
        y_ref, i_ref = reference.max_pool2d(x, k, s, return_indices=True)
        y, i = fc.max_pool2d(x, k, s, return_indices=True)
        identical(y, y_ref, f"tap {tap}")
        identical(i, i_ref, f"tap {tap} indices")
        assert np.isnan(y).all()
        identical(fc.max_pool2d(x, k, s), y, f"tap {tap} without indices")


AVG_GEOMETRIES = [    # (kernel, stride, padding, ceil_mode)
    (2, 2, 0, False), (2, 2, 1, True), (2, 2, 1, False), (3, 2, 1, False),
    (3, 2, 0, True), (3, 1, 1, False), (3, 3, 1, True), (4, 3, 2, False),
    ((2, 3), (1, 2), (1, 1), True), ((3, 2), (2, 2), (1, 0), False),
    (1, 1, 0, False), (5, 1, 2, True), (2, 1, 0, False),
    ((4, 3), (2, 1), (2, 1), True), ((2, 5), (1, 1), (1, 2), False),
]


# (N, C): 4 planes take the row kernels everywhere; 9 planes (>= 8) take
# the plane-at-a-time paths of stride-1 average pooling (forward: window
# sums along the flattened plane; backward: box sums of gy / divisor).
AVG_BATCHES = [(2, 2), (3, 3)]


@pytest.mark.parametrize("batch", AVG_BATCHES)
@pytest.mark.parametrize("divisor_override", [None, 3, -2])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geom", range(len(AVG_GEOMETRIES)))
def test_avg_pool2d_paths(pool_isa, geom, dtype, count_include_pad,
                          divisor_override, batch):
    k, s, p, ceil = AVG_GEOMETRIES[geom]
    rng = np.random.default_rng(100 + geom)
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
              count_include_pad=count_include_pad, divisor_override=divisor_override)
    for W in WIDTHS:
        x = make(rng, batch + (8, W), dtype, "normal")
        y_ref = reference.avg_pool2d(x.astype(np.float64), **kw)
        y = fc.avg_pool2d(x, **kw)
        close(y, y_ref, dtype, f"avg_pool2d W={W}")
        g = make(rng, y.shape, dtype, "normal")
        gi_ref = reference.avg_pool2d_backward(g.astype(np.float64), x.shape, **kw)
        gi = fc.avg_pool2d_backward(g, x.shape, **kw)
        close(gi, gi_ref, dtype, f"avg_pool2d_backward W={W}")


@pytest.mark.parametrize("divisor_override", [None, 5])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(32, 70, 7, 7), (2, 3, 1, 1), (1, 5, 13, 17),
                                   (2, 2, 40, 41), (0, 3, 4, 4)])
def test_global_avg_pool(pool_isa, shape, dtype, divisor_override):
    rng = np.random.default_rng(7)
    x = make(rng, shape, dtype, "normal")
    kw = dict(kernel_size=shape[2:], divisor_override=divisor_override)
    y = fc.avg_pool2d(x, **kw)
    close(y, reference.avg_pool2d(x.astype(np.float64), **kw), dtype, "global avg")
    g = make(rng, y.shape, dtype, "normal")
    close(fc.avg_pool2d_backward(g, shape, **kw),
          reference.avg_pool2d_backward(g.astype(np.float64), shape, **kw), dtype,
          "global avg backward")
    xs = x.copy()
    if xs.size:
        xs.reshape(-1)[::11] = np.nan
    close(fc.avg_pool2d(xs, **kw), reference.avg_pool2d(xs.astype(np.float64), **kw),
          dtype, "global avg with NaN")


@pytest.mark.parametrize("geom", [(3, 1, 1, False), (2, 2, 0, False), (2, 2, 1, True),
                                  (3, 2, 1, True), (4, 3, 1, True), (5, 5, 0, False)])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_backward_finite_differences(pool_isa, geom, count_include_pad):
    """<avg_pool2d(x), g> is linear in x: its gradient, avg_pool2d_backward(g),
    matches central differences to rounding (float64)."""
    k, s, p, ceil = geom
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 2, 7, 9))
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
              count_include_pad=count_include_pad)
    g = rng.standard_normal(fc.avg_pool2d(x, **kw).shape)
    analytic = fc.avg_pool2d_backward(g, x.shape, **kw)
    h = 1e-3
    numeric = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = h
        e = e.reshape(x.shape)
        numeric.reshape(-1)[i] = (np.sum(fc.avg_pool2d(x + e, **kw) * g)
                                  - np.sum(fc.avg_pool2d(x - e, **kw) * g)) / (2 * h)
    assert np.abs(analytic - numeric).max() <= 1e-9 * max(1.0, np.abs(numeric).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_backward_scatter(pool_isa, dtype):
    """Indices with repeats, in any order: each gradient added at its index,
    in order (the same sums as a plain loop), the same at 1 and 2 threads."""
    rng = np.random.default_rng(5)
    N, C, H, W, P, Q = 3, 5, 9, 13, 6, 11
    g = make(rng, (N, C, P, Q), dtype, "normal")
    idx = rng.integers(0, H * W, size=(N, C, P, Q))
    idx[..., 0] = idx[..., 1]          # repeats for sure
    expected = np.zeros((N * C, H * W), dtype)
    for pl in range(N * C):
        for i, v in zip(idx.reshape(N * C, -1)[pl], g.reshape(N * C, -1)[pl]):
            expected[pl, i] += v
    with threads(1):
        one = fc.max_pool2d_backward(g, idx, (N, C, H, W))
    with threads(2):
        two = fc.max_pool2d_backward(g, idx, (N, C, H, W))
    identical(one, expected.reshape(N, C, H, W), "scatter-add")
    identical(two, one, "threads")


@pytest.mark.parametrize("bad", ["negative", "too_large", "shape"])
def test_max_pool2d_backward_rejects_bad_indices(bad):
    """Caller-supplied indices are checked before any kernel runs."""
    g = np.ones((1, 2, 3, 3), np.float32)
    idx = np.zeros((1, 2, 3, 3), np.int64)
    if bad == "negative":
        idx[0, 1, 2, 2] = -1
    elif bad == "too_large":
        idx[0, 0, 0, 0] = 36
    else:
        idx = idx[..., :2]
    with pytest.raises(ValueError, match="indices"):
        fc.max_pool2d_backward(g, idx, (1, 2, 6, 6))


def _representable(value, dtype):
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


_BAD_INDICES = [(v, d) for v in (-1, -2**63, 36, 2**40, 2**63 + 3)
                for d in (np.int64, np.int32, np.uint64, np.uint8) if _representable(v, d)]


@pytest.mark.parametrize("threads_n", [1, 2])
@pytest.mark.parametrize("value,dtype", _BAD_INDICES,
                         ids=[f"{v}-{np.dtype(d).name}" for v, d in _BAD_INDICES])
def test_max_pool2d_backward_bad_index_in_a_late_plane(value, dtype, threads_n):
    """The kernel checks each plane before writing through it: a bad index
    in the last plane, after others have been scattered, is still a
    ValueError that shows the caller's values, never a write outside."""
    g = np.ones((3, 4, 3, 3), np.float32)
    idx = np.zeros(g.shape, dtype)
    idx[2, 3, 2, 1] = value
    with threads(threads_n):
        with pytest.raises(ValueError, match=r"^indices: .*\[0, 36\)") as err:
            fc.max_pool2d_backward(g, idx, (3, 4, 6, 6))
    assert str(value) in str(err.value)


@pytest.mark.parametrize("ops", [fc, reference], ids=["fast", "reference"])
@pytest.mark.parametrize("divisor", [2**63, -2**63 - 1])
def test_divisor_override_beyond_int64(ops, divisor):
    """The kernels take an int64 divisor (as PyTorch): a larger one is a
    ValueError naming the argument, from both APIs alike."""
    x = np.ones((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="^divisor_override"):
        ops.avg_pool2d(x, 2, divisor_override=divisor)
    with pytest.raises(ValueError, match="^divisor_override"):
        ops.avg_pool2d_backward(np.ones((1, 1, 2, 2), np.float32), x.shape, 2,
                                divisor_override=divisor)
    y = ops.avg_pool2d(x, 2, divisor_override=2**63 - 1)      # the largest is fine
    np.testing.assert_allclose(y, np.full((1, 1, 2, 2), 4 / 2**63), rtol=1e-6)


def _all_ops(x, dtype):
    """Every pooling op on x (a float array), as a dict of results."""
    out = {}
    out["max"], out["max_idx"] = fc.max_pool2d(x, 3, 2, 1, return_indices=True)
    out["max_noidx"] = fc.max_pool2d(x, 3, 2, 1)
    out["max22"] = fc.max_pool2d(x, 2)
    out["max_dil"], out["max_dil_idx"] = fc.max_pool2d(x, 3, 3, 1, 2, True, True)
    g = np.linspace(-1, 1, out["max"].size).astype(dtype).reshape(out["max"].shape)
    out["max_bwd"] = fc.max_pool2d_backward(g, out["max_idx"], x.shape)
    out["avg"] = fc.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    out["avg_bwd"] = fc.avg_pool2d_backward(x, x.shape, 3, 1, 1, count_include_pad=False)
    out["avg2"] = fc.avg_pool2d(x, 2, ceil_mode=True)
    out["avg_glob"] = fc.avg_pool2d(x, x.shape[2:])
    out["avg_glob_bwd"] = fc.avg_pool2d_backward(out["avg_glob"], x.shape, x.shape[2:])
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_results_independent_of_thread_count(pool_isa, dtype):
    rng = np.random.default_rng(9)
    x = make(rng, (3, 7, 37, 45), dtype, "specials")
    with threads(1):
        one = _all_ops(x, dtype)
    for n in (2, 3):
        with threads(n):
            other = _all_ops(x, dtype)
        for name in one:
            identical(other[name], one[name], f"{name} at {n} threads")


@pytest.mark.parametrize("dtype", DTYPES)
def test_levels_agree(dtype):
    """Max pooling is bit-identical at every level; averages agree closely."""
    rng = np.random.default_rng(10)
    x = make(rng, (2, 5, 23, 50), dtype, "specials")
    results = {}
    for level in LEVELS:
        with isa_level(level):
            results[level] = _all_ops(x, dtype)
    first = results[LEVELS[0]]
    for level in LEVELS[1:]:
        for name, value in results[level].items():
            if name.startswith("max"):
                identical(value, first[name], f"{name} at {level}")
            else:
                close(value, first[name].astype(np.float64), dtype, f"{name} at {level}")


@st.composite
def wide_pool_problems(draw):
    """Pooling problems with rows up to several vectors wide."""
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    ceil = draw(st.booleans())
    H = d[0] * (k[0] - 1) + 1 + draw(st.integers(0, 12))
    W = d[1] * (k[1] - 1) + 1 + draw(st.integers(0, 80))
    return dict(shape=(draw(st.integers(1, 2)), draw(st.integers(1, 3)), H, W),
                k=k, s=s, p=p, d=d, ceil=ceil, dtype=draw(st.sampled_from(DTYPES)),
                kind=draw(st.sampled_from(["normal", "ties", "specials"])),
                cip=draw(st.booleans()),
                div=draw(st.sampled_from([None, None, 2, -3])),
                seed=draw(st.integers(0, 2**31)))


def _geometry_ok(size, k, s, p, d, ceil):
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil else 0)) // s + 1
    if ceil and (out - 1) * s >= size + p:
        out -= 1
    return out >= 1 and all(any(0 <= o * s - p + i * d < size for i in range(k))
                            for o in range(out))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # inf - inf in sums
@settings(max_examples=40, deadline=None)
@given(prob=wide_pool_problems())
def test_wide_problems_match_reference(prob):
    x = make(np.random.default_rng(prob["seed"]), prob["shape"], prob["dtype"],
             prob["kind"])
    k, s, p, d, ceil = prob["k"], prob["s"], prob["p"], prob["d"], prob["ceil"]
    H, W = prob["shape"][2:]
    for level in LEVELS:
        with isa_level(level):
            if _geometry_ok(H, k[0], s[0], p[0], d[0], ceil) and \
                    _geometry_ok(W, k[1], s[1], p[1], d[1], ceil):
                y_ref, i_ref = reference.max_pool2d(x, k, s, p, d, ceil, True)
                y, i = fc.max_pool2d(x, k, s, p, d, ceil, True)
                identical(y, y_ref, f"max at {level}")
                identical(i, i_ref, f"indices at {level}")
                identical(fc.max_pool2d(x, k, s, p, d, ceil), y, f"max, no indices, {level}")
                g = make(np.random.default_rng(1), y.shape, prob["dtype"], "normal")
                close(fc.max_pool2d_backward(g, i, x.shape),
                      reference.max_pool2d_backward(g.astype(np.float64), i, x.shape),
                      prob["dtype"], f"max backward at {level}")
            kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil,
                      count_include_pad=prob["cip"], divisor_override=prob["div"])
            if _geometry_ok(H, k[0], s[0], p[0], 1, ceil) and \
                    _geometry_ok(W, k[1], s[1], p[1], 1, ceil):
                x64 = x.astype(np.float64)
                y = fc.avg_pool2d(x, **kw)
                close(y, reference.avg_pool2d(x64, **kw), prob["dtype"], f"avg at {level}")
                g = make(np.random.default_rng(2), y.shape, prob["dtype"], "normal")
                close(fc.avg_pool2d_backward(g, x.shape, **kw),
                      reference.avg_pool2d_backward(g.astype(np.float64), x.shape, **kw),
                      prob["dtype"], f"avg backward at {level}")


def test_outputs_are_new_contiguous_arrays():
    x = np.random.default_rng(0).standard_normal((2, 3, 10, 12)).astype(np.float32)
    xs = x[:, :, ::-1, :]                          # a negative-stride view
    y, i = fc.max_pool2d(xs, 2, return_indices=True)
    assert y.flags.c_contiguous and i.flags.c_contiguous and i.dtype == np.int64
    identical(y, reference.max_pool2d(np.ascontiguousarray(xs), 2), "view input")
    a = fc.avg_pool2d(xs, 3, 1, 1)
    assert a.flags.c_contiguous and not np.shares_memory(a, x)

"""Helpers shared by the test files: tolerances and `assert_close`, the
PyTorch oracle calls, finite differences, and hypothesis strategies for
random convolution / pooling / batch-norm problems.

Nothing here imports code under test beyond the public API (and the
instruction-set switch of fastconv._kernels, the tests' way to run each
level), and nothing re-implements fastconv's own argument handling with
fastconv's code: the oracle side (padding normalisation for torch, etc.) is
written afresh.
"""
import contextlib
import warnings

import numpy as np
from hypothesis import strategies as st

# ---------------------------------------------------------------------------
# tolerances

# Relative to the scale of the expected result: |actual - expected| <=
# RTOL * max(1, max|expected|).  Never loosen these to make a test pass.
RTOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-11}

ALGORITHMS = ("auto", "direct", "im2col")
FLOAT_DTYPES = (np.float32, np.float64)

# ---------------------------------------------------------------------------
# instruction-set levels (fastconv._kernels imported on use, so that
# conftest can import this module before reporting a missing build)

ISA_ORDER = ("generic", "avx2", "avx512")


def isa_levels():
    """The levels from "generic" up to the best one this CPU supports."""
    from fastconv import _kernels
    return ISA_ORDER[: ISA_ORDER.index(_kernels.isa_detect()) + 1]


@contextlib.contextmanager
def isa_level(level):
    """Activate one instruction-set level; restore the previous one after."""
    from fastconv import _kernels
    previous = _kernels.isa_active()
    active = _kernels.isa_select(level)
    assert active == level, f"isa_select({level!r}) activated {active!r}"
    try:
        yield level
    finally:
        _kernels.isa_select(previous)
        assert _kernels.isa_active() == previous


def _as_numpy(a):
    if hasattr(a, "detach"):            # a torch tensor
        return a.detach().cpu().numpy()
    return np.asarray(a)


def assert_close(actual, expected, dtype, what=""):
    """`actual` has dtype `dtype` and `expected`'s shape, NaN (and +-inf) in
    exactly the same places, and elsewhere
    max|actual - expected| <= rtol(dtype) * max(1, max|expected|)."""
    dtype = np.dtype(dtype)
    label = f"{what}: " if what else ""
    assert isinstance(actual, np.ndarray), f"{label}expected an ndarray, got {type(actual)}"
    expected = _as_numpy(expected).astype(np.float64)
    assert actual.dtype == dtype, f"{label}dtype {actual.dtype}, expected {dtype}"
    assert actual.shape == expected.shape, \
        f"{label}shape {actual.shape}, expected {expected.shape}"
    a = actual.astype(np.float64)
    nan_a, nan_e = np.isnan(a), np.isnan(expected)
    assert np.array_equal(nan_a, nan_e), (
        f"{label}NaN positions differ: actual at {np.argwhere(nan_a)[:10].tolist()}, "
        f"expected at {np.argwhere(nan_e)[:10].tolist()}")
    inf_e = np.isinf(expected)
    assert np.array_equal(np.isinf(a), inf_e), f"{label}inf positions differ"
    assert np.array_equal(a[inf_e], expected[inf_e]), f"{label}signs of inf differ"
    finite = np.isfinite(expected)
    if not finite.any():
        return
    err = np.abs(a[finite] - expected[finite]).max()
    scale = max(1.0, float(np.abs(expected[finite]).max()))
    tol = RTOL[dtype] * scale
    if err > tol:
        diff = np.where(finite, np.abs(a - np.where(finite, expected, 0)), 0)
        worst = np.unravel_index(np.argmax(diff), diff.shape)
        raise AssertionError(
            f"{label}max abs error {err:.3e} > {tol:.3e} (rtol {RTOL[dtype]:g} x "
            f"scale {scale:.3g}); worst at {worst}: actual {a[worst]!r}, "
            f"expected {expected[worst]!r}")


def assert_identical(a, b, what=""):
    """Bit-for-bit equality (NaN == NaN), same dtype and shape."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, \
        f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f"{what}: values differ"


# ---------------------------------------------------------------------------
# calling the op under test

def call(fn, *args, algorithm=None, **kwargs):
    """fn(*args, **kwargs), with algorithm= added for the fast API only
    (fastconv.reference has the same signatures minus algorithm= and out=)."""
    if algorithm is not None:
        kwargs["algorithm"] = algorithm
    return fn(*args, **kwargs)


def rng_for(seed):
    return np.random.default_rng(seed)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def distinct(rng, shape, dtype, gap=1.0):
    """Values all distinct by at least `gap` (no ties in max pooling)."""
    n = int(np.prod(shape))
    vals = (rng.permutation(n) - n / 2) * gap
    return vals.reshape(shape).astype(dtype)


# ---------------------------------------------------------------------------
# the PyTorch oracle (always in float64, see below)
#
# Why float64: the float32 results of fastconv are compared with PyTorch run in
# float64 on the very same (float32-valued) inputs.  PyTorch's own float32
# kernels (oneDNN, Winograd-like transforms, different summation orders) carry
# errors of the same size as ours, so float32-vs-float32 would compare two
# approximations; against the float64 result, the error measured is fastconv's
# alone and the tight rtol (2e-5 of the result's scale) stays meaningful.

def t64(torch, a, requires_grad=False):
    if a is None:
        return None
    t = torch.from_numpy(np.array(a, dtype=np.float64, copy=True))
    if requires_grad:
        t.requires_grad_(True)
    return t


def explicit_pads(padding):
    """((top, bottom), (left, right)) for an int, a pair or a pair of pairs
    (written independently of fastconv._params)."""
    if isinstance(padding, (int, np.integer)):
        return ((int(padding),) * 2, (int(padding),) * 2)
    a, b = padding
    if isinstance(a, (tuple, list)):
        return (tuple(a), tuple(b))
    return ((a, a), (b, b))


def torch_conv2d(torch, x, w, b, stride, padding, dilation, groups):
    """PyTorch's conv2d, float64; asymmetric padding by F.pad then padding=0."""
    F = torch.nn.functional
    if isinstance(padding, str):
        with warnings.catch_warnings():   # "'same' with even kernel may copy"
            warnings.simplefilter("ignore", UserWarning)
            return F.conv2d(x, w, b, stride=stride, padding=padding,
                            dilation=dilation, groups=groups)
    (t, bo), (l, r) = explicit_pads(padding)
    return F.conv2d(F.pad(x, (l, r, t, bo)), w, b, stride=stride, padding=0,
                    dilation=dilation, groups=groups)


# ---------------------------------------------------------------------------
# finite differences (float64, central)

def numeric_grad(f, x, h):
    """Central differences of the scalar function f at x (float64), one
    element at a time: (f(x + h e_i) - f(x - h e_i)) / 2h."""
    x = np.array(x, dtype=np.float64, copy=True)
    g = np.empty_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        fp = f(x)
        flat[i] = old - h
        fm = f(x)
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return g


def assert_grad_close(analytic, numeric, tol, what=""):
    """Finite-difference agreement, relative to the gradient's scale.  `tol`
    is the finite-difference error budget (truncation + rounding / h), set per
    test from h and the function, not from any observed result."""
    assert analytic.shape == numeric.shape, f"{what}: shape {analytic.shape} vs {numeric.shape}"
    assert analytic.dtype == np.float64, f"{what}: dtype {analytic.dtype}"
    err = np.abs(analytic - numeric).max() if analytic.size else 0.0
    scale = max(1.0, float(np.abs(numeric).max()) if numeric.size else 0.0)
    assert err <= tol * scale, (
        f"{what}: finite differences disagree, max abs error {err:.3e} > "
        f"{tol:.1e} x {scale:.3g}")


# ---------------------------------------------------------------------------
# hypothesis strategies

dtypes = st.sampled_from(FLOAT_DTYPES)
seeds = st.integers(0, 2**32 - 1)


def _pair_arg(draw, pair):
    """An int when both equal (sometimes), else the pair as a tuple or list."""
    if pair[0] == pair[1] and draw(st.booleans()):
        return pair[0]
    return draw(st.sampled_from([tuple, list]))(pair)


@st.composite
def conv_configs(draw, allow_empty_batch=True, max_extra=5):
    """A random valid conv2d problem: dict of the op's arguments (as passed to
    fastconv, in varied forms) and the arrays' shapes, dtype and seed."""
    kind = draw(st.sampled_from(
        ["dense", "grouped", "depthwise", "depthwise_mult", "pointwise"]))
    if kind in ("dense", "pointwise"):
        g, cg, kg = 1, draw(st.integers(1, 4)), draw(st.integers(1, 4))
    elif kind == "grouped":
        g, cg, kg = draw(st.integers(2, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    elif kind == "depthwise":
        g = draw(st.integers(1, 4))
        cg, kg = 1, 1
    else:   # depthwise with channel multiplier: K = m * C
        g = draw(st.integers(1, 3))
        cg, kg = 1, draw(st.integers(2, 3))
    C, K = g * cg, g * kg
    if kind == "pointwise":
        R = S = 1
    else:
        R, S = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    dil = tuple(draw(st.integers(1, 3 if k <= 3 else (2 if k <= 5 else 1)))
                if k > 1 else draw(st.integers(1, 2)) for k in (R, S))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad_kind = draw(st.sampled_from(["int", "pair", "pairs", "same", "valid"]))
    if pad_kind == "same":
        stride = (1, 1)
        tot = [d * (k - 1) for d, k in zip(dil, (R, S))]
        pads = ((tot[0] // 2, tot[0] - tot[0] // 2), (tot[1] // 2, tot[1] - tot[1] // 2))
        padding = "same"
    elif pad_kind == "valid":
        pads, padding = ((0, 0), (0, 0)), "valid"
    elif pad_kind == "int":
        p = draw(st.integers(0, 3))
        pads, padding = ((p, p), (p, p)), p
    elif pad_kind == "pair":
        ph, pw = draw(st.integers(0, 3)), draw(st.integers(0, 3))
        pads, padding = ((ph, ph), (pw, pw)), (ph, pw)
    else:
        pads = ((draw(st.integers(0, 3)), draw(st.integers(0, 3))),
                (draw(st.integers(0, 3)), draw(st.integers(0, 3))))
        padding = pads
    eff = (dil[0] * (R - 1) + 1, dil[1] * (S - 1) + 1)
    H = max(1, eff[0] - sum(pads[0])) + draw(st.integers(0, max_extra))
    W = max(1, eff[1] - sum(pads[1])) + draw(st.integers(0, max_extra))
    N = draw(st.integers(0 if allow_empty_batch else 1, 2))
    P = (H + sum(pads[0]) - eff[0]) // stride[0] + 1
    Q = (W + sum(pads[1]) - eff[1]) // stride[1] + 1
    return dict(
        kind=kind, N=N, C=C, H=H, W=W, K=K, R=R, S=S, groups=g,
        x_shape=(N, C, H, W), w_shape=(K, cg, R, S), y_shape=(N, K, P, Q),
        stride=_pair_arg(draw, stride), stride_pair=stride,
        padding=padding, pads=pads,
        dilation=_pair_arg(draw, dil), dilation_pair=dil,
        bias=draw(st.booleans()), dtype=draw(dtypes), seed=draw(seeds))


def conv_arrays(cfg):
    """(x, weight, bias) of a conv_configs problem."""
    rng = rng_for(cfg["seed"])
    x = randn(rng, cfg["x_shape"], cfg["dtype"])
    w = randn(rng, cfg["w_shape"], cfg["dtype"])
    b = randn(rng, (cfg["K"],), cfg["dtype"]) if cfg["bias"] else None
    return x, w, b


def conv_kwargs(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"],
                dilation=cfg["dilation"], groups=cfg["groups"])


def pool_out_len(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape (aten/src/ATen/native/Pool.h)."""
    num = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = num // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_windows_ok(size, k, s, p, d, ceil_mode):
    """At least one output, and every window has a tap inside the input."""
    out = pool_out_len(size, k, s, p, d, ceil_mode)
    return out >= 1 and all(any(0 <= o * s - p + i * d < size for i in range(k))
                            for o in range(out))


@st.composite
def pool_configs(draw, kind="max", allow_empty_batch=True):
    """A random valid max_pool2d / avg_pool2d problem."""
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    if draw(st.booleans()):
        stride, stride_pair = None, k
    else:
        stride_pair = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        stride = _pair_arg(draw, stride_pair)
    pad = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if kind == "max" else (1, 1)
    ceil_mode = draw(st.booleans())
    sizes = []
    for a in (0, 1):
        size = max(1, dil[a] * (k[a] - 1) + 1 - 2 * pad[a]) + draw(st.integers(0, 5))
        # fastconv refuses a dilated window that lies wholly in the padding
        # (PyTorch returns -inf and an index outside the plane there): grow
        # the input until every window sees at least one input element.
        while not pool_windows_ok(size, k[a], stride_pair[a], pad[a], dil[a], ceil_mode):
            size += 1
        sizes.append(size)
    H, W = sizes
    N = draw(st.integers(0 if allow_empty_batch else 1, 2))
    C = draw(st.integers(1, 3))
    cfg = dict(x_shape=(N, C, H, W), kernel_size=_pair_arg(draw, k), kernel_pair=k,
               stride=stride, stride_pair=stride_pair, padding=_pair_arg(draw, pad),
               padding_pair=pad, ceil_mode=ceil_mode,
               dtype=draw(dtypes), seed=draw(seeds))
    if kind == "max":
        cfg["dilation"] = _pair_arg(draw, dil)
        cfg["dilation_pair"] = dil
    else:
        cfg["count_include_pad"] = draw(st.booleans())
        cfg["divisor_override"] = draw(st.sampled_from([None, None, 1, 2, 5, -3]))
    return cfg


def max_pool_kwargs(cfg):
    return dict(kernel_size=cfg["kernel_size"], stride=cfg["stride"],
                padding=cfg["padding"], dilation=cfg["dilation"],
                ceil_mode=cfg["ceil_mode"])


def avg_pool_kwargs(cfg):
    return dict(kernel_size=cfg["kernel_size"], stride=cfg["stride"],
                padding=cfg["padding"], ceil_mode=cfg["ceil_mode"],
                count_include_pad=cfg["count_include_pad"],
                divisor_override=cfg["divisor_override"])


@st.composite
def bn_configs(draw):
    """A random batch_norm problem: 2-D (N, C), 3-D or 4-D input."""
    ndim = draw(st.sampled_from([2, 3, 4]))
    C = draw(st.integers(1, 4))
    N = draw(st.integers(1, 4))
    spatial = tuple(draw(st.integers(1, 4)) for _ in range(ndim - 2))
    if int(np.prod(spatial, dtype=np.int64)) == 1:
        N = max(N, 2)      # training needs more than one value per channel
    return dict(
        x_shape=(N, C) + spatial, C=C,
        weight=draw(st.booleans()), bias=draw(st.booleans()),
        momentum=draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])
                      | st.floats(0.0, 1.0)),
        eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])),
        dtype=draw(dtypes), seed=draw(seeds))


def bn_arrays(cfg):
    """(x, running_mean, running_var, weight, bias): x per channel with an
    offset and a scale, so that the statistics matter."""
    rng = rng_for(cfg["seed"])
    dt, C = cfg["dtype"], cfg["C"]
    bshape = (1, C) + (1,) * (len(cfg["x_shape"]) - 2)
    offset = rng.uniform(-2, 2, C).reshape(bshape)
    scale = rng.uniform(0.5, 2, C).reshape(bshape)
    x = (offset + scale * rng.standard_normal(cfg["x_shape"])).astype(dt)
    rm = rng.standard_normal(C).astype(dt)
    rv = rng.uniform(0.5, 2.0, C).astype(dt)
    w = rng.uniform(-2, 2, C).astype(dt) if cfg["weight"] else None
    b = rng.standard_normal(C).astype(dt) if cfg["bias"] else None
    return x, rm, rv, w, b

"""NaN and +-inf propagate through every op exactly as through PyTorch's CPU
ops: forward and backward, float32 and float64, every algorithm and every
instruction-set level (the `isa` fixture), on shapes chosen to reach each
special kernel (depthwise 3x3 planes, 1x1 GEMM, the flat walk of narrow
images, the shifted walk of layers with few input channels, the
channels-last walk of small images with many channels, stride-2
permute loads, gathers, pooling's two-row vectors ...).

Inputs are moderate finite values (no overflow anywhere) with NaN, +inf and
-inf put at seeded random positions.  The oracle is PyTorch in float64 on the
same values (as in the rest of the suite): the masks isnan, isposinf and
isneginf of every output must be equal element for element, and the finite
entries agree within the suite's usual tolerance.

Convolution weights are always finite (zeros included, so that inf * 0 =
NaN is exercised).  Non-finite weights are left out on purpose: where an
inf weight meets the zero padding, PyTorch itself multiplies (0 * inf = NaN)
in some code paths and skips the padding in others, depending on dtype and
shape.  The same holds for the weight gradient when a non-finite
grad_output value belongs to a window that reaches into the padding
(PyTorch float64 and the float32 depthwise path disagree there), so the
weight gradient is compared only for non-finite grad_output values whose
windows lie inside the input; the input and bias gradients are compared for
non-finite values anywhere.
"""
import zlib

import numpy as np
import pytest

import fastconv as fc
from _helpers import ALGORITHMS, FLOAT_DTYPES, assert_close, t64, torch_conv2d

NONFINITE = (np.nan, np.inf, -np.inf)
MASKS = (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf))


# ---------------------------------------------------------------------------
# checks and inputs

def assert_nonfinite_match(actual, expected, dtype, what):
    """NaN, +inf and -inf exactly where torch has them; finite values close."""
    if hasattr(expected, "detach"):
        expected = expected.detach().numpy()
    expected = np.asarray(expected, dtype=np.float64)
    assert isinstance(actual, np.ndarray) and actual.shape == expected.shape, \
        f"{what}: shape {getattr(actual, 'shape', None)}, expected {expected.shape}"
    for name, test in MASKS:
        a, e = test(actual), test(expected)
        if not np.array_equal(a, e):
            only_a = np.argwhere(a & ~e)[:6].tolist()
            only_e = np.argwhere(e & ~a)[:6].tolist()
            raise AssertionError(
                f"{what}: {name} positions differ from torch's: {name} only in "
                f"fastconv at {only_a} (torch has {[expected[tuple(i)] for i in only_a]}), "
                f"only in torch at {only_e} (fastconv has "
                f"{[actual[tuple(i)] for i in only_e]})")
    assert_close(actual, expected, dtype, what)


def poison(rng, a, count, allowed=None):
    """A copy of `a` with `count` entries (at random positions, among the
    `allowed` ones when a mask is given) set to NaN, +inf or -inf, each of
    the three used at least once when count >= 3."""
    out = np.array(a, copy=True)
    flat = out.reshape(-1)
    where = (np.arange(flat.size) if allowed is None
             else np.flatnonzero(np.broadcast_to(allowed, out.shape).reshape(-1)))
    count = min(count, where.size)
    pos = rng.choice(where, size=count, replace=False)
    kinds = rng.integers(0, 3, size=count)
    kinds[:min(3, count)] = np.arange(min(3, count))
    flat[pos] = np.asarray(NONFINITE)[kinds]
    return out


def moderate(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def with_zeros(rng, a, frac=0.25):
    """Some entries exactly zero (inf * 0 = NaN must come out as in torch)."""
    a = np.array(a, copy=True)
    a[rng.random(a.shape) < frac] = 0
    return a


def seed_of(*parts):
    """A fixed seed per test case (the same every run)."""
    return zlib.crc32(repr(parts).encode())


# ---------------------------------------------------------------------------
# conv2d: the shapes that reach each path (src/conv_direct_tmpl.h,
# conv_im2col_tmpl.h, fastconv/conv.py's choose_algorithm)

def _case(name, N, C, H, W, K, R, S, stride=1, padding=0, dilation=1, groups=1):
    return dict(name=name, N=N, C=C, H=H, W=W, K=K, R=R, S=S, stride=stride,
                padding=padding, dilation=dilation, groups=groups)


CONV_CASES = [
    # row walk, lanes along output rows (dense micro-kernel; more than 4
    # input channels, or the shifted walk takes it)
    _case("dense3x3", 2, 5, 11, 12, 8, 3, 3, padding=1),
    # few input channels: the shifted walk (LeNet's first layer)
    _case("shifted_c1", 2, 1, 12, 13, 10, 5, 5, padding=2),
    # more input channels than one cache block of the micro-kernel (32)
    _case("dense_c40", 1, 40, 6, 9, 5, 3, 3, padding=1),
    # narrow image: the flat walk over the padded-width plane
    _case("narrow7", 2, 6, 7, 7, 8, 3, 3, padding=1),
    # small image, many output channels: the channels-last walk
    _case("nhwc", 1, 8, 5, 5, 64, 3, 3, padding=1),
    _case("nhwc_groups2", 1, 8, 4, 4, 128, 3, 3, padding=1, groups=2),
    # stride 2 (AVX-512 float32 permute loads) and 3 (gathers)
    _case("stride2", 2, 3, 15, 17, 8, 3, 3, stride=2, padding=1),
    _case("stride3", 1, 2, 13, 14, 5, 3, 2, stride=3, padding=(1, 0)),
    _case("dilated", 1, 3, 12, 12, 6, 3, 3, padding=2, dilation=2),
    _case("asym_pad", 1, 2, 9, 10, 4, 2, 4, padding=((0, 2), (1, 0))),
    _case("same", 1, 3, 8, 9, 4, 4, 2, padding="same", dilation=(1, 2)),
    _case("grouped", 2, 4, 8, 9, 6, 3, 3, padding=1, groups=2),
    # depthwise: the 3x3 plane kernels (two column tiles), with column
    # dilation, with row dilation (the depthwise micro-kernel), 5x5 stride 2,
    # channel multiplier 2
    _case("dw3x3", 2, 6, 9, 18, 6, 3, 3, padding=1, groups=6),
    _case("dw3x3_coldil", 1, 4, 8, 10, 4, 3, 3, padding=(1, 2), dilation=(1, 2), groups=4),
    _case("dw3x3_rowdil", 1, 4, 10, 8, 4, 3, 3, padding=(2, 1), dilation=(2, 1), groups=4),
    _case("dw5x5_s2", 1, 5, 13, 12, 5, 5, 5, stride=2, padding=2, groups=5),
    _case("dw3x3_s3", 1, 4, 11, 13, 4, 3, 3, stride=3, padding=1, groups=4),
    _case("dw_mult2", 1, 3, 7, 9, 6, 3, 3, padding=1, groups=3),
    # 1x1: im2col's pure GEMM (x is the column matrix), and strided
    _case("pointwise", 2, 8, 9, 7, 16, 1, 1),
    _case("pointwise_s2", 1, 6, 9, 9, 8, 1, 1, stride=2),
    # big enough for "auto" to take the direct kernels where they exist
    _case("auto_direct", 2, 4, 16, 16, 8, 3, 3, padding=1),
    # ... and Winograd F(2x2, 3x3) (float32 AVX-512): 32 channels, 1024 pixels
    _case("auto_winograd", 1, 32, 32, 32, 16, 3, 3, padding=1),
    _case("auto_winograd_blocks", 16, 32, 8, 8, 16, 3, 3, padding=1),
    _case("auto_winograd_dilated", 1, 32, 64, 64, 16, 3, 3, padding=2, dilation=2),
    # ... and F(2x2, 5x5): LeNet's 14 x 14 images, 16 channels
    _case("auto_winograd_5x5", 12, 16, 14, 14, 32, 5, 5, padding=2),
    # ... and the streamed GEMM (float32 AVX-512): few pixels under many
    # weights; 7x7 is a panel and a dot product, 3x5 a part of a panel
    _case("auto_streamed", 1, 128, 7, 7, 64, 3, 3, padding=1),
    _case("auto_streamed_partial", 2, 256, 3, 5, 256, 1, 1),
]
CONV_IDS = [c["name"] for c in CONV_CASES]


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv_pads(case):
    """((top, bottom), (left, right)) of the case."""
    p = case["padding"]
    if p == "same":
        d = _pair(case["dilation"])
        tot = (d[0] * (case["R"] - 1), d[1] * (case["S"] - 1))
        return tuple((t // 2, t - t // 2) for t in tot)
    if isinstance(p, int):
        return ((p, p), (p, p))
    if isinstance(p[0], (tuple, list)):
        return (tuple(p[0]), tuple(p[1]))
    return ((p[0], p[0]), (p[1], p[1]))


def conv_kwargs(case):
    return dict(stride=case["stride"], padding=case["padding"],
                dilation=case["dilation"], groups=case["groups"])


def torch_conv(torch, case, x, w, b):
    """torch's conv2d in float64 (tensors given, gradients flow)."""
    pad = case["padding"] if case["padding"] == "same" else conv_pads(case)
    return torch_conv2d(torch, x, w, b, _pair(case["stride"]), pad,
                        _pair(case["dilation"]), case["groups"])


def conv_output_shape(torch, case, x, w):
    return tuple(torch_conv(torch, case, t64(torch, x), t64(torch, w), None).shape)


def conv_arrays(case, dtype, seed):
    rng = np.random.default_rng(seed)
    g = case["groups"]
    x = moderate(rng, (case["N"], case["C"], case["H"], case["W"]), dtype)
    w = with_zeros(rng, moderate(rng, (case["K"], case["C"] // g, case["R"], case["S"]), dtype))
    b = moderate(rng, (case["K"],), dtype)
    return rng, x, w, b


def read_inputs(case, out_shape):
    """Input positions that some window reads."""
    (pt, _), (pl, _) = conv_pads(case)
    sh, sw = _pair(case["stride"])
    dh, dw = _pair(case["dilation"])
    P, Q = out_shape[2:]
    rows = np.zeros(case["H"], bool)
    cols = np.zeros(case["W"], bool)
    for p in range(P):
        for r in range(case["R"]):
            ih = p * sh - pt + r * dh
            if 0 <= ih < case["H"]:
                rows[ih] = True
    for q in range(Q):
        for s in range(case["S"]):
            iw = q * sw - pl + s * dw
            if 0 <= iw < case["W"]:
                cols[iw] = True
    return rows[:, None] & cols[None, :]


def poison_x(torch, rng, case, x, w):
    """A few non-finite values per image, most where windows read them:
    enough to meet zero weights and each other in some windows, few enough
    that most outputs stay finite; one or two anywhere (read or not)."""
    read = read_inputs(case, conv_output_shape(torch, case, x, w))
    x = poison(rng, x, max(3, x.size // 120), read)
    return poison(rng, x, 2)


def interior_outputs(case, out_shape):
    """Output positions whose window lies wholly inside the input."""
    (pt, _), (pl, _) = conv_pads(case)
    sh, sw = _pair(case["stride"])
    dh, dw = _pair(case["dilation"])
    P, Q = out_shape[2:]
    rows = np.arange(P) * sh - pt
    cols = np.arange(Q) * sw - pl
    ok_r = (rows >= 0) & (rows + dh * (case["R"] - 1) < case["H"])
    ok_c = (cols >= 0) & (cols + dw * (case["S"] - 1) < case["W"])
    return np.broadcast_to(ok_r[:, None] & ok_c[None, :], out_shape)


def assert_exercised(expected, what):
    """The case means something: torch's result has non-finite entries."""
    e = np.asarray(expected.detach() if hasattr(expected, "detach") else expected)
    assert not np.isfinite(e).all(), f"{what}: no non-finite value reached the output"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_nonfinite_input(torch, isa, case, dtype, algorithm):
    rng, x, w, b = conv_arrays(case, dtype, seed_of("conv", case["name"], dtype))
    x = poison_x(torch, rng, case, x, w)
    y = fc.conv2d(x, w, b, **conv_kwargs(case), algorithm=algorithm)
    expected = torch_conv(torch, case, t64(torch, x), t64(torch, w), t64(torch, b))
    assert_exercised(expected, "conv2d")
    assert_nonfinite_match(y, expected, dtype, f"conv2d {algorithm}")


def check_conv_backward(torch, case, dtype, algorithm, g, x, w, compare_gw=True):
    gi, gw, gb = fc.conv2d_backward(g, x, w, **conv_kwargs(case), algorithm=algorithm)
    xt, wt = t64(torch, x, True), t64(torch, w, True)
    bt = t64(torch, np.zeros(case["K"]), True)
    torch_conv(torch, case, xt, wt, bt).backward(t64(torch, g))
    assert_nonfinite_match(gi, xt.grad, dtype, f"grad_input ({algorithm})")
    if compare_gw:
        assert_nonfinite_match(gw, wt.grad, dtype, f"grad_weight ({algorithm})")
    assert_nonfinite_match(gb, bt.grad, dtype, f"grad_bias ({algorithm})")
    return xt.grad, wt.grad, bt.grad


@pytest.mark.parametrize("where", ["interior", "anywhere"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_backward_nonfinite_grad_output(torch, isa, case, dtype, algorithm, where):
    """grad_output with NaN/inf: in windows inside the input (all three
    gradients compared) or anywhere (grad_input and grad_bias: see the
    module's docstring for why not grad_weight)."""
    rng, x, w, _ = conv_arrays(case, dtype, seed_of("convbwd", case["name"], dtype, where))
    y_shape = conv_output_shape(torch, case, x, w)
    g = moderate(rng, y_shape, dtype)
    allowed = interior_outputs(case, y_shape) if where == "interior" else None
    g = poison(rng, g, max(3, g.size // 40), allowed)
    gi_t, gw_t, gb_t = check_conv_backward(torch, case, dtype, algorithm, g, x, w,
                                           compare_gw=where == "interior")
    assert_exercised(gi_t, "grad_input")
    if where == "interior":
        assert_exercised(gw_t, "grad_weight")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_backward_nonfinite_input(torch, isa, case, dtype, algorithm):
    """x with NaN/inf: the weight gradient takes them (grad_output finite,
    some of it zero: inf * 0)."""
    rng, x, w, _ = conv_arrays(case, dtype, seed_of("convbwdx", case["name"], dtype))
    x = poison_x(torch, rng, case, x, w)
    y_shape = conv_output_shape(torch, case, x, w)
    g = with_zeros(rng, moderate(rng, y_shape, dtype), 0.1)
    _, gw_t, _ = check_conv_backward(torch, case, dtype, algorithm, g, x, w)
    assert_exercised(gw_t, "grad_weight")


# ---------------------------------------------------------------------------
# conv2d_bn: inference batch norm folded in, with and without the ReLU
# epilogue (torch.relu(NaN) is NaN; relu(-inf) is 0)

@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", CONV_CASES, ids=CONV_IDS)
def test_conv2d_bn_nonfinite_input(torch, isa, case, dtype, algorithm, activation):
    F = torch.nn.functional
    rng, x, w, b = conv_arrays(case, dtype, seed_of("convbn", case["name"], dtype))
    x = poison_x(torch, rng, case, x, w)
    K = case["K"]
    rm = moderate(rng, (K,), dtype)
    rv = rng.uniform(0.5, 2.0, K).astype(dtype)
    gamma = rng.uniform(-2, 2, K).astype(dtype)
    gamma[::5] = 0              # a zero scale: inf * 0 in the folded weights too
    beta = moderate(rng, (K,), dtype)
    eps = 1e-5
    y = fc.conv2d_bn(x, w, b, rm, rv, gamma, beta, **conv_kwargs(case), eps=eps,
                     activation=activation, algorithm=algorithm)
    yt = torch_conv(torch, case, t64(torch, x), t64(torch, w), t64(torch, b))
    yt = F.batch_norm(yt, t64(torch, rm), t64(torch, rv), t64(torch, gamma),
                      t64(torch, beta), training=False, eps=eps)
    if activation == "relu":
        yt = torch.relu(yt)
    assert_exercised(yt, "conv2d_bn")
    if activation == "relu":
        assert torch.isnan(yt).any(), "no NaN reached the ReLU"
    assert_nonfinite_match(y, yt, dtype, f"conv2d_bn {algorithm} {activation}")


# ---------------------------------------------------------------------------
# max pooling: NaN wins (the last NaN of the window's row-major scan gives
# the index, as torch's `val > max || isnan(val)`), +inf beats numbers, an
# all -inf window gives -inf at its first element inside the input (padding
# is -inf in torch and never wins)

def _pool_case(name, N, C, H, W, k, s=None, p=0, d=1, ceil=False):
    return dict(name=name, N=N, C=C, H=H, W=W, kernel_size=k, stride=s, padding=p,
                dilation=d, ceil_mode=ceil)


MAX_CASES = [
    _pool_case("k2s2", 2, 3, 8, 10, 2),
    _pool_case("k2s2_pad", 1, 2, 9, 9, 2, 2, 1),
    _pool_case("k3s2_pad_ceil", 2, 2, 11, 13, 3, 2, 1, ceil=True),
    _pool_case("k3s1_wide", 1, 3, 9, 20, 3, 1, 1),
    _pool_case("k2s1", 1, 2, 7, 8, 2, 1),
    _pool_case("row_k4x3_s3", 1, 2, 14, 15, (4, 3), 3, 1),
    _pool_case("dilated", 1, 2, 12, 12, 3, 1, 1, d=2),
    _pool_case("dilated_s2_ceil", 1, 2, 13, 11, (2, 3), 2, 1, d=(2, 1), ceil=True),
    # rows of at most half a vector: the AVX-512 two-row vectors
    _pool_case("pair_rows", 2, 4, 8, 8, 2, 2),
    _pool_case("pair_rows_k3", 2, 2, 9, 9, 3, 2),
    # rows of several vectors and a partial one
    _pool_case("long_rows", 1, 2, 5, 70, 3, 2),
    _pool_case("global", 2, 3, 6, 6, 6),
]
MAX_IDS = [c["name"] for c in MAX_CASES]


def pool_input(case, dtype, seed, frac=0.12):
    """Moderate values with NaN/+inf/-inf at random positions; the first
    plane without NaN (+inf in their place: windows of numbers and
    infinities only), the last channel with a block of -inf covering whole
    windows (some of them at the padding)."""
    rng = np.random.default_rng(seed)
    shape = (case["N"], case["C"], case["H"], case["W"])
    x = moderate(rng, shape, dtype)
    x = poison(rng, x, max(3, int(frac * x.size)))
    x[0, 0][np.isnan(x[0, 0])] = np.inf
    x[0, 0, -1, -1] = np.inf
    x[:, -1, :4, :5] = -np.inf
    x[-1, -1, -1, case["W"] // 2] = np.nan
    return rng, x


def max_kwargs(case):
    return {k: case[k] for k in ("kernel_size", "stride", "padding", "dilation", "ceil_mode")}


def torch_max_pool(torch, x, case, return_indices):
    k = _pair(case["kernel_size"])
    s = _pair(case["stride"]) if case["stride"] is not None else k
    return torch.nn.functional.max_pool2d(
        x, k, s, _pair(case["padding"]), _pair(case["dilation"]),
        ceil_mode=case["ceil_mode"], return_indices=return_indices)


@pytest.mark.parametrize("return_indices", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", MAX_CASES, ids=MAX_IDS)
def test_max_pool2d_nonfinite(torch, isa, case, dtype, return_indices):
    _, x = pool_input(case, dtype, seed_of("max", case["name"], dtype))
    out = fc.max_pool2d(x, **max_kwargs(case), return_indices=return_indices)
    yt, it = torch_max_pool(torch, t64(torch, x), case, True)
    y = out[0] if return_indices else out
    e = yt.numpy()
    assert np.isnan(e).any() and np.isposinf(e).any()
    if case["name"] != "global":     # whole windows of -inf (the global one is the plane)
        assert np.isneginf(e).any()
    assert_nonfinite_match(y, yt, dtype, "max_pool2d")
    if return_indices:
        assert np.array_equal(out[1], it.numpy()), (
            "max_pool2d indices differ from torch's at "
            f"{np.argwhere(out[1] != it.numpy())[:6].tolist()}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", MAX_CASES, ids=MAX_IDS)
def test_max_pool2d_backward_nonfinite(torch, isa, case, dtype):
    """NaN/inf in x (the indices) and in grad_output (scatter-added, several
    outputs onto one input where windows overlap: inf + -inf = NaN)."""
    rng, x = pool_input(case, dtype, seed_of("maxbwd", case["name"], dtype))
    y, idx = fc.max_pool2d(x, **max_kwargs(case), return_indices=True)
    g = poison(rng, moderate(rng, y.shape, dtype), max(3, y.size // 6))
    gi = fc.max_pool2d_backward(g, idx, x.shape)
    xt = t64(torch, x, True)
    torch_max_pool(torch, xt, case, False).backward(t64(torch, g))
    assert_exercised(xt.grad, "max_pool2d_backward")
    assert_nonfinite_match(gi, xt.grad, dtype, "max_pool2d_backward")


# ---------------------------------------------------------------------------
# average pooling

AVG_CASES = [
    _pool_case("k2s2", 2, 3, 8, 10, 2),
    _pool_case("k2s2_pad", 1, 3, 9, 9, 2, 2, 1),
    _pool_case("k3s2_pad_ceil", 2, 2, 11, 13, 3, 2, 1, ceil=True),
    # stride 1 along rows with 8+ planes: window sums by rows (separable
    # forward) and the box-sum gradient
    _pool_case("k3s1_pad_8planes", 2, 4, 9, 11, 3, 1, 1),
    _pool_case("k2x3_s1_8planes", 4, 2, 7, 9, (2, 3), 1),
    _pool_case("k2s1_few_planes", 1, 2, 7, 8, 2, 1),
    _pool_case("k3s1_few_planes", 1, 2, 7, 9, 3, 1, 1),
    _pool_case("row_k3x4_s2x3", 1, 2, 13, 14, (3, 4), (2, 3), (1, 2)),
    _pool_case("pair_rows", 2, 4, 8, 8, 2, 2),
    _pool_case("long_rows", 1, 2, 5, 70, 3, 2, 1),
    _pool_case("global", 2, 3, 6, 7, (6, 7)),
]
AVG_IDS = [c["name"] for c in AVG_CASES]


def avg_kwargs(case, cip, div):
    return dict(kernel_size=case["kernel_size"], stride=case["stride"],
                padding=case["padding"], ceil_mode=case["ceil_mode"],
                count_include_pad=cip, divisor_override=div)


def torch_avg_pool(torch, x, case, cip, div):
    k = _pair(case["kernel_size"])
    s = _pair(case["stride"]) if case["stride"] is not None else k
    return torch.nn.functional.avg_pool2d(
        x, k, s, _pair(case["padding"]), ceil_mode=case["ceil_mode"],
        count_include_pad=cip, divisor_override=div)


AVG_OPTIONS = [(True, None), (False, None), (True, -3), (False, 2)]


@pytest.mark.parametrize("cip,div", AVG_OPTIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", AVG_CASES, ids=AVG_IDS)
def test_avg_pool2d_nonfinite(torch, isa, case, dtype, cip, div):
    _, x = pool_input(case, dtype, seed_of("avg", case["name"], dtype), frac=0.05)
    y = fc.avg_pool2d(x, **avg_kwargs(case, cip, div))
    yt = torch_avg_pool(torch, t64(torch, x), case, cip, div)
    assert_exercised(yt, "avg_pool2d")
    assert_nonfinite_match(y, yt, dtype, "avg_pool2d")


@pytest.mark.parametrize("cip,div", AVG_OPTIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("case", AVG_CASES, ids=AVG_IDS)
def test_avg_pool2d_backward_nonfinite(torch, isa, case, dtype, cip, div):
    rng, x = pool_input(case, dtype, seed_of("avgbwd", case["name"], dtype))
    y = fc.avg_pool2d(x, **avg_kwargs(case, cip, div))
    g = poison(rng, moderate(rng, y.shape, dtype), max(3, y.size // 12))
    gi = fc.avg_pool2d_backward(g, x.shape, **avg_kwargs(case, cip, div))
    xt = t64(torch, x, True)
    torch_avg_pool(torch, xt, case, cip, div).backward(t64(torch, g))
    assert_exercised(xt.grad, "avg_pool2d_backward")
    assert_nonfinite_match(gi, xt.grad, dtype, "avg_pool2d_backward")


# ---------------------------------------------------------------------------
# batch norm: in training a NaN or inf in a channel's data makes its batch
# statistics NaN / inf (mean: NaN, +inf or -inf as the sum; variance NaN),
# so its whole output is NaN and its running statistics take them

BN_SHAPES = [
    (4, 5, 9, 9),        # runs of 81: one piece per (n, c)
    (2, 5, 70, 70),      # runs of 4900: two pieces per (n, c)
    (6, 5, 3, 3),        # short runs: per-position sums over rows
    (9, 5),              # 2-D
    (5, 5, 7),           # 3-D, short runs
]


def bn_input(shape, dtype, seed):
    """x with one channel per kind of poison: 0 a NaN, 1 +inf at the very
    first element of the channel (the shift of the shifted sums) and again
    later, 2 a -inf, 3 both +inf and -inf, 4 clean."""
    rng = np.random.default_rng(seed)
    x = (rng.uniform(-2, 2, (1, shape[1]) + (1,) * (len(shape) - 2))
         + rng.standard_normal(shape)).astype(dtype)
    per = x.reshape(shape[0], shape[1], -1)          # a view
    M = shape[0] * per.shape[2]

    def put(c, value):
        i = rng.integers(1, M)
        per[i // per.shape[2], c, i % per.shape[2]] = value

    put(0, np.nan)
    per[0, 1, 0] = np.inf
    put(1, np.inf)
    if per.shape[2] > 4096:                          # a later piece's first value
        per[1, 1, per.shape[2] // 2] = np.inf
    put(2, -np.inf)
    put(3, np.inf)
    put(3, -np.inf)
    return rng, x


def bn_params(rng, C, dtype, affine):
    rm = moderate(rng, (C,), dtype)
    rv = rng.uniform(0.5, 2.0, C).astype(dtype)
    if not affine:
        return rm, rv, None, None
    w = rng.uniform(-2, 2, C).astype(dtype)
    w[4] = 0
    return rm, rv, w, moderate(rng, (C,), dtype)


@pytest.mark.parametrize("momentum", [0.1, 0.0])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_train_nonfinite(torch, isa, shape, dtype, affine, momentum):
    rng, x = bn_input(shape, dtype, seed_of("bntrain", shape, dtype))
    rm, rv, w, b = bn_params(rng, shape[1], dtype, affine)
    rm_f, rv_f = rm.copy(), rv.copy()
    y = fc.batch_norm(x, rm_f, rv_f, w, b, training=True, momentum=momentum)
    rm_t, rv_t = t64(torch, rm), t64(torch, rv)
    yt = torch.nn.functional.batch_norm(t64(torch, x), rm_t, rv_t, t64(torch, w),
                                        t64(torch, b), training=True, momentum=momentum)
    assert torch.isnan(yt[:, :4]).all() and torch.isfinite(yt[:, 4]).all()
    assert_nonfinite_match(y, yt, dtype, "batch_norm (training)")
    assert_nonfinite_match(rm_f, rm_t, dtype, "running_mean")
    assert_nonfinite_match(rv_f, rv_t, dtype, "running_var")


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_eval_nonfinite(torch, isa, shape, dtype, affine):
    rng, x = bn_input(shape, dtype, seed_of("bneval", shape, dtype))
    x = poison(rng, x, max(3, x.size // 50))
    rm, rv, w, b = bn_params(rng, shape[1], dtype, affine)
    y = fc.batch_norm(x, rm, rv, w, b, training=False)
    yt = torch.nn.functional.batch_norm(t64(torch, x), t64(torch, rm), t64(torch, rv),
                                        t64(torch, w), t64(torch, b), training=False)
    assert_exercised(yt, "batch_norm (eval)")
    assert_nonfinite_match(y, yt, dtype, "batch_norm (eval)")


def check_bn_backward(torch, x, g, rm, rv, w, dtype, training):
    C = x.shape[1]
    gi, gw, gb = fc.batch_norm_backward(
        g, x, w, running_mean=None if training else rm,
        running_var=None if training else rv, training=training)
    xt = t64(torch, x, True)
    wt = t64(torch, w if w is not None else np.ones(C), True)
    bt = t64(torch, np.zeros(C), True)
    torch.nn.functional.batch_norm(
        xt, None if training else t64(torch, rm), None if training else t64(torch, rv),
        wt, bt, training=training).backward(t64(torch, g))
    mode = "training" if training else "eval"
    assert_nonfinite_match(gi, xt.grad, dtype, f"grad_input ({mode})")
    assert_nonfinite_match(gw, wt.grad, dtype, f"grad_weight ({mode})")
    assert_nonfinite_match(gb, bt.grad, dtype, f"grad_bias ({mode})")
    return xt.grad, wt.grad, bt.grad


@pytest.mark.parametrize("poisoned", ["x", "grad_output"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_backward_nonfinite(torch, isa, shape, dtype, affine, training, poisoned):
    rng, x = bn_input(shape, dtype, seed_of("bnbwd", shape, dtype, poisoned))
    rm, rv, w, _ = bn_params(rng, shape[1], dtype, affine)
    g = moderate(rng, shape, dtype)
    if poisoned == "grad_output":
        # x clean, grad_output with each kind of poison in channels 0-3
        x = np.where(np.isfinite(x), x, 0.5).astype(dtype)
        g = np.array(g)
        per = g.reshape(shape[0], shape[1], -1)
        per[0, 0, 0] = np.nan
        per[-1, 1, -1] = np.inf
        per[0, 2, -1] = -np.inf
        per[0, 3, 0], per[-1, 3, 0] = np.inf, -np.inf
    grads = check_bn_backward(torch, x, g, rm, rv, w, dtype, training)
    assert_exercised(grads[0] if training or poisoned == "grad_output" else grads[1],
                     "batch_norm_backward")

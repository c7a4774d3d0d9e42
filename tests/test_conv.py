"""conv2d and conv2d_backward against the PyTorch oracle.

fastconv.reference is checked once; the fast API for every algorithm and
every instruction-set level the machine supports (the `isa` fixture), on
random problems (hypothesis) and on a fixed list of named shapes that must
always be covered (ResNet stem, depthwise, 1x1, asymmetric padding, N = 0,
odd channel counts that leave vector tails ...).
"""
import zlib

import numpy as np
import pytest
from hypothesis import given

import fastconv as fc
from _helpers import (ALGORITHMS, FLOAT_DTYPES, assert_close, assert_identical,
                      call, conv_arrays, conv_configs, conv_kwargs, randn,
                      rng_for, t64, torch_conv2d)


# ---------------------------------------------------------------------------
# checks shared by the random and the named cases

def _torch_padding(cfg):
    return cfg["padding"] if isinstance(cfg["padding"], str) else cfg["pads"]


def check_forward(torch, conv, algorithm, cfg):
    x, w, b = conv_arrays(cfg)
    before = [a.copy() for a in (x, w, b) if a is not None]
    y = call(conv, x, w, b, **conv_kwargs(cfg), algorithm=algorithm)
    for a, a0 in zip([a for a in (x, w, b) if a is not None], before):
        assert_identical(a, a0, "an input was modified")
    expected = torch_conv2d(torch, t64(torch, x), t64(torch, w), t64(torch, b),
                            cfg["stride_pair"], _torch_padding(cfg),
                            cfg["dilation_pair"], cfg["groups"])
    assert y.shape == cfg["y_shape"]
    assert y.flags.c_contiguous
    assert_close(y, expected, cfg["dtype"], "conv2d")


def check_backward(torch, conv_backward, algorithm, cfg):
    x, w, _ = conv_arrays(cfg)
    g = randn(rng_for(cfg["seed"] + 1), cfg["y_shape"], cfg["dtype"])
    before = [x.copy(), w.copy(), g.copy()]
    gi, gw, gb = call(conv_backward, g, x, w, **conv_kwargs(cfg),
                      algorithm=algorithm)
    for a, a0 in zip((x, w, g), before):
        assert_identical(a, a0, "an input was modified")
    xt, wt = t64(torch, x, True), t64(torch, w, True)
    bt = torch.zeros(cfg["K"], dtype=torch.float64, requires_grad=True)
    yt = torch_conv2d(torch, xt, wt, bt, cfg["stride_pair"], _torch_padding(cfg),
                      cfg["dilation_pair"], cfg["groups"])
    yt.backward(t64(torch, g))
    dt = cfg["dtype"]
    assert_close(gi, xt.grad if xt.grad is not None else np.zeros(x.shape), dt, "grad_input")
    assert_close(gw, wt.grad, dt, "grad_weight")
    assert_close(gb, bt.grad, dt, "grad_bias")
    for a in (gi, gw, gb):
        assert a.flags.c_contiguous


# ---------------------------------------------------------------------------
# random problems

@given(cfg=conv_configs())
def test_reference_conv2d_matches_torch(torch, cfg):
    check_forward(torch, fc.reference.conv2d, None, cfg)


@given(cfg=conv_configs())
def test_reference_conv2d_backward_matches_torch(torch, cfg):
    check_backward(torch, fc.reference.conv2d_backward, None, cfg)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(cfg=conv_configs())
def test_conv2d_matches_torch(torch, isa, algorithm, cfg):
    check_forward(torch, fc.conv2d, algorithm, cfg)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(cfg=conv_configs())
def test_conv2d_backward_matches_torch(torch, isa, algorithm, cfg):
    check_backward(torch, fc.conv2d_backward, algorithm, cfg)


# ---------------------------------------------------------------------------
# named problems, always covered

def named(name, x_shape, w_shape, bias=True, stride=1, padding=0, dilation=1,
          groups=1):
    """A conv_configs-like dict for a fixed problem (shapes worked out by hand
    below, independently of fastconv.shapes)."""
    N, C, H, W = x_shape
    K, _, R, S = w_shape
    sp = (stride, stride) if isinstance(stride, int) else tuple(stride)
    dp = (dilation, dilation) if isinstance(dilation, int) else tuple(dilation)
    if padding == "same":
        tot = (dp[0] * (R - 1), dp[1] * (S - 1))
        pads = ((tot[0] // 2, tot[0] - tot[0] // 2), (tot[1] // 2, tot[1] - tot[1] // 2))
    elif padding == "valid":
        pads = ((0, 0), (0, 0))
    elif isinstance(padding, int):
        pads = ((padding, padding), (padding, padding))
    elif isinstance(padding[0], int):
        pads = ((padding[0],) * 2, (padding[1],) * 2)
    else:
        pads = tuple(tuple(p) for p in padding)
    P = (H + sum(pads[0]) - dp[0] * (R - 1) - 1) // sp[0] + 1
    Q = (W + sum(pads[1]) - dp[1] * (S - 1) - 1) // sp[1] + 1
    return pytest.param(dict(
        N=N, C=C, H=H, W=W, K=K, R=R, S=S, groups=groups, x_shape=x_shape,
        w_shape=w_shape, y_shape=(N, K, P, Q), stride=stride, stride_pair=sp,
        padding=padding, pads=pads, dilation=dilation, dilation_pair=dp,
        bias=bias, seed=zlib.crc32(name.encode())), id=name)


NAMED = [
    named("3x3_pad1", (2, 3, 9, 9), (4, 3, 3, 3), padding=1),
    named("resnet_stem_7x7_s2", (1, 3, 20, 20), (8, 3, 7, 7), bias=False, stride=2, padding=3),
    named("1x1", (2, 4, 6, 5), (6, 4, 1, 1)),
    named("1x1_stride2", (2, 4, 7, 7), (5, 4, 1, 1), stride=2, bias=False),
    named("depthwise", (2, 4, 8, 8), (4, 1, 3, 3), padding=1, groups=4),
    named("depthwise_mult2_s2", (1, 3, 9, 8), (6, 1, 3, 3), padding=1, groups=3,
          stride=2, bias=False),
    named("depthwise_5x5_dil2", (1, 5, 12, 13), (10, 1, 5, 5), padding=4,
          dilation=2, groups=5),
    named("grouped_nonsquare_asym", (2, 4, 7, 9), (6, 2, 3, 2),
          padding=((1, 0), (2, 1)), groups=2, stride=(2, 1)),
    named("same_dilation2", (1, 2, 10, 10), (3, 2, 3, 3), padding="same", dilation=2),
    named("same_even_kernel", (1, 2, 10, 11), (3, 2, 4, 2), padding="same", bias=False),
    named("valid_stride_1x2", (1, 2, 6, 6), (3, 2, 3, 3), padding="valid", stride=(1, 2)),
    named("empty_batch", (0, 3, 5, 5), (2, 3, 3, 3), padding=1),
    named("kernel_equals_input", (1, 1, 5, 5), (1, 1, 5, 5)),
    named("dilated_larger_than_input", (1, 2, 3, 3), (2, 2, 3, 3), padding=2,
          dilation=2, bias=False),
    named("7x1_then_1x7", (1, 3, 9, 10), (4, 3, 7, 1), padding=(3, 0)),
    named("odd_channels_tails", (2, 5, 11, 19), (17, 5, 3, 3), padding=1),
    named("wide_16_32", (2, 16, 12, 12), (32, 16, 3, 3), padding=1),
    # Shapes that steer the direct algorithm into each of its walks (and
    # its micro-kernels' tails): rows of lanes, the flat padded-width plane,
    # channels-last for small images, stride-2 permute loads, the dense
    # kernel on a single input channel, and the weight-gradient kernels'
    # channel padding (K and C/groups not multiples of their blocks).
    named("walk_rows_wide", (1, 9, 6, 37), (19, 9, 3, 3), padding=1),
    named("walk_flat_narrow", (3, 10, 10, 10), (11, 10, 3, 3), padding=1),
    # The shifted walk (4 input channels per group or fewer, row stride 1):
    # LeNet's first layer; a last tile through the buffer (P Q = 40) with
    # groups, column stride 2 and row dilation; a single image cut into runs
    # of tiles, each copying its own rows.
    named("walk_shifted_lenet", (2, 1, 28, 28), (32, 1, 5, 5), padding=2),
    named("walk_shifted_tail_groups", (2, 4, 9, 11), (6, 2, 3, 4),
          padding=((1, 2), (2, 0)), groups=2, stride=(1, 2), dilation=(2, 1)),
    named("walk_shifted_runs", (1, 3, 30, 41), (10, 3, 3, 3), padding=1),
    named("walk_channels_last", (2, 20, 7, 7), (64, 20, 3, 3), padding=1),
    named("walk_channels_last_cblocks", (1, 70, 8, 8), (128, 70, 3, 3), padding=1),
    named("walk_channels_last_s2", (1, 13, 15, 15), (64, 13, 3, 3), padding=1, stride=2),
    # ... with each block of weights packed by the item that uses it (all
    # images in one pass, one run of tiles per output-channel block): one
    # image; two images and a last block of 16 channels only partly used
    named("walk_channels_last_inline", (1, 40, 5, 5), (256, 40, 3, 3), padding=1),
    named("walk_channels_last_inline_batch", (2, 70, 4, 4), (260, 70, 3, 3), padding=1),
    named("stride2_wide", (1, 6, 9, 40), (9, 6, 3, 3), padding=1, stride=2),
    named("single_input_channel", (3, 1, 12, 20), (12, 1, 5, 5), padding=2),
    named("wgrad_many_pixels", (4, 14, 12, 12), (33, 14, 3, 3), padding=1),
    named("stride3_pad_asym", (1, 3, 13, 11), (5, 3, 4, 5), stride=3,
          padding=((2, 1), (0, 3))),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("cfg", NAMED)
def test_reference_named_conv(torch, cfg, dtype):
    cfg = dict(cfg, dtype=dtype)
    check_forward(torch, fc.reference.conv2d, None, cfg)
    check_backward(torch, fc.reference.conv2d_backward, None, cfg)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("cfg", NAMED)
def test_named_conv(torch, isa, algorithm, cfg, dtype):
    cfg = dict(cfg, dtype=dtype)
    check_forward(torch, fc.conv2d, algorithm, cfg)
    check_backward(torch, fc.conv2d_backward, algorithm, cfg)


# ---------------------------------------------------------------------------
# out=

@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_conv2d_out(torch, isa, algorithm, dtype):
    rng = rng_for(7)
    x = randn(rng, (2, 4, 9, 7), dtype)
    w = randn(rng, (6, 2, 3, 3), dtype)
    b = randn(rng, (6,), dtype)
    kw = dict(stride=(2, 1), padding=((1, 2), (0, 1)), groups=2)
    out = np.full((2, 6, 5, 6), np.nan, dtype=dtype)   # garbage to overwrite
    r = fc.conv2d(x, w, b, **kw, algorithm=algorithm, out=out)
    assert r is out
    assert_identical(out, fc.conv2d(x, w, b, **kw, algorithm=algorithm), "out=")
    expected = torch_conv2d(torch, t64(torch, x), t64(torch, w), t64(torch, b),
                            (2, 1), ((1, 2), (0, 1)), (1, 1), 2)
    assert_close(out, expected, dtype, "out=")
    # an empty batch: nothing to write, still the same object back
    out0 = np.empty((0, 6, 5, 6), dtype)
    assert fc.conv2d(x[:0], w, b, **kw, algorithm=algorithm, out=out0) is out0


# ---------------------------------------------------------------------------
# layouts: non-contiguous and read-only inputs give identical results

def _noncontiguous_variants(a):
    """Views with a's values and other memory layouts."""
    yield "fortran", np.asfortranarray(a)
    axes = tuple(range(a.ndim))[::-1]
    yield "transposed", np.ascontiguousarray(a.transpose(axes)).transpose(axes)
    big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
    view = big[tuple(slice(1, None, 2) for _ in a.shape)]
    view[...] = a
    yield "strided", view
    flipped = np.ascontiguousarray(a[..., ::-1])[..., ::-1]
    yield "negative_stride", flipped
    ro = a.copy()
    ro.setflags(write=False)
    yield "read_only", ro


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_conv2d_layouts_identical(isa, algorithm, dtype):
    rng = rng_for(11)
    x = randn(rng, (2, 4, 9, 8), dtype)
    w = randn(rng, (6, 2, 3, 2), dtype)
    b = randn(rng, (6,), dtype)
    kw = dict(stride=(1, 2), padding=(1, 0), dilation=(2, 1), groups=2)
    y = fc.conv2d(x, w, b, **kw, algorithm=algorithm)
    g = randn(rng, y.shape, dtype)
    grads = fc.conv2d_backward(g, x, w, **kw, algorithm=algorithm)
    for name, xv in _noncontiguous_variants(x):
        assert_identical(fc.conv2d(xv, w, b, **kw, algorithm=algorithm), y, f"x {name}")
        for a, e in zip(fc.conv2d_backward(g, xv, w, **kw, algorithm=algorithm), grads):
            assert_identical(a, e, f"backward x {name}")
    for name, wv in _noncontiguous_variants(w):
        assert_identical(fc.conv2d(x, wv, b, **kw, algorithm=algorithm), y, f"weight {name}")
        for a, e in zip(fc.conv2d_backward(g, x, wv, **kw, algorithm=algorithm), grads):
            assert_identical(a, e, f"backward weight {name}")
    for name, bv in _noncontiguous_variants(b):
        assert_identical(fc.conv2d(x, w, bv, **kw, algorithm=algorithm), y, f"bias {name}")
    for name, gv in _noncontiguous_variants(g):
        for a, e in zip(fc.conv2d_backward(gv, x, w, **kw, algorithm=algorithm), grads):
            assert_identical(a, e, f"grad_output {name}")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_reference_conv2d_layouts_identical(dtype):
    rng = rng_for(12)
    x = randn(rng, (2, 3, 7, 8), dtype)
    w = randn(rng, (4, 3, 3, 3), dtype)
    y = fc.reference.conv2d(x, w, None, stride=2, padding=1)
    for name, xv in _noncontiguous_variants(x):
        assert_identical(fc.reference.conv2d(xv, w, None, stride=2, padding=1), y, name)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_matches_reference_exactly_shaped(isa, algorithm):
    """The fast and reference results agree on shape, dtype and values for
    one mid-sized float64 problem (a direct check, independent of torch)."""
    rng = rng_for(13)
    x = randn(rng, (2, 8, 15, 13), np.float64)
    w = randn(rng, (12, 4, 3, 3), np.float64)
    b = randn(rng, (12,), np.float64)
    y = fc.conv2d(x, w, b, stride=1, padding=1, groups=2, algorithm=algorithm)
    assert_close(y, fc.reference.conv2d(x, w, b, padding=1, groups=2), np.float64)


# ---------------------------------------------------------------------------
# dtypes: mixed float32/float64 compute in float64; ints -> float64;
# float16 -> float32; nested lists work

DTYPE_CASES = [
    # (x dtype, weight dtype, bias dtype or None, expected result dtype)
    (np.float32, np.float64, None, np.float64),
    (np.float64, np.float32, np.float32, np.float64),
    (np.float32, np.float32, np.float64, np.float64),
    (np.int64, np.int64, None, np.float64),
    (np.int32, np.float64, np.int16, np.float64),
    (np.uint8, np.int8, None, np.float64),
    (np.float16, np.float16, None, np.float32),
    (np.float16, np.float32, np.float16, np.float32),
    (np.float16, np.float64, None, np.float64),
]


def _values(rng, shape, dtype):
    """Small integers, exactly representable in every dtype above."""
    lo = 0 if np.dtype(dtype).kind == "u" else -3
    return rng.integers(lo, 4, size=shape).astype(dtype)


@pytest.mark.parametrize("xd,wd,bd,expected", DTYPE_CASES)
@pytest.mark.parametrize("algorithm", (None,) + ALGORITHMS)
def test_conv2d_dtype_promotion(torch, isa, algorithm, xd, wd, bd, expected):
    conv = fc.reference.conv2d if algorithm is None else fc.conv2d
    back = fc.reference.conv2d_backward if algorithm is None else fc.conv2d_backward
    rng = rng_for(5)
    x = _values(rng, (2, 3, 6, 5), xd)
    w = _values(rng, (4, 3, 3, 2), wd)
    b = _values(rng, (4,), bd) if bd is not None else None
    y = call(conv, x, w, b, padding=1, algorithm=algorithm)
    xt, wt = t64(torch, x, True), t64(torch, w, True)
    yt = torch.nn.functional.conv2d(xt, wt, t64(torch, b), padding=1)
    assert_close(y, yt, expected, "conv2d")
    g = _values(rng, y.shape, xd)
    yt.backward(t64(torch, g))
    gi, gw, gb = call(back, g, x, w, padding=1, algorithm=algorithm)
    back_dtype = np.result_type(*[np.float32 if np.dtype(d) == np.float16 else
                                  (np.float64 if np.dtype(d).kind in "iu" else d)
                                  for d in (xd, wd)])
    assert_close(gi, xt.grad, back_dtype, "grad_input")
    assert_close(gw, wt.grad, back_dtype, "grad_weight")
    assert_close(gb, t64(torch, g).sum((0, 2, 3)), back_dtype, "grad_bias")


@pytest.mark.parametrize("algorithm", (None,) + ALGORITHMS)
def test_conv2d_nested_lists(torch, isa, algorithm):
    conv = fc.reference.conv2d if algorithm is None else fc.conv2d
    back = fc.reference.conv2d_backward if algorithm is None else fc.conv2d_backward
    rng = rng_for(6)
    x = randn(rng, (1, 2, 5, 4), np.float64)
    w = randn(rng, (3, 2, 2, 3), np.float64)
    b = randn(rng, (3,), np.float64)
    y = call(conv, x.tolist(), w.tolist(), b.tolist(), padding=(1, 0), algorithm=algorithm)
    expected = torch.nn.functional.conv2d(t64(torch, x), t64(torch, w), t64(torch, b),
                                          padding=(1, 0))
    assert_close(y, expected, np.float64, "nested lists")
    grads = call(back, y.tolist(), x.tolist(), w.tolist(), padding=(1, 0),
                 algorithm=algorithm)
    for a, e in zip(grads, call(back, y, x, w, padding=(1, 0), algorithm=algorithm)):
        assert_identical(a, e, "backward from nested lists")


@given(cfg=conv_configs())
def test_algorithm_reference_is_the_reference(cfg):
    """algorithm="reference" in the fast API gives fastconv.reference's bits."""
    x, w, b = conv_arrays(cfg)
    kw = conv_kwargs(cfg)
    assert_identical(fc.conv2d(x, w, b, **kw, algorithm="reference"),
                     fc.reference.conv2d(x, w, b, **kw), "conv2d")
    g = randn(rng_for(cfg["seed"] + 1), cfg["y_shape"], cfg["dtype"])
    for a, e in zip(fc.conv2d_backward(g, x, w, **kw, algorithm="reference"),
                    fc.reference.conv2d_backward(g, x, w, **kw)):
        assert_identical(a, e, "conv2d_backward")


# ---------------------------------------------------------------------------
# the input gradient under "direct": one stride-1 convolution per phase of
# the input (the taps that reach it; a stride-1 layer is one phase), by the
# direct kernels; where a phase would start past grad_output's edge
# (padding wider than the dilated kernel), im2col's GEMM and col2im.  "auto"
# follows the weight gradient's choice on strided layers.

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape,by_phases", [
    # ((N, C, H, W, K, R, stride, padding, dilation, groups), phases?)
    ((2, 16, 17, 15, 24, 3, 2, 1, 1, 1), True),
    ((1, 8, 20, 20, 12, 5, (2, 3), 2, 1, 2), True),
    ((1, 32, 14, 14, 32, 3, 2, 1, 1, 32), True),      # depthwise
    ((3, 6, 9, 9, 9, 1, 2, 0, 1, 3), True),           # 1x1: odd phases get nothing
    ((1, 64, 28, 28, 64, 3, 2, 1, 1, 1), True),       # the weight gradient by the direct kernels
    ((1, 5, 19, 23, 7, 3, (3, 2), (2, 1), (2, 3), 1), True),   # dilated, stride 3
    ((1, 4, 3, 2, 5, 3, 4, 1, 1, 1), True),           # fewer rows than the stride
    ((2, 6, 11, 11, 5, 1, 2, 1, 1, 1), False),        # padding wider than the kernel
    ((1, 1, 70, 70, 2, 65, 2, 0, 1, 1), True),        # 65 taps
    # stride 1 and padding wider than the kernel: the channels-last walk
    # corrupted memory when handed the flipped convolution's negative padding
    ((1, 128, 7, 7, 128, 3, 1, 3, 1, 1), False),
    ((2, 16, 6, 9, 24, 3, 1, ((4, 1), (0, 3)), 1, 1), False),
])
def test_input_gradient_by_phases(torch, isa, dtype, shape, by_phases):
    N, C, H, W, K, R, stride, padding, dilation, groups = shape
    rng = rng_for(H * W + K)
    x, w = randn(rng, (N, C, H, W), dtype), randn(rng, (K, C // groups, R, R), dtype)
    p = fc._params.conv_params(x.shape, w.shape, stride, padding, dilation, groups)
    gy = randn(rng, p.output_shape, dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    direct = fc.conv2d_backward(gy, x, w, **kw, algorithm="direct")
    im2col = fc.conv2d_backward(gy, x, w, **kw, algorithm="im2col")
    if by_phases:
        assert_close(direct[0], im2col[0], dtype, "strided input gradient")
    else:
        assert_identical(direct[0], im2col[0], "strided input gradient by im2col")
    assert_close(direct[1], im2col[1], dtype, "weight gradient")
    chosen = fc.conv.choose_algorithm(p, np.dtype(dtype), backward=True)
    auto = fc.conv2d_backward(gy, x, w, **kw)
    for a, e in zip(auto, direct if chosen == "direct" else im2col):
        assert_identical(a, e, f"auto against {chosen}")
    tx = t64(torch, x).requires_grad_()
    tw = t64(torch, w).requires_grad_()
    torch_conv2d(torch, tx, tw, None, p.stride, p.padding, p.dilation, groups).backward(
        t64(torch, gy))
    assert_close(direct[0], tx.grad.numpy(), dtype, "input gradient against torch")
    assert_close(direct[1], tw.grad.numpy(), dtype, "weight gradient against torch")


# ---------------------------------------------------------------------------
# strides and dilations that cannot change the result (found by
# tests/test_fuzz.py): a stride past the padded input (one output along its
# axis) and the dilation of a one-tap kernel axis are valid up to the bounds
# that _params puts on them (a stride up to INT64_MAX, a dilation up to
# GRID_MAX); past those bounds they are a ValueError naming the argument.
# Above 2**63 the shim raised OverflowError, just below it the kernels' index
# arithmetic (stride + padding) could overflow int64.

INT64_MAX = 2**63 - 1   # the largest stride
GRID_MAX = 2**62 - 1    # the largest dilation (and padding, padded input)
HUGE = [2**31, 2**62 - 1, 2**62 + 3, 2**63 - 1, 2**63, 2**64, 10**30]


@pytest.mark.parametrize("huge", HUGE)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_conv_stride_past_the_input(torch, isa, algorithm, dtype, huge):
    rng = rng_for(11)
    x = randn(rng, (2, 4, 5, 6), dtype)
    w = randn(rng, (6, 2, 3, 1), dtype)         # one tap along the width
    b = randn(rng, (6,), dtype)
    pads = ((2, 1), (3, 0))                     # padded height 8
    rm, rv = randn(rng, (6,), dtype), rng.uniform(0.5, 2, 6).astype(dtype)
    g1 = randn(rng, (2, 6, 1, 5), dtype)
    # past the bounds: main's ValueError, naming the argument, from each op
    for kw, msg in ((dict(stride=(huge, 2), padding=pads, dilation=(2, 1), groups=2),
                     rf"^stride\[0\]: expected an int <= {INT64_MAX}, got {huge}$"
                     if huge > INT64_MAX else None),
                    (dict(stride=(8, 2), padding=pads, dilation=(2, huge), groups=2),
                     rf"^dilation\[1\]: expected an int <= {GRID_MAX}, got {huge}$"
                     if huge > GRID_MAX else None)):
        if msg is None:
            continue
        with pytest.raises(ValueError, match=msg):
            fc.conv2d(x, w, b, **kw, algorithm=algorithm)
        with pytest.raises(ValueError, match=msg):
            fc.conv2d_backward(g1, x, w, **kw, algorithm=algorithm)
        with pytest.raises(ValueError, match=msg):
            fc.conv2d_bn(x, w, b, rm, rv, None, None, **kw, activation="relu",
                         algorithm=algorithm)
    # within the bounds (the largest in-bound values for those past them):
    # the same result as the small geometry
    stride, dilation = min(huge, INT64_MAX), min(huge, GRID_MAX)
    kw = dict(stride=(stride, 2), padding=pads, dilation=(2, dilation), groups=2)
    kw_small = dict(stride=(8, 2), padding=pads, dilation=(2, 1), groups=2)
    y = fc.conv2d(x, w, b, **kw, algorithm=algorithm)
    assert y.shape == (2, 6, 1, 5)
    xt, wt, bt = t64(torch, x, True), t64(torch, w, True), t64(torch, b, True)
    yt = torch_conv2d(torch, xt, wt, bt, (8, 2), pads, (2, 1), 2)
    assert_close(y, yt, dtype, "conv2d")
    g = randn(rng, y.shape, dtype)
    yt.backward(t64(torch, g))
    gi, gw, gb = fc.conv2d_backward(g, x, w, **kw, algorithm=algorithm)
    assert_close(gi, xt.grad, dtype, "grad_input")
    assert_close(gw, wt.grad, dtype, "grad_weight")
    assert_close(gb, bt.grad, dtype, "grad_bias")
    assert_close(fc.conv2d_bn(x, w, b, rm, rv, None, None, **kw, activation="relu",
                              algorithm=algorithm),
                 fc.reference.conv2d_bn(x, w, b, rm, rv, None, None, **kw_small,
                                        activation="relu"), dtype, "conv2d_bn")

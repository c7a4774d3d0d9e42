"""The Winograd F(2x2, 3x3) and F(2x2, 5x5) convolutions
(src/conv_winograd.c), which algorithm="auto" takes for dense 3x3 and 5x5
float32 layers of stride 1 with AVX-512, against PyTorch.

The random problems call the algorithm directly (fastconv.conv._run_conv
with "winograd"), so that every shape reaches it, not only those "auto"
sends there: tile rows of one to several groups of 16 tiles, odd output
sizes (half tiles), asymmetric padding, items whose last groups are
missing, output channels past a block of 8.  At the levels without AVX-512
the same call is the direct algorithm, which must give the same results.
Dilated layers run as phases (every dh-th row, every dw-th column), each a
stride-1 convolution; 5x5 filters are dilated along rows only.  Undilated
3x3 layers of few tiles (at most 64, or 256 with 128 input channels or
more) take the variant with output channels in the lanes, whose weights
are transformed block by block (FEW); so do undilated 3x3 and 7x7 layers
of stride 2 (STRIDED): 25 and 121 products per tile, with at most 256
tiles, or any number with one block of output and input channels.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import _kernels, _params, conv
from _helpers import assert_close, assert_identical, randn, rng_for, t64, torch_conv2d

from test_nonfinite import assert_nonfinite_match


def run_winograd(x, w, b, padding, relu=False, wscale=None, dilation=(1, 1), stride=1):
    x, w, b, p, _ = _params.conv_inputs(x, w, b, stride, padding, dilation, 1)
    return conv._run_conv(x, w, b, p, "winograd", None, relu=relu, wscale=wscale)


def expected_of(torch, x, w, b, pads, relu=False, wscale=None, dilation=(1, 1)):
    if wscale is not None:
        # the kernels fold the factor into the float32 weight (rounded once)
        w = (w.astype(np.float64) * wscale[:, None, None, None]).astype(np.float32)
    y = torch_conv2d(torch, t64(torch, x), t64(torch, w), t64(torch, b), (1, 1), pads,
                     dilation, 1)
    return torch.relu(y) if relu else y


def expected_scaled_after(torch, x, w, b, pads, wscale, stride=1):
    """Few tiles multiply the sums by the batch norm factor (the weights are
    transformed as stored): the convolution, then the factor and the bias,
    then the ReLU, in float64."""
    e = torch_conv2d(torch, t64(torch, x), t64(torch, w), None, (stride, stride), pads,
                     (1, 1), 1)
    if wscale is not None:
        e = e * torch.from_numpy(wscale)[:, None, None]
    if b is not None:
        e = e + t64(torch, b)[:, None, None]
    return torch.relu(e)


@st.composite
def problems(draw):
    R = draw(st.sampled_from((3, 5)))
    # dilation by phases: any row dilation, column dilation 1 or 2 (3x3)
    dil = (draw(st.sampled_from((1, 1, 2, 3))),
           draw(st.sampled_from((1, 1, 2) if R == 3 else (1,))))
    pads = tuple(tuple(draw(st.integers(0, (R - 1) * d)) for _ in range(2)) for d in dil)
    H = draw(st.integers(max(1, (R - 1) * dil[0] + 1 - sum(pads[0])), 20))
    W = draw(st.integers(max(1, (R - 1) * dil[1] + 1 - sum(pads[1])), 70))
    return dict(R=R, N=draw(st.integers(1, 3)), C=draw(st.integers(1, 20)),
                K=draw(st.integers(1, 19)), H=H, W=W, pads=pads, dilation=dil,
                bias=draw(st.booleans()), relu=draw(st.booleans()),
                scaled=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=100, deadline=None)
@given(cfg=problems())
def test_winograd_matches_torch(torch, isa, cfg):
    rng = rng_for(cfg["seed"])
    x = randn(rng, (cfg["N"], cfg["C"], cfg["H"], cfg["W"]), np.float32)
    w = randn(rng, (cfg["K"], cfg["C"], cfg["R"], cfg["R"]), np.float32)
    b = randn(rng, (cfg["K"],), np.float32) if cfg["bias"] else None
    wscale = rng.uniform(-2, 2, cfg["K"]) if cfg["scaled"] else None
    before = [a.copy() for a in (x, w)]
    y = run_winograd(x, w, b, cfg["pads"], cfg["relu"], wscale, cfg["dilation"])
    for a, a0 in zip((x, w), before):
        assert_identical(a, a0, "an input was modified")
    expected = expected_of(torch, x, w, b, cfg["pads"], cfg["relu"], wscale, cfg["dilation"])
    assert y.shape == tuple(expected.shape)
    assert_close(y, expected, np.float32, "winograd conv2d")


# (N, C, H, W, K, padding[, R]): narrow images, whose tiles go in blocks of
# tile rows (2-8 tiles a row; a last block only partly filled; odd output
# sizes); 3x3 unless R says 5
BLOCKS = [(3, 5, 8, 8, 9, 1), (2, 4, 9, 7, 10, ((0, 2), (1, 0))), (1, 3, 13, 5, 8, 1),
          (5, 6, 6, 12, 17, ((2, 1), (0, 1))), (2, 7, 21, 3, 5, ((1, 1), (2, 2))),
          (2, 6, 16, 16, 12, 1), (1, 4, 11, 15, 9, ((1, 0), (1, 1))),
          # 5x5: LeNet's 14 x 14 (7 tiles a row: one pair of tile rows a
          # group), 2-4 tiles a row (pairs merged), 8 tiles (columns 0-19)
          (3, 6, 14, 14, 10, 2, 5), (2, 5, 8, 8, 9, 2, 5), (1, 4, 11, 5, 8, ((1, 2), (2, 2)), 5),
          (2, 3, 9, 16, 17, 2, 5), (1, 7, 13, 7, 6, ((0, 2), (2, 1)), 5),
          (1, 3, 20, 8, 5, ((2, 2), (0, 0)), 5)]


# (N, C, H, W, K, padding, dilation): phases of rows and columns
DILATED = [(2, 5, 17, 40, 9, ((2, 2), (2, 2)), (2, 2)),
           (1, 4, 13, 37, 6, ((3, 0), (1, 2)), (3, 2)),
           (2, 3, 11, 50, 5, ((0, 1), (2, 0)), (1, 2)),
           (1, 6, 20, 21, 10, ((4, 4), (1, 1)), (4, 1)),
           # 5x5 along rows only
           (2, 4, 19, 40, 9, ((4, 4), (2, 2)), (2, 1), 5),
           (1, 3, 22, 12, 7, ((3, 5), (1, 2)), (3, 1), 5)]


# (N, C, H, W, K, padding, scaled): Winograd of few tiles, output channels
# 64 to an item (blocks of 16 read from the weight: a last one of fewer
# rows, or none), input channels 64 to a block (16 to a transpose: a
# last part of 1-15), tiles six to a GEMM call (a last call of 1-5), in
# blocks of tile rows, one row, or runs across rows
FEW = [(1, 512, 7, 7, 512, 1, True),              # ResNet-50's last stage: 16 tiles
       (1, 40, 14, 14, 70, 1, False),             # 64 + 6 output channels, 16 + 16 + 8 inputs
       (3, 17, 5, 9, 20, ((0, 2), (1, 0)), True),  # three images, odd sizes, asymmetric
       (2, 130, 9, 11, 33, 1, True),              # 64 + 64 + 2 input channels
       (1, 128, 20, 20, 64, 1, False),            # 100 tiles, rows of 10
       (1, 128, 14, 36, 16, 1, True),             # 126 tiles, runs across rows; 16 outputs
       (2, 3, 4, 3, 5, ((2, 2), (2, 2)), False)]  # padding past the input


@pytest.mark.parametrize("shape", FEW)
def test_winograd_few_tiles(torch, isa, shape):
    """The batch norm factor multiplies the sums here (the weights are
    transformed as stored), so the expected output scales after the
    convolution."""
    N, C, H, W, K, pad, scaled = shape
    pads = pad if isinstance(pad, tuple) else ((pad, pad), (pad, pad))
    rng = rng_for(C * H * W + K)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, 3, 3), np.float32)
    b = randn(rng, (K,), np.float32) if scaled else None
    wscale = rng.uniform(-2, 2, K) if scaled else None
    y = run_winograd(x, w, b, pads, relu=True, wscale=wscale)
    assert_close(y, expected_scaled_after(torch, x, w, b, pads, wscale), np.float32,
                 "few tiles")


# (N, C, H, W, K, padding, scaled[, R]): stride 2, (R + 2)-square patches 4
# apart, input channels 32 to a block of U (each 1-4 products a point;
# 7x7: 9-16), tile rows of 1-16 tiles or more (two groups), fewer blocks
# of 64 output channels than threads (rows of tiles split, across images
# too); one block of output and of input channels (runs of rows of tiles
# with their own V: across images, odd output heights)
STRIDED = [(1, 128, 56, 56, 128, 1, True),             # ResNet-50's downsampling 3x3
           (1, 130, 9, 11, 70, 1, True),               # 32 x 4 + 2 inputs, 64 + 6 outputs
           (3, 17, 7, 7, 16, ((0, 2), (1, 0)), False),  # split rows run across images
           (2, 5, 13, 70, 9, 0, True),                 # rows of 18 tiles: 16 + 2
           (1, 40, 12, 64, 64, ((2, 1), (2, 2)), True),  # padding past the kernel's reach
           (2, 3, 2, 3, 5, ((2, 2), (1, 2)), False),   # inputs smaller than a patch
           (3, 5, 9, 201, 40, 1, True),                # 1530 tiles in runs of 2 rows
           (1, 3, 224, 224, 64, 3, True, 7),           # ResNet-50's stem
           (3, 3, 9, 200, 64, 3, True, 7),             # runs across images, 5 output rows
           (2, 4, 11, 70, 70, ((1, 3), (3, 2)), False, 7),  # 64 + 6 outputs, V for all runs
           (1, 40, 15, 15, 20, 2, True, 7)]            # 32 + 8 inputs


@pytest.mark.parametrize("shape", STRIDED)
def test_winograd_few_tiles_stride_2(torch, isa, shape):
    N, C, H, W, K, pad, scaled, R = shape + (3,) * (len(shape) == 7)
    pads = pad if isinstance(pad, tuple) else ((pad, pad), (pad, pad))
    rng = rng_for(C * H * W + K + 2)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, R, R), np.float32)
    b = randn(rng, (K,), np.float32) if scaled else None
    wscale = rng.uniform(-2, 2, K) if scaled else None
    y = run_winograd(x, w, b, pads, relu=True, wscale=wscale, stride=2)
    e = expected_scaled_after(torch, x, w, b, pads, wscale, stride=2)
    assert y.shape == tuple(e.shape)
    assert_close(y, e, np.float32, "few tiles, stride 2")


@st.composite
def strided_problems(draw):
    """Stride-2 3x3 and 7x7 layers: at most 216 tiles, or one block of
    output and input channels (runs of rows of tiles)."""
    R = draw(st.sampled_from((3, 7)))
    pads = tuple(tuple(draw(st.integers(0, R - 1)) for _ in range(2)) for _ in range(2))
    H = draw(st.integers(max(1, R - sum(pads[0])), 20))
    W = draw(st.integers(max(1, R - sum(pads[1])), 70))
    runs = draw(st.booleans())   # many tiles, few channels
    return dict(R=R, N=draw(st.integers(1, 4 if runs else 2)),
                C=draw(st.integers(1, 32 if runs else 70)),
                K=draw(st.integers(1, 64 if runs else 80)), H=H * (3 if runs else 1),
                W=W * (2 if runs else 1), pads=pads, bias=draw(st.booleans()),
                scaled=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=80, deadline=None)
@given(cfg=strided_problems())
def test_winograd_stride_2_matches_torch(torch, isa, cfg):
    rng = rng_for(cfg["seed"])
    R = cfg["R"]
    x = randn(rng, (cfg["N"], cfg["C"], cfg["H"], cfg["W"]), np.float32)
    w = randn(rng, (cfg["K"], cfg["C"], R, R), np.float32)
    b = randn(rng, (cfg["K"],), np.float32) if cfg["bias"] else None
    wscale = rng.uniform(-2, 2, cfg["K"]) if cfg["scaled"] else None
    before = [a.copy() for a in (x, w)]
    y = run_winograd(x, w, b, cfg["pads"], relu=True, wscale=wscale, stride=2)
    for a, a0 in zip((x, w), before):
        assert_identical(a, a0, "an input was modified")
    e = expected_scaled_after(torch, x, w, b, cfg["pads"], wscale, stride=2)
    assert y.shape == tuple(e.shape)
    assert_close(y, e, np.float32, "winograd, stride 2")


@pytest.mark.parametrize("where", ("input", "weight"))
@pytest.mark.parametrize("value", (np.nan, np.inf, -np.inf, 2e37))
@pytest.mark.parametrize("R,C,H", [(3, 40, 15), (7, 3, 40)], ids=["3x3", "7x7-runs"])
def test_winograd_stride_2_unsafe_values_placed_as_torch(torch, isa, where, value, R, C, H):
    """An input or weight out of the transforms' safe range sends the call
    to the direct algorithm: NaN and inf land where torch has them (the
    transforms would spread inf - inf), huge finite values do not overflow."""
    rng = rng_for(23)
    x, w = randn(rng, (1, C, H, 22), np.float32), randn(rng, (24, C, R, R), np.float32)
    w[0, 0, R // 2, R // 2] = 0   # an inf meeting a zero weight: NaN in torch
    flat = (x if where == "input" else w).reshape(-1)
    flat[rng.choice(flat.size, 3, replace=False)] = value
    b = randn(rng, (24,), np.float32)
    pad = R // 2
    y = run_winograd(x, w, b, pad, relu=True, stride=2)
    e = torch.relu(torch_conv2d(torch, t64(torch, x), t64(torch, w), t64(torch, b), (2, 2),
                                ((pad, pad), (pad, pad)), (1, 1), 1))
    if np.isfinite(value):
        assert np.isfinite(y).all() == np.isfinite(e.numpy()).all()
    assert_nonfinite_match(y, e, np.float32, "winograd stride 2, unsafe values")


@pytest.mark.parametrize("shape", [(1, 128, 56, 56, 128, 3), (1, 32, 32, 32, 64, 3),
                                   (2, 256, 28, 28, 256, 3), (1, 3, 224, 224, 64, 7),
                                   (4, 16, 64, 64, 64, 7)])
def test_auto_takes_strided_winograd(torch, isa, shape):
    """ResNet-50's downsampling 3x3 layer and others of 64-256 tiles, and
    its stem (7x7, 3 channels to 64), fused with batch norm and ReLU: within
    1e-5 of the largest output of torch's conv -> batch_norm(eval) -> relu
    in float64.  3x3: fewer tiles (ResNet-50's 512 channels to 7x7), more
    tiles, 16 input channels; 7x7: 32 input channels, other than 64 output
    channels; either: stride 1 or 3, dilation, 5x5 filters do not take it."""
    N, C, H, W, K, R = shape
    f32 = np.dtype(np.float32)
    pad = R // 2
    p = _params.conv_params((N, C, H, W), (K, C, R, R), 2, pad, 1, 1)
    assert conv._strided_winograd_pays(p)
    assert (conv.choose_algorithm(p, f32) == "winograd") == (isa == "avx512")
    if R == 3:
        others = [((1, 512, 14, 14), K, 3), ((1, C, 80, 80), K, 3), ((N, 16, H, W), K, 3)]
    else:
        others = [((N, 32, H, W), K, 7), ((N, C, H, W), 32, 7), ((N, C, H, W), 128, 7)]
    for xs, k, r in others + [((N, C, H, W), K, 5)]:
        assert not conv._strided_winograd_pays(_params.conv_params(xs, (k, xs[1], r, r), 2,
                                                                    r // 2, 1, 1))
    for stride, dil in [(1, 1), (3, 1), (2, 2)]:
        q = _params.conv_params((N, C, H, W), (K, C, R, R), stride, pad * dil, dil, 1)
        assert not conv._strided_winograd_pays(q)
    rng = rng_for(C * H + K)
    x, w = randn(rng, (N, C, H, W), f32), randn(rng, (K, C, R, R), f32)
    mean, var = randn(rng, (K,), f32), rng.uniform(0.1, 2, K).astype(f32)
    gamma, beta = randn(rng, (K,), f32), randn(rng, (K,), f32)
    y = fc.conv2d_bn(x, w, None, mean, var, gamma, beta, stride=2, padding=pad,
                     activation="relu")
    F = torch.nn.functional
    e = F.relu(F.batch_norm(F.conv2d(t64(torch, x), t64(torch, w), stride=2, padding=pad),
                            t64(torch, mean), t64(torch, var), t64(torch, gamma),
                            t64(torch, beta), False, 0.0, 1e-5))
    assert_close(y, e, f32, "conv2d_bn, winograd stride 2")


@pytest.mark.parametrize("shape", [(1, 512, 7, 7, 512), (1, 512, 14, 14, 512),
                                   (1, 256, 14, 14, 256), (4, 128, 7, 7, 64),
                                   (1, 128, 28, 28, 128)])
def test_auto_takes_few_tile_winograd(torch, isa, shape):
    """VGG's and ResNet-50's deep 3x3 layers of few pixels, fused with batch
    norm and ReLU: within 1e-5 of the largest output of torch's conv ->
    batch_norm(eval) -> relu in float64; fewer input channels, more tiles
    or 32 output channels do not take it."""
    N, C, H, W, K = shape
    f32 = np.dtype(np.float32)
    p = _params.conv_params((N, C, H, W), (K, C, 3, 3), 1, 1, 1, 1)
    assert conv._few_tile_winograd_pays(p)
    assert (conv.choose_algorithm(p, f32) == "winograd") == (isa == "avx512")
    for other in [((N, 64, H, W), (K, 64, 3, 3)), ((N, C, 40, 40), (K, C, 3, 3)),
                  ((N, C, H, W), (32, C, 3, 3))]:
        assert not conv._few_tile_winograd_pays(_params.conv_params(*other, 1, 1, 1, 1))
    rng = rng_for(C * H + K)
    x, w = randn(rng, (N, C, H, W), f32), randn(rng, (K, C, 3, 3), f32)
    mean, var = randn(rng, (K,), f32), rng.uniform(0.1, 2, K).astype(f32)
    gamma, beta = randn(rng, (K,), f32), randn(rng, (K,), f32)
    y = fc.conv2d_bn(x, w, None, mean, var, gamma, beta, padding=1, activation="relu")
    F = torch.nn.functional
    e = F.relu(F.batch_norm(F.conv2d(t64(torch, x), t64(torch, w), padding=1),
                            t64(torch, mean), t64(torch, var), t64(torch, gamma),
                            t64(torch, beta), False, 0.0, 1e-5))
    assert_close(y, e, f32, "conv2d_bn, winograd of few tiles")


@pytest.mark.parametrize("shape", [(1, 512, 7, 7, 512, 1), (2, 33, 9, 11, 130, 1),
                                   (1, 70, 14, 14, 40, 1), (3, 20, 5, 9, 17, 2),
                                   (1, 128, 20, 20, 64, 1)])
@pytest.mark.parametrize("algorithm", ("streamed", "winograd"))
def test_input_gradient_by_few_tiles(torch, isa, shape, algorithm):
    """A stride-1 3x3 layer's input gradient by Winograd of few tiles,
    whose transform reads the forward weight as stored (turned and
    transposed on the way), beside im2col's weight gradient ("streamed") or
    the direct one ("winograd"): grad_output's 512-128 channels to 512-17
    input channels, blocks of 64 and 16 channels with parts left over."""
    N, C, H, W, K, pad = shape
    rng = rng_for(C * K + H)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, 3, 3), np.float32)
    p = _params.conv_params(x.shape, w.shape, 1, pad, 1, 1)
    g = randn(rng, p.output_shape, np.float32)
    gi, gw, gb = (np.empty(p.input_shape, np.float32), np.empty(p.weight_shape, np.float32),
                  np.empty((K,), np.float32))
    _kernels.conv2d_backward(p, algorithm, g, x, w, gi, gw, gb)
    xt, wt = t64(torch, x, True), t64(torch, w, True)
    torch_conv2d(torch, xt, wt, None, (1, 1), ((pad, pad), (pad, pad)), (1, 1),
                 1).backward(t64(torch, g))
    assert_close(gi, xt.grad, np.float32, "grad_input")
    assert_close(gw, wt.grad, np.float32, "grad_weight")


@st.composite
def few_tile_gradients(draw):
    """Stride-1 3x3 layers whose input gradient has at most 64 tiles."""
    pads = tuple(tuple(draw(st.integers(0, 2)) for _ in range(2)) for _ in range(2))
    H = draw(st.integers(max(1, 3 - sum(pads[0])), 12))
    W = draw(st.integers(max(1, 3 - sum(pads[1])), 12))
    return dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 40)),
                K=draw(st.integers(1, 40)), H=H, W=W, pads=pads,
                algorithm=draw(st.sampled_from(("streamed", "winograd"))),
                seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=60, deadline=None)
@given(cfg=few_tile_gradients())
def test_input_gradient_by_few_tiles_random(torch, isa, cfg):
    """Random shapes: channel blocks and rows left over, one to three
    images, asymmetric padding; the input and weight gradients against
    torch's in float64."""
    rng = rng_for(cfg["seed"])
    x = randn(rng, (cfg["N"], cfg["C"], cfg["H"], cfg["W"]), np.float32)
    w = randn(rng, (cfg["K"], cfg["C"], 3, 3), np.float32)
    p = _params.conv_params(x.shape, w.shape, 1, cfg["pads"], 1, 1)
    g = randn(rng, p.output_shape, np.float32)
    gi, gw, gb = (np.empty(p.input_shape, np.float32), np.empty(p.weight_shape, np.float32),
                  np.empty((cfg["K"],), np.float32))
    _kernels.conv2d_backward(p, cfg["algorithm"], g, x, w, gi, gw, gb)
    xt, wt = t64(torch, x, True), t64(torch, w, True)
    torch_conv2d(torch, xt, wt, None, (1, 1), cfg["pads"], (1, 1), 1).backward(t64(torch, g))
    assert_close(gi, xt.grad, np.float32, "grad_input")
    assert_close(gw, wt.grad, np.float32, "grad_weight")


@pytest.mark.parametrize("value", (np.inf, -np.inf, 1e36))
def test_input_gradient_by_few_tiles_unsafe_weights(torch, isa, value):
    """A weight out of the transform's safe range sends the input gradient
    to the turned copy and the streamed GEMM: an inf then lands as in the
    direct kernels' input gradient (NaN where it meets the padding, +-inf
    elsewhere; the transform would spread inf - inf over the channel), and
    a huge finite weight gives torch's result."""
    rng = rng_for(31)
    x, w = randn(rng, (1, 24, 9, 9), np.float32), randn(rng, (40, 24, 3, 3), np.float32)
    w[7, 5, 2, 0] = value
    p = _params.conv_params(x.shape, w.shape, 1, 1, 1, 1)
    g = randn(rng, p.output_shape, np.float32)
    got = {}
    for algorithm in ("streamed", "direct"):
        gi, gw, gb = (np.empty(p.input_shape, np.float32), np.empty(p.weight_shape, np.float32),
                      np.empty((40,), np.float32))
        _kernels.conv2d_backward(p, algorithm, g, x, w, gi, gw, gb)
        got[algorithm] = gi
    if np.isinf(value):
        assert np.isnan(got["streamed"]).any() and np.isinf(got["streamed"]).any()
        assert_nonfinite_match(got["streamed"], got["direct"], np.float32,
                               "grad_input, inf weight")
        return
    xt, wt = t64(torch, x, True), t64(torch, w, True)
    torch_conv2d(torch, xt, wt, None, (1, 1), ((1, 1), (1, 1)), (1, 1),
                 1).backward(t64(torch, g))
    assert np.isfinite(got["streamed"]).all()
    assert_close(got["streamed"], xt.grad, np.float32, "grad_input, huge weight")


@pytest.mark.parametrize("shape", DILATED)
def test_winograd_dilated(torch, isa, shape):
    N, C, H, W, K, pads, dil, R = shape + (3,) * (len(shape) == 7)
    rng = rng_for(H * W + K)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, R, R), np.float32)
    b = randn(rng, (K,), np.float32)
    y = run_winograd(x, w, b, pads, relu=True, dilation=dil)
    assert_close(y, expected_of(torch, x, w, b, pads, relu=True, dilation=dil), np.float32,
                 "dilated")


# rows of 16 tiles or more: groups of 16 running across two rows of tiles
RUNS = [(1, 5, 12, 58, 9, 1), (2, 3, 7, 33, 8, ((0, 1), (2, 1))),
        (1, 4, 9, 40, 10, ((2, 2), (0, 0))),
        (1, 5, 12, 60, 9, 2, 5), (2, 3, 9, 35, 8, ((0, 1), (2, 3)), 5),
        (1, 4, 10, 44, 10, ((2, 2), (0, 0)), 5)]


@pytest.mark.parametrize("shape", BLOCKS + RUNS)
def test_winograd_blocks_of_tile_rows(torch, isa, shape):
    N, C, H, W, K, pad, R = shape + (3,) * (len(shape) == 6)
    pads = pad if isinstance(pad, tuple) else ((pad, pad), (pad, pad))
    rng = rng_for(H * W + K)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, R, R), np.float32)
    b = randn(rng, (K,), np.float32)
    y = run_winograd(x, w, b, pads, relu=True)
    assert_close(y, expected_of(torch, x, w, b, pads, relu=True), np.float32, "blocks")


@pytest.mark.parametrize("shape", [(1, 64, 56, 56, 64, 1), (2, 32, 30, 28, 24, 1),
                                   (1, 32, 33, 32, 16, 1), (16, 32, 8, 8, 16, 1),
                                   (1, 32, 64, 60, 16, 2), (1, 64, 28, 28, 64, 1),
                                   (2, 64, 16, 16, 32, 1),
                                   # 5x5: LeNet's second layer, 16 channels
                                   (64, 32, 14, 14, 64, 1, 5), (4, 16, 32, 32, 32, 1, 5),
                                   (4, 16, 32, 32, 16, 1, 5)])
def test_auto_takes_winograd_with_avx512(isa, shape):
    """The suite's 3x3 layers and LeNet's 5x5 one reach it through "auto"
    (where the machine has AVX-512), with the result of the direct algorithm
    to Winograd's rounding."""
    N, C, H, W, K, d, R = shape + (3,) * (len(shape) == 6)
    pad = d * (R - 1) // 2
    p = _params.conv_params((N, C, H, W), (K, C, R, R), 1, pad, d, 1)
    f32 = np.dtype(np.float32)
    assert (conv.choose_algorithm(p, f32) == "winograd") == (isa == "avx512")
    assert conv.choose_algorithm(p, np.dtype(np.float64)) != "winograd"
    rng = rng_for(N * C * H)
    x, w = randn(rng, (N, C, H, W), f32), randn(rng, (K, C, R, R), f32)
    assert_close(fc.conv2d(x, w, padding=pad, dilation=d),
                 fc.conv2d(x, w, padding=pad, dilation=d, algorithm="direct"),
                 f32, "auto against direct")


@pytest.mark.parametrize("shape", [(64, 8, 14, 14, 32, 5), (64, 6, 10, 10, 16, 5),
                                   (1, 32, 14, 14, 32, 5), (1, 16, 32, 32, 16, 5),
                                   (1, 256, 28, 28, 64, 5), (2, 16, 16, 16, 16, 3),
                                   (1, 32, 32, 32, 16, 7)])
def test_auto_leaves_winograd(shape):
    """Where the transforms cost more than the multiplications they save:
    5x5 filters over fewer than 16 channels (6 channels: 0.75x the direct
    kernels) or too few pixels for their output channels (512 for 64,
    2048 for 16) or over more than 128 channels (where the transforms'
    rounding nears 1e-5 of the largest output), 3x3 over fewer than 32
    channels, and other filter sizes, which have no Winograd kernels."""
    N, C, H, W, K, R = shape
    p = _params.conv_params((N, C, H, W), (K, C, R, R), 1, R // 2, 1, 1)
    assert conv.choose_algorithm(p, np.dtype(np.float32)) != "winograd"


@pytest.mark.parametrize("C,K", [(32, 64), (128, 48)], ids=["lenet", "widest"])
def test_auto_winograd_5x5_conv2d_bn_matches_torch(torch, isa, C, K):
    """LeNet's second layer (on 12 images) and the widest 5x5 layer "auto"
    sends to Winograd, fused with batch norm and ReLU: within 2e-5 of the
    largest output of torch's conv -> batch_norm(eval) -> relu in float64
    (the transforms' rounding grows with the channels)."""
    rng = rng_for(C + K)
    x, w = randn(rng, (12, C, 14, 14), np.float32), randn(rng, (K, C, 5, 5), np.float32)
    mean, var = randn(rng, (K,), np.float32), rng.uniform(0.1, 2, K).astype(np.float32)
    gamma, beta = randn(rng, (K,), np.float32), randn(rng, (K,), np.float32)
    p = _params.conv_params(x.shape, w.shape, 1, 2, 1, 1)
    assert (conv.choose_algorithm(p, np.dtype(np.float32)) == "winograd") == (isa == "avx512")
    y = fc.conv2d_bn(x, w, None, mean, var, gamma, beta, padding=2, activation="relu")
    F = torch.nn.functional
    e = F.relu(F.batch_norm(F.conv2d(t64(torch, x), t64(torch, w), padding=2),
                            t64(torch, mean), t64(torch, var), t64(torch, gamma),
                            t64(torch, beta), False, 0.0, 1e-5))
    assert_close(y, e, np.float32, "conv2d_bn, winograd 5x5")


@pytest.mark.parametrize("x_shape,dilation,R", [((3, 24, 21, 40), 1, 3), ((7, 24, 8, 8), 1, 3),
                                                ((2, 24, 21, 40), 2, 3), ((3, 24, 21, 40), 1, 5),
                                                ((9, 24, 14, 14), 1, 5), ((2, 24, 10, 10), 1, 3),
                                                ((2, 24, 21, 30), 1, 3), ((3, 3, 30, 60), 1, 7)],
                         ids=["rows", "blocks", "dilated", "rows5x5", "blocks5x5", "few",
                              "few-stride2", "runs-stride2-7x7"])
@pytest.mark.parametrize("threads", (1, 3, 16))
def test_winograd_bits_do_not_depend_on_threads(restore_threads, isa, threads, x_shape,
                                                dilation, R):
    """Also when the items are split by output channels for many threads
    (16 here: each part transforms the input again), or with few tiles by
    rows of tiles (each part transforms the weights again)."""
    rng = rng_for(8)
    C = x_shape[1]
    x, w = randn(rng, x_shape, np.float32), randn(rng, (20, C, R, R), np.float32)
    b = randn(rng, (20,), np.float32)
    pad = dilation * (R - 1) // 2
    stride = 2 if x_shape in [(2, 24, 21, 30), (3, 3, 30, 60)] else 1
    fc.set_num_threads(2)
    two = run_winograd(x, w, b, pad, relu=True, dilation=dilation, stride=stride)
    fc.set_num_threads(threads)
    assert_identical(run_winograd(x, w, b, pad, relu=True, dilation=dilation, stride=stride),
                     two, f"{threads} threads")


@pytest.mark.parametrize("x_shape,dilation,R", [((2, 6, 13, 37), 1, 3), ((5, 6, 8, 8), 1, 3),
                                                ((2, 6, 15, 40), 2, 3), ((2, 6, 13, 37), 1, 5),
                                                ((5, 6, 14, 14), 1, 5), ((3, 6, 6, 5), 1, 5),
                                                ((1, 6, 9, 11), 1, 3)],
                         ids=["rows", "blocks", "dilated", "rows5x5", "blocks5x5",
                              "pairs5x5", "few"])
@pytest.mark.parametrize("value", (np.nan, np.inf, -np.inf, 2e37, -1e20))
def test_winograd_unsafe_inputs_placed_as_torch(torch, isa, value, x_shape, dilation, R):
    """An inf in the input transform would become inf - inf = NaN, and huge
    values could overflow it: the items holding such inputs are computed
    exactly (with few tiles, the whole call takes the direct route), so NaN
    and inf land where torch has them."""
    rng = rng_for(19)
    x, w = randn(rng, x_shape, np.float32), randn(rng, (10, 6, R, R), np.float32)
    w[0, 0, R // 2, R // 2] = 0   # an inf meeting a zero weight: NaN in torch
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 5, replace=False)] = value
    b = randn(rng, (10,), np.float32)
    pads, dil = ((dilation * (R - 1) // 2,) * 2,) * 2, (dilation, dilation)
    y = run_winograd(x, w, b, pads, relu=True, dilation=dil)
    expected = expected_of(torch, x, w, b, pads, relu=True, dilation=dil)
    if np.isfinite(value):
        assert np.isfinite(y).all() == np.isfinite(expected.numpy()).all()
    assert_nonfinite_match(y, expected, np.float32, "winograd, unsafe inputs")


@pytest.mark.parametrize("R", (3, 5))
@pytest.mark.parametrize("value", (1e30, -1e37, np.inf, np.nan))
def test_winograd_unsafe_weights_take_the_direct_route(torch, isa, value, R):
    rng = rng_for(23)
    x, w = randn(rng, (1, 5, 9, 20), np.float32), randn(rng, (9, 5, R, R), np.float32)
    w[3, 2, 0, 1] = value
    pads = ((R // 2,) * 2,) * 2
    y = run_winograd(x, w, None, pads)
    assert_nonfinite_match(y, expected_of(torch, x, w, None, pads),
                           np.float32, "winograd, unsafe weights")
    assert_identical(y, fc.conv2d(x, w, padding=R // 2, algorithm="direct"), "direct route")


@pytest.mark.parametrize("shape", [(1, 40, 32, 32, 48, 3), (16, 24, 8, 8, 32, 3),
                                   (12, 32, 14, 14, 64, 5)],
                         ids=["rows", "blocks", "lenet5x5"])
def test_backward_input_gradient_by_winograd(torch, isa, shape):
    """A stride-1 layer's input gradient is a convolution of grad_output
    with the flipped weight: "auto" runs it by Winograd when that suits it
    (K >= 32 of grad_output's channels for 3x3, 16 for 5x5), beside the
    direct weight gradient."""
    N, C, H, W, K, R = shape
    pad = R // 2
    rng = rng_for(C * K)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, R, R), np.float32)
    g = randn(rng, (N, K, H, W), np.float32)
    flipped = _params.conv_params((N, K, H, W), (C, K, R, R), 1, pad, 1, 1)
    assert (conv.choose_algorithm(flipped, np.dtype(np.float32), input_grad=True)
            == "winograd") == (isa == "avx512")
    gi, gw, gb = fc.conv2d_backward(g, x, w, padding=pad)
    xt, wt = t64(torch, x, True), t64(torch, w, True)
    torch_conv2d(torch, xt, wt, None, (1, 1), ((pad, pad), (pad, pad)), (1, 1),
                 1).backward(t64(torch, g))
    assert_close(gi, xt.grad, np.float32, "grad_input")
    assert_close(gw, wt.grad, np.float32, "grad_weight")
    assert_close(gb, g.astype(np.float64).sum(axis=(0, 2, 3)), np.float32, "grad_bias")

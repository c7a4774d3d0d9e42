"""The streamed convolution (src/conv_streamed.c): an im2col GEMM with
pixels in the vector lanes that reads the weights as the caller stores
them, which algorithm="auto" takes for float32 layers with few pixels
under many weights, with AVX-512, against PyTorch.

The random problems call the algorithm directly (fastconv.conv._run_conv
with "streamed") so that every shape reaches it: pixels that fill whole
panels of 48, a last panel in part (1-3 vectors), 1-8 pixels left over as
dot products, several images, output channels past a block of 8, any
kernel size, stride (the gather by masked loads for column stride 1 or 2,
the even elements of two vectors kept by a permute for 2; the generic one
otherwise), padding and dilation, and reductions C R S longer
than a block of 512 rows.  At the levels without AVX-512 the same call is
the direct algorithm, which must give the same results.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import _kernels as kernels
from fastconv import _params, conv
from _helpers import assert_close, assert_identical, randn, rng_for, t64, torch_conv2d

from test_nonfinite import assert_nonfinite_match


def run_streamed(x, w, b, stride=1, padding=0, dilation=1, relu=False, wscale=None):
    x, w, b, p, _ = _params.conv_inputs(x, w, b, stride, padding, dilation, 1)
    return conv._run_conv(x, w, b, p, "streamed", None, relu=relu, wscale=wscale)


def expected_of(torch, x, w, b, stride=1, padding=0, dilation=1, relu=False, wscale=None):
    """In float64; the factor multiplies each sum (as conv -> batch norm)."""
    p = _params.conv_params(x.shape, w.shape, stride, padding, dilation, 1)
    y = torch_conv2d(torch, t64(torch, x), t64(torch, w), None, p.stride, p.padding,
                     p.dilation, 1)
    if wscale is not None:
        y = y * torch.from_numpy(np.asarray(wscale, np.float64))[None, :, None, None]
    if b is not None:
        y = y + t64(torch, b)[None, :, None, None]
    return torch.relu(y) if relu else y


def _check(torch, x, w, b, what, **kw):
    before = [a.copy() for a in (x, w)]
    y = run_streamed(x, w, b, **kw)
    for a, a0 in zip((x, w), before):
        assert_identical(a, a0, "an input was modified")
    assert_close(y, expected_of(torch, x, w, b, **kw), np.float32, what)


@st.composite
def problems(draw):
    R, S = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    stride = (draw(st.integers(1, 2)), draw(st.sampled_from((1, 1, 1, 2, 3))))
    pads = tuple((draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in (R, S))
    H = draw(st.integers(max(1, dil[0] * (R - 1) + 1 - sum(pads[0])), 20))
    W = draw(st.integers(max(1, dil[1] * (S - 1) + 1 - sum(pads[1])), 20))
    return dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 12)),
                K=draw(st.integers(1, 20)), H=H, W=W, R=R, S=S, stride=stride,
                pads=pads, dilation=dil, bias=draw(st.booleans()), relu=draw(st.booleans()),
                scaled=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=100, deadline=None)
@given(cfg=problems())
def test_streamed_matches_torch(torch, isa, cfg):
    rng = rng_for(cfg["seed"])
    x = randn(rng, (cfg["N"], cfg["C"], cfg["H"], cfg["W"]), np.float32)
    w = randn(rng, (cfg["K"], cfg["C"], cfg["R"], cfg["S"]), np.float32)
    b = randn(rng, (cfg["K"],), np.float32) if cfg["bias"] else None
    wscale = rng.uniform(-2, 2, cfg["K"]) if cfg["scaled"] else None
    _check(torch, x, w, b, "streamed conv2d", stride=cfg["stride"], padding=cfg["pads"],
           dilation=cfg["dilation"], relu=cfg["relu"], wscale=wscale)


# (N, C, H, W, K, R, padding, stride): how the pixels split (whole panels,
# a part of one, dot products), reductions over several blocks of 512
SPLITS = [
    (1, 64, 7, 7, 40, 3, 1, 1),       # 49 = a panel + 1 dot product (ResNet's 7x7)
    (1, 16, 14, 14, 20, 3, 1, 1),     # 196 = 4 panels + 4 dot products
    (1, 9, 6, 8, 11, 3, 1, 1),        # 48: one whole panel
    (1, 9, 7, 8, 11, 3, 1, 1),        # 56: a panel + 8 dot products
    (1, 9, 3, 19, 11, 3, 1, 1),       # 57: a panel + a part panel of 9
    (2, 5, 5, 5, 9, 3, 1, 1),         # 25 per image: a part panel of 2 vectors
    (3, 70, 4, 4, 17, 3, 1, 1),       # C R S = 630: two blocks
    (1, 600, 5, 3, 24, 1, 0, 1),      # 1x1 of 600 channels: two blocks
    (1, 130, 9, 9, 8, 3, 1, 1),       # 1170: three blocks, 81 = panel + part of 33
    (1, 40, 15, 15, 12, 3, 1, 2),     # stride 2: 64 = a panel + a part of 16
    (1, 40, 27, 27, 12, 3, 1, 2),     # stride 2: rows of 14 across panels, 4 dot products
    (1, 12, 33, 20, 12, 4, 3, 2),     # stride 2, even kernel: columns past the input both sides
    (1, 40, 15, 15, 12, 3, 1, 3),     # stride 3: the generic gather
    (2, 30, 8, 8, 7, 5, 2, 1),        # 5x5, fewer than 8 output channels
]


@pytest.mark.parametrize("shape", SPLITS)
def test_streamed_splits_and_blocks(torch, isa, shape):
    N, C, H, W, K, R, pad, stride = shape
    rng = rng_for(C * H * W + K)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, R, R), np.float32)
    b = randn(rng, (K,), np.float32)
    _check(torch, x, w, b, "streamed splits", stride=stride, padding=pad, relu=True,
           wscale=rng.uniform(0.5, 1.5, K))


@pytest.mark.parametrize("shape", [(1, 2048, 7, 7, 512, 1, 0, 1), (1, 64, 9, 9, 128, 3, 1, 1),
                                   (1, 96, 7, 7, 256, 3, 1, 1), (1, 256, 28, 28, 256, 3, 1, 2),
                                   (1, 1024, 14, 14, 2048, 1, 0, 2)])
def test_auto_takes_streamed_with_avx512(isa, shape):
    """ResNet-50's last-stage 1x1 layers, 3x3 layers of few pixels and
    fewer than 128 input channels (more take Winograd of few tiles) and its
    downsampling layers (stride 2) reach it through "auto" (where the
    machine has AVX-512), with the result of the direct algorithm to
    rounding; float64, column stride 3, more pixels and small weights do
    not."""
    N, C, H, W, K, R, d, s = shape
    f32 = np.dtype(np.float32)
    p = _params.conv_params((N, C, H, W), (K, C, R, R), s, d, 1, 1)
    assert (conv.choose_algorithm(p, f32) == "streamed") == (isa == "avx512")
    assert conv.choose_algorithm(p, np.dtype(np.float64)) != "streamed"
    for other in [_params.conv_params((N, C, H, W), (K, C, R, R), 3, d, 1, 1),
                  _params.conv_params((N, C, 4 * H, 4 * W), (K, C, R, R), s, d, 1, 1),
                  _params.conv_params((N, C, H, W), (2, C, R, R), s, d, 1, 1)]:
        assert conv.choose_algorithm(other, f32) != "streamed"
    rng = rng_for(N * C * H)
    x, w = randn(rng, (N, C, H, W), f32), randn(rng, (K, C, R, R), f32)
    assert_close(fc.conv2d(x, w, stride=s, padding=d),
                 fc.conv2d(x, w, stride=s, padding=d, algorithm="direct"), f32,
                 "auto against direct")


def test_auto_streamed_conv2d_bn_matches_torch(torch, isa):
    """The batch norm's factor multiplies the sums (not folded into the
    weights), to 1e-5 of torch's conv -> batch_norm(eval) -> relu."""
    rng = rng_for(31)
    x, w = randn(rng, (1, 256, 7, 7), np.float32), randn(rng, (128, 256, 3, 3), np.float32)
    mean, var = randn(rng, (128,), np.float32), rng.uniform(0.1, 2, 128).astype(np.float32)
    gamma, beta = randn(rng, (128,), np.float32), randn(rng, (128,), np.float32)
    y = fc.conv2d_bn(x, w, None, mean, var, gamma, beta, padding=1, activation="relu")
    F = torch.nn.functional
    e = F.relu(F.batch_norm(F.conv2d(t64(torch, x), t64(torch, w), padding=1),
                            t64(torch, mean), t64(torch, var), t64(torch, gamma),
                            t64(torch, beta), False, 0.0, 1e-5))
    assert_close(y, e, np.float32, "conv2d_bn, streamed")


@pytest.mark.parametrize("x_shape,k", [((1, 40, 7, 7), 60), ((3, 24, 5, 6), 20),
                                       ((1, 70, 4, 4), 33)], ids=["dots", "images", "blocks"])
@pytest.mark.parametrize("threads", (1, 3, 16))
def test_streamed_bits_do_not_depend_on_threads(restore_threads, isa, threads, x_shape, k):
    rng = rng_for(8)
    x, w = randn(rng, x_shape, np.float32), randn(rng, (k, x_shape[1], 3, 3), np.float32)
    b = randn(rng, (k,), np.float32)
    fc.set_num_threads(2)
    two = run_streamed(x, w, b, padding=1, relu=True)
    fc.set_num_threads(threads)
    assert_identical(run_streamed(x, w, b, padding=1, relu=True), two, f"{threads} threads")


@pytest.mark.parametrize("value", (np.nan, np.inf, -np.inf, 1e30))
@pytest.mark.parametrize("x_shape", [(1, 12, 7, 7), (2, 6, 5, 11)], ids=["dots", "part"])
def test_streamed_nonfinite_placed_as_torch(torch, isa, value, x_shape):
    """NaN and inf in the input (in panels and in dot products) land where
    torch has them; an inf meeting a zero weight is NaN."""
    rng = rng_for(19)
    x, w = randn(rng, x_shape, np.float32), randn(rng, (10, x_shape[1], 3, 3), np.float32)
    w[0, 0, 1, 1] = 0
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 5, replace=False)] = value
    b = randn(rng, (10,), np.float32)
    y = run_streamed(x, w, b, padding=1, relu=True)
    assert_nonfinite_match(y, expected_of(torch, x, w, b, padding=1, relu=True),
                           np.float32, "streamed, non-finite inputs")


@pytest.mark.parametrize("factor", (np.inf, np.nan, 1e39))
def test_streamed_nonfinite_factors_take_the_direct_route(isa, factor):
    """A factor that is not a finite float32 cannot multiply the sums as
    the folded weight would: the call goes to the direct algorithm."""
    rng = rng_for(23)
    x, w = randn(rng, (1, 5, 7, 7), np.float32), randn(rng, (9, 5, 3, 3), np.float32)
    wscale = rng.uniform(0.5, 1.5, 9)
    wscale[4] = factor
    xv, wv, bv, p, _ = _params.conv_inputs(x, w, None, 1, 1, 1, 1)
    direct = conv._run_conv(xv, wv, bv, p, "direct", None, wscale=wscale)
    assert_identical(run_streamed(x, w, None, padding=1, wscale=wscale), direct,
                     "direct route")


# ---------------------------------------------------------------------------
# the gradients: "streamed" (only under "auto") computes the weight gradient
# by im2col's GEMM and a stride-1 input gradient, a convolution of
# grad_output with the flipped weight, by the streamed GEMM

def backward_streamed(gy, x, w, stride=1, padding=0, dilation=1, groups=1):
    gy, x, w, p, dtype = _params.conv_backward_inputs(gy, x, w, stride, padding, dilation,
                                                      groups)
    gx, gw, gb = np.empty(p.input_shape, dtype), np.empty(p.weight_shape, dtype), \
        np.empty((p.K,), dtype)
    kernels.conv2d_backward(p, "streamed", gy, x, w, gx, gw, gb)
    return gx, gw, gb


@settings(max_examples=40, deadline=None)
@given(cfg=problems(), groups=st.sampled_from((1, 1, 1, 2)))
def test_streamed_backward_matches_torch(torch, isa, cfg, groups):
    """Any shape (a strided one's input gradient is im2col's, grouped ones
    run direct), against float64 autograd."""
    rng = rng_for(cfg["seed"])
    C, K = cfg["C"] * groups, cfg["K"] * groups
    x = randn(rng, (cfg["N"], C, cfg["H"], cfg["W"]), np.float32)
    w = randn(rng, (K, cfg["C"], cfg["R"], cfg["S"]), np.float32)
    p = _params.conv_params(x.shape, w.shape, cfg["stride"], cfg["pads"], cfg["dilation"],
                            groups)
    gy = randn(rng, p.output_shape, np.float32)
    got = backward_streamed(gy, x, w, cfg["stride"], cfg["pads"], cfg["dilation"], groups)
    tx, tw = t64(torch, x).requires_grad_(), t64(torch, w).requires_grad_()
    torch_conv2d(torch, tx, tw, None, p.stride, p.padding, p.dilation, groups).backward(
        t64(torch, gy))
    for a, e, what in zip(got, (tx.grad, tw.grad, t64(torch, gy).sum((0, 2, 3))),
                          ("grad_input", "grad_weight", "grad_bias")):
        assert_close(a, e.numpy(), np.float32, what)


@pytest.mark.parametrize("shape,streamed", [
    ((1, 512, 14, 14, 512, 3), True),     # vgg_512x14: 48 KB of weights a pixel
    ((1, 256, 7, 7, 256, 3), True),
    ((1, 512, 7, 7, 512, 3), True),       # Winograd of few tiles, the weight as stored
    ((1, 1024, 7, 7, 100, 3), False),     # 75 KB a pixel, 100 channels: the passes dominate
    ((1, 1024, 7, 7, 256, 1), False),     # 1x1: im2col's plain GEMM
])
def test_auto_backward_takes_streamed_input_gradient(isa, shape, streamed):
    """With AVX-512, "auto" takes the streamed input gradient where it pays
    and im2col for both gradients where it does not; elsewhere the same
    call runs the direct input gradient."""
    N, C, H, W, K, R = shape
    p = _params.conv_params((N, C, H, W), (K, C, R, R), 1, R // 2, 1, 1)
    rng = rng_for(C + H)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, R, R), np.float32)
    gy = randn(rng, p.output_shape, np.float32)
    via_streamed = backward_streamed(gy, x, w, padding=R // 2)
    im2col = fc.conv2d_backward(gy, x, w, padding=R // 2, algorithm="im2col")
    if isa != "avx512":
        for a, e in zip(via_streamed, im2col):
            assert_close(a, e, np.float32, "the streamed call at another level")
        return
    got = fc.conv2d_backward(gy, x, w, padding=R // 2)
    for a, e in zip(got, via_streamed if streamed else im2col):
        assert_identical(a, e, "auto's choice")

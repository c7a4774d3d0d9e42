"""The Winograd F(2x2, 3x3) convolution (src/conv_winograd.c), which
algorithm="auto" takes for dense 3x3 float32 layers of stride 1 with
AVX-512, against PyTorch.

The random problems call the algorithm directly (fastconv.conv._run_conv
with "winograd"), so that every shape reaches it, not only those "auto"
sends there: tile rows of one to several groups of 16 tiles, odd output
sizes (half tiles), asymmetric padding, items whose last groups are
missing, output channels past a block of 8.  At the levels without AVX-512
the same call is the direct algorithm, which must give the same results.
Dilated layers run as phases (every dh-th row, every dw-th column), each a
stride-1 convolution.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fastconv as fc
from fastconv import _kernels, _params, conv
from _helpers import assert_close, assert_identical, randn, rng_for, t64, torch_conv2d

from test_nonfinite import assert_nonfinite_match


def run_winograd(x, w, b, padding, relu=False, wscale=None, dilation=(1, 1)):
    x, w, b, p, _ = _params.conv_inputs(x, w, b, 1, padding, dilation, 1)
    return conv._run_conv(x, w, b, p, "winograd", None, relu=relu, wscale=wscale)


def expected_of(torch, x, w, b, pads, relu=False, wscale=None, dilation=(1, 1)):
    if wscale is not None:
        # the kernels fold the factor into the float32 weight (rounded once)
        w = (w.astype(np.float64) * wscale[:, None, None, None]).astype(np.float32)
    y = torch_conv2d(torch, t64(torch, x), t64(torch, w), t64(torch, b), (1, 1), pads,
                     dilation, 1)
    return torch.relu(y) if relu else y


@st.composite
def problems(draw):
    # dilation by phases: any row dilation, column dilation 1 or 2
    dil = (draw(st.sampled_from((1, 1, 2, 3))), draw(st.sampled_from((1, 1, 2))))
    pads = tuple(tuple(draw(st.integers(0, 2 * d)) for _ in range(2)) for d in dil)
    H = draw(st.integers(max(1, 2 * dil[0] + 1 - sum(pads[0])), 20))
    W = draw(st.integers(max(1, 2 * dil[1] + 1 - sum(pads[1])), 70))
    return dict(N=draw(st.integers(1, 3)), C=draw(st.integers(1, 20)),
                K=draw(st.integers(1, 19)), H=H, W=W, pads=pads, dilation=dil,
                bias=draw(st.booleans()), relu=draw(st.booleans()),
                scaled=draw(st.booleans()), seed=draw(st.integers(0, 2**31 - 1)))


@settings(max_examples=100, deadline=None)
@given(cfg=problems())
def test_winograd_matches_torch(torch, isa, cfg):
    rng = rng_for(cfg["seed"])
    x = randn(rng, (cfg["N"], cfg["C"], cfg["H"], cfg["W"]), np.float32)
    w = randn(rng, (cfg["K"], cfg["C"], 3, 3), np.float32)
    b = randn(rng, (cfg["K"],), np.float32) if cfg["bias"] else None
    wscale = rng.uniform(-2, 2, cfg["K"]) if cfg["scaled"] else None
    before = [a.copy() for a in (x, w)]
    y = run_winograd(x, w, b, cfg["pads"], cfg["relu"], wscale, cfg["dilation"])
    for a, a0 in zip((x, w), before):
        assert_identical(a, a0, "an input was modified")
    expected = expected_of(torch, x, w, b, cfg["pads"], cfg["relu"], wscale, cfg["dilation"])
    assert y.shape == tuple(expected.shape)
    assert_close(y, expected, np.float32, "winograd conv2d")


# (N, C, H, W, K, padding): narrow images, whose tiles go in blocks of tile
# rows (2-7 tiles a row; a last block only partly filled; odd output sizes)
BLOCKS = [(3, 5, 8, 8, 9, 1), (2, 4, 9, 7, 10, ((0, 2), (1, 0))), (1, 3, 13, 5, 8, 1),
          (5, 6, 6, 12, 17, ((2, 1), (0, 1))), (2, 7, 21, 3, 5, ((1, 1), (2, 2))),
          (2, 6, 16, 16, 12, 1), (1, 4, 11, 15, 9, ((1, 0), (1, 1)))]


# (N, C, H, W, K, padding, dilation): phases of rows and columns
DILATED = [(2, 5, 17, 40, 9, ((2, 2), (2, 2)), (2, 2)),
           (1, 4, 13, 37, 6, ((3, 0), (1, 2)), (3, 2)),
           (2, 3, 11, 50, 5, ((0, 1), (2, 0)), (1, 2)),
           (1, 6, 20, 21, 10, ((4, 4), (1, 1)), (4, 1))]


@pytest.mark.parametrize("shape", DILATED)
def test_winograd_dilated(torch, isa, shape):
    N, C, H, W, K, pads, dil = shape
    rng = rng_for(H * W + K)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, 3, 3), np.float32)
    b = randn(rng, (K,), np.float32)
    y = run_winograd(x, w, b, pads, relu=True, dilation=dil)
    assert_close(y, expected_of(torch, x, w, b, pads, relu=True, dilation=dil), np.float32,
                 "dilated")


# rows of 16 tiles or more: groups of 16 running across two rows of tiles
RUNS = [(1, 5, 12, 58, 9, 1), (2, 3, 7, 33, 8, ((0, 1), (2, 1))),
        (1, 4, 9, 40, 10, ((2, 2), (0, 0)))]


@pytest.mark.parametrize("shape", BLOCKS + RUNS)
def test_winograd_blocks_of_tile_rows(torch, isa, shape):
    N, C, H, W, K, pad = shape
    pads = pad if isinstance(pad, tuple) else ((pad, pad), (pad, pad))
    rng = rng_for(H * W + K)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, 3, 3), np.float32)
    b = randn(rng, (K,), np.float32)
    y = run_winograd(x, w, b, pads, relu=True)
    assert_close(y, expected_of(torch, x, w, b, pads, relu=True), np.float32, "blocks")


@pytest.mark.parametrize("shape", [(1, 64, 56, 56, 64, 1), (2, 32, 30, 28, 24, 1),
                                   (1, 32, 33, 32, 16, 1), (16, 32, 8, 8, 16, 1),
                                   (1, 32, 64, 60, 16, 2), (1, 64, 28, 28, 64, 1),
                                   (2, 64, 16, 16, 32, 1)])
def test_auto_takes_winograd_with_avx512(isa, shape):
    """The suite's 3x3 layers reach it through "auto" (where the machine has
    AVX-512), with the result of the direct algorithm to Winograd's rounding."""
    N, C, H, W, K, d = shape
    p = _params.conv_params((N, C, H, W), (K, C, 3, 3), 1, d, d, 1)
    f32 = np.dtype(np.float32)
    assert (conv.choose_algorithm(p, f32) == "winograd") == (isa == "avx512")
    assert conv.choose_algorithm(p, np.dtype(np.float64)) != "winograd"
    rng = rng_for(N * C * H)
    x, w = randn(rng, (N, C, H, W), f32), randn(rng, (K, C, 3, 3), f32)
    assert_close(fc.conv2d(x, w, padding=d, dilation=d),
                 fc.conv2d(x, w, padding=d, dilation=d, algorithm="direct"),
                 f32, "auto against direct")


@pytest.mark.parametrize("x_shape,dilation", [((3, 24, 21, 40), 1), ((7, 24, 8, 8), 1),
                                              ((2, 24, 21, 40), 2)],
                         ids=["rows", "blocks", "dilated"])
@pytest.mark.parametrize("threads", (1, 3, 16))
def test_winograd_bits_do_not_depend_on_threads(restore_threads, isa, threads, x_shape,
                                                dilation):
    """Also when the items are split by output channels for many threads
    (16 here: each part transforms the input again)."""
    rng = rng_for(8)
    x, w = randn(rng, x_shape, np.float32), randn(rng, (20, 24, 3, 3), np.float32)
    b = randn(rng, (20,), np.float32)
    fc.set_num_threads(2)
    two = run_winograd(x, w, b, dilation, relu=True, dilation=dilation)
    fc.set_num_threads(threads)
    assert_identical(run_winograd(x, w, b, dilation, relu=True, dilation=dilation), two,
                     f"{threads} threads")


@pytest.mark.parametrize("x_shape,dilation", [((2, 6, 13, 37), 1), ((5, 6, 8, 8), 1),
                                              ((2, 6, 15, 40), 2)],
                         ids=["rows", "blocks", "dilated"])
@pytest.mark.parametrize("value", (np.nan, np.inf, -np.inf, 2e37, -1e20))
def test_winograd_unsafe_inputs_placed_as_torch(torch, isa, value, x_shape, dilation):
    """An inf in the input transform would become inf - inf = NaN, and huge
    values could overflow it: the items holding such inputs are computed
    exactly, so NaN and inf land where torch has them."""
    rng = rng_for(19)
    x, w = randn(rng, x_shape, np.float32), randn(rng, (10, 6, 3, 3), np.float32)
    w[0, 0, 1, 1] = 0   # an inf meeting a zero weight: NaN in torch
    flat = x.reshape(-1)
    flat[rng.choice(flat.size, 5, replace=False)] = value
    b = randn(rng, (10,), np.float32)
    pads, dil = ((dilation,) * 2,) * 2, (dilation, dilation)
    y = run_winograd(x, w, b, pads, relu=True, dilation=dil)
    expected = expected_of(torch, x, w, b, pads, relu=True, dilation=dil)
    if np.isfinite(value):
        assert np.isfinite(y).all() == np.isfinite(expected.numpy()).all()
    assert_nonfinite_match(y, expected, np.float32, "winograd, unsafe inputs")


@pytest.mark.parametrize("value", (1e30, -1e37))
def test_winograd_unsafe_weights_take_the_direct_route(torch, isa, value):
    rng = rng_for(23)
    x, w = randn(rng, (1, 5, 9, 20), np.float32), randn(rng, (9, 5, 3, 3), np.float32)
    w[3, 2, 0, 1] = value
    y = run_winograd(x, w, None, ((1, 1), (1, 1)))
    assert_nonfinite_match(y, expected_of(torch, x, w, None, ((1, 1), (1, 1))),
                           np.float32, "winograd, unsafe weights")
    assert_identical(y, fc.conv2d(x, w, padding=1, algorithm="direct"), "direct route")


@pytest.mark.parametrize("shape", [(1, 40, 32, 32, 48), (16, 24, 8, 8, 32)], ids=["rows", "blocks"])
def test_backward_input_gradient_by_winograd(torch, isa, shape):
    """A stride-1 layer's input gradient is a convolution of grad_output
    with the flipped weight: "auto" runs it by Winograd when that suits it
    (K >= 32 of grad_output's channels), beside the direct weight gradient."""
    N, C, H, W, K = shape
    rng = rng_for(C * K)
    x, w = randn(rng, (N, C, H, W), np.float32), randn(rng, (K, C, 3, 3), np.float32)
    g = randn(rng, (N, K, H, W), np.float32)
    flipped = _params.conv_params((N, K, H, W), (C, K, 3, 3), 1, 1, 1, 1)
    assert (conv.choose_algorithm(flipped, np.dtype(np.float32), input_grad=True)
            == "winograd") == (isa == "avx512")
    gi, gw, gb = fc.conv2d_backward(g, x, w, padding=1)
    xt, wt = t64(torch, x, True), t64(torch, w, True)
    torch_conv2d(torch, xt, wt, None, (1, 1), ((1, 1), (1, 1)), (1, 1), 1).backward(t64(torch, g))
    assert_close(gi, xt.grad, np.float32, "grad_input")
    assert_close(gw, wt.grad, np.float32, "grad_weight")
    assert_close(gb, g.astype(np.float64).sum(axis=(0, 2, 3)), np.float32, "grad_bias")

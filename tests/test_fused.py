"""fuse_conv_bn and conv2d_bn (inference conv -> batch norm -> activation)
against PyTorch's unfused conv2d -> batch_norm(eval) -> relu.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastconv as fc
from _helpers import (ALGORITHMS, FLOAT_DTYPES, assert_close, assert_identical,
                      call, conv_arrays, conv_configs, conv_kwargs, randn,
                      rng_for, t64, torch_conv2d)


def bn_params(rng, K, dtype, affine=(True, True)):
    """Running statistics and the optional affine of a BatchNorm2d(K)."""
    rm = randn(rng, (K,), dtype)
    rv = rng.uniform(0.3, 3.0, K).astype(dtype)
    g = rng.uniform(-2, 2, K).astype(dtype) if affine[0] else None
    beta = randn(rng, (K,), dtype) if affine[1] else None
    return rm, rv, g, beta


def torch_chain(torch, x, w, b, rm, rv, g, beta, stride, padding, dilation,
                groups, eps, activation):
    F = torch.nn.functional
    y = torch_conv2d(torch, t64(torch, x), t64(torch, w), t64(torch, b), stride,
                     padding, dilation, groups)
    y = F.batch_norm(y, t64(torch, rm), t64(torch, rv), t64(torch, g),
                     t64(torch, beta), training=False, eps=eps)
    return F.relu(y) if activation == "relu" else y


# ---------------------------------------------------------------------------
# fuse_conv_bn

@pytest.mark.parametrize("eps", [1e-5, 1e-3])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("affine", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_fuse_conv_bn_formula(torch, api, dtype, affine, with_bias, eps):
    rng = rng_for(31)
    K = 6
    w = randn(rng, (K, 2, 3, 3), dtype)
    b = randn(rng, (K,), dtype) if with_bias else None
    rm, rv, g, beta = bn_params(rng, K, dtype, affine)
    originals = [a.copy() for a in (w, b, rm, rv, g, beta) if a is not None]
    fw, fb = api.fuse_conv_bn(w, b, rm, rv, g, beta, eps=eps)
    for a, a0 in zip([a for a in (w, b, rm, rv, g, beta) if a is not None], originals):
        assert_identical(a, a0, "input modified")
    # w' = w * gamma / sqrt(var + eps); b' = (b - mean) * gamma / sqrt(var + eps) + beta
    f64 = lambda a, d: np.full(K, d) if a is None else a.astype(np.float64)  # noqa: E731
    s = f64(g, 1.0) / np.sqrt(rv.astype(np.float64) + eps)
    assert_close(fw, w.astype(np.float64) * s[:, None, None, None], dtype, "fused_weight")
    assert_close(fb, (f64(b, 0.0) - rm) * s + f64(beta, 0.0), dtype, "fused_bias")
    assert fw.flags.c_contiguous and fb.flags.c_contiguous
    # the fused convolution is the conv -> batch norm chain
    x = randn(rng, (2, 4, 7, 6), dtype)
    y = torch_conv2d(torch, t64(torch, x), t64(torch, fw), t64(torch, fb), 1, 1, 1, 2)
    expected = torch_chain(torch, x, w, b, rm, rv, g, beta, 1, 1, 1, 2, eps, None)
    assert_close(y.numpy().astype(dtype), expected, dtype, "fused conv")


def test_fuse_conv_bn_dtype_is_weights(api):
    rng = rng_for(32)
    w = randn(rng, (3, 1, 2, 2), np.float32)
    rm, rv, g, beta = bn_params(rng, 3, np.float64)
    fw, fb = api.fuse_conv_bn(w, None, rm, rv, g, beta)
    assert fw.dtype == fb.dtype == np.float32
    fw, fb = api.fuse_conv_bn(w.astype(np.float64), None, rm.astype(np.float32),
                              rv.astype(np.float32), None, None)
    assert fw.dtype == fb.dtype == np.float64
    fw, fb = api.fuse_conv_bn(w.tolist(), None, rm.tolist(), rv.tolist(), None, None)
    assert fw.dtype == fb.dtype == np.float64 and fw.shape == (3, 1, 2, 2)


# ---------------------------------------------------------------------------
# conv2d_bn

def check_conv2d_bn(torch, conv2d_bn, algorithm, cfg, affine, activation, eps):
    x, w, b = conv_arrays(cfg)
    rng = rng_for(cfg["seed"] + 2)
    rm, rv, g, beta = bn_params(rng, cfg["K"], cfg["dtype"], affine)
    args = (x, w, b, rm, rv, g, beta)
    originals = [a.copy() for a in args if a is not None]
    y = call(conv2d_bn, *args, **conv_kwargs(cfg), eps=eps, activation=activation,
             algorithm=algorithm)
    for a, a0 in zip([a for a in args if a is not None], originals):
        assert_identical(a, a0, "input modified")
    pad = cfg["padding"] if isinstance(cfg["padding"], str) else cfg["pads"]
    expected = torch_chain(torch, *args, cfg["stride_pair"], pad, cfg["dilation_pair"],
                           cfg["groups"], eps, activation)
    assert_close(y, expected, cfg["dtype"], f"conv2d_bn ({activation})")
    assert y.flags.c_contiguous
    if activation == "relu":
        assert (y >= 0).all()


affines = st.sampled_from([(False, False), (True, True), (True, False), (False, True)])
activations = st.sampled_from([None, "relu"])
epss = st.sampled_from([1e-5, 1e-3])


@given(cfg=conv_configs(), affine=affines, activation=activations, eps=epss)
def test_reference_conv2d_bn_matches_torch(torch, cfg, affine, activation, eps):
    check_conv2d_bn(torch, fc.reference.conv2d_bn, None, cfg, affine, activation, eps)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@given(cfg=conv_configs(), affine=affines, activation=activations, eps=epss)
def test_conv2d_bn_matches_torch(torch, isa, algorithm, cfg, affine, activation, eps):
    check_conv2d_bn(torch, fc.conv2d_bn, algorithm, cfg, affine, activation, eps)


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_conv2d_bn_named(torch, isa, algorithm, dtype, activation):
    """A ResNet-style 3x3 block and a depthwise-separable pair, with odd
    channel counts."""
    rng = rng_for(33)
    for x_shape, w_shape, kw in [((2, 5, 10, 9), (17, 5, 3, 3), dict(padding=1)),
                                 ((1, 6, 9, 9), (12, 1, 3, 3), dict(padding=1, stride=2, groups=6)),
                                 ((2, 8, 5, 5), (16, 8, 1, 1), dict())]:
        x, w = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype)
        b = randn(rng, (w_shape[0],), dtype)
        rm, rv, g, beta = bn_params(rng, w_shape[0], dtype)
        y = fc.conv2d_bn(x, w, b, rm, rv, g, beta, **kw, activation=activation,
                         algorithm=algorithm)
        expected = torch_chain(torch, x, w, b, rm, rv, g, beta, kw.get("stride", 1),
                               kw.get("padding", 0), 1, kw.get("groups", 1), 1e-5,
                               activation)
        assert_close(y, expected, dtype, f"conv2d_bn {x_shape} {w_shape}")
        yr = fc.reference.conv2d_bn(x, w, b, rm, rv, g, beta, **kw, activation=activation)
        assert_close(y, yr.astype(np.float64), dtype, "conv2d_bn vs reference")


# The direct kernels fold the batch norm into the weight as they pack it
# (the AVX-512 transpose carries each factor as two floats), the others fold
# a copy first.  Either way the result is the convolution with
# fuse_conv_bn's weights, for factors past float32's range, infinite or NaN
# too, on each packing path: the row walk's 8-channel pairs, the
# channels-last walk's weights packed up front and packed block by block
# (one image or a small batch in one pass, a partial block of 16).
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("x_shape, w_shape", [
    ((1, 8, 20, 20), (32, 8, 3, 3)),
    ((1, 40, 5, 5), (64, 40, 3, 3)),
    ((1, 20, 5, 5), (256, 20, 3, 3)),
    ((2, 70, 4, 4), (260, 70, 3, 3)),
])
def test_conv2d_bn_fold_while_packing(isa, algorithm, dtype, x_shape, w_shape):
    rng = rng_for(41)
    K = w_shape[0]
    x, w = randn(rng, x_shape, dtype), randn(rng, w_shape, dtype)
    b = randn(rng, (K,), dtype)
    rm, rv, g, beta = bn_params(rng, K, dtype)
    g[0], g[1], g[2] = np.inf, np.nan, -np.inf
    # a factor of 3e53 (past FLT_MAX) on weights of 1e-30: finite products
    g[3], rv[3], rm[3] = 3e38, 1e-30, b[3]   # (and a finite folded bias)
    w[3] *= dtype(1e-30)
    kw = dict(padding=1, eps=1e-30, algorithm=algorithm)
    with np.errstate(invalid="ignore", over="ignore"):
        y = fc.conv2d_bn(x, w, b, rm, rv, g, beta, **kw)
        fw, fb = fc.fuse_conv_bn(w, b, rm, rv, g, beta, eps=1e-30)
        expected = fc.conv2d(x, fw, fb, padding=1, algorithm=algorithm)
    assert np.isfinite(fw[3]).all() and np.isfinite(expected[:, 3]).all()
    assert np.isnan(expected[:, :3]).any()
    assert_close(y, expected, dtype, f"conv2d_bn {x_shape} {w_shape}")


@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_conv2d_bn_out(torch, isa, algorithm, dtype, activation):
    rng = rng_for(34)
    x, w, b = randn(rng, (2, 3, 6, 7), dtype), randn(rng, (4, 3, 3, 3), dtype), None
    rm, rv, g, beta = bn_params(rng, 4, dtype)
    out = np.full((2, 4, 6, 7), np.nan, dtype)
    r = fc.conv2d_bn(x, w, b, rm, rv, g, beta, padding=1, activation=activation,
                     algorithm=algorithm, out=out)
    assert r is out
    assert_identical(out, fc.conv2d_bn(x, w, b, rm, rv, g, beta, padding=1,
                                       activation=activation, algorithm=algorithm), "out=")
    expected = torch_chain(torch, x, w, b, rm, rv, g, beta, 1, 1, 1, 1, 1e-5, activation)
    assert_close(out, expected, dtype, "out=")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_conv2d_bn_layouts_identical(isa, algorithm):
    rng = rng_for(35)
    x, w, b = randn(rng, (2, 4, 7, 7), np.float32), randn(rng, (6, 2, 3, 3), np.float32), None
    rm, rv, g, beta = bn_params(rng, 6, np.float32)
    kw = dict(padding=1, groups=2, activation="relu", algorithm=algorithm)
    y = fc.conv2d_bn(x, w, b, rm, rv, g, beta, **kw)
    ro = x.copy()
    ro.setflags(write=False)
    for xv in (np.asfortranarray(x), np.ascontiguousarray(x[..., ::-1])[..., ::-1], ro):
        assert_identical(fc.conv2d_bn(xv, w, b, rm, rv, g, beta, **kw), y, "x layout")
    for wv in (np.asfortranarray(w), np.ascontiguousarray(w[:, :, ::-1])[:, :, ::-1]):
        assert_identical(fc.conv2d_bn(x, wv, b, rm, rv, g, beta, **kw), y, "w layout")
    big = np.zeros(12, np.float32)
    big[::2] = rv
    assert_identical(fc.conv2d_bn(x, w, b, rm, big[::2], g, beta, **kw), y, "strided running_var")
    # float32 and float64 vectors go to C as they are, others as float64
    # copies: all widen exactly, so the same values give the same bits
    assert_identical(fc.conv2d_bn(x, w, b, rm.astype(np.float64), rv, g.astype(np.float64),
                                  beta, **kw), y, "float64 vectors")
    h = [a.astype(np.float16) for a in (rm, rv, g, beta)]
    assert_identical(fc.conv2d_bn(x, w, b, *h, **kw),
                     fc.conv2d_bn(x, w, b, *(a.astype(np.float32) for a in h), **kw),
                     "float16 vectors")


@pytest.mark.parametrize("case", ["x32_w64", "x64_w32", "float16", "ints", "lists"])
@pytest.mark.parametrize("algorithm", (None,) + ALGORITHMS)
def test_conv2d_bn_dtypes(torch, isa, algorithm, case):
    """Mixed x / weight compute in float64 (to float64 accuracy); float16 ->
    float32; ints -> float64; nested lists -> float64."""
    conv2d_bn = fc.reference.conv2d_bn if algorithm is None else fc.conv2d_bn
    rng = rng_for(36)
    x32, w32 = randn(rng, (1, 2, 5, 5), np.float32), randn(rng, (3, 2, 3, 3), np.float32)
    rm, rv, g, beta = bn_params(rng, 3, np.float32)
    xi, wi = rng.integers(-3, 4, (1, 2, 5, 5)), rng.integers(-3, 4, (3, 2, 3, 3))
    x, w, stats, dtype = {
        "x32_w64": (x32, w32.astype(np.float64), (rm, rv, g, beta), np.float64),
        "x64_w32": (x32.astype(np.float64), w32, (rm, rv, g, beta), np.float64),
        "float16": (x32.astype(np.float16), w32.astype(np.float16), (rm, rv, g, beta),
                    np.float32),
        "ints": (xi, wi, (rm, rv, g, beta), np.float64),
        "lists": (x32.tolist(), w32.tolist(), tuple(a.tolist() for a in (rm, rv, g, beta)),
                  np.float64),
    }[case]
    y = call(conv2d_bn, x, w, None, *stats, activation="relu", algorithm=algorithm)
    expected = torch_chain(torch, np.asarray(x), np.asarray(w), None, rm, rv, g, beta,
                           1, 0, 1, 1, 1e-5, "relu")
    assert_close(y, expected, dtype, case)

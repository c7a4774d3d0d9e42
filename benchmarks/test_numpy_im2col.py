"""The NumPy im2col baseline (fastconv/bench/numpy_im2col.py) computes what
fastconv.reference.conv2d computes: a correctness test, not a benchmark
(it runs under plain ``pytest benchmarks/``; ``--benchmark-only`` skips it).
"""
import numpy as np
import pytest

from fastconv import reference
from fastconv.bench import suite as S
from fastconv.bench.numpy_im2col import conv2d as numpy_conv2d

# (N, C, H, W, K, R, S, stride, padding, dilation, groups)
GEOMETRIES = [
    (2, 3, 9, 9, 4, 3, 3, 1, 0, 1, 1),
    (2, 3, 9, 9, 4, 3, 3, 1, 1, 1, 1),
    (1, 4, 10, 7, 6, 3, 2, 2, 1, 1, 1),              # non-square input and kernel
    (2, 4, 11, 11, 4, 3, 3, (2, 1), (1, 2), 1, 1),   # per-axis stride and padding
    (1, 2, 12, 12, 3, 3, 3, 1, 2, 2, 1),             # dilation
    (1, 2, 13, 12, 3, 3, 3, (1, 2), 0, (2, 3), 1),   # per-axis dilation and stride
    (2, 6, 8, 8, 9, 3, 3, 1, 1, 1, 3),               # groups
    (1, 8, 9, 9, 8, 3, 3, 2, 1, 1, 8),               # depthwise, strided
    (1, 4, 9, 9, 8, 3, 3, 1, 1, 1, 4),               # depthwise with multiplier 2
    (1, 3, 8, 8, 5, 1, 1, 1, 0, 1, 1),               # 1x1
    (1, 2, 7, 7, 3, 7, 7, 1, 0, 1, 1),               # kernel as large as the input
    (1, 2, 10, 10, 3, 3, 3, 1, ((0, 2), (1, 0)), 1, 1),   # asymmetric padding
    (1, 2, 10, 9, 3, 4, 3, 1, "same", 1, 1),         # 'same', even kernel
    (1, 2, 10, 9, 3, 3, 3, 1, "same", 2, 1),         # 'same' with dilation
    (1, 2, 10, 9, 3, 3, 3, 2, "valid", 1, 1),
]


def _arrays(geometry, dtype=np.float32, seed=0):
    N, Cin, H, W, K, R, S_, stride, padding, dilation, groups = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, Cin, H, W)).astype(dtype)
    w = rng.standard_normal((K, Cin // groups, R, S_)).astype(dtype)
    b = rng.standard_normal(K).astype(dtype)
    return x, w, b, (stride, padding, dilation, groups)


def _close(actual, expected, dtype):
    tol = 1e-4 if dtype == np.float32 else 1e-11
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "-".join(map(str, g)))
def test_matches_reference(geometry, dtype):
    x, w, b, args = _arrays(geometry, dtype)
    _close(numpy_conv2d(x, w, b, *args), reference.conv2d(x, w, b, *args), dtype)


def test_without_bias_and_non_contiguous_input():
    x, w, _, args = _arrays((2, 4, 12, 12, 6, 3, 3, 1, 1, 1, 2))
    xt = np.asfortranarray(x)[:, :, ::1, :]
    _close(numpy_conv2d(xt, w, None, *args), reference.conv2d(x, w, None, *args),
           np.float32)


def test_does_not_modify_inputs():
    x, w, b, args = _arrays((1, 3, 8, 8, 4, 3, 3, 2, 1, 1, 1))
    copies = [a.copy() for a in (x, w, b)]
    numpy_conv2d(x, w, b, *args)
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)


SUITE = S.load_suite()


def _small(layer):
    """A copy of a suite layer small enough for a quick test: the largest on
    its ladder with batch 1 and C*K/groups <= 64 (the geometry unchanged)."""
    rungs = S.ladder("conv2d", layer)
    small = [r for r in rungs if r["N"] == 1 and r["C"] * r["K"] // r["groups"] <= 64]
    return small[0] if small else rungs[-1]


@pytest.mark.parametrize("layer", SUITE["conv2d"], ids=lambda l: l["name"])
def test_suite_geometries(layer):
    """Every conv2d geometry of suite.json (stride, padding, dilation,
    groups as there), on a scaled-down copy."""
    small = _small(layer)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(S.input_shape(small), dtype=np.float32)
    w = rng.standard_normal(S.weight_shape(small), dtype=np.float32)
    b = rng.standard_normal(small["K"], dtype=np.float32)
    args = S.conv_args(small)
    _close(numpy_conv2d(x, w, b, *args), reference.conv2d(x, w, b, *args), np.float32)

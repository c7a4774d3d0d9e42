"""Every backward op against central finite differences of its own forward,
in float64, through fastconv.reference and through the fast API (every
algorithm where there is a choice, every ISA level) -- an oracle that needs
no PyTorch.

The scalar checked is L = sum(forward(...) * G) for a fixed random G, so
dL/d(input) is exactly what the backward op returns for grad_output = G.

Error budgets (set from h and the function, never from observed results):
- conv2d, avg_pool2d and max_pool2d (with no ties and h far below the gap
  between values) are linear in the perturbed argument, so central
  differences have no truncation error; what remains is rounding,
  ~1e-16 * |L| / h.  With h = 1e-3 and |L| ~ 10..100 that is < 1e-11: a
  budget of 1e-8 (relative to the gradient's scale) is generous.
- batch_norm in training mode is non-linear: truncation ~ h^2 * |f'''| and
  rounding ~1e-16 * |L| / h; with h = 1e-5 both are below ~1e-9: budget 1e-6.
"""
import numpy as np
import pytest

import fastconv as fc
from _helpers import (ALGORITHMS, assert_grad_close, call, distinct, numeric_grad,
                      randn, rng_for)

LINEAR_H, LINEAR_TOL = 1e-3, 1e-8
BN_H, BN_TOL = 1e-5, 1e-6

# ---------------------------------------------------------------------------
# conv2d_backward

CONV_CASES = [
    pytest.param(dict(x=(2, 3, 5, 5), w=(4, 3, 3, 3), stride=1, padding=1, dilation=1,
                      groups=1), id="3x3_pad1"),
    pytest.param(dict(x=(1, 4, 7, 6), w=(6, 2, 3, 2), stride=(2, 1),
                      padding=((1, 0), (2, 1)), dilation=1, groups=2), id="groups_asym_pad"),
    pytest.param(dict(x=(1, 3, 8, 7), w=(6, 1, 3, 3), stride=2, padding=2, dilation=2,
                      groups=3), id="depthwise_mult_dil2_s2"),
    pytest.param(dict(x=(2, 2, 6, 7), w=(3, 2, 2, 3), stride=1, padding="same",
                      dilation=(2, 1), groups=1), id="same_even_dil"),
    pytest.param(dict(x=(1, 3, 5, 6), w=(2, 3, 1, 1), stride=2, padding=0, dilation=1,
                      groups=1), id="1x1_s2"),
]


def _conv_fd(conv, conv_backward, algorithm, case):
    rng = rng_for(41)
    x = randn(rng, case["x"], np.float64)
    w = randn(rng, case["w"], np.float64)
    b = randn(rng, (case["w"][0],), np.float64)
    kw = {k: case[k] for k in ("stride", "padding", "dilation", "groups")}
    G = randn(rng, call(conv, x, w, b, **kw, algorithm=algorithm).shape, np.float64)

    def loss(x_, w_, b_):
        return float(np.sum(call(conv, x_, w_, b_, **kw, algorithm=algorithm) * G))

    gi, gw, gb = call(conv_backward, G, x, w, **kw, algorithm=algorithm)
    assert_grad_close(gi, numeric_grad(lambda v: loss(v, w, b), x, LINEAR_H),
                      LINEAR_TOL, "grad_input")
    assert_grad_close(gw, numeric_grad(lambda v: loss(x, v, b), w, LINEAR_H),
                      LINEAR_TOL, "grad_weight")
    assert_grad_close(gb, numeric_grad(lambda v: loss(x, w, v), b, LINEAR_H),
                      LINEAR_TOL, "grad_bias")


@pytest.mark.parametrize("case", CONV_CASES)
def test_reference_conv2d_backward_fd(case):
    _conv_fd(fc.reference.conv2d, fc.reference.conv2d_backward, None, case)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_backward_fd(isa, algorithm, case):
    _conv_fd(fc.conv2d, fc.conv2d_backward, algorithm, case)


# ---------------------------------------------------------------------------
# pooling

MAX_CASES = [
    pytest.param(dict(x=(2, 2, 6, 6), kernel_size=2), id="2x2"),
    pytest.param(dict(x=(1, 2, 7, 7), kernel_size=3, stride=2, padding=1), id="overlap_pad"),
    pytest.param(dict(x=(1, 2, 7, 8), kernel_size=(3, 2), stride=(1, 2), padding=(1, 1),
                      dilation=(2, 1), ceil_mode=True), id="dilated_ceil"),
    pytest.param(dict(x=(1, 1, 5, 5), kernel_size=3, stride=1, padding=1), id="dense_overlap"),
]


def test_max_pool2d_backward_fd(api):
    for case in MAX_CASES:
        case = dict(case.values[0])
        shape = case.pop("x")
        # distinct values, 1 apart: h = 1e-3 never changes which one is the max
        x = distinct(rng_for(42), shape, np.float64, gap=1.0)
        y, idx = api.max_pool2d(x, **case, return_indices=True)
        G = randn(rng_for(43), y.shape, np.float64)
        grad = api.max_pool2d_backward(G, idx, x.shape)
        numeric = numeric_grad(lambda v: float(np.sum(api.max_pool2d(v, **case) * G)),
                               x, LINEAR_H)
        assert_grad_close(grad, numeric, LINEAR_TOL, f"max_pool2d_backward {case}")


AVG_CASES = [
    dict(x=(2, 2, 6, 6), kernel_size=2),
    dict(x=(1, 2, 7, 7), kernel_size=3, stride=2, padding=1),
    dict(x=(1, 2, 7, 7), kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(x=(1, 2, 7, 8), kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True),
    dict(x=(1, 2, 6, 5), kernel_size=(2, 3), stride=2, padding=(1, 1), ceil_mode=True,
         count_include_pad=False),
    dict(x=(1, 1, 5, 5), kernel_size=3, stride=1, padding=1, divisor_override=4),
]


def test_avg_pool2d_backward_fd(api):
    for case in AVG_CASES:
        case = dict(case)
        shape = case.pop("x")
        x = randn(rng_for(44), shape, np.float64)
        y = api.avg_pool2d(x, **case)
        G = randn(rng_for(45), y.shape, np.float64)
        grad = api.avg_pool2d_backward(G, x.shape, **case)
        numeric = numeric_grad(lambda v: float(np.sum(api.avg_pool2d(v, **case) * G)),
                               x, LINEAR_H)
        assert_grad_close(grad, numeric, LINEAR_TOL, f"avg_pool2d_backward {case}")


# ---------------------------------------------------------------------------
# batch norm

@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 2, 3), (2, 3, 5)], ids=str)
def test_batch_norm_backward_fd(api, shape, training, affine):
    rng = rng_for(46)
    C = shape[1]
    bshape = (1, C) + (1,) * (len(shape) - 2)
    x = rng.uniform(-2, 2, C).reshape(bshape) + rng.uniform(0.5, 2, C).reshape(bshape) \
        * rng.standard_normal(shape)
    rm, rv = rng.standard_normal(C), rng.uniform(0.5, 2, C)
    w = rng.uniform(-2, 2, C) if affine else None
    b = rng.standard_normal(C) if affine else None
    G = rng.standard_normal(shape)
    eps = 1e-3
    stats = (None, None) if training else (rm, rv)

    def loss(x_, w_, b_):
        y = api.batch_norm(x_, *stats, w_, b_, training=training, eps=eps)
        return float(np.sum(y * G))

    gi, gw, gb = api.batch_norm_backward(G, x, w, running_mean=rm, running_var=rv,
                                         training=training, eps=eps)
    assert_grad_close(gi, numeric_grad(lambda v: loss(v, w, b), x, BN_H), BN_TOL,
                      "grad_input")
    w_ = w if affine else np.ones(C)
    b_ = b if affine else np.zeros(C)
    assert_grad_close(gw, numeric_grad(lambda v: loss(x, v, b_), w_, BN_H), BN_TOL,
                      "grad_weight")
    assert_grad_close(gb, numeric_grad(lambda v: loss(x, w_, v), b_, BN_H), BN_TOL,
                      "grad_bias")

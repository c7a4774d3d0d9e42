"""batch_norm and batch_norm_backward against the PyTorch oracle.

Training and eval mode, with and without weight and bias, 2-D (N, C), 3-D
and 4-D inputs; the running statistics updated in place exactly as PyTorch
updates its own (the updated arrays are compared).  Each test runs for
fastconv.reference and for the fast API at every ISA level (`api` fixture).
"""
import numpy as np
import pytest
from hypothesis import given

from _helpers import (FLOAT_DTYPES, assert_close, assert_identical, bn_arrays,
                      bn_configs, randn, rng_for, t64)


def _f(torch):
    return torch.nn.functional


def check_forward(torch, api, cfg, training):
    x, rm, rv, w, b = bn_arrays(cfg)
    m, eps, dt = cfg["momentum"], cfg["eps"], cfg["dtype"]
    rm_f, rv_f = rm.copy(), rv.copy()
    originals = [a.copy() for a in (x, w, b) if a is not None]
    y = api.batch_norm(x, rm_f, rv_f, w, b, training=training, momentum=m, eps=eps)
    for a, a0 in zip([a for a in (x, w, b) if a is not None], originals):
        assert_identical(a, a0, "input modified")
    rm_t, rv_t = t64(torch, rm), t64(torch, rv)
    yt = _f(torch).batch_norm(t64(torch, x), rm_t, rv_t, t64(torch, w), t64(torch, b),
                              training=training, momentum=m, eps=eps)
    assert_close(y, yt, dt, "batch_norm")
    assert y.flags.c_contiguous
    # the caller's arrays, updated in place (training) or untouched (eval)
    assert_close(rm_f, rm_t, dt, "running_mean")
    assert_close(rv_f, rv_t, dt, "running_var")
    if not training:
        assert_identical(rm_f, rm, "running_mean changed in eval mode")
        assert_identical(rv_f, rv, "running_var changed in eval mode")
    else:
        # no running statistics at all: the same output
        y2 = api.batch_norm(x, None, None, w, b, training=True, momentum=m, eps=eps)
        assert_identical(y2, y, "training without running statistics")


def check_backward(torch, api, cfg, training):
    x, rm, rv, w, b = bn_arrays(cfg)
    eps, dt = cfg["eps"], cfg["dtype"]
    g = randn(rng_for(cfg["seed"] + 1), x.shape, dt)
    originals = [a.copy() for a in (g, x, w, rm, rv) if a is not None]
    kw = dict(running_mean=None if training else rm,
              running_var=None if training else rv)
    gi, gw, gb = api.batch_norm_backward(g, x, w, **kw, training=training, eps=eps)
    for a, a0 in zip([a for a in (g, x, w, rm, rv) if a is not None], originals):
        assert_identical(a, a0, "input modified")
    C = cfg["C"]
    xt = t64(torch, x, True)
    wt = t64(torch, w if w is not None else np.ones(C), True)
    bt = t64(torch, b if b is not None else np.zeros(C), True)
    yt = _f(torch).batch_norm(xt, None if training else t64(torch, rm),
                              None if training else t64(torch, rv), wt, bt,
                              training=training, eps=eps)
    yt.backward(t64(torch, g))
    assert_close(gi, xt.grad, dt, "grad_input")
    assert_close(gw, wt.grad, dt, "grad_weight")
    assert_close(gb, bt.grad, dt, "grad_bias")
    if training:   # running statistics, if given, are ignored in training
        again = api.batch_norm_backward(g, x, w, running_mean=rm, running_var=rv,
                                        training=True, eps=eps)
        for a, e in zip(again, (gi, gw, gb)):
            assert_identical(a, e, "training backward with running stats")


@pytest.mark.parametrize("training", [False, True])
@given(cfg=bn_configs())
def test_batch_norm_matches_torch(torch, api, training, cfg):
    check_forward(torch, api, cfg, training)


@pytest.mark.parametrize("training", [False, True])
@given(cfg=bn_configs())
def test_batch_norm_backward_matches_torch(torch, api, training, cfg):
    check_backward(torch, api, cfg, training)


NAMED = [(2, 3), (8, 5), (4, 16, 7, 7), (2, 17, 5, 9), (3, 2, 11), (1, 3, 4, 4)]


@pytest.mark.parametrize("momentum", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("affine", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", NAMED, ids=str)
def test_batch_norm_named(torch, api, shape, dtype, training, affine, momentum):
    cfg = dict(x_shape=shape, C=shape[1], weight=affine[0], bias=affine[1],
               momentum=momentum, eps=1e-5, dtype=dtype, seed=sum(shape))
    check_forward(torch, api, cfg, training)
    check_backward(torch, api, cfg, training)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_batch_norm_running_stats_sequence(torch, api, dtype):
    """Several training steps then eval: the running statistics follow
    PyTorch's step by step, and eval uses them."""
    rng = rng_for(21)
    C = 3
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    rm_t, rv_t = t64(torch, rm), t64(torch, rv)
    w, b = randn(rng, (C,), dtype), randn(rng, (C,), dtype)
    for step in range(4):
        x = (3.0 + 2.0 * rng.standard_normal((5, C, 3, 2))).astype(dtype)
        api.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3)
        _f(torch).batch_norm(t64(torch, x), rm_t, rv_t, t64(torch, w), t64(torch, b),
                             training=True, momentum=0.3)
        assert_close(rm, rm_t, dtype, f"running_mean after step {step}")
        assert_close(rv, rv_t, dtype, f"running_var after step {step}")
    x = randn(rng, (2, C, 4, 4), dtype)
    y = api.batch_norm(x, rm, rv, w, b, training=False)
    assert_close(y, _f(torch).batch_norm(t64(torch, x), rm_t, rv_t, t64(torch, w),
                                         t64(torch, b), training=False), dtype, "eval")


def test_batch_norm_strided_running_stats(torch, api):
    """Running statistics that are non-contiguous views are updated in place
    through the view; nothing else in their buffer is touched."""
    rng = rng_for(22)
    x = randn(rng, (4, 3, 5, 5), np.float64)
    buf_m, buf_v = np.full(7, -5.0), np.full(7, 7.0)
    rm, rv = buf_m[::3], buf_v[::3]
    assert not rm.flags.c_contiguous or rm.strides != (8,)
    api.batch_norm(x, rm, rv, training=True, momentum=0.25)
    rm_t, rv_t = torch.full((3,), -5.0, dtype=torch.float64), torch.full((3,), 7.0, dtype=torch.float64)
    _f(torch).batch_norm(t64(torch, x), rm_t, rv_t, training=True, momentum=0.25)
    assert_close(buf_m[::3], rm_t, np.float64, "running_mean view")
    assert_close(buf_v[::3], rv_t, np.float64, "running_var view")
    others = np.ones(7, bool)
    others[::3] = False
    assert np.all(buf_m[others] == -5.0) and np.all(buf_v[others] == 7.0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_batch_norm_layouts_identical(api, dtype):
    rng = rng_for(23)
    x = randn(rng, (3, 4, 5, 6), dtype)
    rm, rv = randn(rng, (4,), dtype), rng.uniform(0.5, 2, 4).astype(dtype)
    w, b = randn(rng, (4,), dtype), randn(rng, (4,), dtype)
    g = randn(rng, x.shape, dtype)
    y_eval = api.batch_norm(x, rm, rv, w, b)
    y_train = api.batch_norm(x, None, None, w, b, training=True)
    grads = api.batch_norm_backward(g, x, w, training=True)
    grads_eval = api.batch_norm_backward(g, x, w, running_mean=rm, running_var=rv,
                                         training=False)
    views = [np.asfortranarray(x), x.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2),
             np.ascontiguousarray(x[..., ::-1])[..., ::-1]]
    ro = x.copy()
    ro.setflags(write=False)
    views.append(ro)
    for xv in views:
        assert_identical(api.batch_norm(xv, rm, rv, w, b), y_eval, "eval")
        assert_identical(api.batch_norm(xv, None, None, w, b, training=True), y_train, "train")
        for a, e in zip(api.batch_norm_backward(g, xv, w, training=True), grads):
            assert_identical(a, e, "backward")
        gv = np.asfortranarray(g)
        for a, e in zip(api.batch_norm_backward(gv, xv, w, running_mean=rm[::-1][::-1],
                                                running_var=rv, training=False), grads_eval):
            assert_identical(a, e, "eval backward")


def test_batch_norm_dtypes(torch, api):
    rng = rng_for(24)
    x32 = randn(rng, (4, 3, 2, 2), np.float32)
    rm32, rv32 = np.zeros(3, np.float32), np.ones(3, np.float32)
    w64 = randn(rng, (3,), np.float64)
    F = _f(torch)
    # mixed float32 / float64: computed in float64
    y = api.batch_norm(x32, rm32, rv32, w64)
    assert_close(y, F.batch_norm(t64(torch, x32), t64(torch, rm32), t64(torch, rv32),
                                 t64(torch, w64)), np.float64, "x32 w64")
    # the running statistics are state kept in their own dtype (often float64
    # from np.zeros): they do not promote the result (fastconv/_params.py)
    rm64, rv64 = np.zeros(3), np.ones(3)
    y = api.batch_norm(x32, rm64, rv64, training=True)
    rm_t, rv_t = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    yt = F.batch_norm(t64(torch, x32), rm_t, rv_t, training=True)
    assert_close(y, yt, np.float32, "x32 with float64 running stats")
    assert_close(rm64, rm_t, np.float64, "float64 running_mean")
    assert_close(rv64, rv_t, np.float64, "float64 running_var")
    rm64e, rv64e = randn(rng, (3,), np.float64), rng.uniform(0.5, 2, 3)
    y = api.batch_norm(x32, rm64e, rv64e)
    assert_close(y, F.batch_norm(t64(torch, x32), t64(torch, rm64e), t64(torch, rv64e)),
                 np.float32, "eval, x32 with float64 running stats")
    gi, gw, gb = api.batch_norm_backward(x32, x32, running_mean=rm64e,
                                         running_var=rv64e, training=False)
    assert gi.dtype == gw.dtype == gb.dtype == np.float32
    # float32 running statistics of a float64 input stay float32, updated
    x64 = x32.astype(np.float64)
    rm32b, rv32b = np.zeros(3, np.float32), np.ones(3, np.float32)
    api.batch_norm(x64, rm32b, rv32b, training=True)
    assert rm32b.dtype == np.float32 and rv32b.dtype == np.float32
    assert_close(rm32b, rm_t, np.float32, "float32 running_mean")
    assert_close(rv32b, rv_t, np.float32, "float32 running_var")
    # ints -> float64, float16 -> float32, nested lists -> float64
    xi = rng.integers(-5, 6, size=(4, 3, 2, 2))
    y = api.batch_norm(xi, np.zeros(3), np.ones(3), training=False)
    assert y.dtype == np.float64
    assert_close(y, F.batch_norm(t64(torch, xi), torch.zeros(3, dtype=torch.float64),
                                 torch.ones(3, dtype=torch.float64)), np.float64, "int")
    xh = xi.astype(np.float16)
    y = api.batch_norm(xh, np.zeros(3, np.float16), np.ones(3, np.float16))
    assert_close(y, F.batch_norm(t64(torch, xh), torch.zeros(3, dtype=torch.float64),
                                 torch.ones(3, dtype=torch.float64)), np.float32, "float16")
    y = api.batch_norm(xi.tolist(), [0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert_close(y, F.batch_norm(t64(torch, xi), torch.zeros(3, dtype=torch.float64),
                                 torch.ones(3, dtype=torch.float64)), np.float64, "lists")
    gi, gw, gb = api.batch_norm_backward(x32, x32, w64)
    assert gi.dtype == gw.dtype == gb.dtype == np.float64
    gi, gw, gb = api.batch_norm_backward(xh, xh)
    assert gi.dtype == gw.dtype == gb.dtype == np.float32
    gi, gw, gb = api.batch_norm_backward(xi.tolist(), xi.tolist())
    assert gi.dtype == np.float64 and gi.shape == xi.shape
    assert gw.shape == gb.shape == (3,)

"""fastconv.shapes: the shape arithmetic agrees with what the ops produce,
FLOP and parameter counts with their definitions (and torch.nn.Conv2d),
receptive fields with the literature and with the gradient support of real
convolution stacks; the module's docstring examples run."""
import doctest

import numpy as np
import pytest
from hypothesis import given

import fastconv as fc
from fastconv import shapes
from _helpers import conv_configs, conv_kwargs, pool_configs, pool_out_len


@given(cfg=conv_configs(max_extra=4))
def test_conv2d_output_shape_is_what_conv2d_produces(cfg):
    x = np.zeros(cfg["x_shape"], np.float32)
    w = np.zeros(cfg["w_shape"], np.float32)
    predicted = shapes.conv2d_output_shape(cfg["x_shape"], cfg["w_shape"], **conv_kwargs(cfg))
    assert isinstance(predicted, tuple) and all(type(v) is int for v in predicted)
    assert predicted == cfg["y_shape"]
    assert predicted == fc.conv2d(x, w, **conv_kwargs(cfg)).shape
    assert predicted == fc.reference.conv2d(x, w, **conv_kwargs(cfg)).shape
    # and the FLOP count from the produced shape, 2 * N*K*P*Q * C/g * R*S
    N, K, P, Q = predicted
    C, g, R, S = cfg["C"], cfg["groups"], cfg["R"], cfg["S"]
    assert shapes.conv2d_flops(cfg["x_shape"], cfg["w_shape"], **conv_kwargs(cfg)) == \
        2 * N * K * P * Q * (C // g) * R * S


@given(cfg=pool_configs("max"))
def test_pool2d_output_shape_is_what_pooling_produces(torch, cfg):
    x = np.zeros(cfg["x_shape"], np.float32)
    kw = dict(kernel_size=cfg["kernel_size"], stride=cfg["stride"], padding=cfg["padding"],
              ceil_mode=cfg["ceil_mode"])
    predicted = shapes.pool2d_output_shape(cfg["x_shape"], **kw, dilation=cfg["dilation"])
    assert predicted == fc.max_pool2d(x, **kw, dilation=cfg["dilation"]).shape
    N, C, H, W = cfg["x_shape"]
    expected = (N, C) + tuple(pool_out_len(size, *a, ceil_mode=cfg["ceil_mode"]) for size, a in
                              zip((H, W), zip(cfg["kernel_pair"], cfg["stride_pair"],
                                              cfg["padding_pair"], cfg["dilation_pair"])))
    assert predicted == expected
    t = torch.nn.functional.max_pool2d(torch.zeros(cfg["x_shape"]), cfg["kernel_pair"],
                                       cfg["stride_pair"], cfg["padding_pair"],
                                       cfg["dilation_pair"], ceil_mode=cfg["ceil_mode"])
    assert predicted == tuple(t.shape)
    if cfg["dilation_pair"] == (1, 1):
        assert predicted == fc.avg_pool2d(x, **kw).shape


@pytest.mark.parametrize("x_shape,w_shape,kw,flops", [
    ((1, 3, 224, 224), (64, 3, 7, 7), dict(stride=2, padding=3), 2 * 64 * 112 * 112 * 3 * 49),
    ((8, 64, 56, 56), (64, 64, 3, 3), dict(padding=1), 2 * 8 * 64 * 56 * 56 * 64 * 9),
    ((2, 32, 10, 10), (32, 1, 3, 3), dict(padding=1, groups=32), 2 * 2 * 32 * 100 * 9),
    ((2, 8, 9, 9), (12, 2, 3, 3), dict(groups=4), 2 * 2 * 12 * 7 * 7 * 2 * 9),
    ((0, 3, 9, 9), (4, 3, 3, 3), dict(), 0),
])
def test_conv2d_flops_known(x_shape, w_shape, kw, flops):
    assert shapes.conv2d_flops(x_shape, w_shape, **kw) == flops


@pytest.mark.parametrize("cin,cout,k,groups,bias", [
    (3, 64, 7, 1, False), (64, 128, 3, 1, True), (32, 32, 3, 32, True),
    (32, 64, 3, 32, False), (12, 18, (1, 5), 6, True), (16, 8, 1, 2, True),
])
def test_conv2d_params_vs_torch(torch, cin, cout, k, groups, bias):
    layer = torch.nn.Conv2d(cin, cout, k, groups=groups, bias=bias)
    assert shapes.conv2d_params(cin, cout, k, groups=groups, bias=bias) == \
        sum(p.numel() for p in layer.parameters())


@pytest.mark.parametrize("layers,size,jump", [
    ([(3, 1)], 3, 1),
    ([(3, 1), (3, 1)], 5, 1),                           # two 3x3 convs
    ([(3, 1)] * 3, 7, 1),                               # three 3x3 = one 7x7
    ([(7, 2), (3, 2)], 11, 4),                          # ResNet stem + max pool
    ([(3, 1), (3, 1), (2, 2)] * 2, 16, 4),              # VGG blocks 1-2
    ([(3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (2, 2),   # VGG-16 to pool5
      (3, 1), (3, 1), (3, 1), (2, 2), (3, 1), (3, 1), (3, 1), (2, 2),
      (3, 1), (3, 1), (3, 1), (2, 2)], 212, 32),
    ([(3, 1, 2)], 5, 1),                                # dilation 2
    ([(3, 1, 1), (3, 1, 2), (3, 1, 4)], 15, 1),         # dilated context stack
    ([(1, 1)], 1, 1),
    ([], 1, 1),
])
def test_receptive_field_known(layers, size, jump):
    rf = shapes.receptive_field(layers)
    assert (rf.size, rf.jump) == (size, jump)
    assert rf == shapes.ReceptiveField(size, jump)


@pytest.mark.parametrize("layers", [
    [(3, 1), (3, 1)], [(7, 2), (3, 2)], [(3, 2), (2, 1, 3), (3, 1)], [(5, 1, 2), (3, 3)],
])
def test_receptive_field_is_gradient_support(layers):
    """The input pixels one output pixel depends on, found by back-propagating
    through a stack of all-ones convolutions (fastconv.conv2d_backward), span
    `size`; the next output pixel's span starts `jump` later."""
    rf = shapes.receptive_field(layers)
    H = rf.size + 3 * rf.jump + 2
    in_shapes, x_shape = [], (1, 1, H, 1)
    for k, s, *d in layers:
        d = d[0] if d else 1
        in_shapes.append(x_shape)
        x_shape = shapes.conv2d_output_shape(x_shape, (1, 1, k, 1), stride=(s, 1),
                                             dilation=(d, 1))
    spans = []
    for o in (0, 1):
        g = np.zeros(x_shape)
        g[0, 0, o, 0] = 1.0
        for (k, s, *d), shp in zip(reversed(layers), reversed(in_shapes)):
            d = d[0] if d else 1
            g, _, _ = fc.conv2d_backward(g, np.zeros(shp), np.ones((1, 1, k, 1)),
                                         stride=(s, 1), dilation=(d, 1))
        rows = np.flatnonzero(g[0, 0, :, 0])
        spans.append((rows.min(), rows.max()))
    assert spans[0][1] - spans[0][0] + 1 == rf.size
    assert spans[1][0] - spans[0][0] == rf.jump


def test_shapes_doctests():
    result = doctest.testmod(shapes, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_package_doctests():
    """The examples in the package docstring and the op docstrings run too."""
    import fastconv.conv
    for module in (fc, fastconv.conv):
        result = doctest.testmod(module, verbose=False)
        assert result.failed == 0, module.__name__

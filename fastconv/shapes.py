"""Shape arithmetic for convolutional networks: output shapes, parameter and
FLOP counts, receptive fields.

The formulas are the ones the LeNet / VGG / ResNet literature teaches, and
the ones fastconv's ops use (they share fastconv._params):

    out = floor((H + pad_top + pad_bottom - dilation * (k - 1) - 1) / stride) + 1

(pooling: the same with symmetric padding, ceil instead of floor in ceil_mode,
and a last window that must start inside the input or its left padding).

>>> conv2d_output_shape((1, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
(1, 64, 112, 112)
>>> pool2d_output_shape((1, 64, 112, 112), 3, stride=2, padding=1)
(1, 64, 56, 56)
>>> conv2d_params(64, 128, 3)
73856
>>> conv2d_flops((1, 64, 56, 56), (64, 64, 3, 3), padding=1)
231211008
>>> receptive_field([(3, 1), (3, 1), (2, 2)])     # two 3x3 convs, a 2x2 pool
ReceptiveField(size=6, jump=2)
"""
from collections import namedtuple

from . import _params

ReceptiveField = namedtuple("ReceptiveField", ["size", "jump"])


def _shape4(shape, name):
    return _params.shape_arg(shape, name)


def conv2d_output_shape(input_shape, weight_shape, stride=1, padding=0,
                        dilation=1, groups=1):
    """(N, K, P, Q) of conv2d on an input of `input_shape` (N, C, H, W) with a
    weight of `weight_shape` (K, C/groups, R, S); the arguments as conv2d's."""
    p = _params.conv_params(_shape4(input_shape, "input_shape"),
                            _shape4(weight_shape, "weight_shape"),
                            stride, padding, dilation, groups,
                            input_name="input_shape")
    return p.output_shape


def pool2d_output_shape(input_shape, kernel_size, stride=None, padding=0,
                        dilation=1, ceil_mode=False):
    """(N, C, P, Q) of max_pool2d / avg_pool2d on `input_shape` (N, C, H, W)."""
    p = _params.pool_params(_shape4(input_shape, "input_shape"), kernel_size,
                            stride, padding, dilation, ceil_mode,
                            input_name="input_shape")
    return p.output_shape


def conv2d_params(in_channels, out_channels, kernel_size, groups=1, bias=True):
    """Number of learned parameters of a Conv2d layer:
    out_channels * in_channels / groups * kh * kw (+ out_channels for the bias).

    >>> conv2d_params(3, 64, 7, bias=False)    # ResNet-50's stem
    9408
    """
    cin = _params.as_int(in_channels, "in_channels", 1)
    cout = _params.as_int(out_channels, "out_channels", 1)
    kh, kw = _params.as_pair(kernel_size, "kernel_size", 1)
    groups = _params.as_int(groups, "groups", 1)
    if cin % groups or cout % groups:
        raise ValueError(f"groups: expected a divisor of in_channels={cin} and "
                         f"out_channels={cout}, got {groups}")
    return cout * (cin // groups) * kh * kw + (cout if _params.as_bool(bias, "bias") else 0)


def conv2d_flops(input_shape, weight_shape, stride=1, padding=0, dilation=1,
                 groups=1):
    """Floating-point operations of conv2d, 2 per multiply-add:
    2 * N * K * P * Q * (C / groups) * R * S (the bias is not counted)."""
    p = _params.conv_params(_shape4(input_shape, "input_shape"),
                            _shape4(weight_shape, "weight_shape"),
                            stride, padding, dilation, groups,
                            input_name="input_shape")
    return p.flops


def receptive_field(layers):
    """Receptive field of a stack of layers, each (kernel, stride) or
    (kernel, stride, dilation), applied first to last.

    Returns ReceptiveField(size, jump): how many input pixels (along one axis)
    one output pixel sees, and how many input pixels apart neighbouring output
    pixels are.  Per layer: size += dilation * (kernel - 1) * jump; jump *= stride.

    >>> receptive_field([(7, 2), (3, 2)])      # ResNet stem conv + max pool
    ReceptiveField(size=11, jump=4)
    >>> receptive_field([(3, 1, 2)])           # a 3x3 conv with dilation 2
    ReceptiveField(size=5, jump=1)
    """
    size, jump = 1, 1
    for i, layer in enumerate(layers):
        if not isinstance(layer, (tuple, list)) or len(layer) not in (2, 3):
            raise ValueError(f"layers[{i}]: expected (kernel, stride) or "
                             f"(kernel, stride, dilation), got {layer!r}")
        k = _params.as_int(layer[0], f"layers[{i}] kernel", 1)
        s = _params.as_int(layer[1], f"layers[{i}] stride", 1)
        d = _params.as_int(layer[2], f"layers[{i}] dilation", 1) if len(layer) == 3 else 1
        size += d * (k - 1) * jump
        jump *= s
    return ReceptiveField(size, jump)

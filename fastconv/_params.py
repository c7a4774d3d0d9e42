"""Argument normalisation and validation: the one place where arguments are
checked and every error message is written.

Public ops call these helpers once, at the boundary; what comes out is plain
data (contiguous float arrays, frozen parameter records) that the kernels and
the reference trust without checking again.  Messages follow one pattern:
the argument's name, what was expected, and what was given.
"""
from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass

import numpy as np

ALGORITHMS = ("auto", "direct", "im2col", "reference")
ACTIVATIONS = (None, "relu")

INT64_MAX = 2**63 - 1
# The kernels index in int64 and add a position to an offset: sizes on the
# padded grid (padded input, dilated kernel) stay below 2**62 so that no sum
# of two of them overflows.
GRID_MAX = 2**62 - 1
# The most bytes one array may have (NumPy's limit: the size fits in intp).
ARRAY_BYTES_MAX = np.iinfo(np.intp).max


# --------------------------------------------------------------------------
# scalars and small tuples

def _describe(value):
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return f"{value!r} ({type(value).__name__})"


def as_int(value, name, minimum=None, maximum=None):
    """A Python int from an int-like value (bool excluded), in
    [minimum, maximum]."""
    if type(value) is not int:      # the common case skips the ABC checks
        if isinstance(value, (bool, np.bool_)) or not isinstance(
                value, (numbers.Integral, np.integer)):
            raise TypeError(f"{name}: expected an int, got {_describe(value)}")
        value = operator.index(value)
    if minimum is not None and value < minimum:
        bound = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name}: expected {bound}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name}: expected an int <= {maximum}, got {value}")
    return value


def as_pair(value, name, minimum=None, maximum=None):
    """(a, b) from an int or a sequence of two ints, each in [minimum, maximum]."""
    if type(value) is int or (isinstance(value, (numbers.Integral, np.integer))
                              and not isinstance(value, (bool, np.bool_))):
        v = as_int(value, name, minimum, maximum)
        return (v, v)
    if isinstance(value, (tuple, list, np.ndarray)):
        seq = list(value)
        if len(seq) != 2:
            raise ValueError(f"{name}: expected an int or a pair of ints, got "
                             f"a sequence of length {len(seq)}: {value!r}")
        return tuple(as_int(v, f"{name}[{i}]", minimum, maximum)
                     for i, v in enumerate(seq))
    raise TypeError(f"{name}: expected an int or a pair of ints, got "
                    f"{_describe(value)}")


def as_positive_float(value, name):
    """A finite float > 0 (eps and the like)."""
    if type(value) is float and 0 < value < math.inf:   # the common case, quickly
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a positive float, got {_describe(value)}")
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected a positive finite float, got {value!r}")
    return v


def as_fraction(value, name):
    """A float in [0, 1] (momentum)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a float in [0, 1], got {_describe(value)}")
    v = float(value)
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name}: expected a float in [0, 1], got {value!r}")
    return v


def as_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {_describe(value)}")
    return bool(value)


def as_choice(value, name, choices):
    """`value` if it is one of `choices` (strings, or None where allowed)."""
    if not (None in choices if value is None else isinstance(value, str) and value in choices):
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, choices))}, "
                         f"got {value!r}")
    return value


def algorithm_arg(value):
    return as_choice(value, "algorithm", ALGORITHMS)


def activation_arg(value):
    return as_choice(value, "activation", ACTIVATIONS)


def shape_arg(value, name, ndim=4):
    """A tuple of `ndim` non-negative ints (input_shape of the backward ops)."""
    if not isinstance(value, (tuple, list, np.ndarray)):
        raise TypeError(f"{name}: expected a tuple of {ndim} ints, got {_describe(value)}")
    seq = list(value)
    if len(seq) != ndim:
        raise ValueError(f"{name}: expected a tuple of {ndim} ints (N, C, H, W), "
                         f"got {tuple(seq)!r}")
    return tuple(as_int(v, f"{name}[{i}]", 0, INT64_MAX) for i, v in enumerate(seq))


def check_allocatable(shape, name, what):
    """ValueError naming `name` when float64 elements of `shape` would
    exceed NumPy's largest array (instead of NumPy's anonymous error)."""
    if math.prod(shape) > ARRAY_BYTES_MAX // 8:
        raise ValueError(f"{name}: {what} would have shape {tuple(shape)}, "
                         f"too large to allocate")


# --------------------------------------------------------------------------
# arrays and dtypes

_NATIVE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def float_dtype_of(dtype, name):
    """The float type an array of `dtype` computes in (NumPy's promotion)."""
    dtype = np.dtype(dtype)
    if dtype in (np.float32, np.float64):
        return dtype
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind == "f":
        raise TypeError(f"{name}: expected a float32 or float64 array (or one "
                        f"that promotes to them), got dtype {dtype}; convert "
                        f"it with .astype(np.float64)")
    raise TypeError(f"{name}: expected a real numeric array, got dtype {dtype}")


def _ndarray(value, name, expected, of):
    """`value` as an ndarray (not copied); TypeError naming `name` for None
    (`expected`) or for what NumPy cannot convert (an array-like of `of`)."""
    if value is None:
        raise TypeError(f"{name}: expected {expected}, got None")
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"{name}: expected an array-like of {of}, got "
                        f"{type(value).__name__} that NumPy cannot convert "
                        f"({exc})") from None


def as_array(value, name, ndim=None):
    """An ndarray view of `value` (not copied), checked for kind and ndim."""
    arr = _ndarray(value, name, "an array", "numbers")
    float_dtype_of(arr.dtype, name)
    if ndim is not None and arr.ndim not in (ndim if isinstance(ndim, tuple) else (ndim,)):
        want = " or ".join(f"{d}-D" for d in (ndim if isinstance(ndim, tuple) else (ndim,)))
        raise ValueError(f"{name}: expected a {want} array, got a {arr.ndim}-D "
                         f"array of shape {arr.shape}")
    return arr


def compute_dtype(*arrays):
    """The float type the arrays compute in (None entries ignored): NumPy's
    promotion of their dtypes (np.result_type), then made a native float
    type: integers and bools alone -> float64, float16 -> float32.  So
    float32 with float64 -> float64, int8 or int16 with float32 -> float32
    (NumPy's rule: exact), int32 or int64 with float32 -> float64.  Each
    array's dtype has been checked (as_array) before."""
    dtypes = [a.dtype for a in arrays if a is not None]
    if dtypes and dtypes[0] in _NATIVE_FLOATS and all(d == dtypes[0] for d in dtypes):
        return dtypes[0]   # (np.result_type costs a microsecond)
    return float_dtype_of(np.result_type(*dtypes), "array")


def contiguous(arr, dtype):
    """`arr` as a C-contiguous, aligned array of `dtype`, copied only when
    needed.  (An unaligned view -- a float32 array at an odd byte offset of
    a buffer -- is C-contiguous too, but C may not load from it.)"""
    if arr is None:
        return None
    out = np.ascontiguousarray(arr, dtype=dtype)   # (np.require: 8x the cost)
    return out if out.flags.aligned else out.copy()


def check_shape(arr, expected, name, what=""):
    if tuple(arr.shape) != tuple(expected):
        raise ValueError(f"{name}: expected shape {tuple(expected)}{what}, got "
                         f"{tuple(arr.shape)}")


def check_out(out, shape, dtype, inputs):
    """`out=`: an ndarray of the result's shape and dtype, C-contiguous,
    writable, sharing no memory with any input."""
    if out is None:
        return None
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out: expected a numpy.ndarray, got {_describe(out)}")
    if out.dtype != dtype:
        raise TypeError(f"out: expected dtype {dtype} (the result's), got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out: expected shape {tuple(shape)}, got {out.shape}")
    if not out.flags.c_contiguous:
        raise ValueError("out: expected a C-contiguous array, got a "
                         f"non-contiguous one with strides {out.strides}")
    if not out.flags.writeable:
        raise ValueError("out: expected a writeable array, got a read-only one")
    if not out.flags.aligned:
        raise ValueError(f"out: expected an array aligned to its {out.itemsize}-byte "
                         f"elements, got one at address {out.ctypes.data:#x}")
    for arr_name, arr in inputs.items():
        if arr is not None and isinstance(arr, np.ndarray) and np.shares_memory(out, arr):
            raise ValueError(f"out: expected an array sharing no memory with any "
                             f"input, got one that overlaps the input {arr_name}")
    return out


# --------------------------------------------------------------------------
# convolution

@dataclass(frozen=True)
class ConvParams:
    """A validated 2-D convolution: input N x C x H x W, weight
    K x C/groups x R x S, output N x K x P x Q.

    stride and dilation are those the kernels use, normalised where the
    caller's value cannot change the result (see kernel_geometry): a stride
    past the padded input is recorded as the padded input's size, and the
    dilation of a one-tap kernel axis as 1."""
    N: int
    C: int
    H: int
    W: int
    K: int
    R: int
    S: int
    stride: tuple          # (sh, sw)
    padding: tuple         # ((top, bottom), (left, right))
    dilation: tuple        # (dh, dw)
    groups: int
    P: int
    Q: int

    @property
    def input_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def weight_shape(self):
        return (self.K, self.C // self.groups, self.R, self.S)

    @property
    def output_shape(self):
        return (self.N, self.K, self.P, self.Q)

    @property
    def flops(self):
        """2 per multiply-add."""
        return 2 * self.N * self.K * self.P * self.Q * (self.C // self.groups) * self.R * self.S


def kernel_geometry(padded, kernel, stride, dilation):
    """(kernel, stride, dilation) along one axis as the kernels take them,
    once the output length has been worked out from the caller's values.

    Changes only what cannot change the result, so that the kernels' index
    arithmetic stays within the padded size (the bounds checks leave the
    padded size and the dilated kernel at most GRID_MAX, but a stride may be
    up to INT64_MAX; the kernels take int64 and add strides to offsets):

    - a stride past the padded input leaves one output whatever it is: it
      becomes the padded size (which leaves one output too);
    - a window's taps past the end of the padded input read nothing (in
      ceil_mode a pooling window can reach past it): the kernel is cut to
      the taps that the first window, which starts where the padded input
      does, has inside it (later windows have no more);
    - a kernel of one tap has no use for its dilation: it becomes 1."""
    stride = min(stride, padded)
    kernel = min(kernel, (padded - 1) // dilation + 1)
    if kernel == 1:
        dilation = 1
    return kernel, stride, dilation


def conv_padding(padding, kernel, dilation, stride):
    """((top, bottom), (left, right)) from an int, a pair, a pair of pairs,
    'valid' or 'same' (the extra odd pixel goes bottom/right, as in PyTorch)."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0), (0, 0))
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding: 'same' is not supported for strided "
                                 f"convolutions, got stride={stride}")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"padding: expected an int, a pair, ((top, bottom), "
                         f"(left, right)), 'same' or 'valid', got {padding!r}")
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (tuple, list, np.ndarray)) for p in padding):
        (t, b) = as_pair(padding[0], "padding[0]", 0, GRID_MAX)
        (l, r) = as_pair(padding[1], "padding[1]", 0, GRID_MAX)
        return ((t, b), (l, r))
    ph, pw = as_pair(padding, "padding", 0, GRID_MAX)
    return ((ph, ph), (pw, pw))


def _cache_key(value):
    """`value` as a dictionary key that keeps apart whatever validation
    keeps apart (True from 1, 1.0 from 1: the type is part of the key), or
    None unless it is an int, a str or nested tuples of them."""
    kind = type(value)
    if kind is int or kind is str:
        return (kind, value)
    if kind is tuple:
        keys = tuple(_cache_key(v) for v in value)
        return None if any(k is None for k in keys) else keys
    return None


# Validated geometries by their arguments: the checks cost a few
# microseconds, a tenth of a small layer's call, and a network calls each
# layer with the same arguments again and again.
_CONV_PARAMS_CACHE = {}
_CONV_PARAMS_CACHE_MAX = 1024


def conv_params(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1,
                input_name="x"):
    """Validate a convolution's geometry; shapes are already known 4-D.
    `input_name` is what error messages call the input (x, input_shape).
    Arguments of plain ints, strings and tuples are remembered once valid."""
    # The shapes are only ever read through int(), so they key as they are.
    args = tuple(v if type(v) is int else _cache_key(v)
                 for v in (stride, padding, dilation, groups))
    key = (tuple(x_shape), tuple(w_shape), args, input_name) if None not in args else None
    p = _CONV_PARAMS_CACHE.get(key) if key is not None else None
    if p is None:
        p = _conv_params(x_shape, w_shape, stride, padding, dilation, groups, input_name)
        if key is not None:
            if len(_CONV_PARAMS_CACHE) >= _CONV_PARAMS_CACHE_MAX:
                _CONV_PARAMS_CACHE.clear()
            _CONV_PARAMS_CACHE[key] = p
    return p


def _conv_params(x_shape, w_shape, stride, padding, dilation, groups, input_name):
    N, C, H, W = (int(v) for v in x_shape)
    K, Cg, R, S = (int(v) for v in w_shape)
    stride = as_pair(stride, "stride", 1, INT64_MAX)
    dilation = as_pair(dilation, "dilation", 1, GRID_MAX)
    groups = as_int(groups, "groups", 1, INT64_MAX)
    if K < 1 or Cg < 1 or R < 1 or S < 1:
        raise ValueError(f"weight: expected a non-empty weight of shape "
                         f"(out_channels, in_channels/groups, kH, kW), got "
                         f"{tuple(w_shape)}")
    if C != Cg * groups:
        raise ValueError(
            f"{input_name}: given groups={groups}, weight of size {list(w_shape)}, "
            f"expected input{list(x_shape)} to have {Cg * groups} channels, but "
            f"got {C} channels instead")
    if K % groups != 0:
        raise ValueError(f"weight: expected out_channels (weight.shape[0] = {K}) "
                         f"to be divisible by groups={groups}")
    if H < 1 or W < 1:
        raise ValueError(f"{input_name}: expected non-empty spatial dimensions, got input "
                         f"of shape {tuple(x_shape)}")
    pad = conv_padding(padding, (R, S), dilation, stride)
    eff = (dilation[0] * (R - 1) + 1, dilation[1] * (S - 1) + 1)
    padded = (H + pad[0][0] + pad[0][1], W + pad[1][0] + pad[1][1])
    if max(eff) > GRID_MAX:
        raise ValueError(f"dilation: the dilated kernel ({eff[0]} x {eff[1]}) "
                         f"is too large for 64-bit indexing (at most {GRID_MAX}), "
                         f"given dilation={dilation} and a {R} x {S} kernel")
    if max(padded) > GRID_MAX:
        raise ValueError(f"padding: the padded input ({padded[0]} x {padded[1]}) "
                         f"is too large for 64-bit indexing (at most {GRID_MAX}), "
                         f"given padding={pad}")
    if padded[0] < eff[0] or padded[1] < eff[1]:
        raise ValueError(
            f"{input_name}: calculated padded input size per channel ({padded[0]} x "
            f"{padded[1]}) is smaller than the dilated kernel ({eff[0]} x "
            f"{eff[1]}); the kernel can't be larger than the padded input")
    P = (padded[0] - eff[0]) // stride[0] + 1
    Q = (padded[1] - eff[1]) // stride[1] + 1
    # The weight's taps all lie inside the padded input (checked above), so
    # only the stride and a one-tap axis's dilation can need normalising.
    (_, sh, dh), (_, sw, dw) = (kernel_geometry(e, k, s, d) for e, k, s, d in
                                zip(padded, (R, S), stride, dilation))
    return ConvParams(N, C, H, W, K, R, S, (sh, sw), pad, (dh, dw), groups, P, Q)


def conv_inputs(x, weight, bias, stride, padding, dilation, groups):
    """Validate conv2d's arrays and geometry.

    Returns (x, weight, bias, params, dtype): arrays C-contiguous in the
    compute dtype (copies only where the caller's were not)."""
    x = as_array(x, "x", 4)
    weight = as_array(weight, "weight", 4)
    if bias is not None:
        bias = as_array(bias, "bias", 1)
    p = conv_params(x.shape, weight.shape, stride, padding, dilation, groups)
    check_allocatable(p.output_shape, "x", "the output")
    if bias is not None:
        check_shape(bias, (p.K,), "bias", " (one value per output channel)")
    dtype = compute_dtype(x, weight, bias)
    return contiguous(x, dtype), contiguous(weight, dtype), contiguous(bias, dtype), p, dtype


def conv_bn_inputs(x, weight, bias, running_mean, running_var, bn_weight, bn_bias,
                   eps, stride, padding, dilation, groups):
    """Validate conv2d_bn's arrays and geometry, each array once (a small
    layer's call is short enough for these checks to show).

    Returns (x, weight, (bias, running_mean, running_var, bn_weight,
    bn_bias), eps, params, dtype): x and weight C-contiguous in the compute
    dtype, the per-channel vectors as given (checked only)."""
    x = as_array(x, "x", 4)
    weight, *vectors, eps = fuse_inputs(weight, bias, running_mean, running_var,
                                        bn_weight, bn_bias, eps)
    p = conv_params(x.shape, weight.shape, stride, padding, dilation, groups)
    check_allocatable(p.output_shape, "x", "the output")
    dtype = compute_dtype(x, weight)
    return contiguous(x, dtype), contiguous(weight, dtype), tuple(vectors), eps, p, dtype


# --------------------------------------------------------------------------
# pooling

@dataclass(frozen=True)
class PoolParams:
    """A validated 2-D pooling window over N x C x H x W, output N x C x P x Q.

    kernel, stride and dilation are those the kernels use, normalised where
    the caller's values cannot change the result (see kernel_geometry)."""
    N: int
    C: int
    H: int
    W: int
    kernel: tuple      # (kh, kw)
    stride: tuple      # (sh, sw)
    padding: tuple     # (ph, pw), symmetric
    dilation: tuple    # (dh, dw); (1, 1) for average pooling
    ceil_mode: bool
    P: int
    Q: int

    @property
    def input_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def output_shape(self):
        return (self.N, self.C, self.P, self.Q)


def pool_output_size(size, k, s, p, d, ceil_mode):
    """PyTorch's pooling output length: floor or ceil, and in ceil mode the
    last window must start inside the input or its left padding."""
    span = size + 2 * p - d * (k - 1) - 1
    out = (span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_params(x_shape, kernel_size, stride=None, padding=0, dilation=1,
                ceil_mode=False, input_name="x"):
    """Validate a pooling window over an N x C x H x W input; `input_name` is
    what error messages call the input (x, input_shape)."""
    N, C, H, W = (int(v) for v in x_shape)
    kernel = as_pair(kernel_size, "kernel_size", 1, GRID_MAX)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    else:
        stride = as_pair(stride, "stride", 1, INT64_MAX)
    padding = as_pair(padding, "padding", 0, GRID_MAX)
    dilation = as_pair(dilation, "dilation", 1, GRID_MAX)
    ceil_mode = as_bool(ceil_mode, "ceil_mode")
    if H < 1 or W < 1:
        raise ValueError(f"{input_name}: expected non-empty spatial dimensions, got input "
                         f"of shape {tuple(x_shape)}")
    for k, p in zip(kernel, padding):
        if 2 * p > k:
            raise ValueError(f"padding: expected at most half the kernel size "
                             f"{kernel}, got padding={padding}")
    eff = tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))
    if max(eff) > GRID_MAX:
        raise ValueError(f"dilation: the dilated window ({eff[0]} x {eff[1]}) is "
                         f"too large for 64-bit indexing (at most {GRID_MAX}), "
                         f"given kernel_size={kernel} and dilation={dilation}")
    padded = (H + 2 * padding[0], W + 2 * padding[1])
    if max(padded) > GRID_MAX:
        raise ValueError(f"{input_name}: the padded input ({padded[0]} x "
                         f"{padded[1]}) is too large for 64-bit indexing "
                         f"(at most {GRID_MAX})")
    P = pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    Q = pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if P < 1 or Q < 1:
        raise ValueError(f"{input_name}: given input size {H} x {W}, the calculated output "
                         f"size is {P} x {Q}, which is too small (kernel {kernel}, "
                         f"stride {stride}, padding {padding}, dilation {dilation})")
    # A dilated window can fall wholly into the padding; PyTorch then returns
    # -inf with an index outside the plane.  We refuse such geometry instead.
    # Every window starts before the input's end (padding <= half the kernel,
    # and ceil_mode's rule), so only those starting in the left padding,
    # -p <= start = o * s - p < 0, can miss the input.  Their first tap at or
    # after 0 is start mod d, tap number (start mod d - start) / d <= p / d,
    # below k (p <= k / 2): the window misses iff start mod d >= size, never
    # when d <= size.  (And when d > size there are few such windows: an
    # output needs d * (k - 1) + 1 <= size + 2p + s - 1 with 2p <= k, so
    # p / s is at most about size / (2 s (d - 1)) + 1.)
    for axis, size, k, s, p, d, out in (("height", H, kernel[0], stride[0], padding[0], dilation[0], P),
                                        ("width", W, kernel[1], stride[1], padding[1], dilation[1], Q)):
        if d <= size:
            continue
        for o in range(min(out, -(-p // s))):
            if (o * s - p) % d >= size:
                raise ValueError(f"{input_name}: the pooling window {o} along the {axis} "
                                 f"(kernel {k}, stride {s}, padding {p}, dilation "
                                 f"{d}) lies entirely in the padding of an input "
                                 f"of size {size}")
    (kh, sh, dh), (kw, sw, dw) = (kernel_geometry(e, k, s, d) for e, k, s, d in
                                  zip(padded, kernel, stride, dilation))
    return PoolParams(N, C, H, W, (kh, kw), (sh, sw), padding, (dh, dw), ceil_mode, P, Q)


def divisor_arg(value):
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Integral, np.integer)):
        raise TypeError(f"divisor_override: expected a non-zero int or None, got "
                        f"{_describe(value)}")
    v = operator.index(value)
    if v == 0:
        raise ValueError("divisor_override: expected a non-zero int or None, got 0")
    if not -2**63 <= v < 2**63:     # the kernels take an int64, as PyTorch
        raise ValueError(f"divisor_override: expected an int that fits in 64 "
                         f"bits, got {v}")
    return v


def pool_input(x, name="x"):
    """A 4-D pooling input, C-contiguous in its compute dtype."""
    x = as_array(x, name, 4)
    dtype = compute_dtype(x)
    return contiguous(x, dtype), dtype


def max_pool_indices(indices, grad_shape, plane_size, check_range=True):
    """Max-pool indices from the caller: integer, grad_output's shape, each
    value inside its (H*W) plane.  Checked before any write.

    check_range=False leaves the range to the caller: the C kernel checks
    each plane as it goes, which saves a whole pass over the indices, and on
    failure calls max_pool_indices_range for the message."""
    indices = as_array_int(indices, "indices")
    check_shape(indices, grad_shape, "indices", " (grad_output's shape)")
    if indices.dtype == np.uint64:
        # values past int64's range would wrap to negatives: refused by the
        # kernel too, but the message must show the caller's values
        max_pool_indices_range(indices, plane_size)
    as_int64 = contiguous(indices, np.int64)
    if check_range:
        max_pool_indices_range(as_int64, plane_size)
    return as_int64


def max_pool_indices_range(indices, plane_size):
    """ValueError unless every index lies in [0, plane_size)."""
    if indices.size == 0:
        return
    lo, hi = int(indices.min()), int(indices.max())
    if lo < 0 or hi >= plane_size:
        raise ValueError(f"indices: expected flat indices into each input "
                         f"plane, in [0, {plane_size}), got values in "
                         f"[{lo}, {hi}]")


def as_array_int(value, name):
    arr = _ndarray(value, name, "an integer array", "integers")
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name}: expected an integer array (int64 indices), "
                        f"got dtype {arr.dtype}")
    return arr


# --------------------------------------------------------------------------
# batch norm

def channel_vector(value, name, C, required=True):
    """A length-C vector (running statistics, weight, bias) or None."""
    if type(value) is np.ndarray and value.shape == (C,) and value.dtype in _NATIVE_FLOATS:
        return value   # the common case, without the general checks
    if value is None:
        if required:
            raise TypeError(f"{name}: expected an array of shape ({C},), got None")
        return None
    arr = as_array(value, name, 1)
    check_shape(arr, (C,), name, " (one value per channel)")
    return arr


def bn_input(x, name="x"):
    """Batch-norm input: N x C x ... (2-D or more), C taken from axis 1."""
    x = as_array(x, name)
    if x.ndim < 2:
        raise ValueError(f"{name}: expected an array of at least 2 dimensions "
                         f"(N, C, ...), got a {x.ndim}-D array of shape {x.shape}")
    return x


def check_batch_for_training(x):
    """Batch statistics need more than one value per channel, as in
    PyTorch; an empty batch (no values at all) is allowed and gives an
    empty result."""
    per_channel = math.prod(x.shape[:1] + x.shape[2:])
    if per_channel == 1:
        raise ValueError(f"x: expected more than 1 value per channel when "
                         f"training, got input of shape {x.shape}")


def running_stat_for_update(value, name, C):
    """Running statistics updated in place: a writeable float ndarray."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name}: expected a numpy.ndarray to update in place in "
                        f"training mode, got {_describe(value)}")
    if value.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: expected a float32 or float64 array to update "
                        f"in place, got dtype {value.dtype}")
    if not value.flags.writeable:
        raise ValueError(f"{name}: expected a writeable array to update in place "
                         f"in training mode, got a read-only one")
    return value


# --------------------------------------------------------------------------
# whole-op validation: each public op (fast or reference) calls one of these

def conv_backward_inputs(grad_output, x, weight, stride, padding, dilation, groups):
    """(grad_output, x, weight, params, dtype) for conv2d_backward."""
    x = as_array(x, "x", 4)
    weight = as_array(weight, "weight", 4)
    grad_output = as_array(grad_output, "grad_output", 4)
    p = conv_params(x.shape, weight.shape, stride, padding, dilation, groups)
    check_shape(grad_output, p.output_shape, "grad_output",
                " (the forward output's shape)")
    dtype = compute_dtype(x, weight, grad_output)
    return (contiguous(grad_output, dtype), contiguous(x, dtype),
            contiguous(weight, dtype), p, dtype)


def max_pool_inputs(x, kernel_size, stride, padding, dilation, ceil_mode,
                    return_indices):
    """(x, params, dtype) for max_pool2d."""
    as_bool(return_indices, "return_indices")
    x, dtype = pool_input(x)
    p = pool_params(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    check_allocatable(p.output_shape, "x", "the output")
    return x, p, dtype


def max_pool_backward_inputs(grad_output, indices, input_shape, check_range=True):
    """(grad_output, indices, input_shape, dtype) for max_pool2d_backward
    (check_range: see max_pool_indices)."""
    input_shape = shape_arg(input_shape, "input_shape")
    check_allocatable(input_shape, "input_shape", "the input gradient")
    grad_output, dtype = pool_input(grad_output, "grad_output")
    if grad_output.shape[:2] != input_shape[:2]:
        raise ValueError(f"grad_output: expected batch and channels "
                         f"{input_shape[:2]} (input_shape's), got "
                         f"{grad_output.shape[:2]}")
    indices = max_pool_indices(indices, grad_output.shape,
                               input_shape[2] * input_shape[3], check_range)
    return grad_output, indices, input_shape, dtype


def avg_pool_inputs(x, kernel_size, stride, padding, ceil_mode,
                    count_include_pad, divisor_override):
    """(x, params, count_include_pad, divisor_override, dtype) for avg_pool2d."""
    x, dtype = pool_input(x)
    p = pool_params(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    check_allocatable(p.output_shape, "x", "the output")
    return (x, p, as_bool(count_include_pad, "count_include_pad"),
            divisor_arg(divisor_override), dtype)


def avg_pool_backward_inputs(grad_output, input_shape, kernel_size, stride,
                             padding, ceil_mode, count_include_pad,
                             divisor_override):
    """(grad_output, params, count_include_pad, divisor_override, dtype)."""
    input_shape = shape_arg(input_shape, "input_shape")
    check_allocatable(input_shape, "input_shape", "the input gradient")
    grad_output, dtype = pool_input(grad_output, "grad_output")
    p = pool_params(input_shape, kernel_size, stride, padding, 1, ceil_mode,
                    input_name="input_shape")
    check_shape(grad_output, p.output_shape, "grad_output",
                " (the forward output's shape)")
    return (grad_output, p, as_bool(count_include_pad, "count_include_pad"),
            divisor_arg(divisor_override), dtype)


def bn_inputs(x, running_mean, running_var, weight, bias, training, momentum, eps):
    """Validated batch_norm arguments.

    Returns (x, running_mean, running_var, weight, bias, training, momentum,
    eps, dtype).  x, weight and bias come back C-contiguous in the compute
    dtype.  In training mode the running statistics come back as the
    caller's own arrays (or None), to be updated in place; in eval mode as
    contiguous arrays of the compute dtype."""
    x = bn_input(x)
    C = x.shape[1]
    training = as_bool(training, "training")
    momentum = as_fraction(momentum, "momentum")
    eps = as_positive_float(eps, "eps")
    if training:   # updated in place: the caller's own arrays, before any conversion
        for name, value in (("running_mean", running_mean), ("running_var", running_var)):
            if value is not None:
                running_stat_for_update(value, name, C)
    rm = channel_vector(running_mean, "running_mean", C, required=not training)
    rv = channel_vector(running_var, "running_var", C, required=not training)
    w = channel_vector(weight, "weight", C, required=False)
    b = channel_vector(bias, "bias", C, required=False)
    # The running statistics are state kept in their own dtype (often
    # float64 from np.zeros); they do not promote the result.
    dtype = compute_dtype(x, w, b)
    if training:
        check_batch_for_training(x)
    else:
        rm, rv = contiguous(rm, dtype), contiguous(rv, dtype)
    return (contiguous(x, dtype), rm, rv, contiguous(w, dtype),
            contiguous(b, dtype), training, momentum, eps, dtype)


def bn_backward_inputs(grad_output, x, weight, running_mean, running_var,
                       training, eps):
    """(grad_output, x, weight, running_mean, running_var, training, eps, dtype);
    the running statistics are required (and used) only in eval mode."""
    x = bn_input(x)
    C = x.shape[1]
    grad_output = as_array(grad_output, "grad_output")
    check_shape(grad_output, x.shape, "grad_output", " (x's shape)")
    training = as_bool(training, "training")
    eps = as_positive_float(eps, "eps")
    w = channel_vector(weight, "weight", C, required=False)
    if training:
        # differentiated through the batch statistics: running statistics
        # given anyway are checked like any argument, then not used
        channel_vector(running_mean, "running_mean", C, required=False)
        channel_vector(running_var, "running_var", C, required=False)
        rm = rv = None
        check_batch_for_training(x)
    else:
        rm = channel_vector(running_mean, "running_mean", C)
        rv = channel_vector(running_var, "running_var", C)
    dtype = compute_dtype(grad_output, x, w)
    return (contiguous(grad_output, dtype), contiguous(x, dtype),
            contiguous(w, dtype), contiguous(rm, dtype), contiguous(rv, dtype),
            training, eps, dtype)


def fuse_inputs(weight, bias, running_mean, running_var, bn_weight, bn_bias, eps):
    """(weight, bias, running_mean, running_var, bn_weight, bn_bias, eps) for
    fuse_conv_bn; the vectors are per output channel, bias and the BN affine
    optional.  Arrays come back as given (only checked)."""
    weight = as_array(weight, "weight", 4)
    K = weight.shape[0]
    bias = channel_vector(bias, "bias", K, required=False)
    rm = channel_vector(running_mean, "running_mean", K)
    rv = channel_vector(running_var, "running_var", K)
    g = channel_vector(bn_weight, "bn_weight", K, required=False)
    b = channel_vector(bn_bias, "bn_bias", K, required=False)
    return weight, bias, rm, rv, g, b, as_positive_float(eps, "eps")

"""Naive NumPy reference of every fastconv op, forward and backward.

This module is the oracle of the test suite and the baseline of the
benchmarks.  Each function is written to be read against the textbook (and
PyTorch's) definition, not to be fast: Python loops run only over kernel
taps, groups and pooling windows, and NumPy slices do the rest.

Conventions (those of torch.nn.functional; DESIGN.md section 3):

- Arrays are NCHW.  A convolution weight is K x C/groups x R x S and the op
  is a cross-correlation (the kernel is not flipped); output channel k reads
  the input channels of group k // (K / groups).  Padding is zeros and may be
  asymmetric: ((top, bottom), (left, right)).
- Output size: floor((H + pad_total - dilation*(k-1) - 1) / stride) + 1
  (ceil in ceil_mode); the records of fastconv._params carry it as P, Q.
- Max pooling: padding never wins; indices are int64 flat indices ih*W + iw
  into each (n, c) input plane; ties go to the first element in row-major
  order; a NaN wins (the last NaN in that order).
- Average pooling: PyTorch's divisor rule (see avg_pool2d_core).
- Batch norm: the channel axis is 1; statistics reduce over every other
  axis.  Training normalises with the biased batch variance and updates the
  running statistics in place with the unbiased one.  The statistics are
  computed in float64.
- Gradients come back shaped like the forward inputs; grad_bias sums
  grad_output over every axis but the channel axis.

Two layers:

- ``*_core`` functions take what fastconv._params returns: C-contiguous
  float32 or float64 arrays, all in one dtype, and the frozen ConvParams /
  PoolParams records.  They trust their arguments and compute and return in
  that dtype (batch norm computes in float64 and returns in that dtype).
- public functions have the signatures of the fast API (without
  ``algorithm=`` and ``out=``): one validation call, one core call.
"""
import numpy as np

from . import _params

__all__ = [
    "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "batch_norm", "batch_norm_backward",
    "fuse_conv_bn", "conv2d_bn",
    "conv2d_core", "conv2d_backward_core", "max_pool2d_core",
    "max_pool2d_backward_core", "avg_pool2d_core", "avg_pool2d_backward_core",
    "batch_norm_core", "batch_norm_backward_core",
]


# ==========================================================================
# core: validated arrays and parameter records in, arrays out

# --------------------------------------------------------------------------
# convolution

def _zero_padded(x, padding):
    """x (N x C x H x W) inside a border of zeros ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = padding
    N, C, H, W = x.shape
    xp = np.zeros((N, C, top + H + bottom, left + W + right), dtype=x.dtype)
    xp[:, :, top:top + H, left:left + W] = x
    return xp


def _tap_slices(p, r, s):
    """The rows and columns of the padded input that kernel tap (r, s) reads
    for all output pixels: row oh*sh + r*dh for oh < P, column ow*sw + s*dw
    for ow < Q."""
    (sh, sw), (dh, dw) = p.stride, p.dilation
    rows = slice(r * dh, r * dh + (p.P - 1) * sh + 1, sh)
    cols = slice(s * dw, s * dw + (p.Q - 1) * sw + 1, sw)
    return rows, cols


def _groups(p):
    """(input channels, output channels) of each group, as slices."""
    Cg, Kg = p.C // p.groups, p.K // p.groups
    return [(slice(g * Cg, (g + 1) * Cg), slice(g * Kg, (g + 1) * Kg))
            for g in range(p.groups)]


def conv2d_core(x, weight, bias, p):
    """y[n, k, oh, ow] = bias[k] + sum over the channels c of k's group and
    the taps (r, s) of weight[k, c, r, s] * xpad[n, c, oh*sh + r*dh, ow*sw + s*dw].

    One tap at a time: the tap's (K/g x C/g) weights times the (strided)
    slice of the padded input it sees."""
    xp = _zero_padded(x, p.padding)
    y = np.zeros(p.output_shape, dtype=x.dtype)
    for cin, kout in _groups(p):
        for r in range(p.R):
            for s in range(p.S):
                rows, cols = _tap_slices(p, r, s)
                patch = xp[:, cin, rows, cols]                  # N x C/g x P x Q
                y[:, kout] += np.einsum("nchw,kc->nkhw", patch,
                                        weight[kout, :, r, s], optimize=True)
    if bias is not None:
        y += bias[None, :, None, None]
    return y


def conv2d_backward_core(grad_output, x, weight, p):
    """Gradients of conv2d_core, tap by tap: each tap's forward product
    y += W_rs . patch_rs gives dW_rs = dy . patch_rs and dpatch_rs = W_rs^T . dy.
    The input gradient is gathered on the padded grid, then the border is
    cut off (padding is a constant)."""
    xp = _zero_padded(x, p.padding)
    grad_xp = np.zeros_like(xp)
    grad_weight = np.zeros_like(weight)
    for cin, kout in _groups(p):
        dy = grad_output[:, kout]                               # N x K/g x P x Q
        for r in range(p.R):
            for s in range(p.S):
                rows, cols = _tap_slices(p, r, s)
                grad_weight[kout, :, r, s] = np.einsum(
                    "nkhw,nchw->kc", dy, xp[:, cin, rows, cols], optimize=True)
                # one tap's slice never repeats a pixel, so += is a plain add
                grad_xp[:, cin, rows, cols] += np.einsum(
                    "nkhw,kc->nchw", dy, weight[kout, :, r, s], optimize=True)
    (top, _), (left, _) = p.padding
    grad_input = np.ascontiguousarray(grad_xp[:, :, top:top + p.H, left:left + p.W])
    grad_bias = grad_output.sum(axis=(0, 2, 3))
    return grad_input, grad_weight, grad_bias


# --------------------------------------------------------------------------
# max pooling

def _pool_taps(out_len, k, stride, pad, dilation):
    """Input coordinate of tap i of window o along one axis:
    o*stride - pad + i*dilation, as an out_len x k array."""
    starts = np.arange(out_len, dtype=np.int64) * stride - pad
    return starts[:, None] + np.arange(k, dtype=np.int64)[None, :] * dilation


def _first_in_bounds(start, dilation):
    """PyTorch's `while (start < 0) start += dilation`: the window's first tap
    at or after 0.  With dilation it can lie past the input's end (a window
    wholly in padding); PyTorch then returns -inf and this out-of-plane index,
    and so does the reference."""
    steps = np.where(start < 0, (-start + dilation - 1) // dilation, 0)
    return start + steps * dilation


def max_pool2d_core(x, p):
    """(y, indices): the max over each window's in-bounds taps, and where it is.

    PyTorch's CPU scan, literally: start from maxval = -inf and the index of
    the window's first in-bounds element, visit the in-bounds taps in
    row-major order and take a tap when `val > maxval or isnan(val)`.  So
    ties keep the first, a NaN wins and a later NaN replaces it, and an
    all -inf window points at its first element."""
    H, W = x.shape[2:]
    (kh, kw), (sh, sw) = p.kernel, p.stride
    (ph, pw), (dh, dw) = p.padding, p.dilation
    ih = _pool_taps(p.P, kh, sh, ph, dh)                        # P x kh
    iw = _pool_taps(p.Q, kw, sw, pw, dw)                        # Q x kw

    maxval = np.full(p.output_shape, -np.inf, dtype=x.dtype)
    index = np.empty(p.output_shape, dtype=np.int64)
    index[...] = (_first_in_bounds(ih[:, 0], dh)[:, None] * W
                  + _first_in_bounds(iw[:, 0], dw)[None, :])
    for i in range(kh):
        for j in range(kw):
            rows, cols = ih[:, i], iw[:, j]                     # P, Q
            inside = (((rows >= 0) & (rows < H))[:, None]
                      & ((cols >= 0) & (cols < W))[None, :])    # P x Q
            if not inside.any():
                continue
            # read at clamped coordinates; `inside` masks what they stand for
            val = x[:, :, np.clip(rows, 0, H - 1)[:, None],
                    np.clip(cols, 0, W - 1)[None, :]]           # N x C x P x Q
            take = inside & ((val > maxval) | np.isnan(val))
            maxval = np.where(take, val, maxval)
            index = np.where(take, rows[:, None] * W + cols[None, :], index)
    return maxval, index


def max_pool2d_backward_core(grad_output, indices, input_shape):
    """Each output's gradient goes to the input element its index names;
    where overlapping windows chose the same element, the gradients add."""
    N, C, H, W = input_shape
    P, Q = grad_output.shape[2:]
    grad_input = np.zeros((N * C, H * W), dtype=grad_output.dtype)
    planes = np.arange(N * C)[:, None]
    # np.add.at, unlike fancy-index +=, adds every repeated index
    np.add.at(grad_input, (planes, indices.reshape(N * C, P * Q)),
              grad_output.reshape(N * C, P * Q))
    return grad_input.reshape(N, C, H, W)


# --------------------------------------------------------------------------
# average pooling

def _avg_window(o, k, stride, pad, size):
    """PyTorch's average-pool window o along one axis: (start, end) clipped to
    the input, and its length counting padding, taken before clipping
    (start = o*stride - pad; end = min(start + k, size + pad))."""
    start = o * stride - pad
    end = min(start + k, size + pad)
    padded_len = end - start
    return max(start, 0), min(end, size), padded_len


def _avg_divisor(h_len, w_len, padded_size, count_include_pad, divisor_override):
    if divisor_override is not None:
        return divisor_override
    if count_include_pad:
        return padded_size
    return h_len * w_len


def avg_pool2d_core(x, p, count_include_pad, divisor_override):
    """y = sum of the window's in-bounds elements / divisor, where the divisor
    is divisor_override if given, else the window's size counting padding
    (but not what ceil_mode adds past the padding) if count_include_pad, else
    the number of in-bounds elements."""
    (kh, kw), (sh, sw), (ph, pw) = p.kernel, p.stride, p.padding
    y = np.zeros(p.output_shape, dtype=x.dtype)
    for oh in range(p.P):
        h0, h1, h_padded = _avg_window(oh, kh, sh, ph, p.H)
        for ow in range(p.Q):
            w0, w1, w_padded = _avg_window(ow, kw, sw, pw, p.W)
            if h0 >= h1 or w0 >= w1:
                continue    # all padding (only when H or W is 0): 0, as PyTorch
            div = _avg_divisor(h1 - h0, w1 - w0, h_padded * w_padded,
                               count_include_pad, divisor_override)
            y[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / div
    return y


def avg_pool2d_backward_core(grad_output, p, count_include_pad, divisor_override):
    """Each output's gradient / its divisor, added to every in-bounds element
    of its window (windows may overlap)."""
    (kh, kw), (sh, sw), (ph, pw) = p.kernel, p.stride, p.padding
    grad_input = np.zeros(p.input_shape, dtype=grad_output.dtype)
    for oh in range(p.P):
        h0, h1, h_padded = _avg_window(oh, kh, sh, ph, p.H)
        for ow in range(p.Q):
            w0, w1, w_padded = _avg_window(ow, kw, sw, pw, p.W)
            if h0 >= h1 or w0 >= w1:
                continue
            div = _avg_divisor(h1 - h0, w1 - w0, h_padded * w_padded,
                               count_include_pad, divisor_override)
            grad_input[:, :, h0:h1, w0:w1] += (grad_output[:, :, oh, ow] / div)[:, :, None, None]
    return grad_input


# --------------------------------------------------------------------------
# batch norm

def _bn_axes(x):
    """The axes statistics reduce over (all but the channel axis 1), and the
    shape that broadcasts a length-C vector against x."""
    axes = (0,) + tuple(range(2, x.ndim))
    shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
    return axes, shape


def _as_f64(v, C, default):
    """A length-C float64 vector; `default` everywhere when v is None."""
    if v is None:
        return np.full(C, default, dtype=np.float64)
    return np.asarray(v, dtype=np.float64)


def _batch_stats(x64, axes, shape):
    """Batch mean and biased variance (the one that normalises), two-pass."""
    mean = x64.mean(axis=axes)
    var = ((x64 - mean.reshape(shape)) ** 2).mean(axis=axes)
    return mean, var


def batch_norm_core(x, running_mean, running_var, weight, bias, training,
                    momentum, eps):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    training: mean and var are the batch's (biased variance); running_mean
    and running_var, when not None, are updated in place (they may be of
    another float dtype): new = (1 - momentum) * old + momentum * stat, with
    the unbiased variance n/(n-1) * var.  eval: mean and var are the running
    statistics.  Computed in float64, returned in x's dtype."""
    axes, shape = _bn_axes(x)
    C = x.shape[1]
    if x.size == 0:
        # nothing to normalise; in training no statistics to take, and the
        # running ones stay as they are (as in PyTorch)
        return np.empty(x.shape, dtype=x.dtype)
    x64 = x.astype(np.float64)
    if training:
        mean, var = _batch_stats(x64, axes, shape)
        n = x.size // C
        if running_mean is not None:
            running_mean[...] = ((1 - momentum) * running_mean.astype(np.float64)
                                 + momentum * mean)
        if running_var is not None:
            running_var[...] = ((1 - momentum) * running_var.astype(np.float64)
                                + momentum * var * n / (n - 1))
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    x_hat = (x64 - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    y = x_hat * _as_f64(weight, C, 1.0).reshape(shape) + _as_f64(bias, C, 0.0).reshape(shape)
    return y.astype(x.dtype)


def batch_norm_backward_core(grad_output, x, weight, running_mean, running_var,
                             training, eps):
    """(grad_input, grad_weight, grad_bias) of batch_norm_core.

    With x_hat = (x - mean) * invstd and n values per channel:
      grad_bias   = sum(dy),  grad_weight = sum(dy * x_hat)
      eval (mean, var constants):      dx = weight * invstd * dy
      training (mean, var from x):     dx = weight * invstd *
          (dy - sum(dy) / n - x_hat * sum(dy * x_hat) / n)
    (the second form is the chain rule through the batch mean and biased
    variance, Ioffe & Szegedy 2015).  Computed in float64, returned in x's
    dtype; grad_weight and grad_bias are (C,) even when weight is None."""
    axes, shape = _bn_axes(x)
    C = x.shape[1]
    if x.size == 0:     # an empty batch: no gradient anywhere (as PyTorch)
        return (np.empty(x.shape, dtype=x.dtype), np.zeros(C, dtype=x.dtype),
                np.zeros(C, dtype=x.dtype))
    x64 = x.astype(np.float64)
    dy = grad_output.astype(np.float64)
    if training:
        mean, var = _batch_stats(x64, axes, shape)
    else:
        mean = running_mean.astype(np.float64)
        var = running_var.astype(np.float64)
    invstd = 1.0 / np.sqrt(var + eps)
    x_hat = (x64 - mean.reshape(shape)) * invstd.reshape(shape)
    grad_bias = dy.sum(axis=axes)
    grad_weight = (dy * x_hat).sum(axis=axes)
    scale = (_as_f64(weight, C, 1.0) * invstd).reshape(shape)
    if training:
        n = x.size // C
        grad_input = scale * (dy - grad_bias.reshape(shape) / n
                              - x_hat * grad_weight.reshape(shape) / n)
    else:
        grad_input = scale * dy
    dtype = x.dtype
    return grad_input.astype(dtype), grad_weight.astype(dtype), grad_bias.astype(dtype)


# ==========================================================================
# public API: the fast API's signatures, one validation and one core call

def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """Reference of fastconv.conv2d."""
    x, weight, bias, p, _ = _params.conv_inputs(x, weight, bias, stride,
                                                padding, dilation, groups)
    return conv2d_core(x, weight, bias, p)


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1,
                    groups=1):
    """Reference of fastconv.conv2d_backward: (grad_input, grad_weight, grad_bias)."""
    grad_output, x, weight, p, _ = _params.conv_backward_inputs(
        grad_output, x, weight, stride, padding, dilation, groups)
    return conv2d_backward_core(grad_output, x, weight, p)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode=False, return_indices=False):
    """Reference of fastconv.max_pool2d: y, or (y, indices)."""
    x, p, _ = _params.max_pool_inputs(x, kernel_size, stride, padding, dilation,
                                      ceil_mode, return_indices)
    y, indices = max_pool2d_core(x, p)
    return (y, indices) if return_indices else y


def max_pool2d_backward(grad_output, indices, input_shape):
    """Reference of fastconv.max_pool2d_backward."""
    grad_output, indices, input_shape, _ = _params.max_pool_backward_inputs(
        grad_output, indices, input_shape)
    return max_pool2d_backward_core(grad_output, indices, input_shape)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Reference of fastconv.avg_pool2d."""
    x, p, count_include_pad, divisor_override, _ = _params.avg_pool_inputs(
        x, kernel_size, stride, padding, ceil_mode, count_include_pad,
        divisor_override)
    return avg_pool2d_core(x, p, count_include_pad, divisor_override)


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None,
                        padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None):
    """Reference of fastconv.avg_pool2d_backward."""
    grad_output, p, count_include_pad, divisor_override, _ = (
        _params.avg_pool_backward_inputs(grad_output, input_shape, kernel_size,
                                         stride, padding, ceil_mode,
                                         count_include_pad, divisor_override))
    return avg_pool2d_backward_core(grad_output, p, count_include_pad,
                                    divisor_override)


def batch_norm(x, running_mean, running_var, weight=None, bias=None,
               training=False, momentum=0.1, eps=1e-5):
    """Reference of fastconv.batch_norm (updates the running statistics in
    place in training mode)."""
    x, rm, rv, w, b, training, momentum, eps, _ = _params.bn_inputs(
        x, running_mean, running_var, weight, bias, training, momentum, eps)
    return batch_norm_core(x, rm, rv, w, b, training, momentum, eps)


def batch_norm_backward(grad_output, x, weight=None, *, running_mean=None,
                        running_var=None, training=True, eps=1e-5):
    """Reference of fastconv.batch_norm_backward: (grad_input, grad_weight, grad_bias)."""
    grad_output, x, w, rm, rv, training, eps, _ = _params.bn_backward_inputs(
        grad_output, x, weight, running_mean, running_var, training, eps)
    return batch_norm_backward_core(grad_output, x, w, rm, rv, training, eps)


def fuse_conv_bn_core(weight, bias, running_mean, running_var, bn_weight,
                      bn_bias, eps, dtype):
    """fuse_conv_bn on validated arguments, returned in `dtype`."""
    K = weight.shape[0]
    mean = np.asarray(running_mean, dtype=np.float64)
    var = np.asarray(running_var, dtype=np.float64)
    scale = _as_f64(bn_weight, K, 1.0) / np.sqrt(var + eps)
    fused_weight = np.asarray(weight, dtype=np.float64) * scale[:, None, None, None]
    fused_bias = (_as_f64(bias, K, 0.0) - mean) * scale + _as_f64(bn_bias, K, 0.0)
    return (np.ascontiguousarray(fused_weight, dtype=dtype),
            np.ascontiguousarray(fused_bias, dtype=dtype))


def fuse_conv_bn(weight, bias, running_mean, running_var, bn_weight, bn_bias,
                 eps=1e-5):
    """(fused_weight, fused_bias) with conv(x, w', b') == batch_norm(conv(x, w, b))
    in eval mode:  s = bn_weight / sqrt(running_var + eps);
    w' = w * s (per output channel);  b' = (bias - running_mean) * s + bn_bias.
    Computed in float64, returned in weight's float dtype; bias, bn_weight
    and bn_bias may be None (0, 1, 0)."""
    weight, bias, rm, rv, g, beta, eps = _params.fuse_inputs(
        weight, bias, running_mean, running_var, bn_weight, bn_bias, eps)
    dtype = _params.float_dtype_of(weight.dtype, "weight")
    return fuse_conv_bn_core(weight, bias, rm, rv, g, beta, eps, dtype)


def conv2d_bn(x, weight, bias, running_mean, running_var, bn_weight, bn_bias,
              stride=1, padding=0, dilation=1, groups=1, *, eps=1e-5,
              activation=None):
    """Reference of fastconv.conv2d_bn, computed unfused:
    conv2d -> batch_norm with the running statistics -> optional ReLU.

    The result's dtype is the wider of x's and weight's, as in the fast op
    (whose fused weight and bias take the weight's dtype); everything is
    computed in that dtype."""
    activation = _params.activation_arg(activation)
    weight, bias, rm, rv, g, beta, eps = _params.fuse_inputs(
        weight, bias, running_mean, running_var, bn_weight, bn_bias, eps)
    x = _params.as_array(x, "x", 4)
    dtype = _params.compute_dtype(x, weight)
    x, weight, bias, p, _ = _params.conv_inputs(x, weight, bias, stride,
                                                padding, dilation, groups)
    x, weight, bias, rm, rv, g, beta = (_params.contiguous(a, dtype) for a in
                                        (x, weight, bias, rm, rv, g, beta))
    y = conv2d_core(x, weight, bias, p)
    y = batch_norm_core(y, rm, rv, g, beta, False, 0.0, eps)
    if activation == "relu":
        y = np.maximum(y, 0)
    return y

"""conv2d and its relatives: the fast public API.

Each function validates its arguments once (fastconv._params), allocates the
output, picks the algorithm and calls the C kernels through the shim.
"""
import numpy as np

from . import _kernels
from . import _params
from . import reference


def choose_algorithm(p, dtype, backward=False):
    """"direct" or "im2col" for `algorithm="auto"`, from the benchmark suite.

    The direct micro-kernels put output columns in vector lanes: they win on
    stride-1 layers with rows at least a vector wide and on depthwise layers,
    where im2col's GEMM has a single row.  Narrow images, strided layers and
    1x1 layers (a plain GEMM) go to im2col + BLAS, as does float64 and every
    backward pass, whose direct form is not blocked for the cache."""
    if backward:
        return "im2col"
    if p.groups == p.C and p.C > 1:
        return "direct"
    if dtype != np.float32 or p.stride[1] != 1 or p.R * p.S == 1:
        return "im2col"
    return "direct" if p.Q >= 14 else "im2col"


def _run_conv(x, weight, bias, p, algorithm, out, relu=False):
    """The convolution itself, on validated arrays; writes into `out` when given."""
    if algorithm == "reference":
        y = reference.conv2d_core(x, weight, bias, p)
        if relu:
            np.maximum(y, 0, out=y)   # NaN propagates, as torch.relu
        if out is None:
            return y
        np.copyto(out, y)
        return out
    if algorithm == "auto":
        algorithm = choose_algorithm(p, x.dtype)
    y = out if out is not None else np.empty(p.output_shape, x.dtype)
    return _kernels.conv2d(p, algorithm, x, weight, bias, relu, y)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
           *, algorithm="auto", out=None):
    """2-D cross-correlation of NCHW `x` with KCRS `weight`, as
    torch.nn.functional.conv2d.

    padding: an int, a pair (pad_h, pad_w), a pair of pairs
    ((top, bottom), (left, right)), 'valid' or 'same' (stride 1 only).
    groups: input and output channels split into `groups` independent
    convolutions (groups == channels is depthwise).  algorithm: "auto",
    "direct", "im2col" or "reference".  out: a C-contiguous array of the
    result's shape and dtype to write into.

    Returns the N x K x P x Q output, in the wider dtype of the inputs.

    >>> import numpy as np, fastconv as fc
    >>> x = np.ones((1, 3, 8, 8), np.float32); w = np.ones((4, 3, 3, 3), np.float32)
    >>> fc.conv2d(x, w, stride=2, padding=1).shape
    (1, 4, 4, 4)
    """
    algorithm = _params.algorithm_arg(algorithm)
    inputs = {"x": x, "weight": weight, "bias": bias}
    x, weight, bias, p, dtype = _params.conv_inputs(
        x, weight, bias, stride, padding, dilation, groups)
    out = _params.check_out(out, p.output_shape, dtype, inputs)
    return _run_conv(x, weight, bias, p, algorithm, out)


def conv2d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1,
                    groups=1, *, algorithm="auto"):
    """Gradients of conv2d with respect to its input, weight and bias.

    Takes the forward's arguments; returns (grad_input, grad_weight,
    grad_bias), shaped like x, weight and (K,), in the compute dtype.
    grad_bias is grad_output summed over N, P and Q."""
    algorithm = _params.algorithm_arg(algorithm)
    grad_output, x, weight, p, dtype = _params.conv_backward_inputs(
        grad_output, x, weight, stride, padding, dilation, groups)
    if algorithm == "reference":
        return reference.conv2d_backward_core(grad_output, x, weight, p)
    if algorithm == "auto":
        algorithm = choose_algorithm(p, dtype, backward=True)
    gx = np.empty(p.input_shape, dtype)
    gw = np.empty(p.weight_shape, dtype)
    gb = np.empty((p.K,), dtype)
    _kernels.conv2d_backward(p, algorithm, grad_output, x, weight, gx, gw, gb)
    return gx, gw, gb


def fuse_conv_bn(weight, bias, running_mean, running_var, bn_weight, bn_bias,
                 eps=1e-5):
    """Fold inference batch norm into the convolution before it.

    w' = w * gamma / sqrt(var + eps);  b' = (b - mean) * gamma / sqrt(var + eps) + beta,
    computed in float64 and returned in the weight's dtype.  bias, bn_weight
    and bn_bias may be None (0, 1 and 0).  The per-channel factors are
    NumPy on K-vectors; the weight is scaled by one C pass (each value
    rounded once from its float64 product, as fastconv.reference does)."""
    weight, bias, rm, rv, g, beta, eps = _params.fuse_inputs(
        weight, bias, running_mean, running_var, bn_weight, bn_bias, eps)
    dtype = _params.float_dtype_of(weight.dtype, "weight")
    K = weight.shape[0]
    mean = np.asarray(rm, dtype=np.float64)
    var = np.asarray(rv, dtype=np.float64)
    scale = _f64_or(g, K, 1.0) / np.sqrt(var + eps)
    fused_bias = (_f64_or(bias, K, 0.0) - mean) * scale + _f64_or(beta, K, 0.0)
    w = np.ascontiguousarray(weight, dtype=dtype)
    fused_weight = np.empty(w.shape, dtype)
    if w.size:
        _kernels.bn_fold_weight(K, w.size // K, w, scale, fused_weight)
    return fused_weight, fused_bias.astype(dtype)


def _f64_or(v, K, default):
    """A length-K float64 vector; `default` everywhere when v is None."""
    if v is None:
        return np.full(K, default, dtype=np.float64)
    return np.asarray(v, dtype=np.float64)


def conv2d_bn(x, weight, bias, running_mean, running_var, bn_weight, bn_bias,
              stride=1, padding=0, dilation=1, groups=1, *, eps=1e-5,
              activation=None, algorithm="auto", out=None):
    """Inference conv2d -> batch_norm (running statistics) -> activation, as one
    convolution with the batch norm folded into its weight and bias.
    activation: None or "relu"."""
    activation = _params.activation_arg(activation)
    algorithm = _params.algorithm_arg(algorithm)
    inputs = {"x": x, "weight": weight, "bias": bias}
    x_arr = _params.as_array(x, "x", 4)
    fw, fb = fuse_conv_bn(weight, bias, running_mean, running_var, bn_weight,
                          bn_bias, eps)
    x, fw, fb, p, dtype = _params.conv_inputs(x_arr, fw, fb, stride, padding,
                                              dilation, groups)
    out = _params.check_out(out, p.output_shape, dtype, inputs)
    return _run_conv(x, fw, fb, p, algorithm, out, relu=activation == "relu")

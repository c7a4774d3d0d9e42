"""Max and average pooling: the fast public API.

Validation happens once in fastconv._params; the kernels get contiguous
arrays of one float dtype, a PoolParams record and outputs allocated here,
and compute in C (src/pool.c) with the GIL released.
"""
import numpy as np

from . import _kernels
from . import _params


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1,
               ceil_mode=False, return_indices=False):
    """2-D max pooling over NCHW `x`, as torch.nn.functional.max_pool2d.

    stride defaults to kernel_size; padding (implicit -inf) may be at most half
    the kernel.  A NaN in a window wins.  With return_indices, also returns
    int64 flat indices into each (n, c) plane of x (h * W + w), PyTorch's
    convention, for max_pool2d_backward."""
    x, p, dtype = _params.max_pool_inputs(x, kernel_size, stride, padding,
                                          dilation, ceil_mode, return_indices)
    y = np.empty(p.output_shape, dtype)
    indices = np.empty(p.output_shape, np.int64) if return_indices else None
    _kernels.max_pool2d(p, x, y, indices)
    return (y, indices) if return_indices else y


def max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of max_pool2d: each grad_output value added at its index.

    indices come from max_pool2d(..., return_indices=True); they are checked
    (shape here, range in the kernel, plane by plane) before anything is
    written through them."""
    grad_output, indices, input_shape, dtype = _params.max_pool_backward_inputs(
        grad_output, indices, input_shape, check_range=False)
    grad_input = np.empty(input_shape, dtype)
    if not _kernels.max_pool2d_backward(grad_output, indices, grad_input):
        _params.max_pool_indices_range(indices, input_shape[2] * input_shape[3])
        raise RuntimeError("fastconv: the kernel refused in-range indices")
    return grad_input


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling over NCHW `x`, as torch.nn.functional.avg_pool2d.

    count_include_pad: whether zero padding counts in the divisor;
    divisor_override: a fixed divisor instead."""
    x, p, cip, div, dtype = _params.avg_pool_inputs(
        x, kernel_size, stride, padding, ceil_mode, count_include_pad,
        divisor_override)
    y = np.empty(p.output_shape, dtype)
    _kernels.avg_pool2d(p, cip, div, x, y)
    return y


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None,
                        padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None):
    """Gradient of avg_pool2d with respect to its input of `input_shape`."""
    grad_output, p, cip, div, dtype = _params.avg_pool_backward_inputs(
        grad_output, input_shape, kernel_size, stride, padding, ceil_mode,
        count_include_pad, divisor_override)
    grad_input = np.empty(p.input_shape, dtype)
    _kernels.avg_pool2d_backward(p, cip, div, grad_output, grad_input)
    return grad_input

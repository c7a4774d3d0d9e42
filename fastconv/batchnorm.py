"""Batch normalisation: the fast public API.

Each function validates its arguments once (fastconv._params), allocates the
outputs and makes one call into the C kernels (src/batchnorm.c): statistics
accumulated in double over one read of x, then one fused pass for the
output; OpenMP over pieces of the array in memory order (partial statistics
merged per channel), the GIL released.
"""
import numpy as np

from . import _kernels
from . import _params


def _nchw(x):
    """(N, C, HW) of a validated N x C x ... array."""
    shape = x.shape
    hw = 1
    for d in shape[2:]:
        hw *= d
    return shape[0], shape[1], hw


def _updatable(stat):
    """The running statistic as the kernel can update it in place: the
    caller's array itself when its stride is a whole number of elements
    and it is aligned, else a contiguous copy to write back afterwards."""
    if stat is None or (stat.flags.aligned and
                        stat.strides[0] % stat.itemsize == 0):
        return stat, None
    return _params.contiguous(stat, stat.dtype), stat


def batch_norm(x, running_mean, running_var, weight=None, bias=None,
               training=False, momentum=0.1, eps=1e-5):
    """Batch norm over the channel axis (1) of `x`, as
    torch.nn.functional.batch_norm.

    training=False normalises with the running statistics.  training=True
    uses the batch's mean and biased variance and, when running_mean and
    running_var are given, updates them in place:
    running = (1 - momentum) * running + momentum * batch statistic, with the
    unbiased variance.  An empty batch gives an empty result and leaves the
    running statistics as they are (as PyTorch).  weight and bias (gamma,
    beta) are optional.

    Returns y, C-contiguous, in the wider float type of x, weight and bias
    (the running statistics keep their own type and do not promote)."""
    x, rm, rv, w, b, training, momentum, eps, dtype = _params.bn_inputs(
        x, running_mean, running_var, weight, bias, training, momentum, eps)
    N, C, HW = _nchw(x)
    y = np.empty(x.shape, dtype)
    if not training:
        return _kernels.batch_norm_eval(N, C, HW, x, rm, rv, w, b, eps, y)
    rm, rm_back = _updatable(rm)
    rv, rv_back = _updatable(rv)
    _kernels.batch_norm_train(N, C, HW, x, w, b, rm, rv, momentum, eps, y)
    if rm_back is not None:
        np.copyto(rm_back, rm)
    if rv_back is not None:
        np.copyto(rv_back, rv)
    return y


def batch_norm_backward(grad_output, x, weight=None, *, running_mean=None,
                        running_var=None, training=True, eps=1e-5):
    """Gradients of batch_norm: (grad_input, grad_weight, grad_bias).

    training=True differentiates through the batch statistics of x (which it
    recomputes, in the same pass that sums grad_output); running statistics
    given anyway are checked, then not used.  training=False through the
    running statistics (then required), held constant.
    grad_weight and grad_bias are returned even when weight is None."""
    go, x, w, rm, rv, training, eps, dtype = _params.bn_backward_inputs(
        grad_output, x, weight, running_mean, running_var, training, eps)
    N, C, HW = _nchw(x)
    gx = np.empty(x.shape, dtype)
    # zeros: an empty batch has no gradient, and the training kernel then
    # writes nothing
    gw = np.zeros(C, dtype)
    gb = np.zeros(C, dtype)
    _kernels.batch_norm_backward(N, C, HW, go, x, w, rm, rv, training, eps,
                                 gx, gw, gb)
    return gx, gw, gb

"""Batch normalisation: the fast public API.

Until the C kernels land, batch norm computes through the reference.
"""
from . import _params
from . import reference


def batch_norm(x, running_mean, running_var, weight=None, bias=None,
               training=False, momentum=0.1, eps=1e-5):
    """Batch norm over the channel axis (1) of `x`, as
    torch.nn.functional.batch_norm.

    training=False normalises with the running statistics.  training=True
    uses the batch's mean and biased variance and, when running_mean and
    running_var are given, updates them in place:
    running = (1 - momentum) * running + momentum * batch statistic, with the
    unbiased variance.  weight and bias (gamma, beta) are optional."""
    x, rm, rv, w, b, training, momentum, eps, _ = _params.bn_inputs(
        x, running_mean, running_var, weight, bias, training, momentum, eps)
    return reference.batch_norm_core(x, rm, rv, w, b, training, momentum, eps)


def batch_norm_backward(grad_output, x, weight=None, *, running_mean=None,
                        running_var=None, training=True, eps=1e-5):
    """Gradients of batch_norm: (grad_input, grad_weight, grad_bias).

    training=True differentiates through the batch statistics of x;
    training=False through the running statistics (then required).
    grad_weight and grad_bias are returned even when weight is None."""
    go, x, w, rm, rv, training, eps, _ = _params.bn_backward_inputs(
        grad_output, x, weight, running_mean, running_var, training, eps)
    return reference.batch_norm_backward_core(go, x, w, rm, rv, training, eps)

"""Convolution the way a NumPy user writes it today: im2col with
``sliding_window_view`` and a tensor contraction.

This is the benchmark's "plain NumPy" baseline, not part of fastconv's API.
It supports what conv2d supports (stride, padding -- int, pair, pair of pairs,
'valid', 'same' --, dilation and groups) and is checked against
fastconv.reference in benchmarks/test_numpy_im2col.py.

    cols = sliding_window_view(x_padded, dilated kernel)[..., ::stride, ::dilation]
    y    = tensordot(cols, weight)        # im2col copy + one BLAS GEMM

groups == 1 goes through ``np.tensordot``: NumPy copies the strided window
view into a (N*P*Q) x (C*R*S) column matrix and calls its BLAS, the textbook
im2col.  Grouped (and depthwise) convolutions go through ``np.einsum`` with the
group as a batch axis, which is what one writes to avoid a Python loop.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["conv2d"]


def _pair(value, name):
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    a, b = value
    return int(a), int(b)


def _padding(padding, R, S, dilation, stride):
    """((top, bottom), (left, right)), as fastconv and PyTorch read `padding`."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' needs stride 1")
            th, tw = dilation[0] * (R - 1), dilation[1] * (S - 1)
            return (th // 2, th - th // 2), (tw // 2, tw - tw // 2)
        raise ValueError(f"padding: unknown mode {padding!r}")
    if (isinstance(padding, (tuple, list)) and len(padding) == 2
            and all(isinstance(p, (tuple, list)) for p in padding)):
        return _pair(padding[0], "padding"), _pair(padding[1], "padding")
    ph, pw = _pair(padding, "padding")
    return (ph, ph), (pw, pw)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """NCHW cross-correlation of x with a K x C/groups x R x S weight, as
    torch.nn.functional.conv2d, in plain NumPy."""
    x = np.asarray(x)
    weight = np.asarray(weight)
    dtype = np.result_type(x.dtype, weight.dtype, np.float32)
    N, C, H, W = x.shape
    K, Cg, R, S = weight.shape
    G = int(groups)
    if C != Cg * G or K % G:
        raise ValueError(f"channels: input C={C}, weight {weight.shape}, groups={G}")
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    (pt, pb), (pl, pr) = _padding(padding, R, S, (dh, dw), (sh, sw))

    if pt or pb or pl or pr:
        x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    eh, ew = dh * (R - 1) + 1, dw * (S - 1) + 1            # dilated kernel extent
    # N x C x (Hp-eh+1) x (Wp-ew+1) x eh x ew, a view; then keep every
    # stride-th window and every dilation-th tap: N x C x P x Q x R x S
    cols = sliding_window_view(x, (eh, ew), axis=(2, 3))[:, :, ::sh, ::sw, ::dh, ::dw]
    P, Q = cols.shape[2], cols.shape[3]

    if G == 1:
        # (N, C, P, Q, R, S) . (K, C, R, S) over C, R, S -> N x P x Q x K
        y = np.tensordot(cols, weight, axes=([1, 4, 5], [1, 2, 3]))
        y = y.transpose(0, 3, 1, 2)
    else:
        cols = cols.reshape(N, G, Cg, P, Q, R, S)           # splits C: still a view
        wg = weight.reshape(G, K // G, Cg, R, S)
        y = np.einsum("ngcpqrs,gkcrs->ngkpq", cols, wg, optimize=True)
        y = y.reshape(N, K, P, Q)
    y = np.ascontiguousarray(y, dtype=dtype)
    if bias is not None:
        y += np.asarray(bias, dtype=dtype)[None, :, None, None]
    return y

"""Argument validation: every bad argument of every op raises ValueError
(shapes and values) or TypeError (types), with a message that names the
argument -- in the fast API and in fastconv.reference alike (fast-only
cases: algorithm= and out=).  And validation happens before anything is
written.
"""
import numpy as np
import pytest

import fastconv as fc
from fastconv import shapes

X = np.ones((2, 4, 6, 6))
W = np.ones((6, 4, 3, 3))
B = np.ones(6)
Y = np.ones((2, 6, 4, 4))            # conv2d(X, W) output / its grad_output
PX = np.ones((2, 3, 6, 6))           # pooling input
PY = np.ones((2, 3, 3, 3))           # max_pool2d(PX, 2) output
PI = np.zeros((2, 3, 3, 3), np.int64)
C3 = np.ones(3)
I64 = 2**63 - 1    # the largest int64: strides, input_shape entries
G62 = 2**62 - 1    # the largest padding, dilation, kernel size and padded size


def _readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def _strs():
    return np.array([[["a", "b"]]])


# (id, call taking the module under test, exception, regex the message matches)
CASES = [
    # ---- conv2d
    ("conv_x_ndim", lambda m: m.conv2d(X[0], W), ValueError, r"^x: expected a 4-D"),
    ("conv_x_5d", lambda m: m.conv2d(X[None], W), ValueError, r"^x: expected a 4-D"),
    ("conv_weight_ndim", lambda m: m.conv2d(X, W[0]), ValueError, r"^weight: expected a 4-D"),
    ("conv_bias_ndim", lambda m: m.conv2d(X, W, B[None]), ValueError, r"^bias: expected a 1-D"),
    ("conv_bias_len", lambda m: m.conv2d(X, W, np.ones(5)), ValueError, r"^bias: expected shape \(6,\)"),
    ("conv_channels", lambda m: m.conv2d(X, np.ones((6, 3, 3, 3))), ValueError,
     r"groups=1.*expected input\[2, 4, 6, 6\] to have 3 channels, but got 4"),
    ("conv_channels_groups", lambda m: m.conv2d(X, W, groups=2), ValueError,
     r"groups=2.*8 channels, but got 4"),
    ("conv_out_channels_groups", lambda m: m.conv2d(X, np.ones((5, 2, 3, 3)), groups=2),
     ValueError, r"^weight: .*divisible by groups"),
    ("conv_empty_weight", lambda m: m.conv2d(X, np.ones((0, 4, 3, 3))), ValueError, r"^weight"),
    ("conv_stride0", lambda m: m.conv2d(X, W, stride=0), ValueError, r"^stride: expected a positive"),
    ("conv_stride_neg", lambda m: m.conv2d(X, W, stride=(1, -1)), ValueError, r"^stride\[1\]"),
    ("conv_stride_len3", lambda m: m.conv2d(X, W, stride=(1, 1, 1)), ValueError, r"^stride"),
    ("conv_stride_float", lambda m: m.conv2d(X, W, stride=1.5), TypeError, r"^stride"),
    ("conv_stride_bool", lambda m: m.conv2d(X, W, stride=True), TypeError, r"^stride"),
    ("conv_stride_str", lambda m: m.conv2d(X, W, stride="1"), TypeError, r"^stride"),
    ("conv_dilation0", lambda m: m.conv2d(X, W, dilation=0), ValueError, r"^dilation"),
    ("conv_dilation_bool", lambda m: m.conv2d(X, W, dilation=(1, True)), TypeError,
     r"^dilation\[1\]"),
    ("conv_groups0", lambda m: m.conv2d(X, W, groups=0), ValueError, r"^groups"),
    ("conv_groups_neg", lambda m: m.conv2d(X, W, groups=-2), ValueError, r"^groups"),
    ("conv_groups_float", lambda m: m.conv2d(X, W, groups=2.0), TypeError, r"^groups"),
    ("conv_groups_bool", lambda m: m.conv2d(X, W, groups=True), TypeError, r"^groups"),
    ("conv_padding_neg", lambda m: m.conv2d(X, W, padding=-1), ValueError, r"^padding"),
    ("conv_padding_pairs_neg", lambda m: m.conv2d(X, W, padding=((1, -1), (0, 0))),
     ValueError, r"^padding\[0\]"),
    ("conv_padding_str", lambda m: m.conv2d(X, W, padding="full"), ValueError, r"^padding"),
    ("conv_padding_float", lambda m: m.conv2d(X, W, padding=0.5), TypeError, r"^padding"),
    ("conv_padding_bool", lambda m: m.conv2d(X, W, padding=False), TypeError, r"^padding"),
    ("conv_same_stride2", lambda m: m.conv2d(X, W, stride=2, padding="same"), ValueError,
     r"^padding: 'same'"),
    ("conv_kernel_too_large", lambda m: m.conv2d(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))),
     ValueError, r"^x: .*padded input"),
    ("conv_dilated_too_large", lambda m: m.conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)),
                                                  dilation=2), ValueError, r"^x: .*padded input"),
    ("conv_x_complex", lambda m: m.conv2d(X.astype(complex), W), TypeError, r"^x: .*complex"),
    ("conv_weight_complex", lambda m: m.conv2d(X, W.astype(np.complex64)), TypeError, r"^weight"),
    ("conv_bias_complex", lambda m: m.conv2d(X, W, B.astype(complex)), TypeError, r"^bias"),
    ("conv_x_object", lambda m: m.conv2d(X.astype(object), W), TypeError, r"^x"),
    ("conv_x_string", lambda m: m.conv2d(_strs(), W), TypeError, r"^x"),
    ("conv_weight_string_list", lambda m: m.conv2d(X, [[[["a"]]]]), TypeError, r"^weight"),
    ("conv_x_none", lambda m: m.conv2d(None, W), TypeError, r"^x"),
    ("conv_x_ragged", lambda m: m.conv2d([[1.0], [1.0, 2.0]], W), TypeError, r"^x"),
    ("conv_x_datetime", lambda m: m.conv2d(np.zeros((1, 4, 3, 3), "M8[s]"), W), TypeError, r"^x"),
    ("conv_dilation_neg", lambda m: m.conv2d(X, W, dilation=(1, -2)), ValueError,
     r"^dilation\[1\]: expected a positive int, got -2$"),
    ("conv_groups_not_dividing", lambda m: m.conv2d(X, np.ones((6, 1, 3, 3)), groups=3),
     ValueError, r"^x: given groups=3, weight of size \[6, 1, 3, 3\], expected "
                 r"input\[2, 4, 6, 6\] to have 3 channels, but got 4 channels instead$"),
    ("conv_same_stride_1x2", lambda m: m.conv2d(X, W, stride=(1, 2), padding="same"),
     ValueError, r"^padding: 'same' is not supported for strided convolutions, got "
                 r"stride=\(1, 2\)"),
    ("conv_padding_three_pairs", lambda m: m.conv2d(X, W, padding=((1, 1),) * 3), ValueError,
     r"^padding: expected an int or a pair of ints, got a sequence of length 3"),
    ("conv_weight_none", lambda m: m.conv2d(X, None), TypeError,
     r"^weight: expected an array, got None"),
    ("conv_bias_2d_list", lambda m: m.conv2d(X, W, [[1.0] * 6]), ValueError,
     r"^bias: expected a 1-D array, got a 2-D array of shape \(1, 6\)"),
    ("conv_bias_string", lambda m: m.conv2d(X, W, B.astype(str)), TypeError,
     r"^bias: expected a real numeric array, got dtype <U"),
    ("conv_weight_object", lambda m: m.conv2d(X, W.astype(object)), TypeError,
     r"^weight: expected a real numeric array, got dtype object"),
    ("conv_x_float128", lambda m: m.conv2d(X.astype(np.longdouble), W), TypeError,
     r"^x: expected a float32 or float64 array .*got dtype float128"),
    ("conv_kernel_too_large_w", lambda m: m.conv2d(np.ones((1, 1, 5, 2)), np.ones((1, 1, 3, 3))),
     ValueError, r"^x: calculated padded input size per channel \(5 x 2\) is smaller than "
                 r"the dilated kernel \(3 x 3\)"),
    ("conv_stride_over_int64", lambda m: m.conv2d(X, W, stride=2**63), ValueError,
     rf"^stride: expected an int <= {I64}, got {2**63}$"),
    ("conv_dilation_over_grid", lambda m: m.conv2d(X, W, dilation=(2**62, 1)), ValueError,
     rf"^dilation\[0\]: expected an int <= {G62}, got {2**62}$"),
    ("conv_padding_over_grid", lambda m: m.conv2d(X, W, padding=((0, 2**62), (0, 0))),
     ValueError, rf"^padding\[0\]\[1\]: expected an int <= {G62}, got {2**62}$"),
    ("conv_dilated_kernel_over_grid", lambda m: m.conv2d(X, W, dilation=2**61), ValueError,
     r"^dilation: the dilated kernel \(4611686018427387905 x .*too large for 64-bit"),
    ("conv_padded_over_grid", lambda m: m.conv2d(X, W, padding=2**61), ValueError,
     r"^padding: the padded input \(4611686018427387910 x .*too large for 64-bit"),
    ("conv_output_too_large", lambda m: m.conv2d(X, W, padding=2**40), ValueError,
     r"^x: the output would have shape \(2, 6, 2199023255556, 2199023255556\), too large"),
    # main's bounds also hold for an empty batch (nothing is computed, but the
    # geometry is refused all the same)
    ("conv_padded_too_large", lambda m: m.conv2d(X[:0], W, padding=2**61), ValueError,
     r"^padding: the padded input \(4611686018427387910 x 4611686018427387910\) is too "
     r"large for 64-bit indexing"),
    ("conv_padded_too_large_w", lambda m: m.conv2d(X[:0], W, padding=((0, 0), (2**64, 0))),
     ValueError, rf"^padding\[1\]\[0\]: expected an int <= {G62}, got {2**64}$"),
    # ---- conv2d_backward
    ("convb_grad_shape", lambda m: m.conv2d_backward(Y[:, :5], X, W), ValueError,
     r"^grad_output: expected shape \(2, 6, 4, 4\)"),
    ("convb_grad_spatial", lambda m: m.conv2d_backward(Y, X, W, padding=1), ValueError,
     r"^grad_output"),
    ("convb_grad_ndim", lambda m: m.conv2d_backward(Y[0], X, W), ValueError, r"^grad_output"),
    ("convb_grad_complex", lambda m: m.conv2d_backward(Y.astype(complex), X, W), TypeError,
     r"^grad_output"),
    ("convb_x_ndim", lambda m: m.conv2d_backward(Y, X[0], W), ValueError, r"^x"),
    ("convb_channels", lambda m: m.conv2d_backward(Y, X, W, groups=2), ValueError,
     r"groups=2.*channels"),
    ("convb_stride0", lambda m: m.conv2d_backward(Y, X, W, stride=0), ValueError, r"^stride"),
    ("convb_padding_neg", lambda m: m.conv2d_backward(Y, X, W, padding=(0, -1)), ValueError,
     r"^padding"),
    ("convb_dilation_float", lambda m: m.conv2d_backward(Y, X, W, dilation=1.0), TypeError,
     r"^dilation"),
    ("convb_weight_object", lambda m: m.conv2d_backward(Y, X, W.astype(object)), TypeError,
     r"^weight"),
    ("convb_weight_ndim", lambda m: m.conv2d_backward(Y, X, W[0]), ValueError,
     r"^weight: expected a 4-D array, got a 3-D array of shape \(4, 3, 3\)"),
    ("convb_groups0", lambda m: m.conv2d_backward(Y, X, W, groups=0), ValueError,
     r"^groups: expected a positive int, got 0$"),
    ("convb_same_stride2", lambda m: m.conv2d_backward(Y, X, W, stride=2, padding="same"),
     ValueError, r"^padding: 'same' is not supported for strided convolutions"),
    ("convb_kernel_too_large", lambda m: m.conv2d_backward(np.ones((1, 1, 1, 1)),
                                                           np.ones((1, 1, 2, 2)),
                                                           np.ones((1, 1, 3, 3))),
     ValueError, r"^x: calculated padded input size per channel \(2 x 2\) is smaller"),
    ("convb_grad_channels", lambda m: m.conv2d_backward(np.ones((2, 5, 4, 4)), X, W),
     ValueError, r"^grad_output: expected shape \(2, 6, 4, 4\) \(the forward output's "
                 r"shape\), got \(2, 5, 4, 4\)$"),
    ("convb_grad_none", lambda m: m.conv2d_backward(None, X, W), TypeError,
     r"^grad_output: expected an array, got None"),
    ("convb_x_string", lambda m: m.conv2d_backward(Y, X.astype(str), W), TypeError,
     r"^x: expected a real numeric array, got dtype <U"),
    ("convb_x_channels", lambda m: m.conv2d_backward(Y, X[:, :3], W), ValueError,
     r"^x: given groups=1, .* to have 4 channels, but got 3 channels instead$"),
    # ---- max_pool2d
    ("max_x_ndim", lambda m: m.max_pool2d(PX[0], 2), ValueError, r"^x: expected a 4-D"),
    ("max_kernel0", lambda m: m.max_pool2d(PX, 0), ValueError, r"^kernel_size"),
    ("max_kernel_pair0", lambda m: m.max_pool2d(PX, (2, 0)), ValueError, r"^kernel_size\[1\]"),
    ("max_kernel_len3", lambda m: m.max_pool2d(PX, (2, 2, 2)), ValueError, r"^kernel_size"),
    ("max_kernel_bool", lambda m: m.max_pool2d(PX, True), TypeError, r"^kernel_size"),
    ("max_kernel_float", lambda m: m.max_pool2d(PX, 2.0), TypeError, r"^kernel_size"),
    ("max_kernel_none", lambda m: m.max_pool2d(PX, None), TypeError, r"^kernel_size"),
    ("max_stride0", lambda m: m.max_pool2d(PX, 2, 0), ValueError, r"^stride"),
    ("max_stride_neg", lambda m: m.max_pool2d(PX, 2, (-1, 1)), ValueError, r"^stride\[0\]"),
    ("max_padding_neg", lambda m: m.max_pool2d(PX, 2, padding=-1), ValueError, r"^padding"),
    ("max_padding_half", lambda m: m.max_pool2d(PX, 3, padding=2), ValueError,
     r"^padding: .*half"),
    ("max_padding_half_w", lambda m: m.max_pool2d(PX, (4, 3), padding=(2, 2)), ValueError,
     r"^padding: .*half"),
    ("max_dilation0", lambda m: m.max_pool2d(PX, 2, dilation=0), ValueError, r"^dilation"),
    ("max_ceil_int", lambda m: m.max_pool2d(PX, 2, ceil_mode=1), TypeError, r"^ceil_mode"),
    ("max_return_indices_str", lambda m: m.max_pool2d(PX, 2, return_indices="yes"), TypeError,
     r"^return_indices"),
    ("max_too_small", lambda m: m.max_pool2d(np.ones((1, 1, 2, 2)), 3), ValueError, r"^x"),
    ("max_dilated_too_small", lambda m: m.max_pool2d(np.ones((1, 1, 4, 4)), 3, dilation=2),
     ValueError, r"^x"),
    ("max_window_in_padding", lambda m: m.max_pool2d(np.ones((1, 1, 1, 3)), (2, 1),
                                                     padding=(1, 0), dilation=(2, 1)),
     ValueError, r"^x: the pooling window"),
    ("max_x_complex", lambda m: m.max_pool2d(PX.astype(complex), 2), TypeError, r"^x"),
    ("max_padded_too_large", lambda m: m.max_pool2d(PX[:0], G62, padding=2**61 - 1),
     ValueError, r"^x: the padded input \(4611686018427387908 x 4611686018427387908\) is "
                 r"too large for 64-bit indexing"),
    ("max_x_string", lambda m: m.max_pool2d(np.array([[[["a"]]]]), 1), TypeError, r"^x"),
    ("max_kernel_neg", lambda m: m.max_pool2d(PX, -2), ValueError,
     r"^kernel_size: expected a positive int, got -2$"),
    ("max_dilation_neg", lambda m: m.max_pool2d(PX, 2, dilation=(1, -1)), ValueError,
     r"^dilation\[1\]: expected a positive int, got -1$"),
    ("max_padding_same", lambda m: m.max_pool2d(PX, 2, padding="same"), TypeError,
     r"^padding: expected an int or a pair of ints, got 'same' \(str\)"),
    ("max_x_object", lambda m: m.max_pool2d(PX.astype(object), 2), TypeError,
     r"^x: expected a real numeric array, got dtype object"),
    ("max_x_none", lambda m: m.max_pool2d(None, 2), TypeError, r"^x: expected an array, got None"),
    ("max_too_small_w", lambda m: m.max_pool2d(np.ones((1, 1, 5, 2)), 3), ValueError,
     r"^x: given input size 5 x 2, the calculated output size is 1 x 0, which is too small"),
    ("max_kernel_over_grid", lambda m: m.max_pool2d(PX, 2**62), ValueError,
     rf"^kernel_size: expected an int <= {G62}, got {2**62}$"),
    ("max_huge_window_in_padding", lambda m: m.max_pool2d(np.ones((1, 1, 1, 1)), (2**40, 1),
                                                          (2**41, 1), (2**39, 0), (3, 1),
                                                          ceil_mode=True),
     ValueError, r"^x: the pooling window 0 along the height \(kernel 1099511627776, stride "
                 r"2199023255552, padding 549755813888, dilation 3\) lies entirely in the "
                 r"padding of an input of size 1$"),
    ("max_stride_over_int64", lambda m: m.max_pool2d(PX, 2, 2**64), ValueError,
     rf"^stride: expected an int <= {I64}, got {2**64}$"),
    # ---- max_pool2d_backward
    ("maxb_indices_float", lambda m: m.max_pool2d_backward(PY, PI.astype(float), PX.shape),
     TypeError, r"^indices"),
    ("maxb_indices_none", lambda m: m.max_pool2d_backward(PY, None, PX.shape), TypeError,
     r"^indices"),
    ("maxb_indices_bool", lambda m: m.max_pool2d_backward(PY, PI.astype(bool), PX.shape),
     TypeError, r"^indices"),
    ("maxb_indices_shape", lambda m: m.max_pool2d_backward(PY, PI[:, :, :2], PX.shape),
     ValueError, r"^indices: expected shape"),
    ("maxb_indices_high", lambda m: m.max_pool2d_backward(PY, PI + 36, PX.shape), ValueError,
     r"^indices: .*\[0, 36\)"),
    ("maxb_indices_negative", lambda m: m.max_pool2d_backward(PY, PI - 1, PX.shape), ValueError,
     r"^indices"),
    ("maxb_input_shape_len", lambda m: m.max_pool2d_backward(PY, PI, (2, 3, 6)), ValueError,
     r"^input_shape"),
    ("maxb_input_shape_int", lambda m: m.max_pool2d_backward(PY, PI, 36), TypeError,
     r"^input_shape"),
    ("maxb_input_shape_str", lambda m: m.max_pool2d_backward(PY, PI, "2,3,6,6"), TypeError,
     r"^input_shape"),
    ("maxb_input_shape_neg", lambda m: m.max_pool2d_backward(PY, PI, (2, 3, -6, 6)), ValueError,
     r"^input_shape\[2\]"),
    ("maxb_input_shape_float", lambda m: m.max_pool2d_backward(PY, PI, (2, 3, 6, 6.0)),
     TypeError, r"^input_shape\[3\]"),
    ("maxb_input_shape_bool", lambda m: m.max_pool2d_backward(PY, PI, (2, True, 6, 6)),
     TypeError, r"^input_shape\[1\]"),
    ("maxb_grad_channels", lambda m: m.max_pool2d_backward(PY, PI, (2, 4, 6, 6)), ValueError,
     r"^grad_output"),
    ("maxb_grad_ndim", lambda m: m.max_pool2d_backward(PY[0], PI[0], PX.shape), ValueError,
     r"^grad_output"),
    ("maxb_grad_complex", lambda m: m.max_pool2d_backward(PY.astype(complex), PI, PX.shape),
     TypeError, r"^grad_output"),
    ("maxb_indices_complex", lambda m: m.max_pool2d_backward(PY, PI.astype(complex), PX.shape),
     TypeError, r"^indices: expected an integer array \(int64 indices\), got dtype complex128"),
    ("maxb_indices_object", lambda m: m.max_pool2d_backward(PY, PI.astype(object), PX.shape),
     TypeError, r"^indices: expected an integer array .*, got dtype object"),
    ("maxb_indices_string", lambda m: m.max_pool2d_backward(PY, PI.astype(str), PX.shape),
     TypeError, r"^indices: expected an integer array .*, got dtype <U"),
    ("maxb_indices_float_list", lambda m: m.max_pool2d_backward(PY, PI.astype(float).tolist(),
                                                                PX.shape),
     TypeError, r"^indices: expected an integer array .*, got dtype float64"),
    ("maxb_indices_float16", lambda m: m.max_pool2d_backward(PY, PI.astype(np.float16), PX.shape),
     TypeError, r"^indices: expected an integer array .*, got dtype float16"),
    ("maxb_indices_ragged", lambda m: m.max_pool2d_backward(np.ones((1, 1, 1, 2)),
                                                            [[[[0], [1, 2]]]], (1, 1, 2, 2)),
     TypeError, r"^indices: expected an array-like of integers, got list that NumPy cannot"),
    ("maxb_indices_uint64_huge", lambda m: m.max_pool2d_backward(
        PY, PI.astype(np.uint64) + np.uint64(2**63 + 5), PX.shape), ValueError,
     r"^indices: expected flat indices into each input plane, in \[0, 36\), got values in "
     r"\[9223372036854775813, 9223372036854775813\]$"),
    ("maxb_indices_one_high", lambda m: m.max_pool2d_backward(
        PY, np.where(np.arange(PI.size).reshape(PI.shape) == 7, 36, PI), PX.shape), ValueError,
     r"^indices: .*in \[0, 36\), got values in \[0, 36\]$"),
    ("maxb_indices_ndim", lambda m: m.max_pool2d_backward(PY, PI[0], PX.shape), ValueError,
     r"^indices: expected shape \(2, 3, 3, 3\) \(grad_output's shape\), got \(3, 3, 3\)$"),
    ("maxb_grad_object", lambda m: m.max_pool2d_backward(PY.astype(object), PI, PX.shape),
     TypeError, r"^grad_output: expected a real numeric array, got dtype object"),
    ("maxb_grad_none", lambda m: m.max_pool2d_backward(None, PI, PX.shape), TypeError,
     r"^grad_output: expected an array, got None"),
    ("maxb_input_shape_float_array", lambda m: m.max_pool2d_backward(
        PY, PI, np.array([2.0, 3.0, 6.0, 6.0])), TypeError, r"^input_shape\[0\]: expected an int"),
    ("maxb_input_shape_too_large", lambda m: m.max_pool2d_backward(PY, PI, (2, 3, 2**40, 2**40)),
     ValueError, r"^input_shape: the input gradient would have shape \(2, 3, 1099511627776, "
                 r"1099511627776\), too large to allocate$"),
    ("maxb_input_shape_over_int64", lambda m: m.max_pool2d_backward(PY, PI, (2, 3, 2**63, 1)),
     ValueError, rf"^input_shape\[2\]: expected an int <= {I64}, got {2**63}$"),
    # ---- avg_pool2d
    ("avg_x_ndim", lambda m: m.avg_pool2d(PX[None], 2), ValueError, r"^x"),
    ("avg_kernel0", lambda m: m.avg_pool2d(PX, (0, 2)), ValueError, r"^kernel_size\[0\]"),
    ("avg_stride0", lambda m: m.avg_pool2d(PX, 2, 0), ValueError, r"^stride"),
    ("avg_padding_half", lambda m: m.avg_pool2d(PX, 2, padding=2), ValueError, r"^padding"),
    ("avg_padding_neg", lambda m: m.avg_pool2d(PX, 2, padding=(0, -1)), ValueError,
     r"^padding\[1\]"),
    ("avg_ceil_str", lambda m: m.avg_pool2d(PX, 2, ceil_mode="no"), TypeError, r"^ceil_mode"),
    ("avg_count_int", lambda m: m.avg_pool2d(PX, 2, count_include_pad=1), TypeError,
     r"^count_include_pad"),
    ("avg_divisor0", lambda m: m.avg_pool2d(PX, 2, divisor_override=0), ValueError,
     r"^divisor_override"),
    ("avg_divisor_float", lambda m: m.avg_pool2d(PX, 2, divisor_override=1.5), TypeError,
     r"^divisor_override"),
    ("avg_divisor_bool", lambda m: m.avg_pool2d(PX, 2, divisor_override=True), TypeError,
     r"^divisor_override"),
    ("avg_too_small", lambda m: m.avg_pool2d(np.ones((1, 1, 2, 2)), 3), ValueError, r"^x"),
    ("avg_x_object", lambda m: m.avg_pool2d(PX.astype(object), 2), TypeError, r"^x"),
    ("avg_kernel_neg", lambda m: m.avg_pool2d(PX, (2, -1)), ValueError,
     r"^kernel_size\[1\]: expected a positive int, got -1$"),
    ("avg_stride_neg", lambda m: m.avg_pool2d(PX, 2, -1), ValueError,
     r"^stride: expected a positive int, got -1$"),
    ("avg_padding_pair_half", lambda m: m.avg_pool2d(PX, (2, 4), padding=(1, 3)), ValueError,
     r"^padding: expected at most half the kernel size \(2, 4\), got padding=\(1, 3\)$"),
    ("avg_divisor_nan", lambda m: m.avg_pool2d(PX, 2, divisor_override=float("nan")), TypeError,
     r"^divisor_override: expected a non-zero int or None, got nan \(float\)$"),
    ("avg_divisor_str", lambda m: m.avg_pool2d(PX, 2, divisor_override="2"), TypeError,
     r"^divisor_override: expected a non-zero int or None, got '2' \(str\)$"),
    ("avg_divisor_np_float", lambda m: m.avg_pool2d(PX, 2, divisor_override=np.float64(2.0)),
     TypeError, r"^divisor_override: expected a non-zero int or None, got .*float64"),
    ("avg_divisor_over_int64", lambda m: m.avg_pool2d(PX, 2, divisor_override=2**64), ValueError,
     r"^divisor_override: expected an int that fits in 64 bits, got 18446744073709551616$"),
    ("avg_divisor_np_zero", lambda m: m.avg_pool2d(PX, 2, divisor_override=np.int32(0)),
     ValueError, r"^divisor_override: expected a non-zero int or None, got 0$"),
    ("avg_x_complex", lambda m: m.avg_pool2d(PX.astype(complex), 2), TypeError,
     r"^x: expected a real numeric array, got dtype complex128"),
    ("avg_x_string", lambda m: m.avg_pool2d(PX.astype(str), 2), TypeError,
     r"^x: expected a real numeric array, got dtype <U"),
    ("avg_kernel_over_grid", lambda m: m.avg_pool2d(PX, (2, 2**62)), ValueError,
     rf"^kernel_size\[1\]: expected an int <= {G62}, got {2**62}$"),
    # ---- avg_pool2d_backward
    ("avgb_grad_shape", lambda m: m.avg_pool2d_backward(PY[:, :, :2], PX.shape, 2), ValueError,
     r"^grad_output: expected shape \(2, 3, 3, 3\)"),
    ("avgb_grad_ndim", lambda m: m.avg_pool2d_backward(PY[0], PX.shape, 2), ValueError,
     r"^grad_output"),
    ("avgb_input_shape_len", lambda m: m.avg_pool2d_backward(PY, (2, 3, 6, 6, 1), 2), ValueError,
     r"^input_shape"),
    ("avgb_input_shape_none", lambda m: m.avg_pool2d_backward(PY, None, 2), TypeError,
     r"^input_shape"),
    ("avgb_input_shape_neg", lambda m: m.avg_pool2d_backward(PY, (2, -3, 6, 6), 2), ValueError,
     r"^input_shape\[1\]"),
    ("avgb_input_too_small", lambda m: m.avg_pool2d_backward(np.ones((1, 1, 1, 1)),
                                                             (1, 1, 2, 2), 3),
     ValueError, r"input_shape|kernel_size"),
    ("avgb_input_shape_too_large", lambda m: m.avg_pool2d_backward(
        np.ones((0, 3, 1, 1)), (0, 3, 2**62, 1), 1, stride=2**62), ValueError,
     r"^input_shape: the padded input \(4611686018427387904 x 1\) is too large"),
    ("avgb_divisor0", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, divisor_override=0),
     ValueError, r"^divisor_override"),
    ("avgb_count_none", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, count_include_pad=None),
     TypeError, r"^count_include_pad"),
    ("avgb_padding_half", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, padding=2),
     ValueError, r"^padding"),
    ("avgb_grad_string", lambda m: m.avg_pool2d_backward(PY.astype(str), PX.shape, 2),
     TypeError, r"^grad_output"),
    ("avgb_kernel0", lambda m: m.avg_pool2d_backward(PY, PX.shape, 0), ValueError,
     r"^kernel_size: expected a positive int, got 0$"),
    ("avgb_stride0", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, 0), ValueError,
     r"^stride: expected a positive int, got 0$"),
    ("avgb_padding_neg", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, padding=-1),
     ValueError, r"^padding: expected an int >= 0, got -1$"),
    ("avgb_divisor_nan", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2,
                                                         divisor_override=float("nan")),
     TypeError, r"^divisor_override: expected a non-zero int or None, got nan"),
    ("avgb_divisor_float", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, divisor_override=2.0),
     TypeError, r"^divisor_override: expected a non-zero int or None, got 2.0 \(float\)$"),
    ("avgb_grad_complex", lambda m: m.avg_pool2d_backward(PY.astype(complex), PX.shape, 2),
     TypeError, r"^grad_output: expected a real numeric array, got dtype complex128"),
    ("avgb_grad_object", lambda m: m.avg_pool2d_backward(PY.astype(object), PX.shape, 2),
     TypeError, r"^grad_output: expected a real numeric array, got dtype object"),
    ("avgb_grad_channels", lambda m: m.avg_pool2d_backward(PY, (2, 4, 6, 6), 2), ValueError,
     r"^grad_output: expected shape \(2, 4, 3, 3\) \(the forward output's shape\), got "
     r"\(2, 3, 3, 3\)$"),
    ("avgb_input_shape_float", lambda m: m.avg_pool2d_backward(PY, (2, 3, 6.0, 6), 2), TypeError,
     r"^input_shape\[2\]: expected an int, got 6.0 \(float\)$"),
    ("avgb_input_shape_too_large", lambda m: m.avg_pool2d_backward(PY, (2, 3, 2**40, 2**40), 2),
     ValueError, r"^input_shape: the input gradient would have shape .*too large to allocate$"),
    ("avgb_ceil_int", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, ceil_mode=0), TypeError,
     r"^ceil_mode: expected True or False, got 0 \(int\)$"),
    # ---- batch_norm
    ("bn_x_1d", lambda m: m.batch_norm(C3, C3, C3), ValueError, r"^x: .*at least 2"),
    ("bn_x_0d", lambda m: m.batch_norm(np.float64(1.0), C3, C3), ValueError, r"^x"),
    ("bn_running_mean_len", lambda m: m.batch_norm(PX, np.ones(4), C3), ValueError,
     r"^running_mean: expected shape \(3,\)"),
    ("bn_running_var_len", lambda m: m.batch_norm(PX, C3, np.ones(2)), ValueError,
     r"^running_var: expected shape \(3,\)"),
    ("bn_running_mean_2d", lambda m: m.batch_norm(PX, C3[None], C3), ValueError,
     r"^running_mean"),
    ("bn_weight_len", lambda m: m.batch_norm(PX, C3, C3, np.ones(4)), ValueError, r"^weight"),
    ("bn_bias_len", lambda m: m.batch_norm(PX, C3, C3, C3, np.ones(1)), ValueError, r"^bias"),
    ("bn_weight_complex", lambda m: m.batch_norm(PX, C3, C3, C3.astype(complex)), TypeError,
     r"^weight"),
    ("bn_running_mean_none_eval", lambda m: m.batch_norm(PX, None, C3), TypeError,
     r"^running_mean"),
    ("bn_running_var_none_eval", lambda m: m.batch_norm(PX, C3, None), TypeError,
     r"^running_var"),
    ("bn_eps0", lambda m: m.batch_norm(PX, C3, C3, eps=0.0), ValueError, r"^eps"),
    ("bn_eps_neg", lambda m: m.batch_norm(PX, C3, C3, eps=-1e-5), ValueError, r"^eps"),
    ("bn_eps_nan", lambda m: m.batch_norm(PX, C3, C3, eps=float("nan")), ValueError, r"^eps"),
    ("bn_eps_str", lambda m: m.batch_norm(PX, C3, C3, eps="1e-5"), TypeError, r"^eps"),
    ("bn_eps_bool", lambda m: m.batch_norm(PX, C3, C3, eps=True), TypeError, r"^eps"),
    ("bn_momentum_high", lambda m: m.batch_norm(PX, C3.copy(), C3.copy(), training=True,
                                                momentum=1.5), ValueError, r"^momentum"),
    ("bn_momentum_neg", lambda m: m.batch_norm(PX, C3, C3, momentum=-0.1), ValueError,
     r"^momentum"),
    ("bn_momentum_none", lambda m: m.batch_norm(PX, C3, C3, momentum=None), TypeError,
     r"^momentum"),
    ("bn_momentum_str", lambda m: m.batch_norm(PX, C3, C3, momentum="0.1"), TypeError,
     r"^momentum"),
    ("bn_training_str", lambda m: m.batch_norm(PX, C3, C3, training="yes"), TypeError,
     r"^training"),
    ("bn_training_int", lambda m: m.batch_norm(PX, C3, C3, training=1), TypeError,
     r"^training"),
    ("bn_one_value_per_channel", lambda m: m.batch_norm(np.ones((1, 3)), None, None,
                                                        training=True), ValueError, r"^x"),
    ("bn_one_value_per_channel_4d", lambda m: m.batch_norm(np.ones((1, 3, 1, 1)), None, None,
                                                           training=True), ValueError, r"^x"),
    ("bn_train_running_mean_list", lambda m: m.batch_norm(PX, [0.0] * 3, C3.copy(),
                                                          training=True), TypeError,
     r"^running_mean"),
    ("bn_train_running_var_int", lambda m: m.batch_norm(PX, C3.copy(), np.ones(3, int),
                                                        training=True), TypeError,
     r"^running_var"),
    ("bn_train_running_var_readonly", lambda m: m.batch_norm(PX, C3.copy(), _readonly(C3),
                                                             training=True), ValueError,
     r"^running_var"),
    ("bn_x_complex", lambda m: m.batch_norm(PX.astype(complex), C3, C3), TypeError, r"^x"),
    ("bn_eps_inf", lambda m: m.batch_norm(PX, C3, C3, eps=float("inf")), ValueError,
     r"^eps: expected a positive finite float, got inf$"),
    ("bn_eps_none", lambda m: m.batch_norm(PX, C3, C3, eps=None), TypeError,
     r"^eps: expected a positive float, got None \(NoneType\)$"),
    ("bn_eps_complex", lambda m: m.batch_norm(PX, C3, C3, eps=1e-5 + 0j), TypeError,
     r"^eps: expected a positive float, got .*\(complex\)$"),
    ("bn_eps_array", lambda m: m.batch_norm(PX, C3, C3, eps=np.array([1e-5])), TypeError,
     r"^eps: expected a positive float, got array of shape \(1,\)"),
    ("bn_momentum_nan", lambda m: m.batch_norm(PX, C3, C3, momentum=float("nan")), ValueError,
     r"^momentum: expected a float in \[0, 1\], got nan$"),
    ("bn_running_mean_complex", lambda m: m.batch_norm(PX, C3.astype(complex), C3), TypeError,
     r"^running_mean: expected a real numeric array, got dtype complex128"),
    ("bn_running_var_string", lambda m: m.batch_norm(PX, C3, C3.astype(str)), TypeError,
     r"^running_var: expected a real numeric array, got dtype <U"),
    ("bn_bias_object", lambda m: m.batch_norm(PX, C3, C3, None, C3.astype(object)), TypeError,
     r"^bias: expected a real numeric array, got dtype object"),
    ("bn_weight_2d", lambda m: m.batch_norm(PX, C3, C3, C3[None]), ValueError,
     r"^weight: expected a 1-D array, got a 2-D array of shape \(1, 3\)$"),
    ("bn_x_none", lambda m: m.batch_norm(None, C3, C3), TypeError, r"^x: expected an array, got None"),
    ("bn_x_string", lambda m: m.batch_norm(PX.astype(str), C3, C3), TypeError,
     r"^x: expected a real numeric array, got dtype <U"),
    ("bn_train_running_mean_len", lambda m: m.batch_norm(PX, np.zeros(4), C3.copy(),
                                                         training=True), ValueError,
     r"^running_mean: expected shape \(3,\) \(one value per channel\), got \(4,\)$"),
    ("bn_train_running_var_complex", lambda m: m.batch_norm(PX, C3.copy(), C3.astype(complex),
                                                            training=True), TypeError,
     r"^running_var: expected a float32 or float64 array to update in place, got dtype "
     r"complex128$"),
    ("bn_train_running_mean_float16", lambda m: m.batch_norm(PX, C3.astype(np.float16), C3.copy(),
                                                             training=True), TypeError,
     r"^running_mean: expected a float32 or float64 array .*, got dtype float16$"),
    ("bn_one_value_per_channel_2d_stats", lambda m: m.batch_norm(np.ones((1, 3)), C3.copy(),
                                                                 C3.copy(), training=True),
     ValueError, r"^x: expected more than 1 value per channel when training, got input of "
                 r"shape \(1, 3\)$"),
    # ---- batch_norm_backward
    ("bnb_grad_shape", lambda m: m.batch_norm_backward(PX[:1], PX), ValueError,
     r"^grad_output: expected shape"),
    ("bnb_grad_complex", lambda m: m.batch_norm_backward(PX.astype(complex), PX), TypeError,
     r"^grad_output"),
    ("bnb_x_1d", lambda m: m.batch_norm_backward(C3, C3), ValueError, r"^x"),
    ("bnb_weight_len", lambda m: m.batch_norm_backward(PX, PX, np.ones(2)), ValueError,
     r"^weight"),
    ("bnb_eval_no_running_mean", lambda m: m.batch_norm_backward(PX, PX, training=False,
                                                                 running_var=C3), TypeError,
     r"^running_mean"),
    ("bnb_eval_running_var_len", lambda m: m.batch_norm_backward(
        PX, PX, training=False, running_mean=C3, running_var=np.ones(5)), ValueError,
     r"^running_var"),
    ("bnb_eps0", lambda m: m.batch_norm_backward(PX, PX, eps=0), ValueError, r"^eps"),
    ("bnb_training_str", lambda m: m.batch_norm_backward(PX, PX, training="no"), TypeError,
     r"^training"),
    ("bnb_one_value_per_channel", lambda m: m.batch_norm_backward(np.ones((1, 3)),
                                                                  np.ones((1, 3))),
     ValueError, r"^x"),
    ("bnb_grad_ndim", lambda m: m.batch_norm_backward(PX[0], PX), ValueError,
     r"^grad_output: expected shape \(2, 3, 6, 6\) \(x's shape\), got \(3, 6, 6\)$"),
    ("bnb_grad_none", lambda m: m.batch_norm_backward(None, PX), TypeError,
     r"^grad_output: expected an array, got None"),
    ("bnb_x_complex", lambda m: m.batch_norm_backward(PX, PX.astype(complex)), TypeError,
     r"^x: expected a real numeric array, got dtype complex128"),
    ("bnb_weight_complex", lambda m: m.batch_norm_backward(PX, PX, C3.astype(complex)), TypeError,
     r"^weight: expected a real numeric array, got dtype complex128"),
    ("bnb_weight_2d", lambda m: m.batch_norm_backward(PX, PX, C3[None]), ValueError,
     r"^weight: expected a 1-D array, got a 2-D array"),
    ("bnb_eps_nan", lambda m: m.batch_norm_backward(PX, PX, eps=float("nan")), ValueError,
     r"^eps: expected a positive finite float, got nan$"),
    ("bnb_eps_neg", lambda m: m.batch_norm_backward(PX, PX, eps=-1.0), ValueError,
     r"^eps: expected a positive finite float, got -1.0$"),
    ("bnb_eps_str", lambda m: m.batch_norm_backward(PX, PX, eps="1e-5"), TypeError,
     r"^eps: expected a positive float, got '1e-5' \(str\)$"),
    ("bnb_eval_running_mean_complex", lambda m: m.batch_norm_backward(
        PX, PX, running_mean=C3.astype(complex), running_var=C3, training=False), TypeError,
     r"^running_mean: expected a real numeric array, got dtype complex128"),
    ("bnb_eval_no_running_var", lambda m: m.batch_norm_backward(PX, PX, running_mean=C3,
                                                                training=False), TypeError,
     r"^running_var: expected an array of shape \(3,\), got None$"),
    # in training the running statistics are not used, but still checked
    ("bnb_train_running_mean_complex", lambda m: m.batch_norm_backward(
        PX, PX, running_mean=C3.astype(complex)), TypeError,
     r"^running_mean: expected a real numeric array, got dtype complex128"),
    ("bnb_train_running_var_len", lambda m: m.batch_norm_backward(PX, PX, running_var=np.ones(5)),
     ValueError, r"^running_var: expected shape \(3,\) \(one value per channel\), got \(5,\)$"),
    ("bnb_train_running_mean_string", lambda m: m.batch_norm_backward(PX, PX, running_mean="abc"),
     TypeError, r"^running_mean: expected a real numeric array, got dtype <U3"),
    # ---- fuse_conv_bn
    ("fuse_weight_ndim", lambda m: m.fuse_conv_bn(W[0], None, B, B, None, None), ValueError,
     r"^weight"),
    ("fuse_bias_len", lambda m: m.fuse_conv_bn(W, np.ones(5), B, B, None, None), ValueError,
     r"^bias"),
    ("fuse_running_mean_len", lambda m: m.fuse_conv_bn(W, None, C3, B, None, None), ValueError,
     r"^running_mean"),
    ("fuse_running_var_none", lambda m: m.fuse_conv_bn(W, None, B, None, None, None), TypeError,
     r"^running_var"),
    ("fuse_bn_weight_len", lambda m: m.fuse_conv_bn(W, None, B, B, C3, None), ValueError,
     r"^bn_weight"),
    ("fuse_bn_bias_len", lambda m: m.fuse_conv_bn(W, None, B, B, None, C3), ValueError,
     r"^bn_bias"),
    ("fuse_eps0", lambda m: m.fuse_conv_bn(W, None, B, B, None, None, eps=0.0), ValueError,
     r"^eps"),
    ("fuse_weight_complex", lambda m: m.fuse_conv_bn(W.astype(complex), None, B, B, None, None),
     TypeError, r"^weight"),
    ("fuse_weight_none", lambda m: m.fuse_conv_bn(None, None, B, B, None, None), TypeError,
     r"^weight: expected an array, got None"),
    ("fuse_bias_string", lambda m: m.fuse_conv_bn(W, B.astype(str), B, B, None, None), TypeError,
     r"^bias: expected a real numeric array, got dtype <U"),
    ("fuse_running_mean_complex", lambda m: m.fuse_conv_bn(W, None, B.astype(complex), B, None,
                                                           None), TypeError,
     r"^running_mean: expected a real numeric array, got dtype complex128"),
    ("fuse_running_var_object", lambda m: m.fuse_conv_bn(W, None, B, B.astype(object), None,
                                                         None), TypeError,
     r"^running_var: expected a real numeric array, got dtype object"),
    ("fuse_running_mean_2d", lambda m: m.fuse_conv_bn(W, None, B[None], B, None, None),
     ValueError, r"^running_mean: expected a 1-D array, got a 2-D array of shape \(1, 6\)$"),
    ("fuse_bn_weight_complex", lambda m: m.fuse_conv_bn(W, None, B, B, B.astype(complex), None),
     TypeError, r"^bn_weight: expected a real numeric array, got dtype complex128"),
    ("fuse_eps_nan", lambda m: m.fuse_conv_bn(W, None, B, B, None, None, eps=float("nan")),
     ValueError, r"^eps: expected a positive finite float, got nan$"),
    ("fuse_eps_neg", lambda m: m.fuse_conv_bn(W, None, B, B, None, None, eps=-1e-5), ValueError,
     r"^eps: expected a positive finite float, got -1e-05$"),
    ("fuse_eps_str", lambda m: m.fuse_conv_bn(W, None, B, B, None, None, eps="1e-5"), TypeError,
     r"^eps: expected a positive float, got '1e-5' \(str\)$"),
    # ---- conv2d_bn
    ("cbn_activation", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, activation="gelu"),
     ValueError, r"^activation"),
    ("cbn_activation_case", lambda m: m.conv2d_bn(X, W, None, B, B, None, None,
                                                  activation="ReLU"), ValueError, r"^activation"),
    ("cbn_running_var_len", lambda m: m.conv2d_bn(X, W, None, B, C3, None, None), ValueError,
     r"^running_var"),
    ("cbn_channels", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, groups=2), ValueError,
     r"groups=2.*channels"),
    ("cbn_x_ndim", lambda m: m.conv2d_bn(X[0], W, None, B, B, None, None), ValueError, r"^x"),
    ("cbn_stride0", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, stride=0), ValueError,
     r"^stride"),
    ("cbn_eps0", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, eps=0.0), ValueError,
     r"^eps"),
    ("cbn_x_complex", lambda m: m.conv2d_bn(X.astype(complex), W, None, B, B, None, None),
     TypeError, r"^x"),
    ("cbn_bias_len", lambda m: m.conv2d_bn(X, W, np.ones(5), B, B, None, None), ValueError,
     r"^bias: expected shape \(6,\) \(one value per channel\), got \(5,\)$"),
    ("cbn_running_mean_none", lambda m: m.conv2d_bn(X, W, None, None, B, None, None), TypeError,
     r"^running_mean: expected an array of shape \(6,\), got None$"),
    ("cbn_bn_weight_len", lambda m: m.conv2d_bn(X, W, None, B, B, C3, None), ValueError,
     r"^bn_weight: expected shape \(6,\) \(one value per channel\), got \(3,\)$"),
    ("cbn_bn_bias_len", lambda m: m.conv2d_bn(X, W, None, B, B, None, C3), ValueError,
     r"^bn_bias: expected shape \(6,\) \(one value per channel\), got \(3,\)$"),
    ("cbn_weight_ndim", lambda m: m.conv2d_bn(X, W[0], None, B, B, None, None), ValueError,
     r"^weight: expected a 4-D array, got a 3-D array"),
    ("cbn_kernel_too_large", lambda m: m.conv2d_bn(np.ones((1, 4, 2, 2)), W, None, B, B, None,
                                                   None),
     ValueError, r"^x: calculated padded input size per channel \(2 x 2\) is smaller"),
    ("cbn_same_stride2", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, stride=2,
                                               padding="same"), ValueError,
     r"^padding: 'same' is not supported for strided convolutions"),
    ("cbn_padding_neg", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, padding=-1),
     ValueError, r"^padding: expected an int >= 0, got -1$"),
    ("cbn_groups0", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, groups=0), ValueError,
     r"^groups: expected a positive int, got 0$"),
    ("cbn_dilation0", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, dilation=0),
     ValueError, r"^dilation: expected a positive int, got 0$"),
    ("cbn_eps_nan", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, eps=float("nan")),
     ValueError, r"^eps: expected a positive finite float, got nan$"),
    ("cbn_eps_str", lambda m: m.conv2d_bn(X, W, None, B, B, None, None, eps="0.1"), TypeError,
     r"^eps: expected a positive float, got '0.1' \(str\)$"),
    ("cbn_running_var_complex", lambda m: m.conv2d_bn(X, W, None, B, B.astype(complex), None,
                                                      None), TypeError,
     r"^running_var: expected a real numeric array, got dtype complex128"),
    ("cbn_bn_bias_object", lambda m: m.conv2d_bn(X, W, None, B, B, None, B.astype(object)),
     TypeError, r"^bn_bias: expected a real numeric array, got dtype object"),
    ("cbn_x_string", lambda m: m.conv2d_bn(X.astype(str), W, None, B, B, None, None), TypeError,
     r"^x: expected a real numeric array, got dtype <U"),
    ("cbn_x_channels", lambda m: m.conv2d_bn(X[:, :3], W, None, B, B, None, None), ValueError,
     r"^x: given groups=1, weight of size \[6, 4, 3, 3\], expected input\[2, 3, 6, 6\] to "
     r"have 4 channels, but got 3 channels instead$"),
    ("cbn_activation_none_str", lambda m: m.conv2d_bn(X, W, None, B, B, None, None,
                                                      activation="none"), ValueError,
     r"^activation: expected one of None, 'relu', got 'none'$"),
]


@pytest.mark.parametrize("module", ["fast", "reference"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_argument(module, case):
    _, fn, exc, match = case
    with pytest.raises(exc, match=match):
        fn(fc if module == "fast" else fc.reference)


# ---------------------------------------------------------------------------
# fast-only arguments: algorithm= and out=

def _out_cases():
    y = np.empty((2, 6, 4, 4))
    sq = np.ones((1, 6, 4, 4))                       # conv2d(sq, 1x1 6->6) has sq's shape
    w11 = np.ones((6, 6, 1, 1))
    buf = np.zeros(2 * sq.size)
    x_in_buf = buf[:sq.size].reshape(sq.shape)
    overlapping = buf[sq.size // 2: sq.size // 2 + sq.size].reshape(sq.shape)
    wbuf = np.ones(W.size)
    w_in_out = wbuf.reshape(W.shape)
    out_over_w = wbuf[:y.size].reshape(y.shape)
    out_flat = np.empty(y.size)
    cases = [
        ("algorithm_unknown", lambda: fc.conv2d(X, W, algorithm="fft"), ValueError, r"^algorithm"),
        ("algorithm_none", lambda: fc.conv2d(X, W, algorithm=None), ValueError, r"^algorithm"),
        ("algorithm_case", lambda: fc.conv2d(X, W, algorithm="Direct"), ValueError, r"^algorithm"),
        ("backward_algorithm", lambda: fc.conv2d_backward(Y, X, W, algorithm="winograd"),
         ValueError, r"^algorithm"),
        ("cbn_algorithm", lambda: fc.conv2d_bn(X, W, None, B, B, None, None, algorithm="gemm"),
         ValueError, r"^algorithm"),
        ("out_shape", lambda: fc.conv2d(X, W, out=np.empty((2, 6, 4, 5))), ValueError,
         r"^out: expected shape \(2, 6, 4, 4\)"),
        ("out_dtype", lambda: fc.conv2d(X, W, out=np.empty(y.shape, np.float32)), TypeError,
         r"^out: expected dtype float64"),
        ("out_dtype_f32", lambda: fc.conv2d(X.astype(np.float32), W.astype(np.float32), out=y),
         TypeError, r"^out: expected dtype float32"),
        ("out_noncontiguous", lambda: fc.conv2d(X, W, out=np.empty((2, 6, 4, 8))[..., ::2]),
         ValueError, r"^out: .*C-contiguous"),
        ("out_fortran", lambda: fc.conv2d(X, W, out=np.asfortranarray(y)), ValueError,
         r"^out: .*C-contiguous"),
        ("out_readonly", lambda: fc.conv2d(X, W, out=_readonly(y)), ValueError,
         r"^out: .*read-only"),
        ("out_unaligned", lambda: fc.conv2d(X, W, out=np.zeros(y.nbytes + 1, np.uint8)[1:]
                                            .view(np.float64).reshape(y.shape)),
         ValueError, r"^out: expected an array aligned to its 8-byte elements, got one at"),
        ("out_list", lambda: fc.conv2d(X, W, out=y.tolist()), TypeError, r"^out"),
        ("out_is_x", lambda: fc.conv2d(sq, w11, out=sq), ValueError, r"^out: .*input x"),
        ("out_overlaps_x", lambda: fc.conv2d(x_in_buf, w11, out=overlapping), ValueError,
         r"^out: .*input x"),
        ("cbn_out_shape", lambda: fc.conv2d_bn(X, W, None, B, B, None, None, out=y[:1].copy()),
         ValueError, r"^out"),
        ("cbn_out_readonly", lambda: fc.conv2d_bn(X, W, None, B, B, None, None,
                                                  out=_readonly(y)), ValueError, r"^out"),
        ("cbn_out_is_x", lambda: fc.conv2d_bn(sq, w11, None, B, B, None, None, out=sq),
         ValueError, r"^out: .*input x"),
        ("out_int", lambda: fc.conv2d(X, W, out=np.empty(y.shape, np.int64)), TypeError,
         r"^out: expected dtype float64 \(the result's\), got int64$"),
        ("out_ndim", lambda: fc.conv2d(X, W, out=np.empty(y.size)), ValueError,
         r"^out: expected shape \(2, 6, 4, 4\), got \(192,\)$"),
        ("out_overlaps_weight", lambda: fc.conv2d(X, w_in_out, out=out_over_w), ValueError,
         r"^out: expected an array sharing no memory with any input, got one that overlaps "
         r"the input weight$"),
        ("out_overlaps_bias", lambda: fc.conv2d(X, W, out_flat[:6], out=out_flat.reshape(y.shape)),
         ValueError, r"^out: .*overlaps the input bias$"),
        ("cbn_out_dtype", lambda: fc.conv2d_bn(X, W, None, B, B, None, None,
                                               out=np.empty(y.shape, np.float32)), TypeError,
         r"^out: expected dtype float64 \(the result's\), got float32$"),
        ("cbn_out_dtype_f32", lambda: fc.conv2d_bn(X.astype(np.float32), W.astype(np.float32),
                                                   None, B, B, None, None, out=y), TypeError,
         r"^out: expected dtype float32 \(the result's\), got float64$"),
        ("cbn_out_noncontiguous", lambda: fc.conv2d_bn(X, W, None, B, B, None, None,
                                                       out=np.empty((2, 6, 8, 4))[:, :, ::2]),
         ValueError, r"^out: expected a C-contiguous array, got a non-contiguous one"),
        ("cbn_out_overlaps_running_mean", lambda: fc.conv2d_bn(
            X, W, None, out_flat[:6], B, None, None, out=out_flat.reshape(y.shape)),
         ValueError, r"^out: .*overlaps the input running_mean$"),
        ("cbn_out_overlaps_bn_bias", lambda: fc.conv2d_bn(
            X, W, None, B, B, None, out_flat[-6:], out=out_flat.reshape(y.shape)),
         ValueError, r"^out: .*overlaps the input bn_bias$"),
    ]
    return cases


OUT_CASES = _out_cases()


@pytest.mark.parametrize("case", OUT_CASES, ids=[c[0] for c in OUT_CASES])
def test_bad_fast_only_argument(case):
    _, fn, exc, match = case
    with pytest.raises(exc, match=match):
        fn()


def test_set_num_threads_beyond_a_c_int():
    n = fc.get_num_threads()
    try:
        with pytest.raises(ValueError,
                           match=r"^n: expected an int <= 2147483647, got 1099511627776$"):
            fc.set_num_threads(2**40)
    finally:
        fc.set_num_threads(n)
    assert fc.get_num_threads() == n


@pytest.mark.parametrize("op", ["max", "max_dilated_ceil", "avg", "shape"])
def test_huge_pooling_window_is_not_looped_over(op):
    """Validating a window of 2**40 taps (half of it padding) takes no time:
    no Python loop over the taps or the padding (it used to hang).  The
    fast kernels (the reference would allocate the window) see one input
    value in it."""
    x = np.full((1, 1, 1, 1), 3.0)
    kw = dict(kernel_size=(2**40, 1), padding=(2**39, 0))
    if op == "max":
        assert np.array_equal(fc.max_pool2d(x, **kw), x)
    elif op == "max_dilated_ceil":
        # dilation 2 > the input's height, ceil_mode: tap 2**38 is x[0]
        y = fc.max_pool2d(x, **kw, stride=(2**40, 1), dilation=(2, 1), ceil_mode=True)
        assert np.array_equal(y, x)
    elif op == "avg":
        assert np.array_equal(fc.avg_pool2d(x, **kw, count_include_pad=False), x)
    else:
        assert shapes.pool2d_output_shape(x.shape, **kw) == (1, 1, 1, 1)


def test_out_in_same_buffer_without_overlap_is_fine():
    buf = np.zeros(2 * 96)
    x = buf[:96].reshape(1, 6, 4, 4)
    x[...] = np.arange(96).reshape(1, 6, 4, 4)
    out = buf[96:].reshape(1, 6, 4, 4)
    w = np.eye(6).reshape(6, 6, 1, 1)
    assert fc.conv2d(x, w, out=out) is out
    assert np.array_equal(out, x)


# ---------------------------------------------------------------------------
# shapes and receptive fields

SHAPE_CASES = [
    ("conv_shape_input_len", lambda: shapes.conv2d_output_shape((1, 3, 8), (4, 3, 3, 3)),
     ValueError, r"^input_shape"),
    ("conv_shape_weight_int", lambda: shapes.conv2d_output_shape((1, 3, 8, 8), 3), TypeError,
     r"^weight_shape"),
    ("conv_shape_input_float", lambda: shapes.conv2d_output_shape((1, 3, 8.0, 8), (4, 3, 3, 3)),
     TypeError, r"^input_shape\[2\]"),
    ("conv_shape_channels", lambda: shapes.conv2d_output_shape((1, 3, 8, 8), (4, 2, 3, 3)),
     ValueError, r"groups=1.*channels"),
    ("conv_shape_same_stride", lambda: shapes.conv2d_output_shape((1, 3, 8, 8), (4, 3, 3, 3),
                                                                  stride=2, padding="same"),
     ValueError, r"^padding"),
    ("conv_shape_kernel_too_large", lambda: shapes.conv2d_output_shape((1, 1, 2, 2),
                                                                       (1, 1, 3, 3)),
     ValueError, r"^input_shape"),
    ("pool_shape_too_small", lambda: shapes.pool2d_output_shape((1, 1, 2, 2), 3), ValueError,
     r"^input_shape"),
    ("flops_dilation0", lambda: shapes.conv2d_flops((1, 3, 8, 8), (4, 3, 3, 3), dilation=0),
     ValueError, r"^dilation"),
    ("pool_shape_padding", lambda: shapes.pool2d_output_shape((1, 3, 8, 8), 2, padding=2),
     ValueError, r"^padding"),
    ("pool_shape_input_neg", lambda: shapes.pool2d_output_shape((1, 3, -8, 8), 2), ValueError,
     r"^input_shape\[2\]"),
    ("params_groups", lambda: shapes.conv2d_params(6, 9, 3, groups=4), ValueError, r"^groups"),
    ("params_in0", lambda: shapes.conv2d_params(0, 9, 3), ValueError, r"^in_channels"),
    ("params_out_float", lambda: shapes.conv2d_params(3, 9.0, 3), TypeError, r"^out_channels"),
    ("params_kernel0", lambda: shapes.conv2d_params(3, 9, (3, 0)), ValueError,
     r"^kernel_size\[1\]"),
    ("params_bias_int", lambda: shapes.conv2d_params(3, 9, 3, bias=1), TypeError, r"^bias"),
    ("rf_layer_len", lambda: shapes.receptive_field([(3, 1), (3,)]), ValueError,
     r"^layers\[1\]"),
    ("rf_layer_int", lambda: shapes.receptive_field([3]), ValueError, r"^layers\[0\]"),
    ("rf_stride0", lambda: shapes.receptive_field([(3, 0)]), ValueError, r"^layers\[0\] stride"),
    ("rf_kernel_bool", lambda: shapes.receptive_field([(True, 1)]), TypeError,
     r"^layers\[0\] kernel"),
    ("rf_dilation0", lambda: shapes.receptive_field([(3, 1, 0)]), ValueError,
     r"^layers\[0\] dilation"),
]


@pytest.mark.parametrize("case", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_bad_shapes_argument(case):
    _, fn, exc, match = case
    with pytest.raises(exc, match=match):
        fn()


# ---------------------------------------------------------------------------
# validation comes before any write

def test_batch_norm_running_stats_untouched_on_error(api):
    rm, rv = np.zeros(3), np.ones(3)
    for bad in (dict(weight=np.ones(4)), dict(bias=np.ones(2)), dict(eps=0.0),
                dict(momentum=2.0), dict(weight=np.ones(3, complex))):
        kw = dict(training=True, momentum=0.5)
        kw.update(bad)
        with pytest.raises((ValueError, TypeError)):
            api.batch_norm(np.arange(36.0).reshape(2, 3, 2, 3), rm, rv, **kw)
        assert np.array_equal(rm, np.zeros(3)) and np.array_equal(rv, np.ones(3)), bad


def test_out_untouched_on_error(isa):
    out = np.full((2, 6, 4, 4), 7.0)
    with pytest.raises(ValueError, match=r"^bias"):
        fc.conv2d(X, W, np.ones(5), out=out)
    with pytest.raises(ValueError, match=r"^stride"):
        fc.conv2d(X, W, stride=0, out=out)
    with pytest.raises(ValueError, match=r"^running_var"):
        fc.conv2d_bn(X, W, None, B, C3, None, None, out=out)
    assert np.all(out == 7.0)


def test_max_pool2d_backward_bad_indices_leave_inputs_alone(api):
    g = np.ones((1, 1, 2, 2))
    idx = np.array([[[[0, 3], [15, 16]]]])
    with pytest.raises(ValueError, match=r"^indices"):
        api.max_pool2d_backward(g, idx, (1, 1, 4, 4))
    assert np.array_equal(idx, [[[[0, 3], [15, 16]]]]) and np.all(g == 1)


# conv_params remembers validated geometries by their arguments; a value
# equal to a remembered one but of another type (True == 1, 1.0 == 1) must
# still be validated, and still be refused.
@pytest.mark.parametrize("kw, message", [
    (dict(stride=True, padding=1), r"stride: expected an int or a pair of ints, got True \(bool\)"),
    (dict(stride=1, padding=(True, 1)), r"padding\[0\]: expected an int, got True \(bool\)"),
    (dict(stride=1, padding=1.0), r"padding: expected an int or a pair of ints, got 1\.0"),
    (dict(stride=1, padding=1, groups=True), r"groups: expected an int, got True \(bool\)"),
])
def test_remembered_geometry_keeps_types_apart(kw, message):
    x, w = np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3))
    for good in (dict(stride=1, padding=1), dict(stride=1, padding=(1, 1)), dict(groups=1, padding=1)):
        fc.conv2d(x, w, **good)
    with pytest.raises(TypeError, match=message):
        fc.conv2d(x, w, **kw)

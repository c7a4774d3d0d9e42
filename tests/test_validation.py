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
    # the kernels index in int64: a padded input past 2**62 - 1 is refused
    # (an empty batch would otherwise carry it to them)
    ("conv_padded_too_large", lambda m: m.conv2d(X[:0], W, padding=2**61), ValueError,
     r"^x: the padded input height \(6 \+ padding 2305843009213693952 \+ 2305843009213693952\)"),
    ("conv_padded_too_large_w", lambda m: m.conv2d(X[:0], W, padding=((0, 0), (2**64, 0))),
     ValueError, r"^x: the padded input width"),
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
    ("max_padded_too_large", lambda m: m.max_pool2d(PX[:0], 2**62, padding=2**61), ValueError,
     r"^x: the padded input height"),
    ("max_x_string", lambda m: m.max_pool2d(np.array([[[["a"]]]]), 1), TypeError, r"^x"),
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
     r"^input_shape: the padded input height"),
    ("avgb_divisor0", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, divisor_override=0),
     ValueError, r"^divisor_override"),
    ("avgb_count_none", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, count_include_pad=None),
     TypeError, r"^count_include_pad"),
    ("avgb_padding_half", lambda m: m.avg_pool2d_backward(PY, PX.shape, 2, padding=2),
     ValueError, r"^padding"),
    ("avgb_grad_string", lambda m: m.avg_pool2d_backward(PY.astype(str), PX.shape, 2),
     TypeError, r"^grad_output"),
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
    ]
    return cases


OUT_CASES = _out_cases()


@pytest.mark.parametrize("case", OUT_CASES, ids=[c[0] for c in OUT_CASES])
def test_bad_fast_only_argument(case):
    _, fn, exc, match = case
    with pytest.raises(exc, match=match):
        fn()


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

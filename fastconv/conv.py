"""conv2d and its relatives: the fast public API.

Each function validates its arguments once (fastconv._params), allocates the
output, picks the algorithm and calls the C kernels through the shim.
"""
import numpy as np

from . import _kernels
from . import _params
from . import reference


def choose_algorithm(p, dtype, backward=False, input_grad=False):
    """"direct", "im2col", "winograd" or "streamed" for `algorithm="auto"`,
    from the benchmark suite.

    Forward (backward=False): the direct micro-kernels beat im2col + BLAS
    wherever they fill their vector lanes: on float32 with AVX2 or AVX-512,
    stride 1 (or 2 with AVX-512's permute loads), when at least 60% of the
    lanes hold real outputs (the C side reports it for the walk it would
    take: lanes along rows, along the padded-width plane, along the output
    plane for few input channels, or along output channels for small
    images) and, without the channels-last kernel (float32 AVX-512), each
    weight meets enough pixels to pay for reordering the weights; depthwise
    layers always, since im2col's GEMM there has a single row.  The rest
    goes to im2col.  float64 follows the
    same rules where it has vector kernels (AVX-512, no stride-2 loads).

    Dense 3x3 layers of stride 1 (dilated ones too, by phases) take
    Winograd F(2x2, 3x3) ("winograd", float32 with AVX-512: 16
    multiplications per 2x2 outputs where the direct kernels make 36;
    1.25-1.65x faster than them on the suite's 3x3 layers of 64-256
    channels, CIFAR's 8x8 images included) when its tiles fill 75% of the
    lanes, there are 32 input channels or more (with 16 the transforms take
    a third of the time: 0.95x) and each weight meets enough pixels to pay
    for transforming the weights on every call: 512, or 1024 with 32
    channels (28x28 images of 64-512 channels: 1.1-1.4x; 24x24 with 32
    channels: a tie).  Dense 5x5 layers of stride 1 (dilated along rows)
    take F(2x2, 5x5) (36 multiplications where direct makes 100) with
    16-128 channels and 512-2048 pixels (_winograd_pays): LeNet's second layer
    1.6x the direct kernels (its blocks of tile rows run on into the next
    image), 16-128 channels 1.1-1.95x.

    Deep 3x3 layers of few pixels (VGG's 512 channels at 14x14,
    ResNet-50's at 7x7) take a Winograd whose lanes hold output channels
    and which transforms the weights block by block as it uses them
    (_few_tile_winograd_pays).  Dense 3x3 and 7x7 layers of stride 2 take
    the same walk with 25 multiplications per 2x2 outputs where the direct
    kernels make 36 (121 where they make 196), ResNet-50's stem included
    (_strided_winograd_pays).

    Other layers whose weights outweigh their pixels (ResNet-50's last
    stage: 7x7 images under 1-9 MB of weights) take the streamed algorithm
    ("streamed", float32 with AVX-512: an im2col GEMM with
    pixels in the lanes that reads the weights as stored, where the direct
    kernels would reorder every weight on every call for a few dozen
    pixels): column stride 1 or 2, at most 200 pixels (a 14x14 image) and
    256 KB of weights.  On 7x7 images it is 1.2-1.6x the direct kernels
    (512 and 256 channels, 3x3; 1x1 layers of 2048 channels 1.5x); at 196
    pixels 1.0-1.2x; at 784 it loses to Winograd (0.65x).  With stride 2
    (ResNet-50's downsampling 3x3 and 1x1 layers, 64-1024 channels) it is
    1.1-1.9x the direct kernels; at 784 pixels it loses some (0.93x).  In
    conv2d_backward it computes such a stride-1 layer's input gradient
    beside im2col's weight gradient, where that pays (_streamed_input_pays).

    input_grad=True: `p` is an input gradient's flipped convolution, whose
    weights are flipped and transposed in a pass of their own first.

    Weight gradient (backward=True): the direct kernels' product over pixels
    wins once there are enough pixels to amortise each run's accumulator
    traffic (a few hundred) and the channels fill at least half of its
    tile; a single 7x7 or 14x14 image with megabytes of weights, or a layer
    with one input channel, is a better BLAS problem."""
    isa = _kernels.isa_active()
    depthwise = p.groups == p.C and p.C > 1
    # float64 has its direct kernels at AVX-512 only (and none depthwise)
    vector = isa == "avx512" or (isa == "avx2" and dtype == np.float32)
    if depthwise:
        return "direct" if dtype == np.float32 else "im2col"
    if not vector:
        return "im2col"
    if backward:
        enough = p.N * p.P * p.Q >= 256
        filled = _kernels.conv2d_wgrad_efficiency(p, dtype) >= 0.5
        return "direct" if enough and filled else "im2col"
    if dtype == np.float32 and isa == "avx512" and (
            _few_tile_winograd_pays(p) or _strided_winograd_pays(p)):
        return "winograd"
    if (dtype == np.float32 and isa == "avx512" and p.groups == 1 and p.stride[1] <= 2
            and p.N * p.P * p.Q <= 200
            and p.K * p.C * p.R * p.S >= 65536):
        return "streamed"
    if (dtype == np.float32 and _winograd_pays(p)
            and _kernels.conv2d_winograd_efficiency(p, dtype) >= 0.75):
        return "winograd"
    if p.stride[1] > 2 or (p.stride[1] == 2 and (isa != "avx512" or dtype != np.float32)):
        return "im2col"
    if p.N * p.P * p.Q < 128 and (input_grad or not (isa == "avx512" and dtype == np.float32)):
        # Each weight meets fewer than 128 pixels: reordering the weights
        # for the micro-kernels costs more than BLAS using them as they are
        # (except for the channels-last kernel, which packs each block of
        # weights into cache just before using it: 2x faster than im2col on
        # a 7x7 image with 512 channels; but not for an input gradient,
        # whose weights are first flipped and transposed in a separate pass).
        return "im2col"
    return "direct" if _kernels.conv2d_direct_efficiency(p, dtype) >= 0.6 else "im2col"


def _tiles(p):
    """2x2 output tiles over the batch (Winograd's unit of work)."""
    return p.N * ((p.P + 1) // 2) * ((p.Q + 1) // 2)


def _few_tile_winograd_pays(p):
    """Dense undilated 3x3 layers of stride 1 with at most 256 2x2 tiles,
    128 input channels or more and 64 output channels or more: the C side's
    Winograd of few tiles (output channels in the lanes, the weights
    transformed block by block just before the GEMMs use them) beats the
    streamed GEMM and the tile-lane Winograd.  Against the streamed GEMM:
    512 channels at 14x14 1.4-1.6x, 256 at 14x14 1.4x, 128-512 at 7x7
    1.0-1.1x (1024 at 7x7: a tie, both reading 38 MB of weights); against
    the tile-lane Winograd, 196 tiles of 128-256 channels 1.25-1.3x."""
    return (p.groups == 1 and (p.R, p.S) == (3, 3) and p.stride == (1, 1)
            and p.dilation == (1, 1) and p.C >= 128 and p.K >= 64 and _tiles(p) <= 256)


def _strided_winograd_pays(p):
    """Dense undilated layers of stride 2 that the C side's Winograd of few
    tiles for stride 2 runs faster than the direct kernels (each row and
    column's two outputs from three points, the middle one shared, by
    additions alone):
    - 3x3 filters (25 products per 2x2 outputs where the direct sum makes
      36) with 64-256 tiles and 32 input channels or more: ResNet-50's 128
      channels at 56x56 -> 28x28 1.24x, 32-256 channels at 32x32-56x56
      1.1-1.3x; at 16 tiles (512 channels, 7x7 outputs) transforming the
      weights costs more than the multiplications it saves (0.5x the
      streamed GEMM), at 49 a tie with it;
    - 7x7 filters (121 products where it makes 196) with 64 output
      channels and at most 16 input channels, as in ResNet's stem: 3
      channels at 224x224 1.10-1.14x, 16 at 112x112 1.05x; 32 channels
      0.94x, and fewer output channels leave the lanes of 64 part empty
      (32: 0.6x)."""
    if p.groups != 1 or p.stride != (2, 2) or p.dilation != (1, 1) or p.R != p.S:
        return False
    tiles = _tiles(p)
    if p.R == 3:
        return p.C >= 32 and 64 <= tiles <= 256
    return p.R == 7 and p.K == 64 and p.C <= 16 and tiles >= 64


def _winograd_pays(p):
    """Enough channels and pixels for Winograd's transforms (of the input
    and output per pixel and channel, of the weights per call) to cost less
    than the multiplications they save: 36 of 100 for 5x5 filters, where 16
    input channels do (1.1-1.4x the direct kernels on 14x14 to 112x112
    images; 8 channels 1.1x, 6 channels 0.75x) with pixels enough for the
    output channels (16 output channels need 2048: 1024 pixels ran 0.84x,
    with few items each thread transforms the input again), and at most 128
    (the 6x6 transforms' rounding grows with the sum: against float64, 4e-6
    of the largest output at 32 channels, 5e-6 at 64, 9e-6 at 256, 1e-5 at
    512, where the direct kernels' is 1-4e-6); 16 of 36 for 3x3, which
    needs 32 channels."""
    pixels = p.N * p.P * p.Q
    if p.R == 5:
        return 16 <= p.C <= 128 and pixels >= max(512, 32768 // p.K)
    return p.C >= 32 and pixels >= max(512, 32768 // p.C)


def choose_backward_input_algorithm(p, dtype):
    """The input gradient of a stride-1 convolution is a stride-1
    convolution of grad_output with the flipped weight, which the direct
    kernels run as fast as the forward.  A strided one ("im2col" here) runs
    by phases in the direct path and by col2im in im2col's, both fine:
    conv2d_backward lets the weight gradient choose."""
    if p.stride != (1, 1):
        return "im2col"
    if p.groups == p.C and p.C > 1:
        return "direct"
    flipped = _flipped(p)
    if flipped is None:
        return "im2col"
    return choose_algorithm(flipped, dtype, input_grad=True)


def _flipped(p):
    """The input gradient's convolution of a stride-1 layer (grad_output
    with the weight turned and transposed), or None where its padding would
    be negative."""
    if not _flip_padding_ok(p):
        return None
    return _params.conv_params(
        p.output_shape, (p.C, p.K // p.groups, p.R, p.S), 1,
        ((p.dilation[0] * (p.R - 1) - p.padding[0][0],
          p.dilation[0] * (p.R - 1) - p.padding[0][1]),
         (p.dilation[1] * (p.S - 1) - p.padding[1][0],
          p.dilation[1] * (p.S - 1) - p.padding[1][1])),
        p.dilation, p.groups)


def _streamed_input_pays(p):
    """Whether the streamed GEMM's input gradient beats im2col's beside the
    BLAS weight gradient: its weights are flipped and transposed first (a
    pass over them), so it needs pixels enough for the weights, at most 64
    KB of weights a pixel, and a kernel larger than 1x1 (im2col's 1x1 path
    is a plain GEMM).  Backward ms, streamed / im2col: 512 channels at 14x14
    8.0 / 9.7, 256 at 7x7 0.55 / 0.70, 256 at 14x14 1.9 / 2.4; 512 at 7x7
    (192 KB a pixel) 3.1 / 3.0, 2048 -> 512 1x1 at 7x7 1.8 / 1.1."""
    return p.R * p.S > 1 and p.K * p.C * p.R * p.S * 4 <= 65536 * p.N * p.P * p.Q


def _flip_padding_ok(p):
    """The flipped convolution's padding is non-negative (padding no larger
    than the dilated kernel's reach)."""
    return all(p.dilation[a] * ((p.R, p.S)[a] - 1) >= max(p.padding[a]) for a in (0, 1))


def _run_conv(x, weight, bias, p, algorithm, out, relu=False, wscale=None):
    """The convolution itself, on validated arrays; writes into `out` when
    given.  wscale: None, or float64 factors per output channel that the
    kernels multiply the weight by as they pack it (a folded batch norm)."""
    if algorithm == "reference":
        if wscale is not None:
            weight = _scaled_weight(weight, wscale, weight.dtype)
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
    return _kernels.conv2d(p, algorithm, x, weight, bias, relu, y, wscale)


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
    grad_bias is grad_output summed over N, P and Q.  "direct" computes a
    strided layer's input gradient as one stride-1 convolution per phase of
    the input (the taps that reach it; im2col's GEMM and col2im where a
    phase would start past grad_output's edge).  With "auto" the input
    gradient (itself a convolution of grad_output) and the weight gradient
    take the algorithm that suits both; where their choices differ, im2col, whose column
    matrix serves both (computing them apart lost on vgg_512x14: 0.7-0.85x
    torch against 1.0-1.6x for im2col alone in four runs).  A strided
    layer takes the weight gradient's choice (r50_3x3s2_128: direct 1.7 ms,
    im2col 2.9, torch autograd 1.6-1.7).
    A stride-1 input gradient that suits Winograd (choose_algorithm) takes
    it beside the direct weight gradient; one of few tiles (deep layers of
    small images, _few_tile_winograd_pays) beside im2col's weight gradient,
    reading the weight as stored (vgg_512x14's backward 9.3 ms -> 4.5)."""
    algorithm = _params.algorithm_arg(algorithm)
    grad_output, x, weight, p, dtype = _params.conv_backward_inputs(
        grad_output, x, weight, stride, padding, dilation, groups)
    if algorithm == "reference":
        return reference.conv2d_backward_core(grad_output, x, weight, p)
    gx = np.empty(p.input_shape, dtype)
    gw = np.empty(p.weight_shape, dtype)
    gb = np.empty((p.K,), dtype)
    if algorithm == "auto":
        for_input = choose_backward_input_algorithm(p, dtype)
        for_weight = choose_algorithm(p, dtype, backward=True)
        if for_input == "winograd" and for_weight == "direct":
            algorithm = "winograd"   # direct weight gradient, Winograd input gradient
        elif for_weight == "im2col" and (
                (for_input == "streamed" and _streamed_input_pays(p))
                or (for_input == "winograd" and _few_tile_winograd_pays(_flipped(p)))):
            # im2col's weight gradient, the input gradient by the streamed
            # GEMM or (where it applies) Winograd of few tiles
            algorithm = "streamed"
        elif p.stride != (1, 1):
            algorithm = for_weight   # the input gradient is im2col's either way
        else:
            for_input = "direct" if for_input == "winograd" else for_input
            algorithm = for_input if for_input == for_weight else "im2col"
    _kernels.conv2d_backward(p, algorithm, grad_output, x, weight, gx, gw, gb)
    return gx, gw, gb


def fuse_conv_bn(weight, bias, running_mean, running_var, bn_weight, bn_bias,
                 eps=1e-5):
    """Fold inference batch norm into the convolution before it.

    w' = w * gamma / sqrt(var + eps);  b' = (b - mean) * gamma / sqrt(var + eps) + beta,
    computed in float64 and returned in the weight's dtype.  bias, bn_weight
    and bn_bias may be None (0, 1 and 0)."""
    weight, bias, rm, rv, g, beta, eps = _params.fuse_inputs(
        weight, bias, running_mean, running_var, bn_weight, bn_bias, eps)
    return _fold(weight, bias, rm, rv, g, beta, eps,
                 _params.float_dtype_of(weight.dtype, "weight"))


def _fold(weight, bias, mean, var, gamma, beta, eps, dtype):
    """fuse_conv_bn on validated arguments, returned in `dtype`: the same
    bits as fastconv.reference.fuse_conv_bn_core."""
    scale, fused_bias = _fold_factors(weight.shape[0], bias, mean, var, gamma, beta, eps)
    return _scaled_weight(weight, scale, dtype), fused_bias.astype(dtype)


def _fold_factors(K, bias, mean, var, gamma, beta, eps):
    """The folded batch norm's float64 weight factors and bias, per channel:
    gamma / sqrt(var + eps) and (bias - mean) * factor + beta, with gamma 1,
    bias and beta 0 where None; computed in C (the same bits as NumPy's
    float64 arithmetic), since six NumPy calls cost ~30 us when a large
    layer has just flushed the caches."""
    scale, fused_bias = np.empty(K), np.empty(K)
    vectors = (var, gamma, bias, mean, beta)
    if not _kernels.bn_fold_factors(*vectors, eps, scale, fused_bias):
        # strided, unaligned or of another dtype: float64 copies
        f64 = [_params.contiguous(v, np.float64) for v in vectors]
        _kernels.bn_fold_factors(*f64, eps, scale, fused_bias)
    return scale, fused_bias


def _scaled_weight(weight, scale, dtype):
    """weight[k] * scale[k] in `dtype`, each value rounded once from its
    float64 product, in one C pass (not NumPy's three over a float64 copy)."""
    K = weight.shape[0]
    w = _params.contiguous(weight, dtype)
    scaled = np.empty(w.shape, dtype)
    if w.size:
        _kernels.bn_fold_weight(K, w.size // K, w, scale, scaled)
    return scaled


def conv2d_bn(x, weight, bias, running_mean, running_var, bn_weight, bn_bias,
              stride=1, padding=0, dilation=1, groups=1, *, eps=1e-5,
              activation=None, algorithm="auto", out=None):
    """Inference conv2d -> batch_norm (running statistics) -> activation, as one
    convolution with the batch norm folded into its weight and bias.
    activation: None or "relu"."""
    relu = _params.activation_arg(activation) == "relu"
    algorithm = _params.algorithm_arg(algorithm)
    xc, w, vectors, eps, p, dtype = _params.conv_bn_inputs(
        x, weight, bias, running_mean, running_var, bn_weight, bn_bias, eps,
        stride, padding, dilation, groups)
    if out is not None:   # (the dict costs a few microseconds on every call)
        out = _params.check_out(out, p.output_shape, dtype, {
            "x": x, "weight": weight, "bias": bias, "running_mean": running_mean,
            "running_var": running_var, "bn_weight": bn_weight, "bn_bias": bn_bias})
    # Folded in float64 and rounded once, to the dtype the convolution runs
    # in, by the kernels as they pack the weight: no folded copy is made.
    scale, fused_bias = _fold_factors(p.K, *vectors, eps)
    return _run_conv(xc, w, fused_bias.astype(dtype), p, algorithm, out, relu=relu,
                     wscale=scale)

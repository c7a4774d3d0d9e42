"""fastconv.nn: every layer's backward against central finite differences in
float64; a whole network's outputs, gradients and running statistics
against PyTorch autograd with copied weights; cross_entropy and SGD against
PyTorch's; fuse() keeping predictions; state_dict names and round trips;
the Module machinery, the caches and argument validation.

Finite-difference budgets (as in test_gradients.py, from h and the
function, not from observed results), on L = sum(layer(x) * G):
- layers linear in the perturbed array (Conv2d, Linear, pooling with no
  ties, Flatten, Dropout with a fixed mask, Add, ReLU away from its kink)
  have no truncation error: rounding ~1e-16 |L| / h with h = 1e-3 is below
  1e-11, budget 1e-8;
- BatchNorm2d in training mode, cross_entropy and networks containing them
  are smooth but non-linear: truncation ~h^2 and rounding ~1e-16 |L| / h with
  h = 1e-5 are below ~1e-9, budget 1e-6.  Inputs are drawn so that no ReLU
  or max-pool decision sits within h of a tie.
"""
import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import fastconv as fc
from fastconv import nn
from _helpers import (RTOL, assert_close, assert_grad_close, assert_identical,
                      distinct, numeric_grad, randn, rng_for, t64)

LINEAR_H, LINEAR_TOL = 1e-3, 1e-8
SMOOTH_H, SMOOTH_TOL = 1e-5, 1e-6
F64 = np.float64


# ---------------------------------------------------------------------------
# finite differences of a layer

def fd_check(layer, x, h, tol, seed=0, before_forward=None):
    """layer.backward(G) against central differences of sum(layer(x) * G),
    for the input and for every Parameter; also that backward accumulates
    into .grad (a second backward doubles it)."""
    prepare = before_forward or (lambda: None)
    rng = rng_for(seed)
    prepare()
    G = randn(rng, layer(x).shape, F64)

    def loss_of_input(v):
        prepare()
        return float(np.sum(layer(v) * G))

    layer.zero_grad()
    prepare()
    layer(x)
    gx = layer.backward(G)
    analytic = {name: p.grad.copy() for name, p in layer.named_parameters()}
    assert_grad_close(gx, numeric_grad(loss_of_input, x, h), tol, "grad_input")

    for name, p in layer.named_parameters():
        original = p.data.copy()

        def loss_of_param(v, p=p):
            p.data[...] = v
            prepare()
            return float(np.sum(layer(x) * G))

        numeric = numeric_grad(loss_of_param, original, h)
        p.data[...] = original
        assert_grad_close(analytic[name], numeric, tol, f"grad of {name}")

    # .grad accumulates: one more backward after the same forward doubles it
    prepare()
    layer(x)
    layer.backward(G)
    for name, p in layer.named_parameters():
        assert_close(p.grad, 2 * analytic[name], F64, f"accumulated grad of {name}")
    return gx


def spread(rng, shape, gap=0.05):
    """float64 values, all distinct by `gap` and none within gap/2 of zero
    (no ReLU kink or max-pool tie within reach of h)."""
    v = distinct(rng, shape, F64, gap)
    return v + np.where(v >= 0, gap / 2, -gap / 2)


CONV_CASES = [
    pytest.param(dict(x=(2, 3, 6, 5), args=(3, 4, 3), kw=dict(padding=1)), id="3x3_pad1"),
    pytest.param(dict(x=(1, 4, 7, 8), args=(4, 6, (3, 2)),
                      kw=dict(stride=(2, 1), padding=((1, 0), (2, 1)), groups=2)),
                 id="groups_asym_pad"),
    pytest.param(dict(x=(2, 3, 8, 7), args=(3, 6, 3),
                      kw=dict(stride=2, padding=2, dilation=2, groups=3, bias=False)),
                 id="depthwise_dil2_s2_nobias"),
    pytest.param(dict(x=(1, 2, 5, 6), args=(2, 3, 2), kw=dict(padding="same")), id="same_even"),
    pytest.param(dict(x=(2, 5, 4, 4), args=(5, 3, 1), kw=dict(stride=2)), id="1x1_s2"),
]


@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_layer_fd(case, algorithm):
    layer = nn.Conv2d(*case["args"], **case["kw"], dtype=F64, rng=1, algorithm=algorithm)
    if layer.bias is not None:
        layer.bias.data[...] = rng_for(2).standard_normal(layer.out_channels)
    x = randn(rng_for(3), case["x"], F64)
    fd_check(layer, x, LINEAR_H, LINEAR_TOL)


def _bn_with_state(C, seed):
    rng = rng_for(seed)
    bn = nn.BatchNorm2d(C, dtype=F64)
    bn.weight.data[...] = rng.uniform(0.5, 2.0, C)
    bn.bias.data[...] = rng.standard_normal(C)
    bn.running_mean[...] = rng.standard_normal(C)
    bn.running_var[...] = rng.uniform(0.5, 2.0, C)
    return bn


def _bn_input(rng, shape):
    C = shape[1]
    return (rng.uniform(-2, 2, C)[None, :, None, None]
            + rng.uniform(0.5, 2, C)[None, :, None, None] * rng.standard_normal(shape))


def test_batchnorm2d_train_fd():
    bn = _bn_with_state(3, 4)
    fd_check(bn, _bn_input(rng_for(5), (3, 3, 4, 5)), SMOOTH_H, SMOOTH_TOL)


def test_batchnorm2d_eval_fd():
    bn = _bn_with_state(3, 6).eval()
    # eval mode is affine in x and in weight/bias: the linear budget holds
    fd_check(bn, _bn_input(rng_for(7), (2, 3, 3, 4)), LINEAR_H, LINEAR_TOL)


def test_relu_fd():
    fd_check(nn.ReLU(), spread(rng_for(8), (2, 3, 4, 5)), LINEAR_H, LINEAR_TOL)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=(2, 3), stride=1, dilation=(2, 1)),
], ids=["2x2", "3x3_s2_pad1_ceil", "overlapping_dilated"])
def test_maxpool2d_fd(kw):
    fd_check(nn.MaxPool2d(**kw), spread(rng_for(9), (2, 2, 7, 6)), LINEAR_H, LINEAR_TOL)


@pytest.mark.parametrize("kw", [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=1, padding=(1, 0), divisor_override=5),
], ids=["2x2", "3x3_s2_pad1_ceil_nopad", "divisor"])
def test_avgpool2d_fd(kw):
    fd_check(nn.AvgPool2d(**kw), randn(rng_for(10), (2, 3, 7, 6), F64), LINEAR_H, LINEAR_TOL)


def test_global_avgpool2d_fd():
    layer = nn.GlobalAvgPool2d()
    x = randn(rng_for(11), (2, 3, 4, 5), F64)
    assert layer(x).shape == (2, 3, 1, 1)
    fd_check(layer, x, LINEAR_H, LINEAR_TOL)


def test_flatten_fd():
    layer = nn.Flatten()
    x = randn(rng_for(12), (2, 3, 2, 4), F64)
    assert layer(x).shape == (2, 24)
    fd_check(layer, x, LINEAR_H, LINEAR_TOL)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_fd(bias):
    layer = nn.Linear(7, 4, bias=bias, dtype=F64, rng=13)
    if bias:
        layer.bias.data[...] = rng_for(14).standard_normal(4)
    fd_check(layer, randn(rng_for(15), (5, 7), F64), LINEAR_H, LINEAR_TOL)


@pytest.mark.parametrize("training", [True, False])
def test_dropout_fd(training):
    layer = nn.Dropout(0.3)
    layer.train(training)

    def same_mask():             # the same mask at every forward
        layer.rng = np.random.default_rng(16)

    fd_check(layer, randn(rng_for(17), (4, 3, 5), F64), LINEAR_H, LINEAR_TOL,
             before_forward=same_mask)


def test_add_fd():
    add = nn.Add()
    rng = rng_for(18)
    a, b = randn(rng, (2, 3, 4), F64), randn(rng, (2, 3, 4), F64)
    G = randn(rng, (2, 3, 4), F64)
    add(a, b)
    ga, gb = add.backward(G)
    assert_grad_close(ga, numeric_grad(lambda v: float(np.sum(add(v, b) * G)), a, LINEAR_H),
                      LINEAR_TOL, "grad a")
    assert_grad_close(gb, numeric_grad(lambda v: float(np.sum(add(a, v) * G)), b, LINEAR_H),
                      LINEAR_TOL, "grad b")


@pytest.mark.parametrize("cin,cout,stride", [(4, 4, 1), (3, 6, 2)],
                         ids=["identity_shortcut", "downsample"])
def test_basic_block_fd(cin, cout, stride):
    block = nn.BasicBlock(cin, cout, stride, dtype=F64, rng=19)
    for i, m in enumerate(block.modules()):
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data[...] = rng_for(20 + i).uniform(0.5, 1.5, cout)
            m.bias.data[...] = rng_for(30 + i).normal(0, 0.3, cout)
    fd_check(block, randn(rng_for(21), (2, cin, 6, 6), F64), SMOOTH_H, SMOOTH_TOL)


def test_sequential_fd():
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1, dtype=F64, rng=22), nn.BatchNorm2d(4, dtype=F64),
        nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2, stride=1), nn.Flatten(),
        nn.Dropout(0.0), nn.Linear(4 * 2 * 2, 3, dtype=F64, rng=23))
    fd_check(model, randn(rng_for(24), (3, 2, 6, 6), F64), SMOOTH_H, SMOOTH_TOL)


def test_cross_entropy_fd():
    rng = rng_for(25)
    logits = randn(rng, (6, 5), F64) * 3
    labels = rng.integers(0, 5, 6)
    loss, grad = nn.cross_entropy(logits, labels)
    assert isinstance(loss, float)
    numeric = numeric_grad(lambda v: nn.cross_entropy(v, labels)[0], logits, SMOOTH_H)
    assert_grad_close(grad, numeric, SMOOTH_TOL, "grad_logits")


# ---------------------------------------------------------------------------
# against PyTorch

def small_net(dtype, seed):
    """Every layer kind, two ways of pooling, a BasicBlock with a downsample."""
    rng = np.random.default_rng(seed)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(3, 8, 3, padding=1, dtype=dtype, rng=rng)),
        ("bn1", nn.BatchNorm2d(8, dtype=dtype)),
        ("relu1", nn.ReLU()),
        ("pool1", nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)),
        ("conv2", nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2, dtype=dtype, rng=rng)),
        ("bn2", nn.BatchNorm2d(8, momentum=0.3, dtype=dtype)),
        ("relu2", nn.ReLU()),
        ("pool2", nn.AvgPool2d(2, stride=1)),
        ("block", nn.BasicBlock(8, 12, stride=2, dtype=dtype, rng=rng)),
        ("gap", nn.GlobalAvgPool2d()),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(12, 5, dtype=dtype, rng=rng)),
    ]))


def torch_small_net(torch):
    tnn = torch.nn

    class Block(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(8, 12, 3, 2, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(12)
            self.conv2 = tnn.Conv2d(12, 12, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(12)
            self.downsample = tnn.Sequential(tnn.Conv2d(8, 12, 1, 2, bias=False),
                                             tnn.BatchNorm2d(12))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + self.downsample(x))

    return tnn.Sequential(OrderedDict([
        ("conv1", tnn.Conv2d(3, 8, 3, padding=1)),
        ("bn1", tnn.BatchNorm2d(8)),
        ("relu1", tnn.ReLU()),
        ("pool1", tnn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)),
        ("conv2", tnn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=2)),
        ("bn2", tnn.BatchNorm2d(8, momentum=0.3)),
        ("relu2", tnn.ReLU()),
        ("pool2", tnn.AvgPool2d(2, stride=1)),
        ("block", Block()),
        ("gap", tnn.AdaptiveAvgPool2d(1)),
        ("flatten", tnn.Flatten()),
        ("fc", tnn.Linear(12, 5)),
    ])).double()


def randomise_bn(model, seed):
    """Non-trivial affine parameters and running statistics."""
    rng = rng_for(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            C = m.num_features
            m.weight.data[...] = rng.uniform(0.5, 1.5, C)
            m.bias.data[...] = rng.normal(0, 0.3, C)
            m.running_mean[...] = rng.normal(0, 0.5, C)
            m.running_var[...] = rng.uniform(0.5, 2.0, C)


def torch_from(torch, model):
    """The PyTorch twin of small_net with `model`'s state, loaded strictly:
    the names and shapes of our state_dict are PyTorch's."""
    tmodel = torch_small_net(torch)
    tmodel.load_state_dict({k: t64(torch, v) if v.dtype.kind == "f" else torch.from_numpy(v)
                            for k, v in model.state_dict().items()})
    return tmodel


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_network_against_torch(torch, dtype, training):
    """Logits, loss, input gradient, every parameter gradient and (in
    training) the updated running statistics, against PyTorch in float64
    with the same weights; two steps, so that the second sees the updated
    statistics."""
    model = small_net(dtype, seed=40)
    randomise_bn(model, 41)
    tmodel = torch_from(torch, model)
    model.train(training)
    tmodel.train(training)
    rng = rng_for(42)
    tparams = dict(tmodel.named_parameters())
    for step in range(2):
        x = randn(rng, (4, 3, 11, 10), dtype)
        labels = rng.integers(0, 5, 4)
        model.zero_grad()
        tmodel.zero_grad()
        logits = model(x)
        loss, grad = nn.cross_entropy(logits, labels)
        gx = model.backward(grad)

        tx = t64(torch, x, requires_grad=True)
        tlogits = tmodel(tx)
        tloss = torch.nn.functional.cross_entropy(tlogits, torch.from_numpy(labels))
        tloss.backward()

        what = f"step {step}"
        assert_close(logits, tlogits, dtype, f"{what} logits")
        assert abs(loss - tloss.item()) <= RTOL[np.dtype(dtype)] * max(1.0, tloss.item()), \
            f"{what} loss {loss} vs {tloss.item()}"
        assert_close(gx, tx.grad, dtype, f"{what} grad input")
        names = [n for n, _ in model.named_parameters()]
        assert names == list(tparams)
        for name, p in model.named_parameters():
            assert_close(p.grad, tparams[name].grad, dtype, f"{what} grad {name}")
        tstate = tmodel.state_dict()
        for name, value in model.state_dict().items():
            if value.dtype.kind == "f":
                assert_close(value, tstate[name], dtype, f"{what} {name}")
            else:
                assert int(value) == int(tstate[name]), name


def test_cross_entropy_against_torch(torch):
    rng = rng_for(43)
    for dtype in (np.float32, np.float64):
        logits = randn(rng, (9, 7), dtype) * 4
        logits[0, 3] = 80   # large logits: the shift keeps exp finite
        labels = rng.integers(0, 7, 9)
        loss, grad = nn.cross_entropy(logits, labels)
        tl = t64(torch, logits, requires_grad=True)
        tloss = torch.nn.functional.cross_entropy(tl, torch.from_numpy(labels))
        tloss.backward()
        assert abs(loss - tloss.item()) <= RTOL[np.dtype(dtype)] * max(1.0, abs(tloss.item()))
        assert_close(grad, tl.grad, dtype, "grad_logits")


@pytest.mark.parametrize("kw", [
    dict(lr=0.1), dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9, weight_decay=1e-2),
    dict(lr=0.02, momentum=0.5, weight_decay=1e-3, nesterov=True),
], ids=["plain", "momentum", "momentum_wd", "nesterov"])
def test_sgd_against_torch(torch, kw):
    rng = rng_for(44)
    params = [nn.Parameter(randn(rng, s, F64)) for s in ((3, 4), (5,))]
    tparams = [t64(torch, p.data, requires_grad=True) for p in params]
    opt, topt = nn.SGD(params, **kw), torch.optim.SGD(tparams, **kw)
    for _ in range(4):
        for p, tp in zip(params, tparams):
            g = randn(rng, p.shape, F64)
            p.grad[...] = g
            tp.grad = t64(torch, g)
        opt.step()
        topt.step()
        for p, tp in zip(params, tparams):
            assert_close(p.data, tp.detach(), F64, "parameter")
    opt.zero_grad()
    assert all(not p.grad.any() for p in params)


def test_sgd_keeps_arrays_and_dtype():
    p = nn.Parameter(np.ones(3, np.float32))
    data = p.data
    p.grad[...] = 1
    nn.SGD([p], lr=0.5, momentum=0.9, weight_decay=0.1).step()
    assert p.data is data and p.data.dtype == np.float32
    assert_close(p.data, np.full(3, 1 - 0.5 * 1.1), np.float32, "updated")


# ---------------------------------------------------------------------------
# fuse

def trained_state(model, steps=3, seed=45):
    """A few training steps, so that running statistics and weights are not
    their initial values."""
    rng = rng_for(seed)
    dtype = model.parameters()[0].dtype
    opt = nn.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    for _ in range(steps):
        x = randn(rng, (8, 3, 11, 10), dtype)
        opt.zero_grad()
        _, g = nn.cross_entropy(model(x), rng.integers(0, 5, 8))
        model.backward(g)
        opt.step()
    return model


def test_fuse_keeps_predictions():
    model = trained_state(small_net(F64, seed=46))
    randomise_bn(model, 47)
    before = model.state_dict()
    fused = nn.fuse(model)
    kinds = [type(m).__name__ for m in fused.modules()]
    # conv1-bn1-relu1 and conv2-bn2-relu2 in the Sequential; in the block
    # conv1-bn1-relu1, conv2-bn2 and the downsample's conv-bn
    assert kinds.count("FusedConv2dBN") == 5
    assert "BatchNorm2d" not in kinds and "Conv2d" not in kinds
    assert kinds.count("ReLU") == 1           # the block's last one, after the sum
    assert not fused.training and all(not m.training for m in fused.modules())
    # the model itself is left as it was
    assert model.training and isinstance(model.conv1, nn.Conv2d)
    for k, v in model.state_dict().items():
        assert_identical(v, before[k], k)

    x = randn(rng_for(48), (5, 3, 11, 10), F64)
    expected = model.eval()(x)
    assert_close(fused(x), expected, F64, "fused float64")

    # float32: the fused model against the unfused one run in float64 with
    # the same (float32) weights, the oracle of the float32 tolerance
    m32 = small_net(np.float32, seed=46)
    m32.load_state_dict(model.state_dict())
    m64 = small_net(F64, seed=0)
    m64.load_state_dict(m32.state_dict())
    f32 = nn.fuse(m32)
    x32 = x.astype(np.float32)
    y32 = f32(x32)
    assert_close(y32, m64.eval()(x32.astype(F64)), np.float32, "fused float32")
    assert np.array_equal(y32.argmax(1), m32.eval()(x32).argmax(1))


def test_fuse_without_relu_and_what_is_not_fused():
    rng = np.random.default_rng(49)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, rng=rng), nn.BatchNorm2d(3), nn.ReLU(),   # fused
        nn.Conv2d(3, 3, 1, rng=rng), nn.ReLU(),                        # no BN: left
        nn.BatchNorm2d(3),                                             # no conv: left
        nn.Conv2d(3, 4, 1, rng=rng), nn.BatchNorm2d(4))                # fused, no ReLU
    kinds = lambda m: [type(c).__name__ for c in m]  # noqa: E731
    assert kinds(nn.fuse(model)) == ["FusedConv2dBN", "Identity", "Identity", "Conv2d",
                                     "ReLU", "BatchNorm2d", "FusedConv2dBN", "Identity"]
    no_relu = nn.fuse(model, relu=False)
    assert kinds(no_relu) == ["FusedConv2dBN", "Identity", "ReLU", "Conv2d",
                              "ReLU", "BatchNorm2d", "FusedConv2dBN", "Identity"]
    x = randn(rng_for(50), (2, 2, 6, 6), np.float32)
    ref = model.eval()(x)
    for fused in (nn.fuse(model), no_relu):
        assert_close(fused(x), ref.astype(F64), np.float32, "fused")
    # the fused state dict: conv2d_bn's argument names under the conv's name
    assert list(nn.fuse(model).state_dict())[:6] == [
        "0.weight", "0.bias", "0.running_mean", "0.running_var", "0.bn_weight", "0.bn_bias"]


def test_fuse_custom_module_and_inference_only():
    class ConvBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1, rng=51)
            self.bn = nn.BatchNorm2d(2)

        def forward(self, x):
            return self.bn(self.conv(x))

        def fusion_groups(self):
            return [("conv", "bn", None)]

    m = ConvBN().eval()
    f = nn.fuse(m)
    assert isinstance(f.conv, nn.FusedConv2dBN) and isinstance(f.bn, nn.Identity)
    x = randn(rng_for(52), (2, 1, 5, 5), np.float32)
    assert_close(f(x), m(x).astype(F64), np.float32, "custom fused")
    with pytest.raises(RuntimeError, match="inference"):
        f.conv.backward(np.ones((2, 2, 5, 5), np.float32))
    f.train()
    with pytest.raises(RuntimeError, match="eval"):
        f(x)


# ---------------------------------------------------------------------------
# state_dict and saving

def test_state_dict_names():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(),
                          nn.BasicBlock(2, 4, 2), nn.Flatten(), nn.Linear(4, 3, bias=False))
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    expected = (["0.weight", "0.bias"] + [f"1.{n}" for n in bn] + ["3.conv1.weight"]
                + [f"3.bn1.{n}" for n in bn] + ["3.conv2.weight"] + [f"3.bn2.{n}" for n in bn]
                + ["3.downsample.0.weight"] + [f"3.downsample.1.{n}" for n in bn]
                + ["5.weight"])
    state = model.state_dict()
    assert list(state) == expected
    assert [n for n, _ in model.named_parameters()] == [
        k for k in expected if k.rsplit(".", 1)[1] in ("weight", "bias")]
    assert state["1.running_mean"].dtype == np.float32
    assert state["1.num_batches_tracked"].dtype == np.int64
    # copies, not the model's arrays
    state["0.weight"][...] = 7
    assert not np.any(model[0].weight.data == 7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_state_dict_round_trip(tmp_path, dtype):
    model = trained_state(small_net(dtype, seed=53))
    path = tmp_path / "model.npz"
    nn.save(model, path)
    loaded = nn.load(path)
    assert list(loaded) == list(model.state_dict())
    other = small_net(dtype, seed=54)
    arrays_before = [p.data for p in other.parameters()] + other.buffers()
    other.load_state_dict(loaded)
    # in place: the arrays (held by an optimiser, say) are the same objects
    assert all(a is b for a, b in zip(arrays_before,
                                      [p.data for p in other.parameters()] + other.buffers()))
    for k, v in model.state_dict().items():
        assert_identical(other.state_dict()[k], v, k)
    x = randn(rng_for(55), (3, 3, 11, 10), dtype)
    assert_identical(other.eval()(x), model.eval()(x), "eval output")
    assert_identical(other.train()(x), model.train()(x), "train output")
    # a state dict saved from a plain dict of arrays loads as well
    nn.save(model.state_dict(), tmp_path / "dict.npz")
    assert list(nn.load(tmp_path / "dict.npz")) == list(loaded)


def test_load_state_dict_errors():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    state = model.state_dict()
    missing = OrderedDict(list(state.items())[1:])
    with pytest.raises(ValueError, match=r"missing keys \['0.weight'\]"):
        model.load_state_dict(missing)
    with pytest.raises(ValueError, match="unexpected keys.*'2.weight'"):
        model.load_state_dict({**state, "2.weight": np.zeros(3)})
    bad = dict(state, **{"1.running_var": np.ones(3)})
    with pytest.raises(ValueError, match=r"1.running_var.*expected shape \(2,\)"):
        model.load_state_dict(bad)
    with pytest.raises(TypeError, match="num_batches_tracked"):
        model.load_state_dict(dict(state, **{"1.num_batches_tracked": np.array(1.5)}))
    with pytest.raises(TypeError, match="state_dict"):
        model.load_state_dict([1, 2])
    # nothing was written by the failed loads
    for k, v in model.state_dict().items():
        assert_identical(v, state[k], k)
    assert model.load_state_dict(missing, strict=False) == (["0.weight"], [])


# ---------------------------------------------------------------------------
# Module machinery, modes, caches

def test_parameters_train_eval_zero_grad():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(shared, nn.ReLU(), shared, nn.Dropout(0.5))
    assert len(model.parameters()) == 2           # a shared layer counts once
    assert model.eval() is model and not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    for p in model.parameters():
        p.grad[...] = 1
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())
    assert len(model) == 4 and model[2] is shared and list(model)[1] is model[1]
    assert isinstance(model[1:3], nn.Sequential) and len(model[1:3]) == 2


def test_batchnorm2d_modes():
    rng = rng_for(56)
    bn = _bn_with_state(3, 57)
    x = _bn_input(rng, (4, 3, 2, 2))
    rm, rv = bn.running_mean.copy(), bn.running_var.copy()
    y_eval = bn.eval()(x)
    assert_close(y_eval, fc.reference.batch_norm(x, rm, rv, bn.weight.data, bn.bias.data),
                 F64, "eval")
    assert_identical(bn.running_mean, rm, "eval leaves running_mean")
    y_train = bn.train()(x)
    rm2, rv2 = rm.copy(), rv.copy()
    expected = fc.reference.batch_norm(x, rm2, rv2, bn.weight.data, bn.bias.data,
                                       training=True, momentum=0.1)
    assert_close(y_train, expected, F64, "train")
    assert_close(bn.running_mean, rm2, F64, "updated running_mean")
    assert_close(bn.running_var, rv2, F64, "updated running_var")
    assert int(bn.num_batches_tracked) == 1


def test_dropout_modes():
    x = np.ones((200, 50), np.float32)
    d = nn.Dropout(0.25, rng=58)
    y = d(x)
    kept = y != 0
    assert y.dtype == np.float32
    assert np.allclose(y[kept], 1 / 0.75)
    assert abs(kept.mean() - 0.75) < 0.02
    g = d.backward(np.ones_like(x))
    assert_identical(g, y, "backward uses the same mask")
    d.eval()
    assert d(x) is x and d.backward(x) is x
    assert not nn.Dropout(1.0)(x).any()
    assert nn.Dropout(0.0)(x) is x


def test_caches_hold_what_backward_needs():
    x = spread(rng_for(59), (2, 3, 6, 6))
    pool = nn.MaxPool2d(2)
    y = pool(x)
    indices, shape = pool._ctx
    assert shape == x.shape and indices.dtype == np.int64 and indices.shape == y.shape
    for layer in (nn.AvgPool2d(2), nn.GlobalAvgPool2d(), nn.Flatten()):
        layer(x)
        assert not any(isinstance(a, np.ndarray) for a in layer._ctx), type(layer).__name__
    relu = nn.ReLU()
    out = relu(x)
    assert relu._ctx is out            # its output, which the next layer holds anyway
    # copies (fuse, deepcopy, pickle) leave the caches behind
    for clone in (copy.deepcopy(pool), pickle.loads(pickle.dumps(pool))):
        assert clone._ctx is None
    assert pool._ctx is not None


def test_backward_misuse():
    conv = nn.Conv2d(1, 2, 3)
    with pytest.raises(RuntimeError, match="before forward"):
        conv.backward(np.zeros((1, 2, 1, 1), np.float32))
    conv(np.zeros((1, 1, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(1, 2, 3, 3\)"):
        conv.backward(np.zeros((1, 2, 2, 2), np.float32))
    lin = nn.Linear(3, 2)
    lin(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="grad_output"):
        lin.backward(np.zeros((4, 3)))

    class Forgot(nn.Module):
        def __init__(self):
            self.conv = nn.Conv2d(1, 1, 1)

    with pytest.raises(AttributeError, match="super"):
        Forgot()


def test_dtypes_follow_the_ops():
    conv = nn.Conv2d(2, 3, 3, rng=60)
    assert conv.weight.dtype == np.float32 and conv(np.ones((1, 2, 4, 4), np.float32)).dtype == np.float32
    # float64 input into float32 weights computes in float64, the gradients
    # are stored in the parameters' own dtype
    y = conv(np.ones((1, 2, 4, 4)))
    assert y.dtype == np.float64
    conv.backward(np.ones_like(y))
    assert conv.weight.grad.dtype == np.float32
    lin = nn.Linear(4, 2, dtype=np.float64, rng=61)
    assert lin(np.ones((1, 4), np.int64)).dtype == np.float64
    # He initialisation: std sqrt(2 / fan_in)
    big = nn.Conv2d(64, 256, 3, rng=62)
    assert abs(big.weight.data.std() / np.sqrt(2 / (64 * 9)) - 1) < 0.02
    assert not big.bias.data.any()


# ---------------------------------------------------------------------------
# validation: the error names the argument

BAD = [
    (lambda: nn.Conv2d(0, 4, 3), ValueError, "in_channels"),
    (lambda: nn.Conv2d(3.0, 4, 3), TypeError, "in_channels"),
    (lambda: nn.Conv2d(3, -1, 3), ValueError, "out_channels"),
    (lambda: nn.Conv2d(3, 4, 0), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(3, 4, "3"), TypeError, "kernel_size"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, "stride"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 4, 3, stride=2, padding="same"), ValueError, "padding"),
    (lambda: nn.Conv2d(3, 4, 3, dilation=0), ValueError, "dilation"),
    (lambda: nn.Conv2d(3, 4, 3, groups=0), ValueError, "groups"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "in_channels"),
    (lambda: nn.Conv2d(4, 3, 3, groups=2), ValueError, "out_channels"),
    (lambda: nn.Conv2d(3, 4, 3, bias=1), TypeError, "bias"),
    (lambda: nn.Conv2d(3, 4, 3, dtype=np.int32), TypeError, "dtype"),
    (lambda: nn.Conv2d(3, 4, 3, dtype="float16"), TypeError, "dtype"),
    (lambda: nn.Conv2d(3, 4, 3, rng="seed"), TypeError, "rng"),
    (lambda: nn.Conv2d(3, 4, 3, algorithm="fft"), ValueError, "algorithm"),
    (lambda: nn.BatchNorm2d(0), ValueError, "num_features"),
    (lambda: nn.BatchNorm2d(4, eps=0), ValueError, "eps"),
    (lambda: nn.BatchNorm2d(4, eps="small"), TypeError, "eps"),
    (lambda: nn.BatchNorm2d(4, momentum=1.5), ValueError, "momentum"),
    (lambda: nn.BatchNorm2d(4, dtype=complex), TypeError, "dtype"),
    (lambda: nn.MaxPool2d(0), ValueError, "kernel_size"),
    (lambda: nn.MaxPool2d(2, stride=0), ValueError, "stride"),
    (lambda: nn.MaxPool2d(3, padding=2), ValueError, "padding"),
    (lambda: nn.MaxPool2d(2, dilation=0), ValueError, "dilation"),
    (lambda: nn.MaxPool2d(2, ceil_mode=1), TypeError, "ceil_mode"),
    (lambda: nn.AvgPool2d((2, 0)), ValueError, "kernel_size"),
    (lambda: nn.AvgPool2d(2, padding=(0, 2)), ValueError, "padding"),
    (lambda: nn.AvgPool2d(2, count_include_pad=None), TypeError, "count_include_pad"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError, "divisor_override"),
    (lambda: nn.Linear(0, 3), ValueError, "in_features"),
    (lambda: nn.Linear(3, 0), ValueError, "out_features"),
    (lambda: nn.Linear(3, 2, bias="no"), TypeError, "bias"),
    (lambda: nn.Dropout(1.5), ValueError, "p"),
    (lambda: nn.Dropout("half"), TypeError, "p"),
    (lambda: nn.BasicBlock(0, 4), ValueError, "in_channels"),
    (lambda: nn.BasicBlock(4, 4, stride=0), ValueError, "stride"),
    (lambda: nn.Sequential(nn.ReLU(), 3), TypeError, "modules"),
    (lambda: nn.SGD([], lr=0.1), ValueError, "params"),
    (lambda: nn.SGD([np.zeros(3)], lr=0.1), TypeError, r"params\[0\]"),
    (lambda: nn.SGD(nn.Linear(2, 2).parameters(), lr=-1), ValueError, "lr"),
    (lambda: nn.SGD(nn.Linear(2, 2).parameters(), lr="0.1"), TypeError, "lr"),
    (lambda: nn.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=-0.5), ValueError, "momentum"),
    (lambda: nn.SGD(nn.Linear(2, 2).parameters(), lr=0.1, weight_decay=float("nan")),
     ValueError, "weight_decay"),
    (lambda: nn.SGD(nn.Linear(2, 2).parameters(), lr=0.1, nesterov=True), ValueError, "nesterov"),
    (lambda: nn.cross_entropy(np.zeros(3), np.zeros(3, int)), ValueError, "logits"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.zeros(2)), TypeError, "labels"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([0, 3])), ValueError, "labels"),
    (lambda: nn.cross_entropy(np.zeros((2, 3)), np.array([0, 1, 2])), ValueError, "labels"),
    (lambda: nn.fuse(np.zeros(3)), TypeError, "model"),
    (lambda: nn.FusedConv2dBN(nn.Conv2d(1, 2, 1), nn.BatchNorm2d(3)), ValueError, "bn"),
    (lambda: nn.Conv2d(3, 4, 3)(np.zeros((1, 2, 5, 5), np.float32)), ValueError, "channels"),
    (lambda: nn.BatchNorm2d(3)(np.zeros((2, 4, 2, 2))), ValueError, "x"),
    (lambda: nn.Linear(3, 2)(np.zeros((2, 4))), ValueError, "x"),
    (lambda: nn.Add()(np.zeros(2), np.zeros(3)), ValueError, "b"),
    (lambda: nn.save(3, "x.npz"), TypeError, "obj"),
]


@pytest.mark.parametrize("make,exc,name", BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_validation(make, exc, name):
    with pytest.raises(exc, match=name):
        make()

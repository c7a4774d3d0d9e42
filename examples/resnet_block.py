"""A small ResNet (a conv stem and two BasicBlocks, one with a strided 1x1
downsample shortcut) built with fastconv.nn: one training step's forward
and backward, then the fused inference copy.  When PyTorch is installed,
the same network is built in PyTorch, given the same weights through the
state dict (the names are the same), and every output, gradient and
running statistic is compared, in float64; a float32 training step of
both is timed.

    python examples/resnet_block.py
"""
import time
from collections import OrderedDict

import numpy as np

import fastconv as fc
from fastconv import nn

N, C, H, W, CLASSES = 16, 3, 16, 16, 10


def build_model(dtype=np.float32, rng=None):
    rng = np.random.default_rng(rng)
    return nn.Sequential(OrderedDict([
        ("conv1", nn.Conv2d(C, 16, 3, padding=1, bias=False, dtype=dtype, rng=rng)),
        ("bn1", nn.BatchNorm2d(16, dtype=dtype)),
        ("relu", nn.ReLU()),
        ("layer1", nn.BasicBlock(16, 16, stride=1, dtype=dtype, rng=rng)),
        ("layer2", nn.BasicBlock(16, 32, stride=2, dtype=dtype, rng=rng)),
        ("avgpool", nn.GlobalAvgPool2d()),
        ("flatten", nn.Flatten()),
        ("fc", nn.Linear(32, CLASSES, dtype=dtype, rng=rng)),
    ]))


def build_torch_model(torch):
    """The same network in PyTorch, with the same module names."""
    tnn = torch.nn

    class BasicBlock(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.relu = tnn.ReLU()
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False),
                                                 tnn.BatchNorm2d(cout))

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            shortcut = x if self.downsample is None else self.downsample(x)
            return self.relu(out + shortcut)

    return tnn.Sequential(OrderedDict([
        ("conv1", tnn.Conv2d(C, 16, 3, padding=1, bias=False)),
        ("bn1", tnn.BatchNorm2d(16)),
        ("relu", tnn.ReLU()),
        ("layer1", BasicBlock(16, 16, 1)),
        ("layer2", BasicBlock(16, 32, 2)),
        ("avgpool", tnn.AdaptiveAvgPool2d(1)),
        ("flatten", tnn.Flatten()),
        ("fc", tnn.Linear(32, CLASSES)),
    ]))


def training_step(model, x, labels):
    """Forward, loss, backward: (logits, loss, grad of the input)."""
    model.train()
    model.zero_grad()
    logits = model(x)
    loss, grad = nn.cross_entropy(logits, labels)
    return logits, loss, model.backward(grad)


def torch_training_step(torch, tmodel, x, labels):
    tmodel.train()
    tmodel.zero_grad()
    tx = torch.from_numpy(x.copy()).requires_grad_(True)
    logits = tmodel(tx)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels))
    loss.backward()
    return logits, loss, tx.grad


def rel_err(actual, expected):
    """max |actual - expected| / max(1, max |expected|)."""
    expected = np.asarray(expected, dtype=np.float64)
    err = np.abs(np.asarray(actual, dtype=np.float64) - expected).max()
    return float(err / max(1.0, np.abs(expected).max()))


def compare_with_torch(torch, seed=0, log=print):
    """Both networks in float64 with fastconv's weights: the largest
    relative error of each compared quantity."""
    rng = np.random.default_rng(seed)
    model = build_model(np.float64, rng)
    # non-trivial running statistics and affine parameters, so that they matter
    for _, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data[...] = rng.uniform(0.5, 1.5, m.num_features)
            m.bias.data[...] = rng.normal(0, 0.2, m.num_features)
            m.running_mean[...] = rng.normal(0, 0.5, m.num_features)
            m.running_var[...] = rng.uniform(0.5, 2.0, m.num_features)
    tmodel = build_torch_model(torch).double()
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    x = rng.standard_normal((N, C, H, W))
    labels = rng.integers(0, CLASSES, N)

    errors = OrderedDict()
    logits, loss, gx = training_step(model, x, labels)
    tlogits, tloss, tgx = torch_training_step(torch, tmodel, x, labels)
    errors["train logits"] = rel_err(logits, tlogits.detach().numpy())
    errors["train loss"] = rel_err(loss, tloss.item())
    errors["grad input"] = rel_err(gx, tgx.numpy())
    tparams = dict(tmodel.named_parameters())
    for name, p in model.named_parameters():
        errors[f"grad {name}"] = rel_err(p.grad, tparams[name].grad.numpy())
    tstate = tmodel.state_dict()
    for name, value in model.state_dict().items():   # running statistics, updated
        errors[f"state {name}"] = rel_err(value, tstate[name].numpy())

    model.eval(), tmodel.eval()
    with torch.no_grad():
        tlogits = tmodel(torch.from_numpy(x)).numpy()
    errors["eval logits"] = rel_err(model(x), tlogits)
    errors["fused eval logits"] = rel_err(nn.fuse(model)(x), tlogits)
    worst = max(errors, key=errors.get)
    log(f"fastconv vs PyTorch, float64, {len(errors)} quantities compared "
        f"(logits, loss, input and {len(tparams)} parameter gradients, state, eval, "
        f"fused): largest relative error {errors[worst]:.2e} ({worst})")
    return errors


def time_training_step(torch, seed=0, repeats=15, log=print):
    """Median seconds of one float32 training step (forward, loss,
    backward) of each network, measured interleaved."""
    rng = np.random.default_rng(seed)
    model = build_model(np.float32, rng)
    tmodel = build_torch_model(torch)
    tmodel.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    labels = rng.integers(0, CLASSES, N)
    torch.set_num_threads(fc.get_num_threads())
    t_fc, t_torch = [], []
    for i in range(repeats + 3):
        t0 = time.perf_counter()
        training_step(model, x, labels)
        t1 = time.perf_counter()
        torch_training_step(torch, tmodel, x, labels)
        t2 = time.perf_counter()
        if i >= 3:                      # warm-up
            t_fc.append(t1 - t0)
            t_torch.append(t2 - t1)
    t_fc, t_torch = float(np.median(t_fc)), float(np.median(t_torch))
    log(f"float32 training step, batch of {N}, {fc.get_num_threads()} thread(s): "
        f"fastconv.nn {t_fc * 1e3:.2f} ms, PyTorch {t_torch * 1e3:.2f} ms")
    return t_fc, t_torch


def main(seed=0, verbose=True, timing_repeats=15):
    log = print if verbose else (lambda *a, **k: None)
    rng = np.random.default_rng(seed)
    model = build_model(np.float32, rng)
    log(model)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    labels = rng.integers(0, CLASSES, N)
    logits, loss, gx = training_step(model, x, labels)
    log(f"one training step: logits {logits.shape}, loss {loss:.4f}, grad of the "
        f"input {gx.shape}, {sum(p.size for p in model.parameters())} parameters "
        f"with gradients")
    model.eval()
    fused = nn.fuse(model)
    same = float(np.mean(model(x).argmax(1) == fused(x).argmax(1)))
    log(f"fused copy: {sum(isinstance(m, nn.FusedConv2dBN) for m in fused.modules())} "
        f"conv2d_bn layers, same predictions as the model on {same:.0%} of the batch")
    result = dict(loss=loss, fused_agreement=same, errors=None, timings=None)
    try:
        import torch
    except ImportError:
        log("PyTorch is not installed: no comparison")
        return result
    result["errors"] = compare_with_torch(torch, seed, log)
    result["timings"] = time_training_step(torch, seed, timing_repeats, log)
    return result


if __name__ == "__main__":
    main()

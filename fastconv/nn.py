"""Layer objects for hand-written NumPy networks, over fastconv's functional ops.

    >>> import numpy as np
    >>> from fastconv import nn
    >>> model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, rng=0), nn.BatchNorm2d(8),
    ...                       nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
    ...                       nn.Linear(8 * 4 * 4, 10, rng=0))
    >>> x = np.zeros((2, 1, 8, 8), np.float32); labels = np.array([3, 7])
    >>> loss, grad = nn.cross_entropy(model(x), labels)
    >>> grad_x = model.backward(grad)           # fills each Parameter's .grad
    >>> opt = nn.SGD(model.parameters(), lr=0.1, momentum=0.9)
    >>> opt.step(); opt.zero_grad()

A Module's `forward` keeps what its `backward` needs (the input of a
convolution, the indices of a max pool, the output of a ReLU: never more) until
the next forward; `backward(grad_output)` returns the gradient of the input
and adds the gradients of the parameters into their `.grad`.  Names in
`state_dict()` are PyTorch's ("0.weight", "block.bn1.running_mean"), so a
PyTorch model's state dict (converted to arrays) loads into the same network
built here.  `fuse(model)` returns an inference copy in which each
Conv2d -> BatchNorm2d (-> ReLU) runs as one `conv2d_bn` call.

Everything here is orchestration in Python: the arithmetic is fastconv's ops,
plus NumPy for Linear's matrix products, ReLU, dropout and the loss.
"""
from __future__ import annotations

import copy
import numbers
from collections import OrderedDict

import numpy as np

from . import _params
from .batchnorm import batch_norm, batch_norm_backward
from .conv import conv2d, conv2d_backward, conv2d_bn
from .pool import (avg_pool2d, avg_pool2d_backward, max_pool2d,
                   max_pool2d_backward)

__all__ = [
    "Parameter", "Module", "Sequential", "Identity", "Conv2d", "BatchNorm2d",
    "ReLU", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "Flatten", "Linear",
    "Dropout", "Add", "BasicBlock", "FusedConv2dBN", "cross_entropy", "SGD",
    "fuse", "save", "load",
]


# --------------------------------------------------------------------------
# argument helpers (the messages follow fastconv._params: name, expected, got)

def _dtype_arg(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype: expected np.float32 or np.float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype: expected np.float32 or np.float64, got {dt}")
    return dt


def _rng_arg(rng):
    """A numpy Generator from None, a seed, or a Generator (used as is)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence,
                                       np.random.BitGenerator)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(f"rng: expected None, an int seed or a numpy.random.Generator, "
                    f"got {rng!r} ({type(rng).__name__})")


def _float_arg(value, name, minimum=0.0):
    """A finite float >= minimum (learning rates, decays)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (numbers.Real, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a float, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not (np.isfinite(v) and v >= minimum):
        raise ValueError(f"{name}: expected a finite float >= {minimum:g}, got {value!r}")
    return v


def _check_grad(grad_output, shape, layer):
    """grad_output as an array of the forward output's shape."""
    g = _params.as_array(grad_output, "grad_output")
    if g.shape != tuple(shape):
        raise ValueError(f"grad_output: expected shape {tuple(shape)} (the output of "
                         f"{layer}'s last forward), got {g.shape}")
    return g


def _float_input(x, name="x"):
    """An ndarray of a float type (integers promoted to float64, as the ops do)."""
    x = _params.as_array(x, name)
    dt = _params.float_dtype_of(x.dtype, name)
    return x if x.dtype == dt else x.astype(dt)


def _as_numpy(value):
    """An ndarray from an array, a list or a torch tensor (detached, on CPU)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


# --------------------------------------------------------------------------
# Parameter and Module

class Parameter:
    """A trainable array: `.data` and its gradient `.grad` (same shape and
    dtype, zeros until a backward adds into it)."""

    __slots__ = ("data", "grad")

    def __init__(self, data):
        data = np.asarray(data)
        dt = _params.float_dtype_of(data.dtype, "data")
        self.data = np.ascontiguousarray(data, dtype=dt)
        self.grad = np.zeros_like(self.data)

    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def zero_grad(self):
        self.grad[...] = 0

    def __repr__(self):
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base of every layer and network.

    Assigning a Parameter or a Module to an attribute registers it (in order)
    for parameters(), state_dict() and train()/eval(); register_buffer()
    registers state that is saved but not trained (BatchNorm's running
    statistics).  Subclasses call `super().__init__()` first, then define
    forward(*inputs) and backward(grad_output)."""

    def __init__(self):
        d = self.__dict__
        d["_parameters"] = OrderedDict()
        d["_buffers"] = OrderedDict()
        d["_modules"] = OrderedDict()
        d["training"] = True
        d["_ctx"] = None        # what backward needs, set by forward

    # -- registration
    def __setattr__(self, name, value):
        d = self.__dict__
        if "_parameters" not in d:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() "
                                 f"(call super().__init__() first in "
                                 f"{type(self).__name__}.__init__)")
        if isinstance(value, Parameter):
            self._register("_parameters", name, value)
        elif isinstance(value, Module):
            self._register("_modules", name, value)
        elif name in d["_buffers"]:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"{name}: a buffer must be an ndarray or None, got "
                                f"{type(value).__name__}")
            d["_buffers"][name] = value
        elif name in d["_parameters"] or name in d["_modules"]:
            if value is not None:
                raise TypeError(f"{name}: expected a {'Parameter' if name in d['_parameters'] else 'Module'} "
                                f"or None, got {type(value).__name__}")
            registry = d["_parameters"] if name in d["_parameters"] else d["_modules"]
            registry[name] = None
        object.__setattr__(self, name, value)

    def _register(self, registry, name, value):
        """Replace in place (keeping the order) or forget elsewhere and append."""
        if name not in self.__dict__[registry]:
            self._forget(name)
        self.__dict__[registry][name] = value

    def _forget(self, name):
        for registry in ("_parameters", "_buffers", "_modules"):
            self.__dict__[registry].pop(name, None)

    def register_buffer(self, name, array):
        """Saved, loaded and copied with the module, never trained."""
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"name: expected a non-empty string without '.', got {name!r}")
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"array: expected an ndarray or None, got {type(array).__name__}")
        self._forget(name)
        self.__dict__["_buffers"][name] = array
        object.__setattr__(self, name, array)

    def __getstate__(self):
        # copies (deepcopy, pickle) leave behind what the last forward cached
        state = self.__dict__.copy()
        state["_ctx"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    # -- calling
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward")

    def backward(self, grad_output):
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def __call__(self, *inputs, **kwargs):
        return self.forward(*inputs, **kwargs)

    def _saved(self):
        if self._ctx is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._ctx

    # -- traversal
    def children(self):
        return [m for m in self._modules.values() if m is not None]

    def named_children(self):
        return [(n, m) for n, m in self._modules.items() if m is not None]

    def named_modules(self, prefix=""):
        """(name, module) for this module and every module inside it, in order."""
        out = [(prefix, self)]
        for name, m in self.named_children():
            out.extend(m.named_modules(f"{prefix}.{name}" if prefix else name))
        return out

    def modules(self):
        return [m for _, m in self.named_modules()]

    def named_parameters(self, prefix=""):
        """(dotted name, Parameter) for every parameter, each once."""
        out, seen = [], set()
        for mod_name, m in self.named_modules(prefix):
            for name, p in m._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    out.append((f"{mod_name}.{name}" if mod_name else name, p))
        return out

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        out = []
        for mod_name, m in self.named_modules(prefix):
            for name, b in m._buffers.items():
                if b is not None:
                    out.append((f"{mod_name}.{name}" if mod_name else name, b))
        return out

    def buffers(self):
        return [b for _, b in self.named_buffers()]

    # -- modes and gradients
    def train(self, mode=True):
        mode = _params.as_bool(mode, "mode")
        for m in self.modules():
            m.__dict__["training"] = mode
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self):
        for p in self.parameters():
            p.zero_grad()

    # -- state
    def state_dict(self):
        """OrderedDict of name -> copy of every parameter and buffer, in
        PyTorch's order and with its names (per module: parameters, buffers,
        then the children's)."""
        out = OrderedDict()
        self._collect_state("", out)
        return out

    def _collect_state(self, prefix, out):
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p.data.copy()
        for name, b in self._buffers.items():
            if b is not None:
                out[prefix + name] = b.copy()
        for name, m in self.named_children():
            m._collect_state(f"{prefix}{name}.", out)

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (or torch tensors) into this module's parameters and
        buffers, in place: the arrays an optimizer holds stay the same.

        Shapes must match exactly; values are cast to each array's dtype
        (same kind: float64 into float32 is fine, float into int is not).
        With strict=True, missing or unexpected names raise ValueError;
        otherwise returns (missing, unexpected) names."""
        if not hasattr(state_dict, "items"):
            raise TypeError(f"state_dict: expected a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        strict = _params.as_bool(strict, "strict")
        targets = OrderedDict()
        for name, p in self.named_parameters():
            targets[name] = p.data
        for name, b in self.named_buffers():
            targets[name] = b
        given = OrderedDict((str(k), v) for k, v in state_dict.items())
        missing = [k for k in targets if k not in given]
        unexpected = [k for k in given if k not in targets]
        if strict and (missing or unexpected):
            raise ValueError(f"state_dict: missing keys {missing}, unexpected keys "
                             f"{unexpected} for {type(self).__name__}")
        values = {}
        for name, dst in targets.items():       # check everything before writing
            if name not in given:
                continue
            src = _as_numpy(given[name])
            if src.shape != dst.shape:
                raise ValueError(f"state_dict[{name!r}]: expected shape {dst.shape}, "
                                 f"got {src.shape}")
            if not np.can_cast(src.dtype, dst.dtype, casting="same_kind"):
                raise TypeError(f"state_dict[{name!r}]: cannot store dtype {src.dtype} "
                                f"in the module's {dst.dtype} array")
            values[name] = src
        for name, src in values.items():
            np.copyto(targets[name], src, casting="same_kind")
        return missing, unexpected

    # -- printing
    def extra_repr(self):
        return ""

    def __repr__(self):
        head = f"{type(self).__name__}({self.extra_repr()}"
        kids = self.named_children()
        if not kids:
            return head + ")"
        lines = [head]
        for name, m in kids:
            lines.append("  (" + name + "): " + repr(m).replace("\n", "\n  "))
        return "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules run one after the other; named "0", "1", ... or by the keys of
    an OrderedDict."""

    def __init__(self, *modules):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], (dict, OrderedDict)):
            items = list(modules[0].items())
        else:
            items = [(str(i), m) for i, m in enumerate(modules)]
        for name, m in items:
            if not isinstance(m, Module):
                raise TypeError(f"modules[{name!r}]: expected a Module, got "
                                f"{type(m).__name__}")
            if not isinstance(name, str) or not name or "." in name:
                raise ValueError(f"modules: expected names without '.', got {name!r}")
            setattr(self, name, m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def __getitem__(self, index):
        mods = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(OrderedDict(list(self._modules.items())[index]))
        return mods[_params.as_int(index, "index")]

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"module: expected a Module, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def backward(self, grad_output):
        for m in reversed(list(self._modules.values())):
            grad_output = m.backward(grad_output)
        return grad_output

    def fusion_groups(self):
        """Runs of children (conv, bn, relu or None) that fuse() may merge:
        a Conv2d directly followed by a BatchNorm2d, and a ReLU after it."""
        names = list(self._modules)
        mods = list(self._modules.values())
        groups, i = [], 0
        while i < len(mods) - 1:
            if isinstance(mods[i], Conv2d) and isinstance(mods[i + 1], BatchNorm2d):
                relu = names[i + 2] if i + 2 < len(mods) and isinstance(mods[i + 2], ReLU) else None
                groups.append((names[i], names[i + 1], relu))
                i += 3 if relu else 2
            else:
                i += 1
        return groups


class Identity(Module):
    """Returns its input (what fuse() leaves where a BatchNorm2d or ReLU was)."""

    def forward(self, x):
        return x

    def backward(self, grad_output):
        return grad_output


# --------------------------------------------------------------------------
# layers

class Conv2d(Module):
    """2-D convolution (fastconv.conv2d): weight (out_channels,
    in_channels/groups, kh, kw) drawn from He's normal initialisation
    (std sqrt(2 / fan_in)), bias (out_channels,) zero.  padding as conv2d's
    (an int, a pair, ((top, bottom), (left, right)), 'same' or 'valid')."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, dtype=np.float32, rng=None,
                 algorithm="auto"):
        super().__init__()
        self.in_channels = _params.as_int(in_channels, "in_channels", 1)
        self.out_channels = _params.as_int(out_channels, "out_channels", 1)
        self.kernel_size = _params.as_pair(kernel_size, "kernel_size", 1)
        self.stride = _params.as_pair(stride, "stride", 1)
        self.dilation = _params.as_pair(dilation, "dilation", 1)
        self.groups = _params.as_int(groups, "groups", 1)
        _params.conv_padding(padding, self.kernel_size, self.dilation, self.stride)
        self.padding = padding
        for name, n in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if n % self.groups:
                raise ValueError(f"{name}: expected a multiple of groups={self.groups}, got {n}")
        has_bias = _params.as_bool(bias, "bias")
        self.algorithm = _params.algorithm_arg(algorithm)
        dtype = _dtype_arg(dtype)
        rng = _rng_arg(rng)
        fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
        self.weight = Parameter(w.astype(dtype))
        self.bias = Parameter(np.zeros(self.out_channels, dtype)) if has_bias else None

    def _geometry(self):
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups, algorithm=self.algorithm)

    def forward(self, x):
        bias = self.bias.data if self.bias is not None else None
        y = conv2d(x, self.weight.data, bias, **self._geometry())
        self._ctx = (x, y.shape)
        return y

    def backward(self, grad_output):
        x, y_shape = self._saved()
        g = _check_grad(grad_output, y_shape, "Conv2d")
        gx, gw, gb = conv2d_backward(g, x, self.weight.data, **self._geometry())
        self.weight.grad += gw
        if self.bias is not None:
            self.bias.grad += gb
        return gx

    def extra_repr(self):
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}, padding={self.padding!r}")
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s + f", dtype={self.weight.dtype}"


class BatchNorm2d(Module):
    """Batch norm over the channels of NCHW input (fastconv.batch_norm).

    Parameters weight (ones) and bias (zeros); buffers running_mean (zeros),
    running_var (ones), in the layer's dtype, and num_batches_tracked (as
    PyTorch's, so that its state dicts load).  Training mode normalises with
    the batch's statistics and updates the running ones in place
    (momentum, unbiased variance); eval mode uses the running statistics."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        self.num_features = _params.as_int(num_features, "num_features", 1)
        self.eps = _params.as_positive_float(eps, "eps")
        self.momentum = _params.as_fraction(momentum, "momentum")
        dtype = _dtype_arg(dtype)
        self.weight = Parameter(np.ones(self.num_features, dtype))
        self.bias = Parameter(np.zeros(self.num_features, dtype))
        self.register_buffer("running_mean", np.zeros(self.num_features, dtype))
        self.register_buffer("running_var", np.ones(self.num_features, dtype))
        self.register_buffer("num_batches_tracked", np.zeros((), np.int64))

    def _check_input(self, x):
        x = _params.as_array(x, "x")
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"x: expected a 4-D input (N, {self.num_features}, H, W), "
                             f"got shape {x.shape}")
        return x

    def forward(self, x):
        x = self._check_input(x)
        if self.training:
            y = batch_norm(x, self.running_mean, self.running_var, self.weight.data,
                           self.bias.data, training=True, momentum=self.momentum,
                           eps=self.eps)
            self.num_batches_tracked += 1
        else:
            y = batch_norm(x, self.running_mean, self.running_var, self.weight.data,
                           self.bias.data, training=False, eps=self.eps)
        self._ctx = (x, self.training)
        return y

    def backward(self, grad_output):
        x, training = self._saved()
        g = _check_grad(grad_output, x.shape, "BatchNorm2d")
        if training:    # through the batch statistics, recomputed from x
            gx, gw, gb = batch_norm_backward(g, x, self.weight.data, training=True,
                                             eps=self.eps)
        else:           # the running statistics are constants
            gx, gw, gb = batch_norm_backward(g, x, self.weight.data,
                                             running_mean=self.running_mean,
                                             running_var=self.running_var,
                                             training=False, eps=self.eps)
        self.weight.grad += gw
        self.bias.grad += gb
        return gx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum:g}, "
                f"dtype={self.weight.dtype}")


class ReLU(Module):
    """max(x, 0) (NaN propagates); keeps its output, whose sign is the mask."""

    def forward(self, x):
        y = np.maximum(_float_input(x), 0)
        self._ctx = y
        return y

    def backward(self, grad_output):
        y = self._saved()
        g = _check_grad(grad_output, y.shape, "ReLU")
        return np.where(y > 0, g, 0).astype(np.result_type(g.dtype, y.dtype), copy=False)


class MaxPool2d(Module):
    """Max pooling (fastconv.max_pool2d); keeps the argmax indices and the
    input's shape, not the input."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        super().__init__()
        self.kernel_size = _params.as_pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _params.as_pair(stride, "stride", 1)
        self.padding = _params.as_pair(padding, "padding", 0)
        self.dilation = _params.as_pair(dilation, "dilation", 1)
        self.ceil_mode = _params.as_bool(ceil_mode, "ceil_mode")
        for k, p in zip(self.kernel_size, self.padding):
            if 2 * p > k:
                raise ValueError(f"padding: expected at most half the kernel size "
                                 f"{self.kernel_size}, got {self.padding}")

    def forward(self, x):
        y, indices = max_pool2d(x, self.kernel_size, self.stride, self.padding,
                                self.dilation, self.ceil_mode, return_indices=True)
        self._ctx = (indices, np.shape(x))
        return y

    def backward(self, grad_output):
        indices, x_shape = self._saved()
        g = _check_grad(grad_output, indices.shape, "MaxPool2d")
        return max_pool2d_backward(g, indices, x_shape)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """Average pooling (fastconv.avg_pool2d); keeps the input's shape only."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        self.kernel_size = _params.as_pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _params.as_pair(stride, "stride", 1)
        self.padding = _params.as_pair(padding, "padding", 0)
        self.ceil_mode = _params.as_bool(ceil_mode, "ceil_mode")
        self.count_include_pad = _params.as_bool(count_include_pad, "count_include_pad")
        self.divisor_override = _params.divisor_arg(divisor_override)
        for k, p in zip(self.kernel_size, self.padding):
            if 2 * p > k:
                raise ValueError(f"padding: expected at most half the kernel size "
                                 f"{self.kernel_size}, got {self.padding}")

    def _args(self):
        return (self.kernel_size, self.stride, self.padding, self.ceil_mode,
                self.count_include_pad, self.divisor_override)

    def forward(self, x):
        y = avg_pool2d(x, *self._args())
        self._ctx = (np.shape(x), y.shape)
        return y

    def backward(self, grad_output):
        x_shape, y_shape = self._saved()
        g = _check_grad(grad_output, y_shape, "AvgPool2d")
        return avg_pool2d_backward(g, x_shape, *self._args())

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, ceil_mode={self.ceil_mode}")


class GlobalAvgPool2d(Module):
    """The mean over each (n, c) plane: N x C x H x W -> N x C x 1 x 1 (as
    PyTorch's AdaptiveAvgPool2d(1); follow it with Flatten for a Linear)."""

    def forward(self, x):
        x = _float_input(x)
        if x.ndim != 4 or x.shape[2] * x.shape[3] == 0:
            raise ValueError(f"x: expected a 4-D input (N, C, H, W) with H, W >= 1, "
                             f"got shape {x.shape}")
        y = x.mean(axis=(2, 3), keepdims=True)
        self._ctx = x.shape
        return y

    def backward(self, grad_output):
        x_shape = self._saved()
        g = _check_grad(grad_output, x_shape[:2] + (1, 1), "GlobalAvgPool2d")
        g = _float_input(g, "grad_output")
        return np.ascontiguousarray(np.broadcast_to(g / (x_shape[2] * x_shape[3]), x_shape))


class Flatten(Module):
    """N x ... -> N x (product of the rest), as PyTorch's Flatten()."""

    def forward(self, x):
        x = _float_input(x)
        if x.ndim < 1:
            raise ValueError("x: expected at least a 1-D input with a batch axis, got a scalar")
        self._ctx = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_output):
        x_shape = self._saved()
        n = x_shape[0]
        rest = int(np.prod(x_shape[1:], dtype=np.int64))
        g = _check_grad(grad_output, (n, rest), "Flatten")
        return g.reshape(x_shape)


class Linear(Module):
    """y = x @ weight.T + bias; weight (out_features, in_features) from He's
    normal initialisation, bias zero."""

    def __init__(self, in_features, out_features, bias=True, dtype=np.float32, rng=None):
        super().__init__()
        self.in_features = _params.as_int(in_features, "in_features", 1)
        self.out_features = _params.as_int(out_features, "out_features", 1)
        has_bias = _params.as_bool(bias, "bias")
        dtype = _dtype_arg(dtype)
        rng = _rng_arg(rng)
        w = rng.standard_normal((self.out_features, self.in_features)) * np.sqrt(2.0 / self.in_features)
        self.weight = Parameter(w.astype(dtype))
        self.bias = Parameter(np.zeros(self.out_features, dtype)) if has_bias else None

    def forward(self, x):
        x = _float_input(x)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"x: expected a 2-D input (N, {self.in_features}), got "
                             f"shape {x.shape}")
        y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        self._ctx = x
        return y

    def backward(self, grad_output):
        x = self._saved()
        g = _check_grad(grad_output, (x.shape[0], self.out_features), "Linear")
        self.weight.grad += g.T @ x
        if self.bias is not None:
            self.bias.grad += g.sum(axis=0)
        return g @ self.weight.data

    def extra_repr(self):
        return (f"{self.in_features}, {self.out_features}, bias={self.bias is not None}, "
                f"dtype={self.weight.dtype}")


class Dropout(Module):
    """Inverted dropout: in training, each element is zeroed with probability
    p and the rest scaled by 1 / (1 - p); the identity in eval mode.  Keeps
    the scaled mask for backward."""

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = _params.as_fraction(p, "p")
        self.rng = _rng_arg(rng)

    def forward(self, x):
        x = _float_input(x)
        if not self.training or self.p == 0.0:
            self._ctx = (None, x.shape)
            return x
        if self.p == 1.0:
            mask = np.zeros(x.shape, x.dtype)
        else:
            keep = self.rng.random(x.shape, dtype=np.float32) >= self.p
            mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - self.p))
        self._ctx = (mask, x.shape)
        return x * mask

    def backward(self, grad_output):
        mask, x_shape = self._saved()
        g = _check_grad(grad_output, x_shape, "Dropout")
        return g if mask is None else g * mask

    def extra_repr(self):
        return f"p={self.p:g}"


class Add(Module):
    """a + b for residual branches (same shapes); backward returns the
    gradient once for each: (grad_a, grad_b)."""

    def forward(self, a, b):
        a, b = _float_input(a, "a"), _float_input(b, "b")
        if a.shape != b.shape:
            raise ValueError(f"b: expected the shape of a, {a.shape}, got {b.shape}")
        y = a + b
        self._ctx = y.shape
        return y

    def backward(self, grad_output):
        g = _check_grad(grad_output, self._saved(), "Add")
        return g, g


class BasicBlock(Module):
    """ResNet's basic block (He et al. 2016; torchvision's names):
    conv1 (3x3, stride) -> bn1 -> relu -> conv2 (3x3) -> bn2, plus the
    shortcut: the input itself, or downsample = Conv2d 1x1 (stride) ->
    BatchNorm2d when the stride or the channel count changes; then ReLU."""

    def __init__(self, in_channels, out_channels, stride=1, dtype=np.float32, rng=None):
        super().__init__()
        in_channels = _params.as_int(in_channels, "in_channels", 1)
        out_channels = _params.as_int(out_channels, "out_channels", 1)
        stride = _params.as_int(stride, "stride", 1)
        rng = _rng_arg(rng)
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride, 1, bias=False,
                            dtype=dtype, rng=rng)
        self.bn1 = BatchNorm2d(out_channels, dtype=dtype)
        self.relu1 = ReLU()
        self.conv2 = Conv2d(out_channels, out_channels, 3, 1, 1, bias=False,
                            dtype=dtype, rng=rng)
        self.bn2 = BatchNorm2d(out_channels, dtype=dtype)
        if stride != 1 or in_channels != out_channels:
            self.downsample = Sequential(
                Conv2d(in_channels, out_channels, 1, stride, bias=False, dtype=dtype, rng=rng),
                BatchNorm2d(out_channels, dtype=dtype))
        else:
            self.downsample = None
        self.add = Add()
        self.relu2 = ReLU()

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu2(self.add(out, shortcut))

    def backward(self, grad_output):
        g_main, g_short = self.add.backward(self.relu2.backward(grad_output))
        g = self.conv2.backward(self.bn2.backward(g_main))
        g = self.conv1.backward(self.bn1.backward(self.relu1.backward(g)))
        if self.downsample is not None:
            g_short = self.downsample.backward(g_short)
        return g + g_short

    def fusion_groups(self):
        return [("conv1", "bn1", "relu1"), ("conv2", "bn2", None)]


# --------------------------------------------------------------------------
# inference fusion

class FusedConv2dBN(Module):
    """Conv2d -> BatchNorm2d (running statistics) -> optional ReLU as one
    fastconv.conv2d_bn call: inference only (no backward, no training mode).

    Buffers named after conv2d_bn's arguments: weight, bias (when the
    convolution has one), running_mean, running_var, bn_weight, bn_bias."""

    def __init__(self, conv, bn, relu=False):
        super().__init__()
        if not isinstance(conv, Conv2d):
            raise TypeError(f"conv: expected a Conv2d, got {type(conv).__name__}")
        if not isinstance(bn, BatchNorm2d):
            raise TypeError(f"bn: expected a BatchNorm2d, got {type(bn).__name__}")
        if bn.num_features != conv.out_channels:
            raise ValueError(f"bn: expected {conv.out_channels} features (the "
                             f"convolution's out_channels), got {bn.num_features}")
        self.activation = "relu" if _params.as_bool(relu, "relu") else None
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self.dilation, self.groups, self.algorithm = conv.dilation, conv.groups, conv.algorithm
        self.eps = bn.eps
        self.register_buffer("weight", conv.weight.data)
        self.register_buffer("bias", conv.bias.data if conv.bias is not None else None)
        self.register_buffer("running_mean", bn.running_mean)
        self.register_buffer("running_var", bn.running_var)
        self.register_buffer("bn_weight", bn.weight.data)
        self.register_buffer("bn_bias", bn.bias.data)
        self.__dict__["training"] = False

    def forward(self, x):
        if self.training:
            raise RuntimeError("FusedConv2dBN is inference-only (batch norm folded with "
                               "its running statistics): call eval(), or train the "
                               "unfused model")
        return conv2d_bn(x, self.weight, self.bias, self.running_mean, self.running_var,
                         self.bn_weight, self.bn_bias, self.stride, self.padding,
                         self.dilation, self.groups, eps=self.eps,
                         activation=self.activation, algorithm=self.algorithm)

    def backward(self, grad_output):
        raise RuntimeError("FusedConv2dBN is inference-only: it has no backward; "
                           "differentiate the unfused model")

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding!r}, eps={self.eps:g}, "
                f"activation={self.activation!r}")


def fuse(model, relu=True):
    """An inference copy of `model` (in eval mode; `model` is left as it is)
    in which each Conv2d directly followed by a BatchNorm2d, and by a ReLU
    when relu=True, is one FusedConv2dBN running fastconv.conv2d_bn; the
    BatchNorm2d and ReLU it absorbed become Identity, so names stay put.

    Which children run in a row is declared by their parent's
    `fusion_groups()`: Sequential (adjacent children) and BasicBlock do;
    a custom Module may define it to return (conv, bn, relu-or-None) names.
    Predictions equal the unfused model's in eval mode, up to rounding."""
    if not isinstance(model, Module):
        raise TypeError(f"model: expected a Module, got {type(model).__name__}")
    relu = _params.as_bool(relu, "relu")
    fused = copy.deepcopy(model)
    fused.eval()
    for m in fused.modules():
        groups = getattr(m, "fusion_groups", None)
        if groups is None:
            continue
        for conv_name, bn_name, relu_name in groups():
            conv, bn = m._modules.get(conv_name), m._modules.get(bn_name)
            if not (isinstance(conv, Conv2d) and isinstance(bn, BatchNorm2d)
                    and bn.num_features == conv.out_channels):
                continue
            take_relu = relu and relu_name is not None and isinstance(
                m._modules.get(relu_name), ReLU)
            setattr(m, conv_name, FusedConv2dBN(conv, bn, relu=take_relu))
            setattr(m, bn_name, Identity())
            if take_relu:
                setattr(m, relu_name, Identity())
    return fused.eval()


# --------------------------------------------------------------------------
# loss and optimiser

def cross_entropy(logits, labels):
    """Mean softmax cross-entropy of (N, classes) logits against (N,) integer
    labels, and its gradient with respect to the logits.

    Returns (loss as a Python float, grad_logits in the logits' float dtype)."""
    logits = _float_input(logits, "logits")
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"logits: expected a non-empty 2-D array (N, classes), got "
                         f"shape {logits.shape}")
    labels = _params.as_array_int(labels, "labels")
    N, K = logits.shape
    if labels.shape != (N,):
        raise ValueError(f"labels: expected shape ({N},) (one per row of logits), got "
                         f"{labels.shape}")
    if labels.min() < 0 or labels.max() >= K:
        raise ValueError(f"labels: expected class indices in [0, {K}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    rows = np.arange(N)
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    log_p = z[rows, labels].astype(np.float64) - np.log(s[:, 0].astype(np.float64))
    loss = float(-log_p.mean())
    grad = e / s
    grad[rows, labels] -= 1
    grad /= N
    return loss, grad


class SGD:
    """Stochastic gradient descent with PyTorch's update rule:
    g = grad + weight_decay * param;  buf = momentum * buf + g (buf = g at the
    first step);  param -= lr * (g + momentum * buf if nesterov else buf).
    Parameters are updated in place."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        params = list(params)
        if not params:
            raise ValueError("params: expected at least one Parameter, got none")
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise TypeError(f"params[{i}]: expected a Parameter, got {type(p).__name__}")
        self.params = params
        self.lr = _float_arg(lr, "lr")
        self.momentum = _float_arg(momentum, "momentum")
        self.weight_decay = _float_arg(weight_decay, "weight_decay")
        self.nesterov = _params.as_bool(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov: needs momentum > 0")
        self._buffers = [None] * len(params)

    def step(self):
        for i, p in enumerate(self.params):
            g = p.grad
            if self.weight_decay:
                g = g + self.weight_decay * p.data
            if self.momentum:
                buf = self._buffers[i]
                if buf is None:
                    buf = self._buffers[i] = np.array(g, dtype=p.data.dtype, copy=True)
                else:
                    buf *= self.momentum
                    buf += g
                g = g + self.momentum * buf if self.nesterov else buf
            p.data -= (self.lr * g).astype(p.data.dtype, copy=False)

    def zero_grad(self):
        for p in self.params:
            p.zero_grad()


# --------------------------------------------------------------------------
# saving

def save(obj, file):
    """Write a Module's state_dict (or a state dict) to an .npz file with
    np.savez, one array per name."""
    if isinstance(obj, Module):
        state = obj.state_dict()
    elif hasattr(obj, "items"):
        state = OrderedDict((str(k), _as_numpy(v)) for k, v in obj.items())
    else:
        raise TypeError(f"obj: expected a Module or a state dict, got {type(obj).__name__}")
    np.savez(file, **state)


def load(file):
    """The state dict saved by save(): an OrderedDict of name -> array, for
    Module.load_state_dict."""
    with np.load(file, allow_pickle=False) as data:
        return OrderedDict((name, data[name]) for name in data.files)

"""The implementations the benchmarks compare, per task.

Each :class:`Impl` turns a layer (full or a scaled copy, see suite.py) and
its input arrays into a zero-argument callable that runs the op once; the
inputs are made once per layer size by :func:`make_inputs`, outside the
timed region.

    conv2d              fastconv.conv2d algorithm "auto", "direct", "im2col";
                        fastconv.reference.conv2d; NumPy im2col
                        (numpy_im2col.py); torch.nn.functional.conv2d
    conv2d_backward     fastconv.conv2d_backward "auto", "direct", "im2col";
                        reference; torch autograd of input, weight and bias
    pool2d              fastconv, reference, torch (max pooling without
                        indices: the inference call)
    pool2d_backward     max_pool2d_backward / avg_pool2d_backward, reference,
                        torch autograd
    batch_norm          training-mode forward (batch statistics, running
                        statistics updated): fastconv, reference, torch
    batch_norm_backward fastconv, reference, torch autograd (input, weight,
                        bias)

torch is optional: :func:`torch_module` returns None when it cannot be
imported and the torch implementations are then left out (the CLI) or
skipped (pytest).
"""
import ctypes
import glob
import os
from dataclasses import dataclass

import numpy as np

import fastconv
from fastconv import reference

from . import numpy_im2col
from .suite import conv_args, input_shape, pool_kwargs, weight_shape, output_shape

_TORCH = "unset"


def torch_module():
    """torch, or None when it is not installed (or fails to import)."""
    global _TORCH
    if _TORCH == "unset":
        if os.environ.get("FASTCONV_BENCH_NO_TORCH"):
            _TORCH = None
        else:
            try:
                import torch
                _TORCH = torch
            except Exception:       # an ImportError, or a broken install
                _TORCH = None
    return _TORCH


def warm_up_torch():
    """One small conv, pool and batch norm through torch, forward and
    backward: its one-time start-up costs (half a second on the first
    autograd call) then stay out of every measurement."""
    torch = torch_module()
    if torch is None:
        return
    F = torch.nn.functional
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    w = torch.randn(4, 4, 3, 3, requires_grad=True)
    y = F.conv2d(x, w, padding=1)
    y = F.batch_norm(y, None, None, training=True)
    y = F.max_pool2d(y, 2) + F.avg_pool2d(y, 2)
    torch.autograd.grad(y.sum(), (x, w))


# --------------------------------------------------------------------------
# threads

def _numpy_blas_threads_functions():
    """(set, get) of the OpenBLAS NumPy ships (numpy.libs), or (None, None).

    fastconv.set_num_threads governs SciPy's BLAS (the one fastconv calls);
    NumPy carries its own copy, used by the NumPy im2col baseline."""
    base = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
    paths = sorted(glob.glob(os.path.join(base, "numpy.libs", "*openblas*")))
    paths += sorted(glob.glob(os.path.join(os.path.dirname(np.__file__), ".dylibs",
                                           "*openblas*")))
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for setter_name, getter_name in (
                ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
                ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
                ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
                ("openblas_set_num_threads", "openblas_get_num_threads")):
            setter = getattr(lib, setter_name, None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                getter = getattr(lib, getter_name, None)
                if getter is not None:
                    getter.restype = ctypes.c_int
                return setter, getter
    return None, None


_NP_SET, _NP_GET = _numpy_blas_threads_functions()


def set_threads(n):
    """Use n threads in fastconv (and SciPy's BLAS), torch and NumPy's BLAS."""
    fastconv.set_num_threads(n)
    torch = torch_module()
    if torch is not None:
        torch.set_num_threads(n)
    if _NP_SET is not None:
        _NP_SET(n)


def thread_counts():
    """{library: threads in use} (None where it cannot be queried)."""
    counts = {"fastconv": fastconv.get_num_threads()}
    try:
        from fastconv import _config
        counts["scipy BLAS"] = _config.blas_num_threads()
    except Exception:
        counts["scipy BLAS"] = None
    counts["numpy BLAS"] = int(_NP_GET()) if _NP_GET is not None else None
    torch = torch_module()
    if torch is not None:
        counts["torch"] = torch.get_num_threads()
    return counts


# --------------------------------------------------------------------------
# inputs

def make_inputs(task, layer, seed=0):
    """The arrays one call of `task` on `layer` reads, float32, made once."""
    rng = np.random.default_rng(seed)

    def randn(shape):
        return rng.standard_normal(shape, dtype=np.float32)

    xs = input_shape(layer)
    if task in ("conv2d", "conv2d_backward"):
        inputs = {"x": randn(xs), "w": randn(weight_shape(layer)),
                  "b": randn((layer["K"],))}
        if task == "conv2d_backward":
            inputs["gy"] = randn(output_shape("conv2d", layer))
        return inputs
    if task == "pool2d":
        return {"x": randn(xs)}
    if task == "pool2d_backward":
        x = randn(xs)
        inputs = {"x": x, "gy": randn(output_shape("pool2d", layer))}
        if layer["op"] == "max":
            # the oracle's indices: every implementation differentiates the
            # same forward
            kw = pool_kwargs(layer)
            _, inputs["indices"] = reference.max_pool2d(x, return_indices=True, **kw)
        return inputs
    C = layer["C"]
    inputs = {"x": randn(xs), "w": 1 + 0.1 * randn((C,)), "b": 0.1 * randn((C,)),
              "running_mean": np.zeros(C, np.float32),
              "running_var": np.ones(C, np.float32)}
    if task == "batch_norm_backward":
        inputs["gy"] = randn(xs)
    return inputs


# --------------------------------------------------------------------------
# implementations

@dataclass(frozen=True)
class Impl:
    key: str        # stable identifier: test ids, JSON
    label: str      # what the report prints
    role: str       # "fastconv", "reference", "numpy" or "torch"
    make: object    # make(task, layer, inputs) -> zero-argument callable

    def build(self, task, layer, inputs):
        return self.make(task, layer, inputs)


def _fastconv(algorithm=None):
    def make(task, layer, a):
        if task == "conv2d":
            args = conv_args(layer)
            return lambda: fastconv.conv2d(a["x"], a["w"], a["b"], *args,
                                           algorithm=algorithm)
        if task == "conv2d_backward":
            args = conv_args(layer)
            return lambda: fastconv.conv2d_backward(a["gy"], a["x"], a["w"], *args,
                                                    algorithm=algorithm)
        return _pool_bn(fastconv, task, layer, a)
    return make


def _reference(task, layer, a):
    if task == "conv2d":
        args = conv_args(layer)
        return lambda: reference.conv2d(a["x"], a["w"], a["b"], *args)
    if task == "conv2d_backward":
        args = conv_args(layer)
        return lambda: reference.conv2d_backward(a["gy"], a["x"], a["w"], *args)
    return _pool_bn(reference, task, layer, a)


def _pool_bn(mod, task, layer, a):
    """Pooling and batch norm through `mod` (fastconv or fastconv.reference),
    which share their signatures."""
    if task == "pool2d":
        kw = pool_kwargs(layer)
        if layer["op"] == "max":
            return lambda: mod.max_pool2d(a["x"], **kw)
        return lambda: mod.avg_pool2d(a["x"], **kw)
    if task == "pool2d_backward":
        kw = pool_kwargs(layer)
        shape = a["x"].shape
        if layer["op"] == "max":
            return lambda: mod.max_pool2d_backward(a["gy"], a["indices"], shape)
        return lambda: mod.avg_pool2d_backward(a["gy"], shape, **kw)
    if task == "batch_norm":
        # each implementation updates its own running statistics
        rm, rv = a["running_mean"].copy(), a["running_var"].copy()
        return lambda: mod.batch_norm(a["x"], rm, rv, a["w"], a["b"], training=True)
    if task == "batch_norm_backward":
        return lambda: mod.batch_norm_backward(a["gy"], a["x"], a["w"], training=True)
    raise ValueError(f"unknown task {task!r}")


def _numpy(task, layer, a):
    if task != "conv2d":
        raise ValueError("the NumPy im2col baseline is a conv2d forward")
    args = conv_args(layer)
    return lambda: numpy_im2col.conv2d(a["x"], a["w"], a["b"], *args)


def _torch(task, layer, a):
    torch = torch_module()
    if torch is None:
        raise RuntimeError("torch is not installed")
    F = torch.nn.functional
    t = {k: torch.from_numpy(v) for k, v in a.items()}   # shares the memory

    def forward_only(f):
        def run():
            with torch.no_grad():
                return f()
        return run

    def autograd(make_output, wrt, grad):
        # build the graph once; time only the backward pass
        leaves = [t[k].detach().clone().requires_grad_(True) for k in wrt]
        out = make_output(*leaves)
        return lambda: torch.autograd.grad(out, leaves, grad, retain_graph=True)

    if task == "conv2d":
        stride, padding, dilation, groups = conv_args(layer)
        return forward_only(lambda: F.conv2d(t["x"], t["w"], t["b"], stride, padding,
                                             dilation, groups))
    if task == "conv2d_backward":
        stride, padding, dilation, groups = conv_args(layer)
        return autograd(lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups),
                        ("x", "w", "b"), t["gy"])
    if task in ("pool2d", "pool2d_backward"):
        kw = pool_kwargs(layer)
        if layer["op"] == "max":
            def pool(x):
                return F.max_pool2d(x, kw["kernel_size"], kw["stride"], kw["padding"],
                                    ceil_mode=kw["ceil_mode"])
        else:
            def pool(x):
                return F.avg_pool2d(x, kw["kernel_size"], kw["stride"], kw["padding"],
                                    ceil_mode=kw["ceil_mode"],
                                    count_include_pad=kw["count_include_pad"])
        if task == "pool2d":
            return forward_only(lambda: pool(t["x"]))
        return autograd(pool, ("x",), t["gy"])
    if task == "batch_norm":
        rm, rv = t["running_mean"].clone(), t["running_var"].clone()
        return forward_only(lambda: F.batch_norm(t["x"], rm, rv, t["w"], t["b"],
                                                 training=True))
    if task == "batch_norm_backward":
        rm, rv = t["running_mean"].clone(), t["running_var"].clone()
        return autograd(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=True),
                        ("x", "w", "b"), t["gy"])
    raise ValueError(f"unknown task {task!r}")


FASTCONV_ALGORITHMS = ("auto", "direct", "im2col")
REFERENCE = Impl("reference", "reference", "reference", _reference)
NUMPY_IM2COL = Impl("numpy.im2col", "numpy im2col", "numpy", _numpy)
TORCH = Impl("torch", "torch", "torch", _torch)


def impls_for(task, include_torch=True):
    """The implementations compared on `task`, in report order."""
    if task in ("conv2d", "conv2d_backward"):
        fast = [Impl(f"fastconv.{alg}", f"fastconv {alg}", "fastconv", _fastconv(alg))
                for alg in FASTCONV_ALGORITHMS]
    else:
        fast = [Impl("fastconv", "fastconv", "fastconv", _fastconv())]
    chosen = fast + [REFERENCE]
    if task == "conv2d":
        chosen.append(NUMPY_IM2COL)
    if include_torch:
        chosen.append(TORCH)
    return chosen

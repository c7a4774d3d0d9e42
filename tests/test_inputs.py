"""What every op accepts as input, forward and backward, in the fast API
and in fastconv.reference (DESIGN.md section 3):

- complex, object, string and bytes arrays raise TypeError naming the
  argument, for every array argument;
- integers, bools and float16 are promoted as NumPy promotes them
  (np.result_type), made a native float type: integers and bools alone ->
  float64, float16 -> float32; the values are those of the op run on
  arrays already cast to that type;
- nested lists work (as float64), read-only arrays and non-contiguous views
  (Fortran order, transposed, negative strides, step slices, unaligned)
  give the bits of their contiguous copies;
- inputs are never modified (batch_norm's running statistics in training
  mode excepted: updated in place by design), and outputs are new arrays;
- an empty batch (N = 0) gives empty outputs of the right shape and dtype,
  and gradients of zeros for the weights.

The ops are listed once (OPS); each test runs over all of them.
"""
import re
from dataclasses import dataclass

import numpy as np
import pytest

import fastconv as fc
from _helpers import assert_close, assert_identical, rng_for, t64

# ---------------------------------------------------------------------------
# the ops: argument names, valid arrays, one call

CONV_KW = dict(stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2)
# x: N x 4 x 7 x 6, weight 6 x 2 x 3 x 3 -> y: N x 6 x 3 x 5
MAX_KW = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), dilation=(1, 2),
              ceil_mode=True)
# x: N x 3 x 7 x 8 -> y: N x 3 x 4 x 8
AVG_KW = dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 1), ceil_mode=True,
              count_include_pad=False)
# x: N x 3 x 7 x 8 -> y: N x 3 x 4 x 9


@dataclass
class Op:
    """One op under test.

    shapes: each array argument's shape, as a function of N (the order is
    the call's); run(module, arrays) calls the op and returns its outputs as
    a tuple.  promoting: the arguments whose dtypes make the result's (the
    others are state or folded in float64); updated: arguments the op
    updates in place by design; batched: which outputs have the batch axis
    (for N = 0, the others are weight gradients: zeros); positive: arguments
    that must be > 0 (variances); index: the max-pool indices argument."""
    name: str
    shapes: callable
    run: callable
    promoting: tuple
    updated: tuple = ()
    batched: tuple = (True,)
    positive: tuple = ()
    index: str = None
    has_batch: bool = True


def _bn_vectors(C):
    return dict(running_mean=(C,), running_var=(C,), weight=(C,), bias=(C,))


def _plane_count(a):
    return len(a)       # works for arrays and nested lists


OPS = [
    Op("conv2d",
       lambda N: dict(x=(N, 4, 7, 6), weight=(6, 2, 3, 3), bias=(6,)),
       lambda m, a: (m.conv2d(a["x"], a["weight"], a["bias"], **CONV_KW),),
       promoting=("x", "weight", "bias")),
    Op("conv2d_backward",
       lambda N: dict(grad_output=(N, 6, 3, 5), x=(N, 4, 7, 6), weight=(6, 2, 3, 3)),
       lambda m, a: tuple(m.conv2d_backward(a["grad_output"], a["x"], a["weight"],
                                            **CONV_KW)),
       promoting=("grad_output", "x", "weight"), batched=(True, False, False)),
    Op("max_pool2d",
       lambda N: dict(x=(N, 3, 7, 8)),
       lambda m, a: tuple(m.max_pool2d(a["x"], **MAX_KW, return_indices=True)),
       promoting=("x",), batched=(True, True)),
    Op("max_pool2d_backward",
       lambda N: dict(grad_output=(N, 3, 4, 8), indices=(N, 3, 4, 8)),
       lambda m, a: (m.max_pool2d_backward(a["grad_output"], a["indices"],
                                           (_plane_count(a["grad_output"]), 3, 7, 8)),),
       promoting=("grad_output",), index="indices"),
    Op("avg_pool2d",
       lambda N: dict(x=(N, 3, 7, 8)),
       lambda m, a: (m.avg_pool2d(a["x"], **AVG_KW),),
       promoting=("x",)),
    Op("avg_pool2d_backward",
       lambda N: dict(grad_output=(N, 3, 4, 9)),
       lambda m, a: (m.avg_pool2d_backward(a["grad_output"],
                                           (_plane_count(a["grad_output"]), 3, 7, 8),
                                           **AVG_KW),),
       promoting=("grad_output",)),
    Op("batch_norm_eval",
       lambda N: dict(x=(N, 3, 4, 5), **_bn_vectors(3)),
       lambda m, a: (m.batch_norm(a["x"], a["running_mean"], a["running_var"], a["weight"],
                                  a["bias"], training=False, eps=1e-3),),
       promoting=("x", "weight", "bias"), positive=("running_var",)),
    Op("batch_norm_train",
       lambda N: dict(x=(N, 3, 4, 5), **_bn_vectors(3)),
       # the running statistics are outputs too: their values after the update
       lambda m, a: (m.batch_norm(a["x"], a["running_mean"], a["running_var"], a["weight"],
                                  a["bias"], training=True, momentum=0.3, eps=1e-3),
                     np.array(a["running_mean"]), np.array(a["running_var"])),
       promoting=("x", "weight", "bias"), updated=("running_mean", "running_var"),
       batched=(True, False, False), positive=("running_var",)),
    *(Op(f"batch_norm_backward_{mode}",
         lambda N: dict(grad_output=(N, 3, 4, 5), x=(N, 3, 4, 5), weight=(3,),
                        running_mean=(3,), running_var=(3,)),
         lambda m, a, training=training: tuple(m.batch_norm_backward(
             a["grad_output"], a["x"], a["weight"], running_mean=a["running_mean"],
             running_var=a["running_var"], training=training, eps=1e-3)),
         promoting=("grad_output", "x", "weight"), batched=(True, False, False),
         positive=("running_var",))
      for mode, training in (("train", True), ("eval", False))),
    Op("fuse_conv_bn",
       lambda N: dict(weight=(6, 2, 3, 3), bias=(6,), running_mean=(6,), running_var=(6,),
                      bn_weight=(6,), bn_bias=(6,)),
       lambda m, a: tuple(m.fuse_conv_bn(a["weight"], a["bias"], a["running_mean"],
                                         a["running_var"], a["bn_weight"], a["bn_bias"],
                                         eps=1e-3)),
       promoting=("weight",), batched=(False, False), positive=("running_var",),
       has_batch=False),
    Op("conv2d_bn",
       lambda N: dict(x=(N, 4, 7, 6), weight=(6, 2, 3, 3), bias=(6,), running_mean=(6,),
                      running_var=(6,), bn_weight=(6,), bn_bias=(6,)),
       lambda m, a: (m.conv2d_bn(a["x"], a["weight"], a["bias"], a["running_mean"],
                                 a["running_var"], a["bn_weight"], a["bn_bias"],
                                 **CONV_KW, eps=1e-3, activation="relu"),),
       promoting=("x", "weight"), positive=("running_var",)),
]
OP_IDS = [op.name for op in OPS]
ARGS = [(op, name) for op in OPS for name in op.shapes(2)]
ARG_IDS = [f"{op.name}-{name}" for op, name in ARGS]


def make_arrays(op, N=2, seed=0, small_ints=False):
    """Valid float64 arrays for `op` (int64 indices).  small_ints: values in
    0..3 (1..3 where they must be positive), exact in every dtype."""
    rng = rng_for(seed)
    arrays = {}
    for name, shape in op.shapes(N).items():
        if name == op.index:
            arrays[name] = rng.integers(0, 7 * 8, size=shape)     # repeats too
        elif small_ints:
            lo = 1 if name in op.positive else 0
            arrays[name] = rng.integers(lo, 4, size=shape).astype(np.float64)
        elif name in op.positive:
            arrays[name] = rng.uniform(0.5, 2.0, shape)
        else:
            arrays[name] = rng.standard_normal(shape)
    return arrays


def copies(arrays):
    return {k: np.array(v, copy=True) for k, v in arrays.items()}


def run(op, module, arrays):
    out = op.run(module, arrays)
    assert isinstance(out, tuple) and all(isinstance(o, np.ndarray) for o in out), op.name
    return out


MODULES = {"fast": fc, "reference": fc.reference}


# ---------------------------------------------------------------------------
# complex, object, string and bytes arrays: TypeError naming the argument

BAD_KINDS = {
    "complex": lambda a: a.astype(np.complex128),
    "complex64": lambda a: a.astype(np.complex64),
    "object": lambda a: a.astype(object),
    "string": lambda a: a.astype(str),
    "bytes": lambda a: a.astype(bytes),
}


@pytest.mark.parametrize("kind", list(BAD_KINDS))
@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("op,arg", ARGS, ids=ARG_IDS)
def test_non_real_dtype_is_a_type_error(op, arg, module, kind):
    """The message names the argument, what it expected and the dtype given."""
    arrays = make_arrays(op)
    bad = BAD_KINDS[kind](arrays[arg])
    arrays[arg] = bad
    with pytest.raises(TypeError, match=rf"^{arg}: expected .*, got dtype "
                                        rf"{re.escape(str(bad.dtype))}"):
        op.run(MODULES[module], arrays)


@pytest.mark.parametrize("module", list(MODULES))
@pytest.mark.parametrize("op,arg", ARGS, ids=ARG_IDS)
def test_object_array_of_numbers_is_a_type_error(op, arg, module):
    """An object array is refused even when its elements are numbers (from
    a list mixing numbers and None, say): its dtype decides, not its
    contents."""
    arrays = make_arrays(op)
    obj = np.empty(arrays[arg].shape, dtype=object)
    obj[...] = arrays[arg]
    arrays[arg] = obj
    with pytest.raises(TypeError, match=rf"^{arg}: expected .*, got dtype object"):
        op.run(MODULES[module], arrays)


# ---------------------------------------------------------------------------
# integers, bools and float16: NumPy's promotion, to a native float type

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)

# (dtype of the op's first promoting argument, dtype of the others, the
# result's dtype): np.result_type's, made a native float type
PROMOTIONS = [
    (np.int64, np.int64, F64),
    (np.int32, np.int32, F64),
    (np.int8, np.int8, F64),
    (np.uint8, np.uint8, F64),
    (np.bool_, np.bool_, F64),
    (np.float16, np.float16, F32),
    (np.int8, np.float32, F32),       # NumPy: float32 (int8 is exact in it)
    (np.int16, np.float32, F32),      # NumPy: float32
    (np.int32, np.float32, F64),      # NumPy: float64
    (np.uint8, np.float16, F32),      # NumPy: float16
    (np.int32, np.float16, F64),      # NumPy: float64
    (np.float16, np.float64, F64),
    (np.float32, np.float64, F64),
    (np.bool_, np.float32, F32),
    (np.uint16, np.int8, F64),        # NumPy: int32
]
# ops with one promoting argument: its dtype alone decides
ALONE = {np.int64: F64, np.int32: F64, np.int8: F64, np.int16: F64, np.uint8: F64,
         np.uint16: F64, np.bool_: F64, np.float16: F32, np.float32: F32, np.float64: F64}


@pytest.mark.parametrize("first,rest,mixed", PROMOTIONS,
                         ids=[f"{np.dtype(a).name}-{np.dtype(b).name}" for a, b, _ in PROMOTIONS])
@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_dtype_promotion(api, op, first, rest, mixed):
    """The result's dtype, and the bits of the op run on arrays already cast
    to it; the running statistics (state) and conv2d_bn's bias and batch
    norm vectors (folded in float64) do not promote, and take `rest`."""
    arrays = make_arrays(op, seed=1, small_ints=True)
    given = {}
    for name, a in arrays.items():
        if name == op.index or name in op.updated:
            given[name] = a.copy()          # int64 indices; float64 state
        elif name == op.promoting[0]:
            given[name] = a.astype(first)
        else:
            given[name] = a.astype(rest)
    expected = mixed if len(op.promoting) > 1 else ALONE[first]
    # the same op on arrays already cast to that dtype (the non-promoting
    # arguments as given)
    cast = {n: (a.astype(expected) if n in op.promoting else a.copy())
            for n, a in given.items()}
    out = run(op, api, given)
    out_cast = run(op, api, copies(cast))
    for i, (o, oc) in enumerate(zip(out, out_cast)):
        if o.dtype.kind != "i" and not (op.updated and i > 0):
            assert o.dtype == expected, f"{op.name} output {i}: {o.dtype}, expected {expected}"
        assert_identical(o, oc, f"{op.name} output {i}")
    # and its values are the reference's, computed in that dtype
    ref = run(op, fc.reference, copies(cast))
    for i, (o, r) in enumerate(zip(out, ref)):
        if o.dtype.kind == "i":
            assert_identical(o, r, f"{op.name} indices")
        else:
            assert_close(o, r, o.dtype, f"{op.name} output {i} vs the reference")


INDEX_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.uint64]


@pytest.mark.parametrize("dtype", INDEX_DTYPES, ids=[np.dtype(d).name for d in INDEX_DTYPES])
def test_max_pool2d_backward_index_dtypes(api, dtype):
    """Indices of any integer type give the int64 indices' bits."""
    op = OPS[OP_IDS.index("max_pool2d_backward")]
    arrays = make_arrays(op, seed=2)
    expected = run(op, api, copies(arrays))
    arrays["indices"] = arrays["indices"].astype(dtype)
    assert_identical(run(op, api, arrays)[0], expected[0], np.dtype(dtype).name)


# ---------------------------------------------------------------------------
# nested lists, read-only arrays and non-contiguous views

@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_nested_lists(api, op):
    """Every array argument as nested lists of Python floats (ints for the
    indices): the float64 arrays' result.  The running statistics that
    training updates in place must be arrays (a TypeError otherwise, see
    test_validation.py)."""
    arrays = make_arrays(op, seed=3)
    expected = run(op, api, copies(arrays))
    lists = {n: (a.copy() if n in op.updated else a.tolist()) for n, a in arrays.items()}
    for i, (o, e) in enumerate(zip(run(op, api, lists), expected)):
        assert_identical(o, e, f"{op.name} output {i} from nested lists")


def layouts(a):
    """(name, view): a's values in other memory layouts, none of them the
    C-contiguous writeable array itself."""
    if a.ndim >= 2:
        yield "fortran", np.asfortranarray(a)
        axes = tuple(range(a.ndim))[::-1]
        yield "transposed", np.ascontiguousarray(a.transpose(axes)).transpose(axes)
        yield "swapped_last_axes", np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    every = tuple(slice(None, None, -1) for _ in a.shape)
    yield "negative_strides", np.ascontiguousarray(a[every])[every]
    big = np.zeros(tuple(3 * s + 1 for s in a.shape), a.dtype)
    step = big[tuple(slice(1, None, 3) for _ in a.shape)]
    step[...] = a
    yield "step_slice", step
    raw = np.zeros(a.nbytes + 1, np.uint8)
    unaligned = raw[1:].view(a.dtype).reshape(a.shape)
    unaligned[...] = a
    yield "unaligned", unaligned
    ro = a.copy()
    ro.setflags(write=False)
    yield "read_only", ro


LAYOUT_CASES = [(op, arg, lay) for op, arg in ARGS
                for lay, _ in layouts(np.zeros(op.shapes(2)[arg]))
                if not (arg in op.updated and lay == "read_only")]


def test_layouts_are_what_they_say():
    a = np.arange(24.0).reshape(2, 3, 4)
    for name, v in layouts(a):
        assert_identical(v, a, name)
        assert not (v.flags.c_contiguous and v.flags.writeable and v.flags.aligned), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op,arg,layout", LAYOUT_CASES,
                         ids=[f"{op.name}-{arg}-{lay}" for op, arg, lay in LAYOUT_CASES])
def test_layout_gives_identical_bits(api, op, arg, layout, dtype):
    """One argument in another layout, the others contiguous: the same bits
    as all contiguous (for the running statistics of training: the same
    updated values, written through the view)."""
    arrays = make_arrays(op, seed=4)
    arrays = {n: (a if n == op.index else a.astype(dtype)) for n, a in arrays.items()}
    expected = run(op, api, copies(arrays))
    view = dict(layouts(arrays[arg]))[layout]
    before = view.copy()
    given = copies(arrays)
    given[arg] = view
    out = run(op, api, given)
    for i, (o, e) in enumerate(zip(out, expected)):
        assert_identical(o, e, f"{op.name} output {i} with {arg} {layout}")
    if arg not in op.updated:
        assert_identical(view, before, f"{arg} ({layout}) modified")


# ---------------------------------------------------------------------------
# inputs never modified; outputs new arrays

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_inputs_never_modified(api, op, dtype):
    """Contiguous arrays of the compute dtype (the ones no conversion
    copies) are left as they were, and no output shares memory with any
    of them.  Training batch norm updates its running statistics (checked
    to change), and nothing else."""
    arrays = make_arrays(op, seed=5)
    arrays = {n: (a if n == op.index else a.astype(dtype)) for n, a in arrays.items()}
    before = copies(arrays)
    out = run(op, api, arrays)
    for name, a in arrays.items():
        if name in op.updated:
            assert not np.array_equal(a, before[name]), f"{name} not updated"
        else:
            assert_identical(a, before[name], f"{op.name}: {name} modified")
        for i, o in enumerate(out):
            assert not np.shares_memory(o, a), f"{op.name}: output {i} shares memory with {name}"
    for i, o in enumerate(out):
        assert o.flags.c_contiguous and o.flags.writeable, f"{op.name}: output {i}"


@pytest.mark.parametrize("op", OPS, ids=OP_IDS)
def test_inputs_never_modified_when_converted(api, op):
    """Non-native inputs (float16, int32, non-contiguous) are converted,
    never written back."""
    arrays = make_arrays(op, seed=6, small_ints=True)
    given = {}
    for i, (n, a) in enumerate(arrays.items()):
        if n == op.index:
            given[n] = a.astype(np.int32)
        elif n in op.updated:       # updated in place: float arrays by design
            given[n] = a.astype(np.float32)
        elif i % 2:
            given[n] = a.astype(np.float16)
        else:
            given[n] = np.asfortranarray(a.astype(np.int32))
    before = copies(given)
    run(op, api, given)
    for n, a in given.items():
        if n not in op.updated:
            assert_identical(a, before[n], f"{op.name}: {n} modified")
        assert a.dtype == before[n].dtype


# ---------------------------------------------------------------------------
# the empty batch

BATCHED_OPS = [op for op in OPS if op.has_batch]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", BATCHED_OPS, ids=[op.name for op in BATCHED_OPS])
def test_empty_batch(api, op, dtype):
    """N = 0: outputs with the batch axis are empty, of the N = 1 outputs'
    other dimensions and the compute dtype; weight gradients are zeros;
    batch norm's running statistics stay as they were in training too (as
    PyTorch: see test_batch_norm_empty_batch_matches_torch)."""
    one = make_arrays(op, N=1, seed=7)
    one = {n: (a if n == op.index else a.astype(dtype)) for n, a in one.items()}
    empty = make_arrays(op, N=0, seed=7)
    empty = {n: (a if n == op.index else a.astype(dtype)) for n, a in empty.items()}
    before = copies(empty)
    ref_shapes = [o.shape for o in run(op, api, copies(one))]
    out = run(op, api, empty)
    assert len(out) == len(ref_shapes) == len(op.batched)
    for i, (o, shape, batched) in enumerate(zip(out, ref_shapes, op.batched)):
        want_dtype = np.int64 if (op.name == "max_pool2d" and i == 1) else dtype
        if op.updated and i > 0:      # the running statistics, as they were
            name = op.updated[i - 1]
            assert_identical(o, before[name], f"{name} changed by an empty batch")
            continue
        assert o.dtype == want_dtype, f"{op.name} output {i}: {o.dtype}"
        if batched:
            assert o.shape == (0,) + shape[1:], f"{op.name} output {i}: {o.shape}"
        else:
            assert o.shape == shape
            assert_identical(o, np.zeros(shape, dtype), f"{op.name} output {i}")


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_empty_batch_matches_torch(torch, api, training):
    """PyTorch: an empty batch normalises to an empty result, in training
    too, with the running statistics unchanged and zero gradients."""
    x = np.zeros((0, 3, 4, 4))
    rm, rv = np.array([0.5, -1.0, 2.0]), np.array([1.5, 0.25, 3.0])
    w, b = np.array([1.0, 2.0, -1.0]), np.array([0.0, 1.0, 2.0])
    rm_t, rv_t = t64(torch, rm), t64(torch, rv)
    xt, wt, bt = t64(torch, x, True), t64(torch, w, True), t64(torch, b, True)
    yt = torch.nn.functional.batch_norm(xt, rm_t, rv_t, wt, bt, training=training,
                                        momentum=0.3)
    yt.backward(torch.zeros_like(yt))
    y = api.batch_norm(x, rm, rv, w, b, training=training, momentum=0.3)
    assert y.shape == tuple(yt.shape) and y.dtype == np.float64
    assert_identical(rm, rm_t.numpy(), "running_mean")
    assert_identical(rv, rv_t.numpy(), "running_var")
    gi, gw, gb = api.batch_norm_backward(x, x, w, running_mean=rm, running_var=rv,
                                         training=training)
    assert gi.shape == tuple(xt.grad.shape)
    assert_identical(gw, wt.grad.numpy(), "grad_weight")
    assert_identical(gb, bt.grad.numpy(), "grad_bias")

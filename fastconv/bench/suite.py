"""The benchmark suite (suite.json next to this file) and the arithmetic on
its layers: selection, work counts, and down-scaled copies.

suite.json is the single source of the layers: ``python -m fastconv.bench``
and the pytest-benchmark suites in benchmarks/ both load it through
:func:`load_suite`, so a layer added there appears in both.

A layer is a dict as in suite.json.  A *scaled copy* of a layer is the same
dict with some of N, H/W and the channels made smaller and a ``"scaled"``
entry recording what changed, ``{field: (full, scaled)}``; :func:`ladder`
lists the copies a layer can be shrunk to, full size first.
"""
import json
import os

from .. import shapes

SUITE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "suite.json")

FAMILIES = ("conv2d", "pool2d", "batch_norm")
# what is timed: each family forward, and its backward with --backward
TASKS = {
    "conv2d": ("conv2d", "conv2d_backward"),
    "pool2d": ("pool2d", "pool2d_backward"),
    "batch_norm": ("batch_norm", "batch_norm_backward"),
}

# The default (quick) run: layers that between them cover the kinds of
# convolution (small-batch LeNet, strided, 1x1, wide 3x3, depthwise), a max
# pool big enough that the reference has to be scaled down, an average pool
# with padding and stride 1, and ResNet-50's batch norm.
QUICK = {
    "conv2d": ["lenet_c2", "cifar_res64", "vgg_256x56", "r50_1x1_256to64",
               "r50_3x3s2_128", "mbv1_dw3x3_32"],
    "pool2d": ["r50_b32_max3s2", "incep_avg3s1"],
    "batch_norm": ["r50_bn64x56"],
}

ITEMSIZE = 4        # every benchmark runs in float32
INDEX_ITEMSIZE = 8  # max-pool indices are int64


def load_suite(path=SUITE_PATH):
    """{family: [layer, ...]} from suite.json (the "about" entry dropped)."""
    with open(path) as f:
        data = json.load(f)
    return {family: [dict(layer) for layer in data.get(family, [])]
            for family in FAMILIES}


def select(suite, *, full=False, families=None, names=None):
    """[(family, layer)] in suite order: the QUICK subset, or every layer
    with full=True; `families` and `names` narrow it (names select from the
    whole suite).  Unknown names raise ValueError."""
    families = list(FAMILIES if families is None else families)
    for fam in families:
        if fam not in FAMILIES:
            raise ValueError(f"--ops: expected some of {', '.join(FAMILIES)}, got {fam!r}")
    if names is not None:
        known = {layer["name"] for fam in FAMILIES for layer in suite[fam]}
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(f"--layers: unknown layer(s) {', '.join(unknown)}; "
                             f"see --list")
    chosen = []
    for fam in families:
        for layer in suite[fam]:
            if names is not None:
                keep = layer["name"] in names
            else:
                keep = full or layer["name"] in QUICK[fam]
            if keep:
                chosen.append((fam, layer))
    return chosen


# --------------------------------------------------------------------------
# shapes and work

def input_shape(layer):
    return (layer["N"], layer["C"], layer["H"], layer["W"])


def weight_shape(layer):
    return (layer["K"], layer["C"] // layer["groups"], layer["R"], layer["S"])


def conv_args(layer):
    """(stride, padding, dilation, groups) of a conv2d layer."""
    return layer["stride"], layer["padding"], layer["dilation"], layer["groups"]


def pool_kwargs(layer):
    """Keyword arguments of max_pool2d / avg_pool2d for a pool2d layer."""
    kw = {"kernel_size": layer["kernel"], "stride": layer["stride"],
          "padding": layer["padding"], "ceil_mode": layer["ceil_mode"]}
    if layer["op"] == "avg":
        kw["count_include_pad"] = layer.get("count_include_pad", True)
    return kw


def output_shape(family, layer):
    if family == "conv2d":
        return shapes.conv2d_output_shape(input_shape(layer), weight_shape(layer),
                                          *conv_args(layer))
    if family == "pool2d":
        return shapes.pool2d_output_shape(input_shape(layer), layer["kernel"],
                                          layer["stride"], layer["padding"], 1,
                                          layer["ceil_mode"])
    return input_shape(layer)


def _numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def work(task, layer):
    """What one call of `task` on `layer` must do, as (amount, unit).

    conv2d: FLOPs = 2*N*K*P*Q*(C/groups)*R*S (fastconv.shapes.conv2d_flops);
    conv2d_backward: twice that (grad_input and grad_weight each cost one
    forward; grad_bias is a sum, not counted).  Pooling and batch norm: the
    least bytes, inputs read once plus outputs written once, in float32:
    pool2d x + y; pool2d_backward grad_output (+ int64 indices for max) +
    grad_input; batch_norm (training) x + y; batch_norm_backward
    grad_output + x + grad_input (per-channel vectors neglected)."""
    if task in ("conv2d", "conv2d_backward"):
        flops = shapes.conv2d_flops(input_shape(layer), weight_shape(layer),
                                    *conv_args(layer))
        return (flops if task == "conv2d" else 2 * flops), "FLOP"
    n_in = _numel(input_shape(layer))
    if task == "pool2d":
        n_out = _numel(output_shape("pool2d", layer))
        return (n_in + n_out) * ITEMSIZE, "B"
    if task == "pool2d_backward":
        n_out = _numel(output_shape("pool2d", layer))
        extra = n_out * INDEX_ITEMSIZE if layer["op"] == "max" else 0
        return (n_in + n_out) * ITEMSIZE + extra, "B"
    if task == "batch_norm":
        return 2 * n_in * ITEMSIZE, "B"
    if task == "batch_norm_backward":
        return 3 * n_in * ITEMSIZE, "B"
    raise ValueError(f"unknown task {task!r}")


def family_of(task):
    return task[:-len("_backward")] if task.endswith("_backward") else task


def describe(family, layer):
    """One line: the layer's geometry."""
    N, C, H, W = input_shape(layer)
    if family == "conv2d":
        out = output_shape(family, layer)
        g = f" groups={layer['groups']}" if layer["groups"] != 1 else ""
        return (f"{N}x{C}x{H}x{W} -> {out[0]}x{out[1]}x{out[2]}x{out[3]}, "
                f"{layer['R']}x{layer['S']} stride {layer['stride']} pad "
                f"{layer['padding']} dil {layer['dilation']}{g}")
    if family == "pool2d":
        out = output_shape(family, layer)
        extra = " ceil" if layer["ceil_mode"] else ""
        if layer["op"] == "avg" and not layer.get("count_include_pad", True):
            extra += " no-pad-count"
        return (f"{layer['op']} {N}x{C}x{H}x{W} -> {out[0]}x{out[1]}x{out[2]}x"
                f"{out[3]}, {layer['kernel']}x{layer['kernel']} stride "
                f"{layer['stride']} pad {layer['padding']}{extra}")
    return f"{N}x{C}x{H}x{W} (training)"


# --------------------------------------------------------------------------
# scaled-down copies

def _min_spatial(family, layer):
    """The smallest H (and W) a scaled copy may have: the kernel still fits
    with room for a few outputs, and never below 7."""
    if family == "conv2d":
        eff = max(layer["dilation"] * (layer["R"] - 1) + 1,
                  layer["dilation"] * (layer["S"] - 1) + 1)
        return max(7, eff + layer["stride"])
    if family == "pool2d":
        return max(7, layer["kernel"] + layer["stride"])
    return 4


def _scaled(layer, changes):
    new = dict(layer)
    record = dict(layer.get("scaled", {}))
    for field, value in changes.items():
        full = record[field][0] if field in record else layer[field]
        new[field] = value
        record[field] = (full, value)
    new["scaled"] = {k: v for k, v in record.items() if v[0] != v[1]}
    if not new["scaled"]:
        del new["scaled"]
    return new


def ladder(family, layer):
    """Copies of `layer`, full size first, each step halving one thing, in
    the order N, then H and W together, then the channels (C and K of a
    convolution, keeping C/groups and K/groups; C elsewhere).  The geometry
    (kernel, stride, padding, dilation) is never changed, so a scaled copy is
    the same kind of layer on a smaller tensor."""
    rungs = [dict(layer)]
    cur = dict(layer)
    while cur["N"] > 1:
        cur = _scaled(cur, {"N": cur["N"] // 2})
        rungs.append(cur)
    hmin = _min_spatial(family, layer)
    while cur["H"] // 2 >= hmin and cur["W"] // 2 >= hmin:
        cur = _scaled(cur, {"H": cur["H"] // 2, "W": cur["W"] // 2})
        rungs.append(cur)
    if family == "conv2d":
        while True:
            g, C, K = cur["groups"], cur["C"], cur["K"]
            if g > 1:
                if g % 2:
                    break
                changes = {"groups": g // 2, "C": C // 2, "K": K // 2}
            else:
                changes = {}
                if C >= 2:
                    changes["C"] = C // 2
                if K >= 2:
                    changes["K"] = K // 2
                if not changes:
                    break
            cur = _scaled(cur, changes)
            rungs.append(cur)
    else:
        while cur["C"] > 1:
            cur = _scaled(cur, {"C": cur["C"] // 2})
            rungs.append(cur)
    return rungs


def is_scaled(layer):
    return bool(layer.get("scaled"))


def _spatial_merge(scaled):
    """Changes as display items, H and W merged when both changed."""
    items = []
    for field in ("N", "H", "C", "K", "groups"):
        if field == "H" and "H" in scaled and "W" in scaled:
            (h0, h1), (w0, w1) = scaled["H"], scaled["W"]
            items.append(("HxW", f"{h0}x{w0}", f"{h1}x{w1}"))
        elif field in scaled:
            items.append((field, str(scaled[field][0]), str(scaled[field][1])))
    return items


def scale_note(layer):
    """'N 32->8, HxW 112x112->56x56' for a scaled copy, '' for a full layer."""
    return ", ".join(f"{f} {a}->{b}" for f, a, b in _spatial_merge(layer.get("scaled", {})))


def scale_tag(layer):
    """The same as a test-id fragment: 'scaled-N32to8-HxW112x112to56x56'."""
    if not is_scaled(layer):
        return ""
    return "scaled-" + "-".join(f"{f}{a}to{b}" for f, a, b in _spatial_merge(layer["scaled"]))


def scale_to(task, layer, max_work):
    """The largest copy on the ladder whose work(task) is at most max_work
    (the smallest copy if none is)."""
    family = family_of(task)
    rungs = ladder(family, layer)
    for rung in rungs:
        if work(task, rung)[0] <= max_work:
            return rung
    return rungs[-1]

"""Benchmark cases for pytest-benchmark (benchmarks/test_bench_*.py): every
layer of suite.json times every implementation, forward and backward.

A case's size is fixed when the tests are collected, so that its test id --
and with it pytest-benchmark's saved history and --benchmark-compare -- stays
the same from run to run:

- fastconv, NumPy im2col and torch always run the full layer;
- the reference runs the largest copy of the layer (suite.ladder) whose work
  is within REFERENCE_MAX_WORK[task], and its test id says so, e.g.
  ``r50_b32_max3s2-reference-scaled-N32to8``.

The caps keep each reference call under about a second on a 2-core
machine (measured 2026-11: the reference's slowest full-size suite call is
max pooling on r50_b32_max3s2, about 2 s; every conv2d forward is below
0.5 s, every conv2d backward below 1 s).  ``python -m fastconv.bench``
instead decides sizes from measured calls, for every implementation.
"""
from dataclasses import dataclass

from . import suite as S
from .impls import impls_for, make_inputs, torch_module

# the most work one reference call may do: FLOPs (conv) or least bytes
REFERENCE_MAX_WORK = {
    "conv2d": 8e9,
    "conv2d_backward": 16e9,
    "pool2d": 40e6,
    "pool2d_backward": 256e6,
    "batch_norm": 256e6,
    "batch_norm_backward": 512e6,
}


@dataclass(frozen=True)
class Case:
    task: str
    layer: dict         # the suite's layer
    run: dict           # what is timed: the layer or a scaled copy of it
    impl: object        # impls.Impl

    @property
    def id(self):
        tag = S.scale_tag(self.run)
        return f"{self.layer['name']}-{self.impl.key}" + (f"-{tag}" if tag else "")

    @property
    def scaled(self):
        return S.is_scaled(self.run)

    def work(self):
        """(amount, unit) of one call at the size that runs."""
        return S.work(self.task, self.run)

    def needs_torch(self):
        return self.impl.role == "torch"

    def prepare(self, seed=0):
        """Inputs made and the callable built: the zero-argument call to time."""
        return self.impl.build(self.task, self.run, make_inputs(self.task, self.run, seed))


def cases(task, suite=None):
    """Every (layer, implementation) case of `task`, torch included whether
    or not it is installed (the test skips it)."""
    suite = S.load_suite() if suite is None else suite
    family = S.family_of(task)
    out = []
    for layer in suite[family]:
        for impl in impls_for(task, include_torch=True):
            run = layer
            if impl.role == "reference":
                run = S.scale_to(task, layer, REFERENCE_MAX_WORK[task])
            out.append(Case(task, layer, run, impl))
    return out


def torch_available():
    return torch_module() is not None

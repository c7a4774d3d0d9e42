"""pytest-benchmark: conv2d on every conv2d layer of suite.json.

Forward: fastconv.conv2d with algorithm "auto", "direct" and "im2col",
fastconv.reference.conv2d, the NumPy im2col baseline and
torch.nn.functional.conv2d (skipped without torch).  Backward:
fastconv.conv2d_backward per algorithm, the reference, and torch autograd of
the input, weight and bias gradients (the graph built outside the timing).
The reference runs a scaled-down copy where the full layer is too slow, and
its test id says so ("-scaled-..."); see fastconv/bench/cases.py."""
import pytest

from fastconv.bench.cases import cases

FORWARD = cases("conv2d")
BACKWARD = cases("conv2d_backward")


@pytest.mark.parametrize("case", FORWARD, ids=[c.id for c in FORWARD])
def test_conv2d(measure, case):
    measure(case)


@pytest.mark.parametrize("case", BACKWARD, ids=[c.id for c in BACKWARD])
def test_conv2d_backward(measure, case):
    measure(case)

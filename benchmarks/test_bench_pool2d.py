"""pytest-benchmark: max and average pooling on every pool2d layer of
suite.json: fastconv, fastconv.reference and torch (skipped without it).
Forward max pooling is timed without indices (the inference call); backward
times max_pool2d_backward / avg_pool2d_backward against torch autograd.
The reference runs a scaled-down copy where the full layer is too slow, and
its test id says so ("-scaled-..."); see fastconv/bench/cases.py."""
import pytest

from fastconv.bench.cases import cases

FORWARD = cases("pool2d")
BACKWARD = cases("pool2d_backward")


@pytest.mark.parametrize("case", FORWARD, ids=[c.id for c in FORWARD])
def test_pool2d(measure, case):
    measure(case)


@pytest.mark.parametrize("case", BACKWARD, ids=[c.id for c in BACKWARD])
def test_pool2d_backward(measure, case):
    measure(case)

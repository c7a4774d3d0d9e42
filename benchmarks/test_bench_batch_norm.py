"""pytest-benchmark: batch norm in training mode (batch statistics, running
statistics updated) on every batch_norm layer of suite.json, forward and
backward: fastconv, fastconv.reference and torch (skipped without it).
The reference runs a scaled-down copy where the full layer is too slow, and
its test id says so ("-scaled-..."); see fastconv/bench/cases.py."""
import pytest

from fastconv.bench.cases import cases

FORWARD = cases("batch_norm")
BACKWARD = cases("batch_norm_backward")


@pytest.mark.parametrize("case", FORWARD, ids=[c.id for c in FORWARD])
def test_batch_norm(measure, case):
    measure(case)


@pytest.mark.parametrize("case", BACKWARD, ids=[c.id for c in BACKWARD])
def test_batch_norm_backward(measure, case):
    measure(case)

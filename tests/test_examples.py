"""The examples under examples/ run, through their main() functions:
train_digits reaches its accuracy target on the held-out digits in bounded
time (fewer epochs than the script's default, a fixed seed), and
resnet_block's network matches PyTorch's.

scikit-learn (the digits) is part of the `test` extra: no skip for it.
"""
import importlib.util
import os
import time

import numpy as np

from _helpers import RTOL

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "examples")

# Seconds the digits test may take, training and timing included, on this
# project's 2-core machine run single-threaded (it takes a few seconds).
DIGITS_TIME_LIMIT = 60.0


def load_example(name):
    spec = importlib.util.spec_from_file_location(
        f"fastconv_example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_digits():
    example = load_example("train_digits")
    t0 = time.perf_counter()
    result = example.main(epochs=8, seed=0, verbose=False, timing_repeats=3)
    elapsed = time.perf_counter() - t0
    assert result["accuracy"] >= 0.97, f"held-out accuracy {result['accuracy']:.4f}"
    assert result["agreement"] == 1.0, "the fused model changed a prediction"
    assert result["fused_accuracy"] == result["accuracy"]
    assert elapsed < DIGITS_TIME_LIMIT, f"took {elapsed:.1f} s"
    for t_unfused, t_fused in result["timings"].values():
        assert t_unfused > 0 and t_fused > 0


def test_resnet_block(torch):
    example = load_example("resnet_block")
    result = example.main(seed=0, verbose=False, timing_repeats=2)
    assert result["fused_agreement"] == 1.0
    assert np.isfinite(result["loss"])
    # float64 against PyTorch float64: the float64 tolerance of every test
    bad = {k: v for k, v in result["errors"].items() if v > RTOL[np.dtype(np.float64)]}
    assert not bad, f"relative errors above {RTOL[np.dtype(np.float64)]:g}: {bad}"
    assert len(result["errors"]) > 40

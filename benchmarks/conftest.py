"""pytest-benchmark suites of fastconv: every layer of suite.json times every
implementation (see fastconv/bench/cases.py for what runs at which size).

    cd /work/main && python -m pytest benchmarks/ --benchmark-only
    python -m pytest benchmarks/ --benchmark-only -k "conv2d and vgg"
    python -m pytest benchmarks/ --benchmark-only --fastconv-threads 1
    python -m pytest benchmarks/                # + the NumPy im2col correctness test

The layers come from fastconv/bench/suite.json, the one copy in the
repository (the package ships it for ``python -m fastconv.bench``); the
benchmarks load it through fastconv.bench.suite rather than keeping a second
copy that could drift.  Shared code lives in fastconv.bench (importable
under pytest's importlib mode, which this project uses, unlike helpers next
to the tests).

Each test times one implementation on one layer: pytest-benchmark's own
calibration for calls under SLOW_CALL_S, benchmark.pedantic with a few
rounds above it.  The tests are not interleaved; for ratios that hold on a
noisy machine use ``python -m fastconv.bench`` (DESIGN.md section 4).
"""
import pytest

from fastconv.bench import impls
from fastconv.bench.suite import scale_note
from fastconv.bench.timing import time_call

# A first call slower than SLOW_CALL_S is timed with benchmark.pedantic and
# the number of rounds below: the sizes are fixed at collection (stable test
# ids), so a kernel that is slow today (fastconv while it computes through
# the reference, or an unblocked first kernel) must not make the suite run
# for hours; ROUNDS bounds each test to about (1 + rounds) calls.
SLOW_CALL_S = 0.05
ROUNDS = ((2.0, 1), (0.3, 3), (SLOW_CALL_S, 5))    # (first call above s, rounds)


def pytest_addoption(parser):
    group = parser.getgroup("fastconv benchmarks")
    group.addoption("--fastconv-threads", type=int, default=None, metavar="N",
                    help="threads for fastconv (and SciPy's BLAS), torch and NumPy's "
                         "BLAS (default: fastconv's own default, given to torch too)")


def pytest_configure(config):
    import fastconv
    n = config.getoption("--fastconv-threads", default=None)
    impls.set_threads(n if n else fastconv.get_num_threads())
    impls.warm_up_torch()


def pytest_benchmark_update_machine_info(config, machine_info):
    from fastconv.bench import report
    machine_info["fastconv_config"] = report.fastconv_config()
    machine_info["fastconv_bench_threads"] = impls.thread_counts()
    torch = impls.torch_module()
    machine_info["torch"] = torch.__version__ if torch is not None else None


@pytest.fixture
def measure(benchmark):
    """measure(case): time case's call with `benchmark`, labelled and with
    its work and rate recorded in extra_info."""
    def run(case):
        if case.needs_torch() and impls.torch_module() is None:
            pytest.skip("torch is not installed")
        fn = case.prepare()
        amount, unit = case.work()
        benchmark.group = f"{case.task} {case.layer['name']}"
        benchmark.extra_info.update({
            "layer": case.layer["name"], "implementation": case.impl.label,
            "size": ("scaled: " + scale_note(case.run)) if case.scaled else "full",
            "work": amount, "work_unit": unit,
        })
        if getattr(benchmark, "disabled", False):   # --benchmark-disable: one call
            benchmark(fn)
            return
        first = time_call(fn)                    # also the warm-up call
        if first < SLOW_CALL_S:
            benchmark(fn)
        else:
            rounds = next(r for limit, r in ROUNDS if first >= limit)
            benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=0)
        stats = getattr(getattr(benchmark, "stats", None), "stats", None)
        if stats is not None and getattr(stats, "median", 0):
            per_second = amount / stats.median
            key = "GFLOP/s" if unit == "FLOP" else "GB/s"
            benchmark.extra_info[key] = round(per_second / 1e9, 3)
    return run

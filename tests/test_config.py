"""Run-time configuration: threads, instruction-set level, show_config."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastconv as fc
import fastconv._kernels as kernels
from _helpers import ALGORITHMS, assert_close, assert_identical, randn, rng_for


def test_num_threads_round_trip(restore_threads):
    for n in (1, 2, 3, 1):
        fc.set_num_threads(n)
        assert fc.get_num_threads() == n
    fc.set_num_threads(np.int64(2))
    assert fc.get_num_threads() == 2
    assert type(fc.get_num_threads()) is int


@pytest.mark.parametrize("bad,exc", [(0, ValueError), (-1, ValueError), (1.5, TypeError),
                                     (2.0, TypeError), ("2", TypeError), (True, TypeError),
                                     (None, TypeError)])
def test_set_num_threads_rejects(restore_threads, bad, exc):
    fc.set_num_threads(1)
    with pytest.raises(exc, match=r"^n: expected"):
        fc.set_num_threads(bad)
    assert fc.get_num_threads() == 1


def test_show_config_prints_isa(capsys, isa):
    fc.show_config()
    out = capsys.readouterr().out
    lines = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    assert lines["isa"].strip() == isa == kernels.isa_active()
    assert lines["isa_available"].strip() == kernels.isa_detect()
    assert lines["num_threads"].strip() == str(fc.get_num_threads())
    assert fc.__version__ in out


def _run_python(code, **env):
    environ = dict(os.environ, **env)
    # Run from tests/, not the repository root, whose source tree (without a
    # compiled extension after a plain `pip install .`) would shadow the
    # installed package.
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ, timeout=300, cwd=os.path.dirname(__file__))
    assert proc.returncode == 0, proc.stderr
    return proc


_SHOW = ("import fastconv, fastconv._kernels as k; fastconv.show_config(); "
         "print('ACTIVE', k.isa_active())")


def _supported():
    order = ("generic", "avx2", "avx512")
    return order[:order.index(kernels.isa_detect()) + 1]


@pytest.mark.parametrize("level", _supported())
def test_fastconv_isa_environment(level):
    proc = _run_python(_SHOW, FASTCONV_ISA=level)
    lines = dict(line.split(":", 1) for line in proc.stdout.splitlines() if ":" in line)
    assert lines["isa"].strip() == level
    assert f"ACTIVE {level}" in proc.stdout
    assert "RuntimeWarning" not in proc.stderr


def test_fastconv_isa_generic_subprocess():
    """The case CI relies on to test the portable kernels: FASTCONV_ISA=generic."""
    proc = _run_python(_SHOW, FASTCONV_ISA="generic")
    assert any(line.split() == ["isa:", "generic"] for line in proc.stdout.splitlines())
    assert "ACTIVE generic" in proc.stdout


def test_fastconv_isa_unknown_warns_and_uses_best():
    proc = _run_python(_SHOW, FASTCONV_ISA="sse9")
    assert "RuntimeWarning" in proc.stderr and "FASTCONV_ISA" in proc.stderr
    assert f"ACTIVE {kernels.isa_detect()}" in proc.stdout


def test_isa_select_clamps_and_reports():
    prev = kernels.isa_active()
    try:
        assert kernels.isa_select("avx512") == kernels.isa_detect()
        assert kernels.isa_select("generic") == "generic" == kernels.isa_active()
    finally:
        kernels.isa_select(prev)


def _all_ops(dtype, algorithm):
    """One result of every op, for comparison across settings."""
    rng = rng_for(51)
    x = randn(rng, (4, 8, 17, 15), dtype)
    w = randn(rng, (12, 4, 3, 3), dtype)
    b = randn(rng, (12,), dtype)
    res = {}
    res["conv2d"] = fc.conv2d(x, w, b, padding=1, groups=2, algorithm=algorithm)
    g = randn(rng, res["conv2d"].shape, dtype)
    for name, a in zip(("grad_input", "grad_weight", "grad_bias"),
                       fc.conv2d_backward(g, x, w, padding=1, groups=2, algorithm=algorithm)):
        res[name] = a
    rm, rv = randn(rng, (12,), dtype), rng.uniform(0.5, 2, 12).astype(dtype)
    res["conv2d_bn"] = fc.conv2d_bn(x, w, b, rm, rv, None, None, padding=1, groups=2,
                                    activation="relu", algorithm=algorithm)
    y, idx = fc.max_pool2d(x, 3, 2, 1, return_indices=True)
    res["max_pool2d"], res["indices"] = y, idx
    gp = randn(rng, y.shape, dtype)
    res["max_pool2d_backward"] = fc.max_pool2d_backward(gp, idx, x.shape)
    res["avg_pool2d"] = fc.avg_pool2d(x, 3, 2, 1)
    res["avg_pool2d_backward"] = fc.avg_pool2d_backward(gp, x.shape, 3, 2, 1)
    rm8, rv8 = np.zeros(8, dtype), np.ones(8, dtype)
    res["batch_norm"] = fc.batch_norm(x, rm8, rv8, training=True)
    res["running_mean"], res["running_var"] = rm8, rv8
    for name, a in zip(("bn_grad_input", "bn_grad_weight", "bn_grad_bias"),
                       fc.batch_norm_backward(x, x)):
        res[name] = a
    return res


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("threads", (1, 2))
def test_results_deterministic_at_fixed_thread_count(restore_threads, isa, algorithm,
                                                     dtype, threads):
    """At a fixed thread count every op gives the same bits run after run
    (per-thread partial sums are added in thread order)."""
    fc.set_num_threads(threads)
    first = _all_ops(dtype, algorithm)
    again = _all_ops(dtype, algorithm)
    for name in first:
        assert_identical(again[name], first[name], name)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_results_agree_across_thread_counts(restore_threads, isa, algorithm, dtype):
    """Another thread count may sum partial weight gradients in another
    order, so results agree to rounding; indices and maxima exactly."""
    fc.set_num_threads(1)
    one = _all_ops(dtype, algorithm)
    fc.set_num_threads(2)
    assert fc.get_num_threads() == 2
    two = _all_ops(dtype, algorithm)
    for name in one:
        if name in ("indices", "max_pool2d"):
            assert_identical(two[name], one[name], name)
        else:
            assert_close(two[name], one[name], dtype, name)

def _ops_in_child(queue):
    """Every op in a forked child; puts its results (or the error)."""
    try:
        queue.put(("ok", _all_ops(np.float32, "auto"), kernels.is_forked_child()))
    except Exception as exc:   # reported to the parent, which fails the test
        queue.put(("error", repr(exc), None))


def test_fork_after_multithreaded_kernels(restore_threads):
    """GNU OpenMP's pool does not survive fork(): a child forked after the
    parent ran multithreaded kernels must still run every op (on one thread)
    and get the parent's results, not hang."""
    import multiprocessing
    fc.set_num_threads(2)
    parent = _all_ops(np.float32, "auto")   # starts the OpenMP pool
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_ops_in_child, args=(queue,))
    child.start()
    try:   # read before joining: the child exits only once its data is taken
        status, results, forked = queue.get(timeout=120)
    except Exception:
        status, results, forked = "hung", "the forked child hung in a kernel", None
    child.join(30)
    if child.is_alive():
        child.kill()
    assert status == "ok", results
    assert forked
    for name in parent:
        if name in ("indices", "max_pool2d"):
            assert_identical(results[name], parent[name], name)
        else:
            assert_close(results[name], parent[name], np.float32, name)


def test_concurrent_python_threads_match_serial(restore_threads):
    """The kernels release the GIL and keep their workspaces per thread:
    eight Python threads calling every op at once get the bits of a serial
    call (at the same fastconv thread count)."""
    import threading
    fc.set_num_threads(2)
    serial = _all_ops(np.float32, "auto")
    results, errors = [None] * 8, []

    def work(i):
        try:
            results[i] = _all_ops(np.float32, "auto")
        except Exception as exc:   # reported below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for res in results:
        assert res is not None
        for name in serial:
            assert_identical(res[name], serial[name], name)

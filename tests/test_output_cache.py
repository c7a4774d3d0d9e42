"""The cache of large freed outputs (src/output_cache.c): reused buffers
give the same results, live outputs never share memory, and the limit is
honoured."""
import gc

import numpy as np
import pytest

import fastconv as fc
from fastconv import _kernels, reference

BIG = (4, 16, 128, 128)           # 4 MiB of float32: the cache's threshold


@pytest.fixture
def cache():
    previous = fc.set_output_cache_limit(512 << 20)
    yield
    fc.set_output_cache_limit(previous)


def test_freed_output_is_reused_with_correct_results(cache):
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal(BIG, dtype=np.float32)
    x2 = rng.standard_normal(BIG, dtype=np.float32)
    y1 = fc.avg_pool2d(x1, 1)          # an output of exactly 4 MiB
    np.testing.assert_array_equal(y1, x1)
    address = y1.ctypes.data
    del y1
    gc.collect()
    assert _kernels.output_cache_bytes() >= x1.nbytes
    y2 = fc.avg_pool2d(x2, 1)
    assert y2.ctypes.data == address, "the freed buffer was not handed back"
    np.testing.assert_array_equal(y2, x2)


def test_live_outputs_never_share_memory(cache):
    x = np.random.default_rng(1).standard_normal(BIG).astype(np.float32)
    outs = [fc.max_pool2d(x, 1, return_indices=True) for _ in range(3)]
    arrays = [a for pair in outs for a in pair]
    for i, a in enumerate(arrays):
        for b in arrays[i + 1:]:
            assert not np.shares_memory(a, b)
    for y, idx in outs:
        np.testing.assert_array_equal(y, x)
        np.testing.assert_array_equal(idx, np.broadcast_to(
            np.arange(BIG[2] * BIG[3]).reshape(BIG[2:]), BIG))


def test_limit_zero_empties_and_disables_the_cache(cache):
    fc.avg_pool2d(np.ones(BIG, np.float32), 1)     # freed at once: cached
    assert _kernels.output_cache_bytes() > 0
    assert fc.set_output_cache_limit(0) == 512 << 20
    assert _kernels.output_cache_bytes() == 0
    fc.avg_pool2d(np.ones(BIG, np.float32), 1)
    assert _kernels.output_cache_bytes() == 0


def test_small_outputs_bypass_the_cache(cache):
    fc.set_output_cache_limit(0)
    fc.set_output_cache_limit(512 << 20)
    fc.max_pool2d(np.ones((2, 3, 8, 8)), 2, return_indices=True)
    assert _kernels.output_cache_bytes() == 0


def test_cached_outputs_match_the_reference_over_repeated_calls(cache):
    """The loop people run: the same layer again and again, each output
    freed before the next call."""
    rng = np.random.default_rng(2)
    for _ in range(4):
        x = rng.standard_normal((2, 64, 112, 112), dtype=np.float32)
        y, idx = fc.max_pool2d(x, 3, 2, 1, return_indices=True)
        want, want_idx = reference.max_pool2d(x[:, :4], 3, 2, 1, return_indices=True)
        np.testing.assert_array_equal(y[:, :4], want)
        np.testing.assert_array_equal(idx[:, :4], want_idx)
        g = fc.max_pool2d_backward(y, idx, x.shape)
        np.testing.assert_array_equal(
            g[:, :4], reference.max_pool2d_backward(y[:, :4], idx[:, :4], (2, 4, 112, 112)))


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (2**63, ValueError),
                                     (1.5, TypeError), (True, TypeError), ("1", TypeError)])
def test_set_output_cache_limit_validates(bad, exc):
    with pytest.raises(exc, match="^nbytes: expected"):
        fc.set_output_cache_limit(bad)

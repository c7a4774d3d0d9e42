"""This machine's own ceilings, measured in the same run as the layers.

- SGEMM rate: scipy.linalg.blas.sgemm on n x n float32 matrices (Fortran
  order, result written in place), 2*n^3 FLOPs a call, in SciPy's BLAS --
  the BLAS fastconv's im2col calls, with the thread count
  fastconv.set_num_threads gave it.  The yardstick for convolutions.
- Copy bandwidth: np.copyto between two large float32 arrays (256 MB each
  by default), read + write bytes counted.  The yardstick for pooling and
  batch norm.  np.copyto runs on one thread.

Each is measured several times before the layers and again after them; the
report gives the median of all samples and both halves, so drift during the
run shows.
"""
import numpy as np

from .timing import median, time_call

SGEMM_N = 2048
COPY_BYTES = 256 * 2**20


def sgemm_gflops(repeats=4, n=SGEMM_N):
    """[GFLOP/s] of `repeats` sgemm calls after a warm-up call."""
    from scipy.linalg import blas
    rng = np.random.default_rng(1)
    a = np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32))
    b = np.asfortranarray(rng.standard_normal((n, n), dtype=np.float32))
    c = np.zeros((n, n), dtype=np.float32, order="F")

    def call():
        blas.sgemm(1.0, a, b, beta=0.0, c=c, overwrite_c=1)

    call()
    flops = 2.0 * n ** 3
    return [flops / time_call(call) / 1e9 for _ in range(repeats)]


def copy_gbs(repeats=4, nbytes=COPY_BYTES):
    """[GB/s] (read + write) of `repeats` np.copyto calls after a warm-up."""
    n = nbytes // 4
    src = np.ones(n, dtype=np.float32)
    dst = np.zeros(n, dtype=np.float32)      # pages touched before timing
    np.copyto(dst, src)
    moved = 2.0 * src.nbytes
    return [moved / time_call(lambda: np.copyto(dst, src)) / 1e9 for _ in range(repeats)]


class Ceilings:
    """Samples of both ceilings, taken in two batches (before, after)."""

    def __init__(self):
        self.sgemm = {"before": [], "after": []}
        self.copy = {"before": [], "after": []}

    def measure(self, when, repeats=4):
        self.sgemm[when] += sgemm_gflops(repeats)
        self.copy[when] += copy_gbs(repeats)

    @classmethod
    def from_dict(cls, d):
        """Back from as_dict() (a JSON record's "ceilings")."""
        c = cls()
        for name, attr in (("sgemm", c.sgemm), ("copy", c.copy)):
            attr["before"] = list(d[name]["samples_before"])
            attr["after"] = list(d[name]["samples_after"])
        return c

    @staticmethod
    def _all(d):
        return d["before"] + d["after"]

    @property
    def sgemm_gflops(self):
        return median(self._all(self.sgemm))

    @property
    def copy_gbs(self):
        return median(self._all(self.copy))

    def for_unit(self, unit):
        """The ceiling a rate in `unit` is compared with, per second:
        FLOP -> the SGEMM rate in FLOP/s, B -> the copy bandwidth in B/s."""
        return self.sgemm_gflops * 1e9 if unit == "FLOP" else self.copy_gbs * 1e9

    def as_dict(self):
        def summary(d, unit):
            out = {"median": median(self._all(d)), "unit": unit,
                   "samples_before": d["before"], "samples_after": d["after"]}
            for when in ("before", "after"):
                if d[when]:
                    out[f"median_{when}"] = median(d[when])
            return out
        return {"sgemm": dict(summary(self.sgemm, "GFLOP/s"), n=SGEMM_N,
                              library="scipy.linalg.blas.sgemm", dtype="float32"),
                "copy": dict(summary(self.copy, "GB/s"), bytes_per_array=COPY_BYTES,
                             counted="read + write", library="numpy.copyto")}

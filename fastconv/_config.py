"""Run-time configuration: instruction-set level and threads.

The ISA level is chosen once, at import: the best the CPU supports, or a
lower one forced with the environment variable FASTCONV_ISA=generic|avx2|avx512.
set_num_threads() sets fastconv's OpenMP threads and the threads of the BLAS
that SciPy ships (OpenBLAS), which the im2col kernels call.
"""
import ctypes
import glob
import os
import sys
import warnings

import numpy as np
import scipy


def _load_kernels():
    """Import the extension with GNU OpenMP's idle threads spinning only
    briefly (GOMP_SPINCOUNT=3000, a few hundred microseconds here) before
    they sleep, unless the user chose a policy.

    Both extremes lose on a shared two-core machine.  libgomp's default
    spin (300000 rounds, tens of milliseconds) uses up the CPU share that
    the working thread needs, and a call that should take 1 ms takes 30.
    Sleeping at once (OMP_WAIT_POLICY=PASSIVE) makes every parallel region
    and barrier wait for a futex wake-up, 20-30 us each in this VM: a
    0.33 ms convolution took 0.70 ms.  A short spin covers the gaps inside
    a call and between back-to-back calls, then gives the core back.  It
    must outlast the Python between two calls: conv2d_bn's argument checks
    and batch-norm folding take about 50 us when its caches are cold, and
    with 1000 rounds that gap still cost a 60 us wake-up; 3000 rounds
    cover it.
    libgomp reads the variable once, when it loads, so it is set only
    around the import and then removed again: other OpenMP runtimes loaded
    later (PyTorch bundles its own) keep their defaults."""
    global _wait_policy
    chosen = "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ
    _wait_policy = ("as set in the environment" if chosen else
                    f"spin {_SPINCOUNT} rounds, then sleep (fastconv's default)")
    if not chosen:
        os.environ["GOMP_SPINCOUNT"] = str(_SPINCOUNT)
    try:
        from . import _kernels
    finally:
        if not chosen:
            del os.environ["GOMP_SPINCOUNT"]
    return _kernels


_SPINCOUNT = 3000
_wait_policy = None
_kernels = _load_kernels()
from . import _params  # noqa: E402


def _select_isa():
    requested = os.environ.get("FASTCONV_ISA", "").strip().lower()
    if not requested:
        return _kernels.isa_select("avx512")
    if requested not in _kernels.ISA_LEVELS:
        warnings.warn(f"FASTCONV_ISA: expected one of "
                      f"{', '.join(_kernels.ISA_LEVELS)}, got {requested!r}; "
                      f"using the best level this CPU supports", RuntimeWarning)
        return _kernels.isa_select("avx512")
    active = _kernels.isa_select(requested)
    if active != requested:
        warnings.warn(f"FASTCONV_ISA={requested}: this CPU or build supports at "
                      f"most {active}; using {active}", RuntimeWarning)
    return active


def _find_blas_threads_setter():
    """OpenBLAS's set_num_threads in the library SciPy ships, or None.

    The library is already loaded by scipy.linalg; dlopen of the same file
    returns that copy, so the setting reaches the BLAS our kernels call."""
    import scipy.linalg  # noqa: F401  (loads the BLAS)
    base = os.path.dirname(os.path.dirname(scipy.__file__))
    candidates = sorted(glob.glob(os.path.join(base, "scipy.libs", "*openblas*")))
    candidates += sorted(glob.glob(os.path.join(os.path.dirname(scipy.__file__),
                                                ".dylibs", "*openblas*")))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas", "scipy_openblas64_"):
            setter = getattr(lib, f"{prefix}_set_num_threads", None)
            getter = getattr(lib, f"{prefix}_get_num_threads", None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                if getter is not None:
                    getter.restype = ctypes.c_int
                return path, setter, getter
    return None, None, None


_isa = _select_isa()
_blas_path, _blas_set, _blas_get = _find_blas_threads_setter()
if _blas_set is not None:
    _kernels.set_blas_threads_fn(ctypes.cast(_blas_set, ctypes.c_void_p).value)


def set_num_threads(n):
    """Use `n` threads in fastconv's kernels and in the BLAS they call."""
    n = _params.as_int(n, "n", 1, 2**31 - 1)    # a C int
    _kernels.set_num_threads(n)
    if _blas_set is not None:
        _blas_set(n)


def set_output_cache_limit(nbytes):
    """Set how many bytes of freed large outputs fastconv keeps for reuse
    (default 512 MiB; 0 turns the cache off and frees what it holds).
    Returns the previous limit.

    An output of 4 MiB or more that fastconv returns comes from this cache:
    when the previous call's output of about the same size has been freed,
    its warm pages are reused instead of fresh ones, whose first-touch
    faults cost as much as a memory-bound op itself."""
    return _kernels.output_cache_limit(
        _params.as_int(nbytes, "nbytes", 0, _params.INT64_MAX))


def get_num_threads():
    """The number of threads fastconv's kernels use."""
    return _kernels.get_num_threads()


def blas_num_threads():
    """Threads of SciPy's BLAS, or None when it cannot be queried."""
    return int(_blas_get()) if _blas_get is not None else None


def config():
    """The configuration show_config() prints, as a dict."""
    from . import __version__
    return {
        "fastconv": __version__,
        "isa": _kernels.isa_active(),
        "isa_available": _kernels.isa_detect(),
        "openmp": _kernels.have_openmp(),
        "omp_wait_policy": _wait_policy,
        "num_threads": get_num_threads(),
        "forked_child": _kernels.is_forked_child(),
        "blas": os.path.basename(_blas_path) if _blas_path else "scipy (threads not controllable)",
        "blas_num_threads": blas_num_threads(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "python": sys.version.split()[0],
    }


def show_config():
    """Print the instruction-set level, threads and libraries in use."""
    for key, value in config().items():
        print(f"{key + ':':18s}{value}")


# One setting for both pools from the start: OpenMP's default for ours, and
# the BLAS's own default otherwise oversubscribes when both run.
set_num_threads(_kernels.max_threads())

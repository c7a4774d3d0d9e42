# cython: language_level=3
"""The thin shim between fastconv's Python layer and its C kernels.

Typed memoryviews in, the GIL released, one call into C per op.  No
arithmetic lives here: arguments arrive validated and allocated by the Python
layer (fastconv/_params.py and the op modules).  Each op family keeps its
wrappers in its own include file.
"""
from libc.stdint cimport int64_t
from scipy.linalg.cython_blas cimport sgemm, dgemm
cimport numpy as cnp
import numpy as np

cnp.import_array()

cdef extern from "fastconv.h":
    int fc_isa_detect()
    int fc_isa_select(int requested)
    int fc_isa_active()
    const char *fc_isa_name(int isa)
    void fc_set_num_threads(int n)
    int fc_get_num_threads()
    int fc_max_threads()
    int fc_have_openmp()
    void fc_threads_init()
    int fc_is_forked_child()
    ctypedef void (*fc_sgemm_fn)(char *, char *, int *, int *, int *, float *,
                                 float *, int *, float *, int *, float *,
                                 float *, int *) noexcept nogil
    ctypedef void (*fc_dgemm_fn)(char *, char *, int *, int *, int *, double *,
                                 double *, int *, double *, int *, double *,
                                 double *, int *) noexcept nogil
    void fc_set_blas(fc_sgemm_fn s, fc_dgemm_fn d)
    ctypedef void (*fc_blas_threads_fn)(int n) noexcept nogil
    void fc_set_blas_threads_fn(fc_blas_threads_fn fn)
    void fc_fail_allocation_after(long n)
    long fc_allocations_left()

fc_set_blas(<fc_sgemm_fn>sgemm, <fc_dgemm_fn>dgemm)
fc_threads_init()


def set_blas_threads_fn(size_t address):
    """Hand C the address of the BLAS's set_num_threads(int) (0: none)."""
    fc_set_blas_threads_fn(<fc_blas_threads_fn>address)

ISA_LEVELS = ("generic", "avx2", "avx512")


def isa_detect():
    """Name of the best instruction-set level this CPU and build support."""
    return fc_isa_name(fc_isa_detect()).decode()


def isa_select(str name):
    """Activate `name` (or the best level below it); return the level used."""
    return fc_isa_name(fc_isa_select(ISA_LEVELS.index(name))).decode()


def isa_active():
    return fc_isa_name(fc_isa_active()).decode()


def fail_allocation_after(long n):
    """Tests only: make the kernels' n-th allocation from now fail (n <= 0
    turns the injection off)."""
    fc_fail_allocation_after(n)


def allocations_left():
    """Tests only: what is left of the countdown (<= 0 once it has fired or
    when off)."""
    return fc_allocations_left()


def set_num_threads(int n):
    fc_set_num_threads(n)


def get_num_threads():
    return fc_get_num_threads()


def max_threads():
    return fc_max_threads()


def have_openmp():
    return bool(fc_have_openmp())


def is_forked_child():
    """Whether this process was forked from one that loaded fastconv (its
    kernels then run on one thread)."""
    return bool(fc_is_forked_child())


include "_conv.pxi"
include "_pool.pxi"
include "_batchnorm.pxi"

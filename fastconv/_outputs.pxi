# The NumPy memory handler of fastconv's large outputs: NumPy allocates the
# arrays fastconv returns through src/output_cache.c, which keeps a few
# large freed buffers warm for the next call (see there why).  Arrays keep
# their handler, so each is freed by the cache however long it lives.
from cpython.pycapsule cimport PyCapsule_New
from libc.string cimport strncpy

cdef extern from "fastconv.h":
    void *fc_output_malloc(size_t bytes) noexcept nogil
    void *fc_output_calloc(size_t count, size_t size) noexcept nogil
    void *fc_output_realloc(void *p, size_t bytes) noexcept nogil
    void fc_output_free(void *p, size_t bytes) noexcept nogil
    size_t fc_output_cache_limit(size_t bytes) noexcept nogil
    size_t fc_output_cache_bytes() noexcept nogil
    size_t FC_CACHE_MIN

cdef extern from "numpy/arrayobject.h":
    ctypedef struct PyDataMemAllocator:
        void *ctx
        void *(*malloc)(void *ctx, size_t size) noexcept nogil
        void *(*calloc)(void *ctx, size_t nelem, size_t elsize) noexcept nogil
        void *(*realloc)(void *ctx, void *ptr, size_t new_size) noexcept nogil
        void (*free)(void *ctx, void *ptr, size_t size) noexcept nogil
    ctypedef struct PyDataMem_Handler:
        char name[127]
        unsigned char version
        PyDataMemAllocator allocator
    object PyDataMem_SetHandler(object handler)


cdef void *_out_malloc(void *ctx, size_t size) noexcept nogil:
    return fc_output_malloc(size)

cdef void *_out_calloc(void *ctx, size_t nelem, size_t elsize) noexcept nogil:
    return fc_output_calloc(nelem, elsize)

cdef void *_out_realloc(void *ctx, void *ptr, size_t new_size) noexcept nogil:
    return fc_output_realloc(ptr, new_size)

cdef void _out_free(void *ctx, void *ptr, size_t size) noexcept nogil:
    fc_output_free(ptr, size)


cdef PyDataMem_Handler _output_handler
strncpy(_output_handler.name, b"fastconv_output_cache", 126)
_output_handler.version = 1
_output_handler.allocator.ctx = NULL
_output_handler.allocator.malloc = _out_malloc
_output_handler.allocator.calloc = _out_calloc
_output_handler.allocator.realloc = _out_realloc
_output_handler.allocator.free = _out_free
_output_capsule = PyCapsule_New(&_output_handler, "mem_handler", NULL)


def output_empty(tuple shape, dtype):
    """np.empty(shape, dtype) with its buffer from the output cache when it
    is large enough to be cached (switching handlers costs a microsecond or
    two, which small memory-bound calls notice)."""
    cdef Py_ssize_t n = np.dtype(dtype).itemsize
    for d in shape:
        n *= d
    if n < FC_CACHE_MIN:
        return np.empty(shape, dtype)
    previous = PyDataMem_SetHandler(_output_capsule)
    try:
        return np.empty(shape, dtype)
    finally:
        PyDataMem_SetHandler(previous)


def output_cache_limit(size_t nbytes):
    """Set the most bytes of freed outputs kept; return the previous limit."""
    return fc_output_cache_limit(nbytes)


def output_cache_bytes():
    """Bytes of freed outputs held now."""
    return fc_output_cache_bytes()

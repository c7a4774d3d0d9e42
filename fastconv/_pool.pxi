# Shim wrappers of the pool kernels (src/fc_pool.h).  Arrays arrive
# validated, C-contiguous and of one float dtype (indices int64); outputs are
# allocated by the caller (fastconv/pool.py).  None means "not wanted".

cdef extern from "fastconv.h":
    int FC_EINDEX
    ctypedef struct fc_pool_shape:
        int64_t N, C, H, W, P, Q, kh, kw, sh, sw, ph, pw, dh, dw
    int fc_max_pool2d_f32(const fc_pool_shape *s, const float *x, float *y,
                          int64_t *indices) nogil
    int fc_max_pool2d_f64(const fc_pool_shape *s, const double *x,
                          double *y, int64_t *indices) nogil
    int fc_max_pool2d_backward_f32(const fc_pool_shape *s, const float *gy,
                                   const int64_t *indices, float *gx) nogil
    int fc_max_pool2d_backward_f64(const fc_pool_shape *s, const double *gy,
                                   const int64_t *indices, double *gx) nogil
    int fc_avg_pool2d_f32(const fc_pool_shape *s, int count_include_pad,
                          int64_t divisor_override, const float *x,
                          float *y) nogil
    int fc_avg_pool2d_f64(const fc_pool_shape *s, int count_include_pad,
                          int64_t divisor_override, const double *x,
                          double *y) nogil
    int fc_avg_pool2d_backward_f32(const fc_pool_shape *s,
                                   int count_include_pad,
                                   int64_t divisor_override, const float *gy,
                                   float *gx) nogil
    int fc_avg_pool2d_backward_f64(const fc_pool_shape *s,
                                   int count_include_pad,
                                   int64_t divisor_override,
                                   const double *gy, double *gx) nogil


cdef fc_pool_shape _pool_shape(p):
    cdef fc_pool_shape s
    s.N, s.C, s.H, s.W = p.N, p.C, p.H, p.W
    s.P, s.Q = p.P, p.Q
    s.kh, s.kw = p.kernel
    s.sh, s.sw = p.stride
    s.ph, s.pw = p.padding
    s.dh, s.dw = p.dilation
    return s


def max_pool2d(p, cnp.ndarray x, cnp.ndarray y, cnp.ndarray indices):
    """y (and indices, unless None) = max pooling of x under PoolParams p."""
    cdef fc_pool_shape s = _pool_shape(p)
    cdef int err
    cdef void *px = _data(x)
    cdef void *py = _data(y)
    cdef int64_t *pi = <int64_t *>_data(indices)
    if x.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            err = fc_max_pool2d_f32(&s, <float *>px, <float *>py, pi)
    else:
        with nogil:
            err = fc_max_pool2d_f64(&s, <double *>px, <double *>py, pi)
    _check(err)


def max_pool2d_backward(cnp.ndarray gy, cnp.ndarray indices, cnp.ndarray gx):
    """gx = scatter-add of gy at indices (gy and indices N x C x P x Q, gx
    N x C x H x W).  Returns False, gx undefined, when an index lies outside
    its plane (the kernel checks each plane before writing through it)."""
    cdef fc_pool_shape s
    cdef int err
    cdef void *pgy = _data(gy)
    cdef int64_t *pi = <int64_t *>_data(indices)
    cdef void *pgx = _data(gx)
    s.N, s.C, s.P, s.Q = gy.shape[0], gy.shape[1], gy.shape[2], gy.shape[3]
    s.H, s.W = gx.shape[2], gx.shape[3]
    s.kh = s.kw = s.sh = s.sw = s.dh = s.dw = 1
    s.ph = s.pw = 0
    if gy.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            err = fc_max_pool2d_backward_f32(&s, <float *>pgy, pi, <float *>pgx)
    else:
        with nogil:
            err = fc_max_pool2d_backward_f64(&s, <double *>pgy, pi,
                                             <double *>pgx)
    if err == FC_EINDEX:
        return False
    _check(err)
    return True


def avg_pool2d(p, bint count_include_pad, divisor_override, cnp.ndarray x,
               cnp.ndarray y):
    """y = average pooling of x under PoolParams p (divisor_override: None or
    a non-zero int)."""
    cdef fc_pool_shape s = _pool_shape(p)
    cdef int err
    cdef int64_t div = 0 if divisor_override is None else divisor_override
    cdef void *px = _data(x)
    cdef void *py = _data(y)
    if x.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            err = fc_avg_pool2d_f32(&s, count_include_pad, div, <float *>px,
                                    <float *>py)
    else:
        with nogil:
            err = fc_avg_pool2d_f64(&s, count_include_pad, div, <double *>px,
                                    <double *>py)
    _check(err)


def avg_pool2d_backward(p, bint count_include_pad, divisor_override,
                        cnp.ndarray gy, cnp.ndarray gx):
    """gx = gradient of avg_pool2d under PoolParams p for the output
    gradient gy."""
    cdef fc_pool_shape s = _pool_shape(p)
    cdef int err
    cdef int64_t div = 0 if divisor_override is None else divisor_override
    cdef void *pgy = _data(gy)
    cdef void *pgx = _data(gx)
    if gy.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            err = fc_avg_pool2d_backward_f32(&s, count_include_pad, div,
                                             <float *>pgy, <float *>pgx)
    else:
        with nogil:
            err = fc_avg_pool2d_backward_f64(&s, count_include_pad, div,
                                             <double *>pgy, <double *>pgx)
    _check(err)

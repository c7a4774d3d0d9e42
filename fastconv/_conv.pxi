# Shim wrappers of the convolution kernels (src/fc_conv.h).  Arrays arrive
# validated, C-contiguous and of one float dtype; None means "not wanted".

cdef extern from "fastconv.h":
    ctypedef struct fc_conv_shape:
        int64_t N, C, H, W, K, R, S, P, Q, sh, sw, pt, pl, dh, dw, groups
    int FC_ENOMEM
    int fc_conv2d_f32(const fc_conv_shape *s, int algo, const float *x,
                      const float *w, const double *wscale, const float *bias,
                      int relu, float *y) nogil
    int fc_conv2d_f64(const fc_conv_shape *s, int algo, const double *x,
                      const double *w, const double *wscale,
                      const double *bias, int relu, double *y) nogil
    int fc_conv2d_backward_f32(const fc_conv_shape *s, int algo,
                               const float *gy, const float *x,
                               const float *w, float *gx, float *gw,
                               float *gb) nogil
    int fc_conv2d_backward_f64(const fc_conv_shape *s, int algo,
                               const double *gy, const double *x,
                               const double *w, double *gx, double *gw,
                               double *gb) nogil

    double fc_conv2d_direct_efficiency_f32(const fc_conv_shape *s)
    double fc_conv2d_direct_efficiency_f64(const fc_conv_shape *s)
    double fc_conv2d_winograd_efficiency_f32(const fc_conv_shape *s)
    double fc_conv2d_wgrad_efficiency_f32(const fc_conv_shape *s)
    double fc_conv2d_wgrad_efficiency_f64(const fc_conv_shape *s)

CONV_ALGORITHMS = {"im2col": 0, "direct": 1, "winograd": 2, "streamed": 3}


cdef fc_conv_shape _conv_shape(p):
    cdef fc_conv_shape s
    s.N, s.C, s.H, s.W = p.N, p.C, p.H, p.W
    s.K, s.R, s.S, s.P, s.Q = p.K, p.R, p.S, p.P, p.Q
    s.sh, s.sw = p.stride
    s.pt, s.pl = p.padding[0][0], p.padding[1][0]
    s.dh, s.dw = p.dilation
    s.groups = p.groups
    return s


cdef inline void *_data(cnp.ndarray a):
    return NULL if a is None else cnp.PyArray_DATA(a)


cdef _check(int err):
    if err == FC_ENOMEM:
        raise MemoryError("fastconv: could not allocate a kernel workspace")


def conv2d(p, str algorithm, cnp.ndarray x, cnp.ndarray w, cnp.ndarray bias,
           bint relu, cnp.ndarray y, cnp.ndarray wscale=None):
    """y = conv(x, w * wscale) + bias [relu], by `algorithm`, into y (arrays
    of one dtype; wscale: None or float64 per output channel, a batch norm
    folded into the weight as the kernels pack it)."""
    cdef fc_conv_shape s = _conv_shape(p)
    cdef int algo = CONV_ALGORITHMS[algorithm]
    cdef int err
    cdef void *px = _data(x)
    cdef void *pw = _data(w)
    cdef double *ps = <double *>_data(wscale)
    cdef void *pb = _data(bias)
    cdef void *py = _data(y)
    if x.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            err = fc_conv2d_f32(&s, algo, <float *>px, <float *>pw, ps,
                                <float *>pb, relu, <float *>py)
    else:
        with nogil:
            err = fc_conv2d_f64(&s, algo, <double *>px, <double *>pw, ps,
                                <double *>pb, relu, <double *>py)
    _check(err)
    return y


def conv2d_backward(p, str algorithm, cnp.ndarray gy, cnp.ndarray x,
                    cnp.ndarray w, cnp.ndarray gx, cnp.ndarray gw,
                    cnp.ndarray gb):
    """Fill gx, gw, gb (any may be None) with conv2d's gradients."""
    cdef fc_conv_shape s = _conv_shape(p)
    cdef int algo = CONV_ALGORITHMS[algorithm]
    cdef int err
    cdef void *pgy = _data(gy)
    cdef void *px = _data(x)
    cdef void *pw = _data(w)
    cdef void *pgx = _data(gx)
    cdef void *pgw = _data(gw)
    cdef void *pgb = _data(gb)
    if x.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            err = fc_conv2d_backward_f32(&s, algo, <float *>pgy, <float *>px,
                                         <float *>pw, <float *>pgx,
                                         <float *>pgw, <float *>pgb)
    else:
        with nogil:
            err = fc_conv2d_backward_f64(&s, algo, <double *>pgy,
                                         <double *>px, <double *>pw,
                                         <double *>pgx, <double *>pgw,
                                         <double *>pgb)
    _check(err)


def conv2d_winograd_efficiency(p, dtype):
    """Fraction of the Winograd GEMMs' lanes that compute real outputs; 0
    where the algorithm does not apply."""
    cdef fc_conv_shape s = _conv_shape(p)
    if dtype == np.float32:
        return fc_conv2d_winograd_efficiency_f32(&s)
    return 0.0


def conv2d_direct_efficiency(p, dtype):
    """Fraction of the direct kernels' lanes that compute real outputs."""
    cdef fc_conv_shape s = _conv_shape(p)
    if dtype == np.float32:
        return fc_conv2d_direct_efficiency_f32(&s)
    return fc_conv2d_direct_efficiency_f64(&s)


def conv2d_wgrad_efficiency(p, dtype):
    """Fraction of the direct weight-gradient tiles that hold real channels."""
    cdef fc_conv_shape s = _conv_shape(p)
    if dtype == np.float32:
        return fc_conv2d_wgrad_efficiency_f32(&s)
    return fc_conv2d_wgrad_efficiency_f64(&s)

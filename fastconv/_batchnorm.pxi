# Shim wrappers of the batchnorm kernels (src/fc_batchnorm.h).  Arrays arrive
# validated, C-contiguous and of one float dtype (the running statistics of
# training mode excepted: the caller's own arrays, any float type and
# stride); None means "absent".  x is viewed as N x C x HW.

cdef extern from "fastconv.h":
    ctypedef struct fc_bn_shape:
        int64_t N, C, HW
    ctypedef struct fc_bn_running:
        void *mean
        void *var
        int64_t mean_stride, var_stride
        int mean_f64, var_f64
        double momentum
    int fc_batch_norm_train_f32(const fc_bn_shape *s, const float *x,
                                const float *w, const float *b, double eps,
                                const fc_bn_running *run, float *y) nogil
    int fc_batch_norm_train_f64(const fc_bn_shape *s, const double *x,
                                const double *w, const double *b, double eps,
                                const fc_bn_running *run, double *y) nogil
    int fc_batch_norm_eval_f32(const fc_bn_shape *s, const float *x,
                               const float *mean, const float *var,
                               const float *w, const float *b, double eps,
                               float *y) nogil
    int fc_batch_norm_eval_f64(const fc_bn_shape *s, const double *x,
                               const double *mean, const double *var,
                               const double *w, const double *b, double eps,
                               double *y) nogil
    int fc_batch_norm_backward_train_f32(const fc_bn_shape *s, const float *gy,
                                         const float *x, const float *w,
                                         double eps, float *gx, float *gw,
                                         float *gb) nogil
    int fc_batch_norm_backward_train_f64(const fc_bn_shape *s,
                                         const double *gy, const double *x,
                                         const double *w, double eps,
                                         double *gx, double *gw,
                                         double *gb) nogil
    int fc_batch_norm_backward_eval_f32(const fc_bn_shape *s, const float *gy,
                                        const float *x, const float *mean,
                                        const float *var, const float *w,
                                        double eps, float *gx, float *gw,
                                        float *gb) nogil
    int fc_batch_norm_backward_eval_f64(const fc_bn_shape *s,
                                        const double *gy, const double *x,
                                        const double *mean, const double *var,
                                        const double *w, double eps,
                                        double *gx, double *gw,
                                        double *gb) nogil


cdef inline void _running_stat(cnp.ndarray a, void **data, int64_t *stride,
                               int *f64):
    if a is None:
        data[0] = NULL
        stride[0] = 0
        f64[0] = 0
        return
    data[0] = cnp.PyArray_DATA(a)
    stride[0] = cnp.PyArray_STRIDE(a, 0) // cnp.PyArray_ITEMSIZE(a)
    f64[0] = cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT64


def batch_norm_train(int64_t N, int64_t C, int64_t HW, cnp.ndarray x,
                     cnp.ndarray w, cnp.ndarray b, cnp.ndarray running_mean,
                     cnp.ndarray running_var, double momentum, double eps,
                     cnp.ndarray y):
    """y = batch_norm(x) with batch statistics; the running ones (either may
    be None) updated in place."""
    cdef fc_bn_shape s
    cdef fc_bn_running r
    cdef int err
    cdef void *px = _data(x)
    cdef void *pw = _data(w)
    cdef void *pb = _data(b)
    cdef void *py = _data(y)
    s.N, s.C, s.HW = N, C, HW
    _running_stat(running_mean, &r.mean, &r.mean_stride, &r.mean_f64)
    _running_stat(running_var, &r.var, &r.var_stride, &r.var_f64)
    r.momentum = momentum
    if x.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            err = fc_batch_norm_train_f32(&s, <float *>px, <float *>pw,
                                          <float *>pb, eps, &r, <float *>py)
    else:
        with nogil:
            err = fc_batch_norm_train_f64(&s, <double *>px, <double *>pw,
                                          <double *>pb, eps, &r, <double *>py)
    _check(err)
    return y


def batch_norm_eval(int64_t N, int64_t C, int64_t HW, cnp.ndarray x,
                    cnp.ndarray mean, cnp.ndarray var, cnp.ndarray w,
                    cnp.ndarray b, double eps, cnp.ndarray y):
    """y = batch_norm(x) with the given (running) statistics."""
    cdef fc_bn_shape s
    cdef int err
    cdef void *px = _data(x)
    cdef void *pm = _data(mean)
    cdef void *pv = _data(var)
    cdef void *pw = _data(w)
    cdef void *pb = _data(b)
    cdef void *py = _data(y)
    s.N, s.C, s.HW = N, C, HW
    if x.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            err = fc_batch_norm_eval_f32(&s, <float *>px, <float *>pm,
                                         <float *>pv, <float *>pw, <float *>pb,
                                         eps, <float *>py)
    else:
        with nogil:
            err = fc_batch_norm_eval_f64(&s, <double *>px, <double *>pm,
                                         <double *>pv, <double *>pw,
                                         <double *>pb, eps, <double *>py)
    _check(err)
    return y


def batch_norm_backward(int64_t N, int64_t C, int64_t HW, cnp.ndarray gy,
                        cnp.ndarray x, cnp.ndarray w, cnp.ndarray mean,
                        cnp.ndarray var, bint training, double eps,
                        cnp.ndarray gx, cnp.ndarray gw, cnp.ndarray gb):
    """Fill gx, gw, gb with batch_norm's gradients: through the batch
    statistics (training) or with mean and var held constant."""
    cdef fc_bn_shape s
    cdef int err
    cdef void *pgy = _data(gy)
    cdef void *px = _data(x)
    cdef void *pw = _data(w)
    cdef void *pm = _data(mean)
    cdef void *pv = _data(var)
    cdef void *pgx = _data(gx)
    cdef void *pgw = _data(gw)
    cdef void *pgb = _data(gb)
    s.N, s.C, s.HW = N, C, HW
    if x.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            if training:
                err = fc_batch_norm_backward_train_f32(
                    &s, <float *>pgy, <float *>px, <float *>pw, eps,
                    <float *>pgx, <float *>pgw, <float *>pgb)
            else:
                err = fc_batch_norm_backward_eval_f32(
                    &s, <float *>pgy, <float *>px, <float *>pm, <float *>pv,
                    <float *>pw, eps, <float *>pgx, <float *>pgw,
                    <float *>pgb)
    else:
        with nogil:
            if training:
                err = fc_batch_norm_backward_train_f64(
                    &s, <double *>pgy, <double *>px, <double *>pw, eps,
                    <double *>pgx, <double *>pgw, <double *>pgb)
            else:
                err = fc_batch_norm_backward_eval_f64(
                    &s, <double *>pgy, <double *>px, <double *>pm,
                    <double *>pv, <double *>pw, eps, <double *>pgx,
                    <double *>pgw, <double *>pgb)
    _check(err)


cdef extern from "fastconv.h":
    ctypedef struct fc_bn_vector:
        const void *p
        int f64
    void fc_bn_fold_factors(int64_t K, fc_bn_vector var, fc_bn_vector gamma,
                            fc_bn_vector bias, fc_bn_vector mean, fc_bn_vector beta,
                            double eps, double *scale, double *fused_bias) nogil
    void fc_bn_fold_weight_f32(int64_t K, int64_t L, const float *w,
                               const double *scale, float *out) nogil
    void fc_bn_fold_weight_f64(int64_t K, int64_t L, const double *w,
                               const double *scale, double *out) nogil


cdef inline bint _plain_vector(object v):
    """None, or a C-contiguous, aligned float32 or float64 array."""
    if v is None:
        return True
    if not isinstance(v, cnp.ndarray):
        return False
    cdef cnp.ndarray a = <cnp.ndarray>v
    return ((cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT32 or cnp.PyArray_TYPE(a) == cnp.NPY_FLOAT64)
            and cnp.PyArray_IS_C_CONTIGUOUS(a) and cnp.PyArray_ISALIGNED(a))


cdef inline fc_bn_vector _vector(object v):
    cdef fc_bn_vector r
    r.p = _data(v)
    r.f64 = v is not None and cnp.PyArray_TYPE(<cnp.ndarray>v) == cnp.NPY_FLOAT64
    return r


def bn_fold_factors(var, gamma, bias, mean, beta, double eps, cnp.ndarray scale,
                    cnp.ndarray fused_bias):
    """scale = gamma / sqrt(var + eps), fused_bias = (bias - mean) * scale +
    beta, into the float64 arrays scale and fused_bias (C-contiguous; gamma,
    bias, beta may be None: 1, 0, 0).  Returns False, computing nothing,
    unless every vector is None or a C-contiguous, aligned float32 or
    float64 array."""
    if not (_plain_vector(var) and _plain_vector(gamma) and _plain_vector(bias)
            and _plain_vector(mean) and _plain_vector(beta)):
        return False
    cdef int64_t K = scale.shape[0]
    cdef fc_bn_vector pv = _vector(var), pg = _vector(gamma), pb = _vector(bias)
    cdef fc_bn_vector pm = _vector(mean), pbeta = _vector(beta)
    cdef double *ps = <double *>_data(scale)
    cdef double *pf = <double *>_data(fused_bias)
    with nogil:
        fc_bn_fold_factors(K, pv, pg, pb, pm, pbeta, eps, ps, pf)
    return True


def bn_fold_weight(int64_t K, int64_t L, cnp.ndarray w, cnp.ndarray scale,
                   cnp.ndarray out):
    """out[k] = w[k] * scale[k] for the K rows of L values of w (scale
    float64, one rounding to w's dtype)."""
    cdef void *pw = _data(w)
    cdef void *ps = _data(scale)
    cdef void *po = _data(out)
    if w.dtype.num == cnp.NPY_FLOAT32:
        with nogil:
            fc_bn_fold_weight_f32(K, L, <float *>pw, <double *>ps, <float *>po)
    else:
        with nogil:
            fc_bn_fold_weight_f64(K, L, <double *>pw, <double *>ps, <double *>po)
    return out

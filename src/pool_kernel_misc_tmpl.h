/* Global average pooling and the average-pool backward micro-kernels
 * (pool_internal.h), plus the kernel set of one dtype and instruction set.
 *
 * Included once by each f32_pool_*.c / f64_pool_*.c file after
 * pool_kernel_tmpl.h (three times, for the variants row, k2s2, k3s2), with
 * the same definitions plus vhsum(v) (the sum of all lanes), vzero() and
 * vloaddup(m, nl, p) (lane l <- p[l / 2]), and IDX32 (1 when the lanes
 * track indices in 32 bits), KSET_T and KSET_NAME. */

#define PK_FN(op) PK_NAME(POOL_DT, avgpool, op, POOL_ISA)

/* y[i] = (sum of the size elements of plane i) / div. */
static TARGET void PK_FN(global)(int64_t planes, int64_t size, const T *x,
                                 T div, T *y)
{
    for (int64_t i = 0; i < planes; i++) {
        const T *p = x + i * size;
        VEC acc = vzero();
        for (int64_t k = 0; k < size; k += LANES) {
            const int64_t nl = size - k < LANES ? size - k : LANES;
            acc = vadd(acc, vload(tail(nl), nl, p + k));
        }
        y[i] = vhsum(acc) / div;
    }
}

/* gd[i] = gy[i] / div[i]. */
static TARGET void PK_FN(bwd_div)(int64_t n, const T *gy, const T *div, T *gd)
{
    for (int64_t i = 0; i < n; i += LANES) {
        const int64_t nl = n - i < LANES ? n - i : LANES;
        const MASK m = tail(nl);
        vstore(gd + i, m, nl, vdiv(vload(m, nl, gy + i), vload(m, nl, div + i)));
    }
}

/* dst[i] = sum over j < nrows of src[j * stride + i] (0 when nrows is 0). */
static TARGET void PK_FN(bwd_rows)(int64_t nrows, int64_t stride,
                                   const T *src, int64_t n, T *dst)
{
    for (int64_t i = 0; i < n; i += LANES) {
        const int64_t nl = n - i < LANES ? n - i : LANES;
        const MASK m = tail(nl);
        VEC acc = nrows > 0 ? vload(m, nl, src + i) : vzero();
        for (int64_t j = 1; j < nrows; j++)
            acc = vadd(acc, vload(m, nl, src + j * stride + i));
        vstore(dst + i, m, nl, acc);
    }
}

/* dst[i] = sum over s < kw of v[i - s]: the stride-1 windows holding i. */
static TARGET void PK_FN(bwd_s1)(int64_t kw, const T *v, int64_t n, T *dst)
{
    for (int64_t i = 0; i < n; i += LANES) {
        const int64_t nl = n - i < LANES ? n - i : LANES;
        const MASK m = tail(nl);
        VEC acc = vload(m, nl, v + i);
        for (int64_t s = 1; s < kw; s++)
            acc = vadd(acc, vload(m, nl, v + i - s));
        vstore(dst + i, m, nl, acc);
    }
}

/* dst[i] = v[i / 2]: the 2-wide, stride-2 window holding i. */
static TARGET void PK_FN(bwd_dup2)(const T *v, int64_t n, T *dst)
{
    for (int64_t i = 0; i < n; i += LANES) {
        const int64_t nl = n - i < LANES ? n - i : LANES;
        const MASK m = tail(nl);
        vstore(dst + i, m, nl, vloaddup(m, nl, v + i / 2));
    }
}

#define PK_SET(op) {PK_NAME(POOL_DT, op, row, POOL_ISA),                     \
                    PK_NAME(POOL_DT, op, k2s2, POOL_ISA),                    \
                    PK_NAME(POOL_DT, op, k3s2, POOL_ISA)}
const KSET_T KSET_NAME = {
    PK_SET(maxpool_idx), PK_SET(maxpool), PK_SET(avgpool),
    PK_FN(global), PK_FN(bwd_div), PK_FN(bwd_rows), PK_FN(bwd_s1),
    PK_FN(bwd_dup2), IDX32,
};
#undef PK_SET
#undef PK_FN

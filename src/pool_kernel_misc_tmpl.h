/* Global average pooling and the row-wise micro-kernels of stride-1
 * average pooling and of the average-pool backward (pool_internal.h), plus
 * the kernel set of one dtype and instruction set.
 *
 * Included once by each f32_pool_*.c / f64_pool_*.c file after
 * pool_kernel_variants.h (the forward kernels of every variant), with
 * the same definitions plus vhsum(v) (the sum of all lanes), vzero() and
 * vloaddup(m, nl, p) (lane l <- p[l / 2]), and IDX32 (1 when the lanes
 * track indices in 32 bits), KSET_T and KSET_NAME. */

#define PK_FN(op) PK_NAME(POOL_DT, avgpool, op, POOL_ISA)

/* for (i = 0; i < n; i += LANES) chunk(..., i, nl), nl = LANES (a constant
 * once inlined: no partial masks) but for the last, partial vector. */
#define PK_LOOP(n, chunk, ...)                                               \
    do {                                                                     \
        int64_t i_ = 0;                                                      \
        for (; i_ + LANES <= (n); i_ += LANES)                               \
            chunk(__VA_ARGS__, i_, LANES);                                   \
        if (i_ < (n))                                                        \
            chunk(__VA_ARGS__, i_, (n) - i_);                                \
    } while (0)

static inline PK_INLINE TARGET VEC PK_FN(sum_chunk)(const T *p, int64_t i, int64_t nl)
{
    return vload(tail(nl), nl, p + i);
}

/* y[i] = (sum of the size elements of plane i) / div. */
static TARGET void PK_FN(global)(int64_t planes, int64_t size, const T *x,
                                 T div, T *y)
{
    for (int64_t k = 0; k < planes; k++) {
        const T *p = x + k * size;
        VEC acc = vzero();
        int64_t i = 0;
        for (; i + LANES <= size; i += LANES)
            acc = vadd(acc, PK_FN(sum_chunk)(p, i, LANES));
        if (i < size)
            acc = vadd(acc, PK_FN(sum_chunk)(p, i, size - i));
        y[k] = vhsum(acc) / div;
    }
}

/* The 2-D kernels below take `rows` rows of n columns, each array with its
 * own row stride (one call per plane instead of one per row). */

/* dst[r][i] = a[r][i] / div[r][i]. */
static inline PK_INLINE TARGET void PK_FN(div_chunk)(const T *a, const T *div,
                                                     T *dst, int64_t i, int64_t nl)
{
    const MASK m = tail(nl);
    vstore(dst + i, m, nl, vdiv(vload(m, nl, a + i), vload(m, nl, div + i)));
}

static TARGET void PK_FN(div)(int64_t rows, int64_t n, const T *a, int64_t as,
                              const T *div, int64_t ds, T *dst, int64_t ts)
{
    for (int64_t r = 0; r < rows; r++)
        PK_LOOP(n, PK_FN(div_chunk), a + r * as, div + r * ds, dst + r * ts);
}

/* dst[r][i] = sum over j < nsum of src[r][j * sstride + i] (0 when nsum is
 * 0). */
static inline PK_INLINE TARGET void PK_FN(rows_chunk)(int64_t nsum, int64_t sstride,
                                                      const T *src, T *dst,
                                                      int64_t i, int64_t nl)
{
    const MASK m = tail(nl);
    VEC acc = nsum > 0 ? vload(m, nl, src + i) : vzero();
    for (int64_t j = 1; j < nsum; j++)
        acc = vadd(acc, vload(m, nl, src + j * sstride + i));
    vstore(dst + i, m, nl, acc);
}

static TARGET void PK_FN(sumrows)(int64_t rows, int64_t nsum, int64_t sstride,
                                  int64_t n, const T *src, int64_t ss, T *dst,
                                  int64_t ts)
{
    for (int64_t r = 0; r < rows; r++)
        PK_LOOP(n, PK_FN(rows_chunk), nsum, sstride, src + r * ss, dst + r * ts);
}

/* dst[r][i] = (sum over j < nsum of src[r][j * sstride + i]) / div[r][i]. */
static inline PK_INLINE TARGET void PK_FN(rowsdiv_chunk)(int64_t nsum, int64_t sstride,
                                                         const T *src, const T *div,
                                                         T *dst, int64_t i, int64_t nl)
{
    const MASK m = tail(nl);
    VEC acc = nsum > 0 ? vload(m, nl, src + i) : vzero();
    for (int64_t j = 1; j < nsum; j++)
        acc = vadd(acc, vload(m, nl, src + j * sstride + i));
    vstore(dst + i, m, nl, vdiv(acc, vload(m, nl, div + i)));
}

static TARGET void PK_FN(sumrowsdiv)(int64_t rows, int64_t nsum, int64_t sstride,
                                     int64_t n, const T *src, int64_t ss,
                                     const T *div, int64_t ds, T *dst, int64_t ts)
{
    for (int64_t r = 0; r < rows; r++)
        PK_LOOP(n, PK_FN(rowsdiv_chunk), nsum, sstride, src + r * ss,
                div + r * ds, dst + r * ts);
}

/* dst[i] = sum over s < kw of v[i - s]: the sums of kw consecutive values
 * (forward), the stride-1 windows holding i (backward). */
static inline PK_INLINE TARGET void PK_FN(s1_chunk)(int64_t kw, const T *v, T *dst,
                                                    int64_t i, int64_t nl)
{
    const MASK m = tail(nl);
    VEC acc = vload(m, nl, v + i);
    for (int64_t s = 1; s < kw; s++)
        acc = vadd(acc, vload(m, nl, v + i - s));
    vstore(dst + i, m, nl, acc);
}

static TARGET void PK_FN(sums1)(int64_t kw, const T *v, int64_t n, T *dst)
{
    PK_LOOP(n, PK_FN(s1_chunk), kw, v, dst);
}

/* dst[i] = v[i / 2]: the 2-wide, stride-2 window holding i. */
static inline PK_INLINE TARGET void PK_FN(dup2_chunk)(const T *v, T *dst,
                                                      int64_t i, int64_t nl)
{
    const MASK m = tail(nl);
    vstore(dst + i, m, nl, vloaddup(m, nl, v + i / 2));
}

static TARGET void PK_FN(dup2)(const T *v, int64_t n, T *dst)
{
    PK_LOOP(n, PK_FN(dup2_chunk), v, dst);
}

#undef PK_LOOP
#define PK_SET(op) {PK_NAME(POOL_DT, op, row, POOL_ISA),                     \
                    PK_NAME(POOL_DT, op, s1, POOL_ISA),                      \
                    PK_NAME(POOL_DT, op, k2s2, POOL_ISA),                    \
                    PK_NAME(POOL_DT, op, k3s2, POOL_ISA),                    \
                    PK_NAME(POOL_DT, op, k3s1, POOL_ISA)}
const KSET_T KSET_NAME = {
    PK_SET(maxpool_idx), PK_SET(maxpool), PK_SET(avgpool),
    PK_FN(global), PK_FN(div), PK_FN(sumrows), PK_FN(sumrowsdiv),
    PK_FN(sums1), PK_FN(dup2), IDX32,
};
#undef PK_SET
#undef PK_FN

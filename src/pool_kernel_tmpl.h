/* Bodies of the forward pooling micro-kernels (pool_internal.h), written
 * once for every instruction set and dtype.
 *
 * Included by each f32_pool_*.c / f64_pool_*.c file, once per variant, after
 * it defines T, VEC, IVEC (lane indices), MASK, LANES, TARGET, POOL_DT and
 * POOL_ISA (name parts), POOL_KW, POOL_SW and POOL_TILE (the variant: 0 for a
 * run-time width or stride), and these static inline operations on lanes
 * 0 .. nl-1 (m = tail(nl); lanes past nl are never stored):
 *   tail(nl)                 the mask of the first nl lanes
 *   vload(m, nl, p)          lane l <- p[l]
 *   vload2(m, nl, p)         lane l <- p[2 l], reading nothing past p[2 nl - 2]
 *   vgather(m, nl, p, s)     lane l <- p[l s]
 *   vstore(p, m, nl, v), istore(p, m, nl, iv)   (indices widened to int64)
 *   vset1, vadd, vdiv, vmax(a, b) = a > b ? a : b (b when unordered),
 *   vtake(v, mx) = v > mx || isnan(v), visnan, mor, vblend(m, a, b) = m ? b : a,
 *   vnan(), iset1, iiota(s) (lane l <- l s), iadd, iblend.
 * Only those operations know the instruction set; the loops are shared. */

#define PK_NAME_(dt, op, tile, isa) dt##_##op##_##tile##_##isa
#define PK_NAME(dt, op, tile, isa) PK_NAME_(dt, op, tile, isa)

/* Lanes are output columns, sw input columns apart. */
#define PK_LOAD(m, nl, p)                                                    \
    (sw == 1 ? vload(m, nl, p) : sw == 2 ? vload2(m, nl, p)                  \
                                         : vgather(m, nl, p, sw))

/* Max over the window, and where: the scan of PyTorch's CPU kernel, tap by
 * tap in row-major order, all lanes at once.  The first tap is taken as it
 * is (equivalent to starting from -inf with its index). */
static TARGET void PK_NAME(POOL_DT, maxpool_idx, POOL_TILE, POOL_ISA)(
    const fc_pool_row *r, const T *x, T *y, int64_t *ind)
{
    const int64_t kw = POOL_KW ? POOL_KW : r->kw;
    const int64_t sw = POOL_SW ? POOL_SW : r->sw;
    const int64_t dw = r->dw, nr = r->nr, rstep = r->rstep, n = r->n;
    const IVEC lane = iiota(sw);
    for (int64_t q = 0; q < n; q += LANES) {
        const int64_t nl = n - q < LANES ? n - q : LANES;
        const MASK m = tail(nl);
        const int64_t off = r->off + q * sw;
        const T *p = x + off;
        const IVEC base = iadd(lane, iset1(off));
        VEC mx = PK_LOAD(m, nl, p);
        IVEC ix = base;
#define PK_MAX_TAP(tap)                                                      \
        do {                                                                 \
            const int64_t t_ = (tap);                                        \
            const VEC v_ = PK_LOAD(m, nl, p + t_);                           \
            const MASK k_ = vtake(v_, mx);                                   \
            mx = vblend(k_, mx, v_);                                         \
            ix = iblend(k_, ix, iadd(base, iset1(t_)));                      \
        } while (0)
#pragma GCC unroll 4
        for (int64_t s = 1; s < kw; s++)
            PK_MAX_TAP(s * dw);
        for (int64_t j = 1; j < nr; j++)
#pragma GCC unroll 4
            for (int64_t s = 0; s < kw; s++)
                PK_MAX_TAP(j * rstep + s * dw);
#undef PK_MAX_TAP
        vstore(y + q, m, nl, mx);
        istore(ind + q, m, nl, ix);
    }
}

/* Max without indices: vmax, with a sticky NaN mask so that a NaN anywhere
 * in the window wins (vmax alone lets a later number replace a NaN). */
static TARGET void PK_NAME(POOL_DT, maxpool, POOL_TILE, POOL_ISA)(
    const fc_pool_row *r, const T *x, T *y)
{
    const int64_t kw = POOL_KW ? POOL_KW : r->kw;
    const int64_t sw = POOL_SW ? POOL_SW : r->sw;
    const int64_t dw = r->dw, nr = r->nr, rstep = r->rstep, n = r->n;
    for (int64_t q = 0; q < n; q += LANES) {
        const int64_t nl = n - q < LANES ? n - q : LANES;
        const MASK m = tail(nl);
        const T *p = x + r->off + q * sw;
        VEC mx = PK_LOAD(m, nl, p);
        MASK nan = visnan(mx);
#define PK_MAX_TAP(tap)                                                      \
        do {                                                                 \
            const VEC v_ = PK_LOAD(m, nl, p + (tap));                        \
            nan = mor(nan, visnan(v_));                                      \
            mx = vmax(mx, v_);                                               \
        } while (0)
#pragma GCC unroll 4
        for (int64_t s = 1; s < kw; s++)
            PK_MAX_TAP(s * dw);
        for (int64_t j = 1; j < nr; j++)
#pragma GCC unroll 4
            for (int64_t s = 0; s < kw; s++)
                PK_MAX_TAP(j * rstep + s * dw);
#undef PK_MAX_TAP
        vstore(y + q, m, nl, vblend(nan, mx, vnan()));
    }
}

/* Average: the window's sum in row-major order, divided by div. */
static TARGET void PK_NAME(POOL_DT, avgpool, POOL_TILE, POOL_ISA)(
    const fc_pool_row *r, const T *x, T div, T *y)
{
    const int64_t kw = POOL_KW ? POOL_KW : r->kw;
    const int64_t sw = POOL_SW ? POOL_SW : r->sw;
    const int64_t dw = r->dw, nr = r->nr, rstep = r->rstep, n = r->n;
    const VEC vd = vset1(div);
    for (int64_t q = 0; q < n; q += LANES) {
        const int64_t nl = n - q < LANES ? n - q : LANES;
        const MASK m = tail(nl);
        const T *p = x + r->off + q * sw;
        VEC acc = PK_LOAD(m, nl, p);
#pragma GCC unroll 4
        for (int64_t s = 1; s < kw; s++)
            acc = vadd(acc, PK_LOAD(m, nl, p + s * dw));
        for (int64_t j = 1; j < nr; j++)
#pragma GCC unroll 4
            for (int64_t s = 0; s < kw; s++)
                acc = vadd(acc, PK_LOAD(m, nl, p + j * rstep + s * dw));
        vstore(y + q, m, nl, vdiv(acc, vd));
    }
}

#undef PK_LOAD

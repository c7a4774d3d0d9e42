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
 * With nl == LANES the loads and stores must use no partial mask: on some
 * CPUs (AMD Zen 5) an access with a partial mask is several times slower.
 * POOL_PAIR 1 (AVX-512) adds two-row vectors for rows at most half a
 * vector wide: vpairperm(n, sw), vloadpair(perm, a, b) (lane l < n <- a[l
 * sw], lane l >= n <- b[(l - n) sw], from one full load of each) and
 * ipairbase(n, sw, d) (lane l < n <- l sw, lane l >= n <- d + (l - n) sw).
 * Only those operations know the instruction set; the loops are shared. */

#define PK_NAME_(dt, op, tile, isa) dt##_##op##_##tile##_##isa
#define PK_NAME(dt, op, tile, isa) PK_NAME_(dt, op, tile, isa)
#ifndef PK_INLINE
#define PK_INLINE __attribute__((always_inline))
#endif

/* Lanes are output columns, sw input columns apart. */
#define PK_LOAD(m, nl, p)                                                    \
    (sw == 1 ? vload(m, nl, p) : sw == 2 ? vload2(m, nl, p)                  \
                                         : vgather(m, nl, p, sw))

/* Lanes to load for a vector of nl outputs whose first tap is at plane
 * offset off: all LANES (plain loads; the lanes past nl read elements of
 * the input that are never stored) when even a full vector's last tap lies
 * inside the input array, else nl. */
#define PK_LOAD_LANES(off)                                                   \
    (nl == LANES || (off) + (nr - 1) * rstep + (kw - 1) * dw +               \
     (LANES - 1) * sw < r->avail ? LANES : nl)

/* The taps of a vector: one row's, or two rows' (pair). */
#if POOL_PAIR
#define PK_PAIR_PERM() const PAIR_PERM perm = pair ? vpairperm(r->n, sw) : vpairnone()
#define PK_TAP_LOAD(p)                                                       \
    (pair ? vloadpair(perm, (p), (p) + r->xrow) : PK_LOAD(lm, ln, (p)))
#define PK_LANE_BASE()                                                       \
    (pair ? ipairbase(r->n, sw, r->xrow) : iiota(sw))
#else
#define PK_PAIR_PERM() (void)pair
#define PK_TAP_LOAD(p) PK_LOAD(lm, ln, (p))
#define PK_LANE_BASE() iiota(sw)
#endif

/* Whether rows i and i + 1 of the call fit one vector: rows at most half a
 * vector wide (and at most half a vector of input wide), back to back in
 * the output (no border columns), and both full loads of the last tap
 * inside the input array. */
#define PK_PAIR_OK(i)                                                        \
    (POOL_PAIR && (i) + 1 < r->rows && 2 * r->n <= LANES &&                  \
     r->n == r->yrow && (r->n - 1) * r->sw < LANES &&                        \
     r->off + ((i) + 1) * r->xrow + (r->nr - 1) * r->rstep +                 \
     (r->kw - 1) * r->dw + LANES - 1 < r->avail)

/* Each kernel is a chunk body (LANES output columns of one row or, last in
 * the row, fewer; or, pair, two rows) and loops that call it with nl =
 * LANES, a constant once inlined, then once for the partial last vector of
 * the row. */
#define PK_CHUNKS(chunk, ...)                                                \
    for (int64_t i_ = 0; i_ < r->rows; i_++) {                               \
        int64_t q_ = 0;                                                      \
        if (PK_PAIR_OK(i_)) {                                                \
            chunk(__VA_ARGS__, r->off + i_ * r->xrow, i_ * r->yrow, 0,       \
                  2 * r->n, 1);                                              \
            i_++;                                                            \
            continue;                                                        \
        }                                                                    \
        for (; q_ + LANES <= r->n; q_ += LANES)                              \
            chunk(__VA_ARGS__, r->off + i_ * r->xrow, i_ * r->yrow, q_, LANES, 0); \
        if (q_ < r->n)                                                       \
            chunk(__VA_ARGS__, r->off + i_ * r->xrow, i_ * r->yrow, q_, r->n - q_, 0); \
    }

/* Max over the window, and where: the scan of PyTorch's CPU kernel, tap by
 * tap in row-major order, all lanes at once.  The first tap is taken as it
 * is (equivalent to starting from -inf with its index). */
static inline PK_INLINE TARGET void PK_NAME(POOL_DT, maxpool_idx_chunk, POOL_TILE, POOL_ISA)(
    const fc_pool_row *r, const T *x, T *y, int64_t *ind, int64_t roff,
    int64_t yo, int64_t q, int64_t nl, int pair)
{
    const int64_t kw = POOL_KW ? POOL_KW : r->kw;
    const int64_t sw = POOL_SW ? POOL_SW : r->sw;
    const int64_t dw = r->dw, nr = r->nr, rstep = r->rstep;
    const int64_t off = roff + q * sw;
    const int64_t ln = PK_LOAD_LANES(off);
    const MASK lm = tail(ln);
    const T *p = x + off;
    const IVEC base = iadd(PK_LANE_BASE(), iset1(off));
    PK_PAIR_PERM();
    VEC mx = PK_TAP_LOAD(p);
    IVEC ix = base;
#define PK_MAX_TAP(tap)                                                      \
    do {                                                                     \
        const int64_t t_ = (tap);                                            \
        const VEC v_ = PK_TAP_LOAD(p + t_);                                  \
        const MASK k_ = vtake(v_, mx);                                       \
        mx = vblend(k_, mx, v_);                                             \
        ix = iblend(k_, ix, iadd(base, iset1(t_)));                          \
    } while (0)
#pragma GCC unroll 4
    for (int64_t s = 1; s < kw; s++)
        PK_MAX_TAP(s * dw);
    for (int64_t j = 1; j < nr; j++)
#pragma GCC unroll 4
        for (int64_t s = 0; s < kw; s++)
            PK_MAX_TAP(j * rstep + s * dw);
#undef PK_MAX_TAP
    vstore(y + yo + q, tail(nl), nl, mx);
    istore(ind + yo + q, tail(nl), nl, ix);
}

static TARGET void PK_NAME(POOL_DT, maxpool_idx, POOL_TILE, POOL_ISA)(
    const fc_pool_row *r, const T *x, T *y, int64_t *ind)
{
    PK_CHUNKS(PK_NAME(POOL_DT, maxpool_idx_chunk, POOL_TILE, POOL_ISA), r, x, y, ind);
}

/* Max without indices: vmax, with a sticky NaN mask so that a NaN anywhere
 * in the window wins (vmax alone lets a later number replace a NaN). */
static inline PK_INLINE TARGET void PK_NAME(POOL_DT, maxpool_chunk, POOL_TILE, POOL_ISA)(
    const fc_pool_row *r, const T *x, T *y, int64_t roff, int64_t yo,
    int64_t q, int64_t nl, int pair)
{
    const int64_t kw = POOL_KW ? POOL_KW : r->kw;
    const int64_t sw = POOL_SW ? POOL_SW : r->sw;
    const int64_t dw = r->dw, nr = r->nr, rstep = r->rstep;
    const int64_t off = roff + q * sw;
    const int64_t ln = PK_LOAD_LANES(off);
    const MASK lm = tail(ln);
    const T *p = x + off;
    PK_PAIR_PERM();
    VEC mx = PK_TAP_LOAD(p);
    MASK nan = visnan(mx);
#define PK_MAX_TAP(tap)                                                      \
    do {                                                                     \
        const VEC v_ = PK_TAP_LOAD(p + (tap));                               \
        nan = mor(nan, visnan(v_));                                          \
        mx = vmax(mx, v_);                                                   \
    } while (0)
#pragma GCC unroll 4
    for (int64_t s = 1; s < kw; s++)
        PK_MAX_TAP(s * dw);
    for (int64_t j = 1; j < nr; j++)
#pragma GCC unroll 4
        for (int64_t s = 0; s < kw; s++)
            PK_MAX_TAP(j * rstep + s * dw);
#undef PK_MAX_TAP
    vstore(y + yo + q, tail(nl), nl, vblend(nan, mx, vnan()));
}

static TARGET void PK_NAME(POOL_DT, maxpool, POOL_TILE, POOL_ISA)(
    const fc_pool_row *r, const T *x, T *y)
{
    PK_CHUNKS(PK_NAME(POOL_DT, maxpool_chunk, POOL_TILE, POOL_ISA), r, x, y);
}

/* Average: the window's sum in row-major order, divided by div. */
static inline PK_INLINE TARGET void PK_NAME(POOL_DT, avgpool_chunk, POOL_TILE, POOL_ISA)(
    const fc_pool_row *r, const T *x, T div, T *y, int64_t roff, int64_t yo,
    int64_t q, int64_t nl, int pair)
{
    const int64_t kw = POOL_KW ? POOL_KW : r->kw;
    const int64_t sw = POOL_SW ? POOL_SW : r->sw;
    const int64_t dw = r->dw, nr = r->nr, rstep = r->rstep;
    const int64_t off = roff + q * sw;
    const int64_t ln = PK_LOAD_LANES(off);
    const MASK lm = tail(ln);
    const T *p = x + off;
    PK_PAIR_PERM();
    VEC acc = PK_TAP_LOAD(p);
#pragma GCC unroll 4
    for (int64_t s = 1; s < kw; s++)
        acc = vadd(acc, PK_TAP_LOAD(p + s * dw));
    for (int64_t j = 1; j < nr; j++)
#pragma GCC unroll 4
        for (int64_t s = 0; s < kw; s++)
            acc = vadd(acc, PK_TAP_LOAD(p + j * rstep + s * dw));
    vstore(y + yo + q, tail(nl), nl, vdiv(acc, vset1(div)));
}

static TARGET void PK_NAME(POOL_DT, avgpool, POOL_TILE, POOL_ISA)(
    const fc_pool_row *r, const T *x, T div, T *y)
{
    PK_CHUNKS(PK_NAME(POOL_DT, avgpool_chunk, POOL_TILE, POOL_ISA), r, x, div, y);
}

#undef PK_CHUNKS
#undef PK_PAIR_OK
#undef PK_PAIR_PERM
#undef PK_TAP_LOAD
#undef PK_LANE_BASE
#undef PK_LOAD_LANES
#undef PK_LOAD

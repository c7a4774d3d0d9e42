/* Batch normalisation for float32 and float64 (batchnorm_tmpl.h), with the
 * micro-kernels (bn_kernels_*.c) picked from the instruction-set level
 * active at call time.  Blocking, threading and the merging of statistics
 * are here, shared by every level. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef FASTCONV_OPENMP
#include <omp.h>
#endif

#include "fastconv.h"
#include "bn_kernels.h"

/* Values per block of shifted sums: small enough that the shift (the
 * block's first value) stays near the block's mean, large enough that the
 * merge is noise. */
#define BN_BLOCK 4096
/* Values per thread, below which fewer threads run. */
#define BN_MIN_PER_THREAD 16384
/* Runs (HW) from which items are pieces in memory order; below, rows. */
#define BN_MIN_RUN 64
/* Rows plan: values per block (at least BN_MIN_ROWS super-rows, so that
 * gathering the positions' sums into channels stays a small cost), and
 * positions per column chunk (its sums stay in the L1 cache). */
#define BN_ROW_BLOCK 65536
#define BN_MIN_ROWS 64
#define BN_COLS 1024
/* Super-rows whose sums one micro-kernel call keeps in registers. */
#define BN_ROW_GROUP 8

/* Count, mean and sum of squared deviations of a set of values. */
typedef struct {
    double n, mean, m2;
} bn_moments;

/* A part's statistics for the backward pass: its moments, its first value
 * k0, sum(g) and sum(g (x - k0)). */
typedef struct {
    bn_moments m;
    double k0, sg, sgd;
} bn_part;

/* The shift of a block's shifted sums: its first value, or 0 where that is
 * NaN or infinite (sums about an infinite shift are NaN where PyTorch's
 * plain sum, and so its mean, is +-inf). */
static inline double bn_shift(double first)
{
    return isfinite(first) ? first : 0.0;
}

/* Chan et al.'s pairwise update: a <- a united with b.  Where either mean
 * is NaN or infinite (a NaN or an inf among the values), the mean is what
 * the plain sum gives (inf + inf = inf, inf - inf = NaN, inf + a number =
 * inf) and the deviations are NaN, as PyTorch's (x - mean)^2. */
static inline void bn_moments_merge(bn_moments *a, const bn_moments *b)
{
    if (b->n == 0)
        return;
    if (a->n == 0) {
        *a = *b;
        return;
    }
    if (!isfinite(a->mean) || !isfinite(b->mean)) {
        a->mean += b->mean;
        a->m2 = NAN;
        a->n += b->n;
        return;
    }
    const double n = a->n + b->n, delta = b->mean - a->mean;
    a->mean += delta * (b->n / n);
    a->m2 += b->m2 + delta * delta * (a->n * b->n / n);
    a->n = n;
}

/* Merge a block of n values given as sums about `shift`:
 * s1 = sum(x - shift), s2 = sum((x - shift)^2). */
static inline void bn_moments_add_shifted(bn_moments *a, double n, double shift,
                                          double s1, double s2)
{
    const double d = s1 / n;
    bn_moments b = {n, shift + d, s2 - s1 * d};
    if (b.m2 < 0)
        b.m2 = 0;
    bn_moments_merge(a, &b);
}

/* The work items: two plans, one for long runs, one for short.
 *
 * Pieces (HW >= BN_MIN_RUN): each (n, c) run of HW values is cut into
 * `ppc` pieces of at most BN_BLOCK values, items in memory order, so every
 * pass streams through memory; a piece's statistics are shifted sums about
 * its first value.
 *
 * Rows (HW < BN_MIN_RUN, down to 2-D inputs where HW = 1): the array is a
 * stack of rows of L = C * HW values; k rows at a time make a super-row of
 * Lp = k * L >= BN_MIN_RUN values, and sums are kept per position of the
 * super-row (vectorised along it, no reduction inside a row).  Super-rows
 * are grouped into blocks of `rb`, each block's sums about one shift per
 * channel (the channel's first value in the block); items are (block,
 * column chunk of `cw` positions).  Per-channel totals are gathered from
 * the positions after the pass. */
typedef struct {
    int rows;
    int64_t ppc, plen;          /* pieces: per (n, c) run, values per piece */
    int64_t L, k, Lp, Np;       /* rows: row, rows per super-row, its
                                   length, super-rows (the last may be short) */
    int64_t rb, nb, cw, ncol;   /* rows: super-rows per block, blocks,
                                   positions per column chunk, chunks */
    int64_t items;
} bn_plan;

static bn_plan bn_plan_for(const fc_bn_shape *s)
{
    bn_plan p = {0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0};
    if (s->N * s->C * s->HW == 0)
        return p;
    if (s->HW >= BN_MIN_RUN) {
        p.ppc = (s->HW + BN_BLOCK - 1) / BN_BLOCK;
        p.plen = (s->HW + p.ppc - 1) / p.ppc;
        p.items = s->N * s->C * p.ppc;
        return p;
    }
    p.rows = 1;
    p.L = s->C * s->HW;
    p.k = p.L >= BN_MIN_RUN ? 1 : (BN_MIN_RUN + p.L - 1) / p.L;
    p.Lp = p.k * p.L;
    p.Np = (s->N + p.k - 1) / p.k;
    p.rb = BN_ROW_BLOCK / p.Lp;
    if (p.rb < BN_MIN_ROWS)
        p.rb = BN_MIN_ROWS;
    p.nb = (p.Np + p.rb - 1) / p.rb;
    p.cw = p.Lp < BN_COLS ? p.Lp : BN_COLS;
    p.ncol = (p.Lp + p.cw - 1) / p.cw;
    p.items = p.nb * p.ncol;
    return p;
}

/* A piece's offset in the array, length and channel (no division but the
 * channel's when a run is one piece, the common case). */
static inline int64_t bn_piece(const bn_plan *p, const fc_bn_shape *s,
                               int64_t it, int64_t *off, int64_t *len)
{
    if (p->ppc == 1) {
        *off = it * s->HW;
        *len = s->HW;
        return it % s->C;
    }
    const int64_t q = it / p->ppc, a = (it - q * p->ppc) * p->plen;
    *off = q * s->HW + a;
    *len = a + p->plen < s->HW ? p->plen : s->HW - a;
    return q % s->C;
}

/* Channel c's pieces, in the order they merge: the i-th of N * ppc. */
static inline int64_t bn_piece_of(const bn_plan *p, const fc_bn_shape *s,
                                  int64_t c, int64_t i)
{
    return (i / p->ppc * s->C + c) * p->ppc + i % p->ppc;
}

/* A row item: block b's super-rows [r0, r1), positions [c0, c1). */
typedef struct {
    int64_t b, r0, r1, c0, c1;
} bn_rows_item;

static inline bn_rows_item bn_rows_at(const bn_plan *p, int64_t it)
{
    bn_rows_item r;
    r.b = it / p->ncol;
    r.r0 = r.b * p->rb;
    r.r1 = r.r0 + p->rb < p->Np ? r.r0 + p->rb : p->Np;
    r.c0 = (it - r.b * p->ncol) * p->cw;
    r.c1 = r.c0 + p->cw < p->Lp ? r.c0 + p->cw : p->Lp;
    return r;
}

/* Values of super-row r in positions [c0, c1) that exist (the last
 * super-row holds only N - (Np - 1) k rows). */
static inline int64_t bn_row_len(const bn_plan *p, const fc_bn_shape *s,
                                 int64_t r, int64_t c0, int64_t c1)
{
    const int64_t have = (s->N - r * p->k) * p->L;   /* values from row r on */
    const int64_t end = have < c1 ? have : c1;
    return end > c0 ? end - c0 : 0;
}

/* Rows of the input (not super-rows) in block b. */
static inline int64_t bn_block_rows(const bn_plan *p, const fc_bn_shape *s,
                                    int64_t b)
{
    const int64_t r0 = b * p->rb * p->k, r1 = r0 + p->rb * p->k;
    return (r1 < s->N ? r1 : s->N) - r0;
}

/* Channel of super-row position i. */
static inline int64_t bn_pos_channel(const bn_plan *p, const fc_bn_shape *s,
                                     int64_t i)
{
    return i % p->L / s->HW;
}

static int bn_threads(const fc_bn_shape *s, int64_t items)
{
    int64_t nt = fc_get_num_threads();
    const int64_t by_size = s->N * s->C * s->HW / BN_MIN_PER_THREAD;
    if (nt > items)
        nt = items;
    if (nt > by_size)
        nt = by_size;
    return nt > 1 ? (int)nt : 1;
}

/* This thread's run [lo, hi) of the items, the same in every pass. */
static void bn_thread_items(int64_t items, int64_t *lo, int64_t *hi)
{
    int64_t t = 0, nt = 1;
#ifdef FASTCONV_OPENMP
    t = omp_get_thread_num();
    nt = omp_get_num_threads();
#endif
    *lo = items * t / nt;
    *hi = items * (t + 1) / nt;
}

static inline double bn_load(const void *p, int64_t i, int f64)
{
    return f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static inline void bn_store(void *p, int64_t i, int f64, double v)
{
    if (f64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* The caller's running statistics of channel c, moved towards the batch's
 * (mean, biased var) of M values, in double. */
static void bn_update_running(const fc_bn_running *r, int64_t c, double mean,
                              double var, int64_t M)
{
    const double mo = r->momentum;
    if (r->mean) {
        const int64_t i = c * r->mean_stride;
        bn_store(r->mean, i, r->mean_f64,
                 (1 - mo) * bn_load(r->mean, i, r->mean_f64) + mo * mean);
    }
    if (r->var) {
        const int64_t i = c * r->var_stride;
        const double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : NAN;
        bn_store(r->var, i, r->var_f64,
                 (1 - mo) * bn_load(r->var, i, r->var_f64) + mo * unbiased);
    }
}

static const f32_bn_kernels *select_f32(void)
{
    switch (fc_isa_active()) {
    case FC_ISA_AVX512: return &f32_bn_avx512;
    case FC_ISA_AVX2: return &f32_bn_avx2;
    default: return &f32_bn_generic;
    }
}

static const f64_bn_kernels *select_f64(void)
{
    switch (fc_isa_active()) {
    case FC_ISA_AVX512: return &f64_bn_avx512;
    case FC_ISA_AVX2: return &f64_bn_avx2;
    default: return &f64_bn_generic;
    }
}

#define T float
#define FN(name) name##_f32
#define KERNELS_T f32_bn_kernels
#define SELECT select_f32
#include "batchnorm_tmpl.h"
#undef T
#undef FN
#undef KERNELS_T
#undef SELECT

#define T double
#define FN(name) name##_f64
#define KERNELS_T f64_bn_kernels
#define SELECT select_f64
#include "batchnorm_tmpl.h"
#undef T
#undef FN
#undef KERNELS_T
#undef SELECT

static double vector_at(fc_bn_vector v, int64_t k, double absent)
{
    if (v.p == NULL)
        return absent;
    return v.f64 ? ((const double *)v.p)[k] : (double)((const float *)v.p)[k];
}

void fc_bn_fold_factors(int64_t K, fc_bn_vector var, fc_bn_vector gamma,
                        fc_bn_vector bias, fc_bn_vector mean, fc_bn_vector beta,
                        double eps, double *scale, double *fused_bias)
{
    for (int64_t k = 0; k < K; k++) {
        const double s = vector_at(gamma, k, 1.0) / sqrt(vector_at(var, k, 0.0) + eps);
        const double centred = vector_at(bias, k, 0.0) - vector_at(mean, k, 0.0);
        const double scaled = centred * s;
        scale[k] = s;
        fused_bias[k] = scaled + vector_at(beta, k, 0.0);
    }
}

/* Batch normalisation for float32 and float64 (batchnorm_tmpl.h), with the
 * micro-kernels (bn_kernels_*.c) picked from the instruction-set level
 * active at call time.  Blocking, threading and the merging of statistics
 * are here, shared by every level. */
#include <math.h>
#include <stdlib.h>
#ifdef FASTCONV_OPENMP
#include <omp.h>
#endif

#include "fastconv.h"
#include "bn_kernels.h"

/* Values per block of shifted sums: small enough that the shift (the
 * block's first value) stays near the block's mean, large enough that the
 * merge is noise. */
#define BN_BLOCK 4096
/* Values below which a work item is not split further, and per thread. */
#define BN_MIN_PART 16384
#define BN_MIN_PER_THREAD 16384
/* Runs (HW) from which items are pieces in memory order. */
#define BN_MIN_RUN 64

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

/* Chan et al.'s pairwise update: a <- a united with b. */
static inline void bn_moments_merge(bn_moments *a, const bn_moments *b)
{
    if (b->n == 0)
        return;
    if (a->n == 0) {
        *a = *b;
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

/* Offset in the N x C x HW array of channel c's value j = n * HW + hw. */
static inline int64_t bn_offset(const fc_bn_shape *s, int64_t c, int64_t j)
{
    const int64_t n = j / s->HW;
    return (n * s->C + c) * s->HW + (j - n * s->HW);
}

/* Parts per channel of the by-channel plan: enough work items for threads
 * when channels are few, from the shape alone (so that results do not
 * depend on the thread count). */
static int64_t bn_parts(const fc_bn_shape *s)
{
    const int64_t M = s->N * s->HW;
    int64_t p = s->C >= 32 ? 1 : (32 + s->C - 1) / (s->C > 0 ? s->C : 1);
    const int64_t most = M / BN_MIN_PART;
    if (p > most)
        p = most;
    return p > 1 ? p : 1;
}

/* The work items.  Runs of at least BN_MIN_RUN values (HW): pieces of the
 * array in memory order, each (n, c) run cut into `ppc` pieces of at most
 * BN_BLOCK values, so every pass streams through memory.  Shorter runs:
 * (channel, part) items, each a range of a channel's N * HW values walked
 * run by run, so that statistics need one record per part, not per run. */
typedef struct {
    int by_channel;
    int64_t parts;          /* by channel: parts per channel */
    int64_t ppc, plen;      /* pieces: per (n, c) run, values per piece */
    int64_t items;
} bn_plan;

static bn_plan bn_plan_for(const fc_bn_shape *s)
{
    bn_plan p = {0, 1, 1, 0, 0};
    if (s->HW >= BN_MIN_RUN) {
        p.ppc = (s->HW + BN_BLOCK - 1) / BN_BLOCK;
        p.plen = (s->HW + p.ppc - 1) / p.ppc;
        p.items = s->N * s->C * p.ppc;
    } else {
        p.by_channel = 1;
        p.parts = bn_parts(s);
        p.items = s->C * p.parts;
    }
    return p;
}

static inline int64_t bn_item_channel(const bn_plan *p, const fc_bn_shape *s,
                                      int64_t it)
{
    return p->by_channel ? it / p->parts : it / p->ppc % s->C;
}

/* Item it's values of its channel: j in [j0, j1), j = n * HW + hw. */
static inline void bn_item_range(const bn_plan *p, const fc_bn_shape *s,
                                 int64_t it, int64_t *j0, int64_t *j1)
{
    if (p->by_channel) {
        const int64_t M = s->N * s->HW, part = it % p->parts;
        *j0 = M * part / p->parts;
        *j1 = M * (part + 1) / p->parts;
    } else {
        const int64_t n = it / p->ppc / s->C, a = it % p->ppc * p->plen;
        *j0 = n * s->HW + a;
        *j1 = n * s->HW + (a + p->plen < s->HW ? a + p->plen : s->HW);
    }
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

/* Items per channel, and channel c's i-th, in the order they merge. */
static inline int64_t bn_channel_items(const bn_plan *p, const fc_bn_shape *s)
{
    return p->by_channel ? p->parts : s->N * p->ppc;
}

static inline int64_t bn_channel_item(const bn_plan *p, const fc_bn_shape *s,
                                      int64_t c, int64_t i)
{
    return p->by_channel ? c * p->parts + i
                         : (i / p->ppc * s->C + c) * p->ppc + i % p->ppc;
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

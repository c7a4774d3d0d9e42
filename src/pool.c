/* Max and average pooling, forward and backward, for float32 and float64
 * (pool_tmpl.h), with the micro-kernels of the instruction-set level active
 * at call time (pool_internal.h).
 *
 * Every (n, c) plane is independent.  The forward passes split the output
 * rows of all planes over the threads; the backward passes split whole
 * planes, and within a plane one thread writes every element, so the results
 * never depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pool_internal.h"

/* Taps of window o along one axis (start + i * d for i < k, start = o * st
 * - pad) that fall inside [0, size): how many, and the first in *first.
 * PyTorch's `while (start < 0) start += d` and its clipped end. */
static int64_t pool_span(int64_t o, int64_t k, int64_t st, int64_t pad,
                         int64_t d, int64_t size, int64_t *first)
{
    const int64_t start = o * st - pad;
    const int64_t i_lo = start < 0 ? (-start + d - 1) / d : 0;
    int64_t i_hi;
    *first = start + i_lo * d;
    if (start > size - 1)
        return 0;
    i_hi = (size - 1 - start) / d + 1;
    if (i_hi > k)
        i_hi = k;
    return i_hi > i_lo ? i_hi - i_lo : 0;
}

/* One axis of the average pool's divisor (PyTorch's rule): the window's
 * length counting padding but not what ceil_mode adds past it, or with
 * count_pad == 0 only its elements inside the input. */
static int64_t avg_len(int64_t o, int64_t k, int64_t st, int64_t pad,
                       int64_t size, int count_pad)
{
    int64_t start = o * st - pad, end = start + k;
    if (end > size + pad)
        end = size + pad;
    if (!count_pad) {
        if (start < 0)
            start = 0;
        if (end > size)
            end = size;
    }
    return end - start;
}

/* Window o along one axis: its taps inside the input (the first, how many)
 * and, for average pooling, its part of the divisor. */
typedef struct {
    int64_t first, n, len;
} pool_span_t;

/* The spans of all `out` windows along one axis; count_pad < 0: no len. */
static void pool_spans(pool_span_t *sp, int64_t out, int64_t k, int64_t st,
                       int64_t pad, int64_t d, int64_t size, int count_pad)
{
    for (int64_t o = 0; o < out; o++) {
        sp[o].n = pool_span(o, k, st, pad, d, size, &sp[o].first);
        sp[o].len = count_pad < 0 ? 0 : avg_len(o, k, st, pad, size, count_pad);
    }
}

/* How many output rows from oh on (at most max) one micro-kernel call can
 * take: rows sh input rows apart whose windows keep the same rows and
 * divisor part. */
static int64_t pool_run(const pool_span_t *rsp, int64_t oh, int64_t max,
                        int64_t sh)
{
    int64_t n = 1;
    while (n < max && rsp[oh + n].n == rsp[oh].n &&
           rsp[oh + n].len == rsp[oh].len &&
           rsp[oh + n].first == rsp[oh].first + n * sh)
        n++;
    return n;
}

/* The output columns [*lo, *hi) whose windows lie wholly inside the input
 * row: the micro-kernels' share; the driver computes the others. */
static void pool_interior(const fc_pool_shape *s, int64_t *lo, int64_t *hi)
{
    const int64_t last = s->W - 1 + s->pw - (s->kw - 1) * s->dw;
    int64_t l = (s->pw + s->sw - 1) / s->sw;
    int64_t h = last < 0 ? 0 : last / s->sw + 1;
    if (l > s->Q)
        l = s->Q;
    if (h > s->Q)
        h = s->Q;
    *lo = l;
    *hi = h > l ? h : l;
}

static int pool_variant(const fc_pool_shape *s)
{
    if (s->sw == 1)
        return s->kw == 3 ? FC_POOL_K3S1 : FC_POOL_S1;
    if (s->kw == 2 && s->sw == 2)
        return FC_POOL_K2S2;
    if (s->kw == 3 && s->sw == 2)
        return FC_POOL_K3S2;
    return FC_POOL_ROW;
}

/* The window is the whole plane (global average pooling). */
static int pool_is_global(const fc_pool_shape *s)
{
    return s->P == 1 && s->Q == 1 && s->ph == 0 && s->pw == 0 &&
           s->kh == s->H && s->kw == s->W && s->dh == 1 && s->dw == 1;
}

/* Average pooling by rows of window sums (pool_tmpl.h, avg_pool_s1): stride
 * 1 along the row, so that neighbouring windows share their columns, and
 * rows shared by windows too (kh >= sh), with planes enough to share among
 * threads (the fast path splits planes, not rows).  A choice by shape alone:
 * the two paths add in different orders, and results must not depend on
 * the thread count. */
static int pool_avg_separable(const fc_pool_shape *s)
{
    return s->sw == 1 && s->kh >= s->sh && s->kh * s->kw > 1 &&
           s->N * s->C >= 8;
}

/* Chunk of work items that threads take at a time: about 16 chunks per
 * thread.  Dynamic, not static, scheduling: on a small shared machine a
 * thread that loses its core for a while leaves its share to the others
 * instead of holding them at the barrier; the results do not depend on
 * which thread computes an item. */
static int64_t pool_chunk(int64_t items, int nt)
{
    const int64_t c = items / (16 * (int64_t)nt);
    return c > 1 ? c : 1;
}

/* The average-pool gradient as a box sum (pool_tmpl.h, avg_backward_s1):
 * stride 1 both ways, planes enough to share among threads.  By shape
 * alone, as pool_avg_separable. */
static int pool_avg_backward_box(const fc_pool_shape *s)
{
    return s->sh == 1 && s->sw == 1 && s->N * s->C >= 8;
}

/* Threads for a call moving `bytes` (inputs read and outputs written): one
 * per POOL_MIN_BYTES_PER_THREAD at most.  Waking a thread costs from a few
 * us (spinning workers) to 10-200 us (sleeping ones, OMP_WAIT_POLICY=
 * PASSIVE, on a busy VM); below that a small layer runs faster alone. */
#define POOL_MIN_BYTES_PER_THREAD (512 * 1024)
static int pool_threads(int64_t bytes)
{
    const int64_t by_size = bytes / POOL_MIN_BYTES_PER_THREAD;
    const int nt = fc_get_num_threads();
    return by_size < 1 ? 1 : by_size < nt ? (int)by_size : nt;
}

/* Forward work items: blocks of this many output rows of one plane. */
#define POOL_ROW_BLOCK 16

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define POOL_X86 1
#else
#define POOL_X86 0
#endif

static const fc_pool_f32_kernels *pool_kernels_f32(void)
{
#if POOL_X86
    switch (fc_isa_active()) {
    case FC_ISA_AVX512: return &fc_pool_f32_avx512;
    case FC_ISA_AVX2: return &fc_pool_f32_avx2;
    default: break;
    }
#endif
    return &fc_pool_f32_generic;
}

static const fc_pool_f64_kernels *pool_kernels_f64(void)
{
#if POOL_X86
    switch (fc_isa_active()) {
    case FC_ISA_AVX512: return &fc_pool_f64_avx512;
    case FC_ISA_AVX2: return &fc_pool_f64_avx2;
    default: break;
    }
#endif
    return &fc_pool_f64_generic;
}

#define T float
#define FN(name) name##_f32
#define KSET fc_pool_f32_kernels
#define KERNELS pool_kernels_f32
#define GENERIC (&fc_pool_f32_generic)
#include "pool_tmpl.h"
#undef T
#undef FN
#undef KSET
#undef KERNELS
#undef GENERIC

#define T double
#define FN(name) name##_f64
#define KSET fc_pool_f64_kernels
#define KERNELS pool_kernels_f64
#define GENERIC (&fc_pool_f64_generic)
#include "pool_tmpl.h"

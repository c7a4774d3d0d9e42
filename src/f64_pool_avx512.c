/* AVX-512 pooling micro-kernels, float64: 8 output columns per vector,
 * indices tracked in 64-bit lanes. */
#include "pool_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>

#define T double
#define VEC __m512d
#define IVEC __m512i
#define MASK __mmask8
#define LANES 8
#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define POOL_DT f64
#define POOL_ISA avx512

static inline TARGET MASK tail(int64_t nl) { return (MASK)((1u << nl) - 1); }

/* Partial masks only in partial vectors (slow on AMD Zen 5). */
static inline TARGET VEC vload(MASK m, int64_t nl, const T *p)
{
    return nl == LANES ? _mm512_loadu_pd(p) : _mm512_maskz_loadu_pd(m, p);
}

/* The even elements of p[0 .. 2 nl - 2], reading nothing past p[2 nl - 2]:
 * a full vector from p[0 .. 7] and p[7 .. 14]. */
static inline TARGET VEC vload2(MASK m, int64_t nl, const T *p)
{
    (void)m;
    if (nl == LANES) {
        const __m512i idx = _mm512_setr_epi64(0, 2, 4, 6, 9, 11, 13, 15);
        return _mm512_permutex2var_pd(_mm512_loadu_pd(p), idx, _mm512_loadu_pd(p + 7));
    } else {
        const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
        const uint32_t e = (1u << (2 * nl - 1)) - 1;
        return _mm512_permutex2var_pd(_mm512_maskz_loadu_pd((__mmask8)e, p), even,
                                      _mm512_maskz_loadu_pd((__mmask8)(e >> 8), p + 8));
    }
}

static inline TARGET VEC vgather(MASK m, int64_t nl, const T *p, int64_t s)
{
    const __m256i idx = _mm256_mullo_epi32(
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)s));
    (void)nl;
    return _mm512_mask_i32gather_pd(_mm512_setzero_pd(), m, idx, p, 8);
}

/* lane l <- p[l / 2], reading p[0 .. (nl - 1) / 2] */
static inline TARGET VEC vloaddup(MASK m, int64_t nl, const T *p)
{
    const __m512i dup = _mm512_setr_epi64(0, 0, 1, 1, 2, 2, 3, 3);
    (void)m;
    if (nl == LANES)
        return _mm512_permutexvar_pd(dup, _mm512_castpd256_pd512(_mm256_loadu_pd(p)));
    return _mm512_permutexvar_pd(dup, _mm512_maskz_loadu_pd(
        (__mmask8)((1u << ((nl + 1) / 2)) - 1), p));
}

static inline TARGET void vstore(T *p, MASK m, int64_t nl, VEC v)
{
    if (nl == LANES)
        _mm512_storeu_pd(p, v);
    else
        _mm512_mask_storeu_pd(p, m, v);
}

static inline TARGET void istore(int64_t *p, MASK m, int64_t nl, IVEC iv)
{
    if (nl == LANES)
        _mm512_storeu_si512(p, iv);
    else
        _mm512_mask_storeu_epi64(p, m, iv);
}

static inline TARGET VEC vzero(void) { return _mm512_setzero_pd(); }
static inline TARGET VEC vset1(T a) { return _mm512_set1_pd(a); }
static inline TARGET VEC vnan(void) { return _mm512_set1_pd(NAN); }
static inline TARGET VEC vadd(VEC a, VEC b) { return _mm512_add_pd(a, b); }
static inline TARGET VEC vdiv(VEC a, VEC b) { return _mm512_div_pd(a, b); }
static inline TARGET VEC vmax(VEC a, VEC b) { return _mm512_max_pd(a, b); }
static inline TARGET T vhsum(VEC v) { return _mm512_reduce_add_pd(v); }
static inline TARGET MASK vtake(VEC v, VEC mx)
{
    return _mm512_cmp_pd_mask(v, mx, _CMP_GT_OQ) |
           _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q);
}
static inline TARGET MASK visnan(VEC v) { return _mm512_cmp_pd_mask(v, v, _CMP_UNORD_Q); }
static inline TARGET MASK mor(MASK a, MASK b) { return a | b; }
static inline TARGET VEC vblend(MASK m, VEC a, VEC b) { return _mm512_mask_blend_pd(m, a, b); }
static inline TARGET IVEC iset1(int64_t a) { return _mm512_set1_epi64(a); }
static inline TARGET IVEC iiota(int64_t s)
{
    return _mm512_mullo_epi64(_mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7),
                              _mm512_set1_epi64(s));
}
static inline TARGET IVEC iadd(IVEC a, IVEC b) { return _mm512_add_epi64(a, b); }
static inline TARGET IVEC iblend(MASK m, IVEC a, IVEC b) { return _mm512_mask_blend_epi64(m, a, b); }

/* Two rows of at most 4 outputs in one vector (pool_kernel_tmpl.h). */
#define POOL_PAIR 1
#define PAIR_PERM __m512i
static inline TARGET __m512i pair_lanes(int64_t n, int64_t sw, int64_t d)
{
    const __m512i l = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
    const __m512i s = _mm512_set1_epi64(sw);
    const __m512i second = _mm512_add_epi64(
        _mm512_set1_epi64(d),
        _mm512_mullo_epi64(_mm512_sub_epi64(l, _mm512_set1_epi64(n)), s));
    return _mm512_mask_blend_epi64((__mmask8)((1u << n) - 1), second,
                                   _mm512_mullo_epi64(l, s));
}
static inline TARGET PAIR_PERM vpairperm(int64_t n, int64_t sw) { return pair_lanes(n, sw, 8); }
static inline TARGET PAIR_PERM vpairnone(void) { return _mm512_setzero_si512(); }
static inline TARGET IVEC ipairbase(int64_t n, int64_t sw, int64_t d) { return pair_lanes(n, sw, d); }
static inline TARGET VEC vloadpair(PAIR_PERM perm, const T *a, const T *b)
{
    return _mm512_permutex2var_pd(_mm512_loadu_pd(a), perm, _mm512_loadu_pd(b));
}

#include "pool_kernel_variants.h"

#define IDX32 0
#define KSET_T fc_pool_f64_kernels
#define KSET_NAME fc_pool_f64_avx512
#include "pool_kernel_misc_tmpl.h"

#endif

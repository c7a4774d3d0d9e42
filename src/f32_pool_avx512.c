/* AVX-512 pooling micro-kernels, float32: 16 output columns per vector,
 * indices tracked in 32-bit lanes (planes below 2^31 elements). */
#include "pool_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>

#define T float
#define VEC __m512
#define IVEC __m512i
#define MASK __mmask16
#define LANES 16
#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define POOL_DT f32
#define POOL_ISA avx512

static inline TARGET MASK tail(int64_t nl) { return (MASK)((1u << nl) - 1); }

/* Partial masks only in partial vectors: a load or store with a partial
 * mask is several times slower than a plain one on AMD Zen 5. */
static inline TARGET VEC vload(MASK m, int64_t nl, const T *p)
{
    return nl == LANES ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(m, p);
}

/* The even elements of p[0 .. 2 nl - 2], reading nothing past p[2 nl - 2]
 * (the next element may lie past the end of the array): a full vector from
 * p[0 .. 15] and p[15 .. 30], a partial one from two masked loads. */
static inline TARGET VEC vload2(MASK m, int64_t nl, const T *p)
{
    (void)m;
    if (nl == LANES) {
        const __m512i idx = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 17, 19,
                                              21, 23, 25, 27, 29, 31);
        return _mm512_permutex2var_ps(_mm512_loadu_ps(p), idx, _mm512_loadu_ps(p + 15));
    } else {
        const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
                                               20, 22, 24, 26, 28, 30);
        const uint32_t e = (1u << (2 * nl - 1)) - 1;
        return _mm512_permutex2var_ps(_mm512_maskz_loadu_ps((__mmask16)e, p), even,
                                      _mm512_maskz_loadu_ps((__mmask16)(e >> 16), p + 16));
    }
}

static inline TARGET VEC vgather(MASK m, int64_t nl, const T *p, int64_t s)
{
    const __m512i idx = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)s));
    (void)nl;
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, idx, p, 4);
}

/* lane l <- p[l / 2], reading p[0 .. (nl - 1) / 2] */
static inline TARGET VEC vloaddup(MASK m, int64_t nl, const T *p)
{
    const __m512i dup = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5,
                                          6, 6, 7, 7);
    (void)m;
    if (nl == LANES)
        return _mm512_permutexvar_ps(dup, _mm512_castps256_ps512(_mm256_loadu_ps(p)));
    return _mm512_permutexvar_ps(dup, _mm512_maskz_loadu_ps(
        (__mmask16)((1u << ((nl + 1) / 2)) - 1), p));
}

static inline TARGET void vstore(T *p, MASK m, int64_t nl, VEC v)
{
    if (nl == LANES)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, m, v);
}

static inline TARGET void istore(int64_t *p, MASK m, int64_t nl, IVEC iv)
{
    const __m512i lo = _mm512_cvtepi32_epi64(_mm512_castsi512_si256(iv));
    const __m512i hi = _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(iv, 1));
    if (nl == LANES) {
        _mm512_storeu_si512(p, lo);
        _mm512_storeu_si512(p + 8, hi);
    } else {
        _mm512_mask_storeu_epi64(p, (__mmask8)m, lo);
        _mm512_mask_storeu_epi64(p + 8, (__mmask8)(m >> 8), hi);
    }
}

static inline TARGET VEC vzero(void) { return _mm512_setzero_ps(); }
static inline TARGET VEC vset1(T a) { return _mm512_set1_ps(a); }
static inline TARGET VEC vnan(void) { return _mm512_set1_ps(NAN); }
static inline TARGET VEC vadd(VEC a, VEC b) { return _mm512_add_ps(a, b); }
static inline TARGET VEC vdiv(VEC a, VEC b) { return _mm512_div_ps(a, b); }
static inline TARGET VEC vmax(VEC a, VEC b) { return _mm512_max_ps(a, b); }
static inline TARGET T vhsum(VEC v) { return _mm512_reduce_add_ps(v); }
static inline TARGET MASK vtake(VEC v, VEC mx)
{
    return _mm512_cmp_ps_mask(v, mx, _CMP_GT_OQ) |
           _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}
static inline TARGET MASK visnan(VEC v) { return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q); }
static inline TARGET MASK mor(MASK a, MASK b) { return a | b; }
static inline TARGET VEC vblend(MASK m, VEC a, VEC b) { return _mm512_mask_blend_ps(m, a, b); }
static inline TARGET IVEC iset1(int64_t a) { return _mm512_set1_epi32((int)a); }
static inline TARGET IVEC iiota(int64_t s)
{
    return _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)s));
}
static inline TARGET IVEC iadd(IVEC a, IVEC b) { return _mm512_add_epi32(a, b); }
static inline TARGET IVEC iblend(MASK m, IVEC a, IVEC b) { return _mm512_mask_blend_epi32(m, a, b); }

/* Two rows of at most 8 outputs in one vector (pool_kernel_tmpl.h). */
#define POOL_PAIR 1
#define PAIR_PERM __m512i
static inline TARGET __m512i pair_lanes(int64_t n, int64_t sw, int64_t d)
{
    const __m512i l = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                        12, 13, 14, 15);
    const __m512i s = _mm512_set1_epi32((int)sw);
    const __m512i second = _mm512_add_epi32(
        _mm512_set1_epi32((int)d),
        _mm512_mullo_epi32(_mm512_sub_epi32(l, _mm512_set1_epi32((int)n)), s));
    return _mm512_mask_blend_epi32((__mmask16)((1u << n) - 1), second,
                                   _mm512_mullo_epi32(l, s));
}
static inline TARGET PAIR_PERM vpairperm(int64_t n, int64_t sw) { return pair_lanes(n, sw, 16); }
static inline TARGET PAIR_PERM vpairnone(void) { return _mm512_setzero_si512(); }
static inline TARGET IVEC ipairbase(int64_t n, int64_t sw, int64_t d) { return pair_lanes(n, sw, d); }
static inline TARGET VEC vloadpair(PAIR_PERM perm, const T *a, const T *b)
{
    return _mm512_permutex2var_ps(_mm512_loadu_ps(a), perm, _mm512_loadu_ps(b));
}

#include "pool_kernel_variants.h"

#define IDX32 1
#define KSET_T fc_pool_f32_kernels
#define KSET_NAME fc_pool_f32_avx512
#include "pool_kernel_misc_tmpl.h"

#endif

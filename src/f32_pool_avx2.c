/* AVX2 pooling micro-kernels, float32: 8 output columns per vector, lane
 * masks as vectors, indices tracked in 32-bit lanes (planes below 2^31
 * elements).  Partial vectors use masked loads and stores, which never touch
 * the masked-off memory. */
#include "pool_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>

#define T float
#define VEC __m256
#define IVEC __m256i
#define MASK __m256
#define LANES 8
#define TARGET __attribute__((target("avx2,fma")))
#define POOL_DT f32
#define POOL_ISA avx2

static inline TARGET __m256i first_lanes(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline TARGET MASK tail(int64_t nl) { return _mm256_castsi256_ps(first_lanes(nl)); }

static inline TARGET VEC vload(MASK m, int64_t nl, const T *p)
{
    return nl == LANES ? _mm256_loadu_ps(p)
                       : _mm256_maskload_ps(p, _mm256_castps_si256(m));
}

/* The even elements of p[0 .. 2 nl - 2], reading nothing past p[2 nl - 2]:
 * a full vector from p[0 .. 7] and p[7 .. 14], a partial one from two
 * masked loads. */
static inline TARGET VEC vload2(MASK m, int64_t nl, const T *p)
{
    const int64_t e = 2 * nl - 1;
    if (nl == LANES) {
        /* [p0 p2 p8 p10 | p4 p6 p12 p14] -> [p0 p2 p4 p6 p8 p10 p12 p14] */
        const __m256 t = _mm256_shuffle_ps(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 7),
                                           _MM_SHUFFLE(3, 1, 2, 0));
        return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t),
                                                      _MM_SHUFFLE(3, 1, 2, 0)));
    }
    const __m256 lo = e >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, first_lanes(e));
    const __m256 hi = _mm256_maskload_ps(p + 8, first_lanes(e - 8));
    /* [lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6] -> [lo0 lo2 lo4 lo6 hi0 hi2 hi4 hi6] */
    const __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0));
    (void)m;
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t),
                                                  _MM_SHUFFLE(3, 1, 2, 0)));
}

static inline TARGET VEC vgather(MASK m, int64_t nl, const T *p, int64_t s)
{
    const __m256i idx = _mm256_mullo_epi32(
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)s));
    (void)nl;
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, idx, m, 4);
}

/* lane l <- p[l / 2], reading p[0 .. (nl - 1) / 2] */
static inline TARGET VEC vloaddup(MASK m, int64_t nl, const T *p)
{
    const __m128i half = _mm_cmpgt_epi32(_mm_set1_epi32((int)((nl + 1) / 2)),
                                         _mm_setr_epi32(0, 1, 2, 3));
    const __m128 v = nl == LANES ? _mm_loadu_ps(p) : _mm_maskload_ps(p, half);
    (void)m;
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(v),
                                    _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3));
}

static inline TARGET void vstore(T *p, MASK m, int64_t nl, VEC v)
{
    if (nl == LANES)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, _mm256_castps_si256(m), v);
}

static inline TARGET void istore(int64_t *p, MASK m, int64_t nl, IVEC iv)
{
    const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(iv));
    const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(iv, 1));
    (void)m;
    if (nl == LANES) {
        _mm256_storeu_si256((__m256i *)p, lo);
        _mm256_storeu_si256((__m256i *)(p + 4), hi);
    } else {
        const __m256i i4 = _mm256_setr_epi64x(0, 1, 2, 3);
        _mm256_maskstore_epi64((long long *)p,
                               _mm256_cmpgt_epi64(_mm256_set1_epi64x(nl), i4), lo);
        _mm256_maskstore_epi64((long long *)(p + 4),
                               _mm256_cmpgt_epi64(_mm256_set1_epi64x(nl - 4), i4), hi);
    }
}

static inline TARGET VEC vzero(void) { return _mm256_setzero_ps(); }
static inline TARGET VEC vset1(T a) { return _mm256_set1_ps(a); }
static inline TARGET VEC vnan(void) { return _mm256_set1_ps(NAN); }
static inline TARGET VEC vadd(VEC a, VEC b) { return _mm256_add_ps(a, b); }
static inline TARGET VEC vdiv(VEC a, VEC b) { return _mm256_div_ps(a, b); }
static inline TARGET VEC vmax(VEC a, VEC b) { return _mm256_max_ps(a, b); }
static inline TARGET T vhsum(VEC v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
static inline TARGET MASK vtake(VEC v, VEC mx)
{
    return _mm256_or_ps(_mm256_cmp_ps(v, mx, _CMP_GT_OQ),
                        _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}
static inline TARGET MASK visnan(VEC v) { return _mm256_cmp_ps(v, v, _CMP_UNORD_Q); }
static inline TARGET MASK mor(MASK a, MASK b) { return _mm256_or_ps(a, b); }
static inline TARGET VEC vblend(MASK m, VEC a, VEC b) { return _mm256_blendv_ps(a, b, m); }
static inline TARGET IVEC iset1(int64_t a) { return _mm256_set1_epi32((int)a); }
static inline TARGET IVEC iiota(int64_t s)
{
    return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                              _mm256_set1_epi32((int)s));
}
static inline TARGET IVEC iadd(IVEC a, IVEC b) { return _mm256_add_epi32(a, b); }
static inline TARGET IVEC iblend(MASK m, IVEC a, IVEC b)
{
    return _mm256_blendv_epi8(a, b, _mm256_castps_si256(m));
}

#define POOL_PAIR 0
#include "pool_kernel_variants.h"

#define IDX32 1
#define KSET_T fc_pool_f32_kernels
#define KSET_NAME fc_pool_f32_avx2
#include "pool_kernel_misc_tmpl.h"

#endif

/* AVX2 pooling micro-kernels, float64: 4 output columns per vector, lane
 * masks as vectors, indices tracked in 64-bit lanes. */
#include "pool_internal.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>

#define T double
#define VEC __m256d
#define IVEC __m256i
#define MASK __m256d
#define LANES 4
#define TARGET __attribute__((target("avx2,fma")))
#define POOL_DT f64
#define POOL_ISA avx2

static inline TARGET __m256i first_lanes(int64_t n)
{
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
}

static inline TARGET MASK tail(int64_t nl) { return _mm256_castsi256_pd(first_lanes(nl)); }

static inline TARGET VEC vload(MASK m, int64_t nl, const T *p)
{
    return nl == LANES ? _mm256_loadu_pd(p)
                       : _mm256_maskload_pd(p, _mm256_castpd_si256(m));
}

/* The even elements of p[0 .. 2 nl - 2], reading nothing past p[2 nl - 2]:
 * a full vector from p[0 .. 3] and p[3 .. 6]. */
static inline TARGET VEC vload2(MASK m, int64_t nl, const T *p)
{
    const int64_t e = 2 * nl - 1;
    if (nl == LANES)   /* [p0 p4 p2 p6] -> [p0 p2 p4 p6] */
        return _mm256_permute4x64_pd(
            _mm256_shuffle_pd(_mm256_loadu_pd(p), _mm256_loadu_pd(p + 3), 0xA),
            _MM_SHUFFLE(3, 1, 2, 0));
    const __m256d lo = e >= 4 ? _mm256_loadu_pd(p) : _mm256_maskload_pd(p, first_lanes(e));
    const __m256d hi = _mm256_maskload_pd(p + 4, first_lanes(e - 4));
    (void)m;
    /* [lo0 hi0 lo2 hi2] -> [lo0 lo2 hi0 hi2] */
    return _mm256_permute4x64_pd(_mm256_unpacklo_pd(lo, hi), _MM_SHUFFLE(3, 1, 2, 0));
}

static inline TARGET VEC vgather(MASK m, int64_t nl, const T *p, int64_t s)
{
    const __m128i idx = _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3),
                                        _mm_set1_epi32((int)s));
    (void)nl;
    return _mm256_mask_i32gather_pd(_mm256_setzero_pd(), p, idx, m, 8);
}

/* lane l <- p[l / 2], reading p[0 .. (nl - 1) / 2] */
static inline TARGET VEC vloaddup(MASK m, int64_t nl, const T *p)
{
    const __m128i half = _mm_cmpgt_epi64(_mm_set1_epi64x((nl + 1) / 2),
                                         _mm_set_epi64x(1, 0));
    const __m128d v = nl == LANES ? _mm_loadu_pd(p) : _mm_maskload_pd(p, half);
    (void)m;
    return _mm256_permute4x64_pd(_mm256_castpd128_pd256(v), _MM_SHUFFLE(1, 1, 0, 0));
}

static inline TARGET void vstore(T *p, MASK m, int64_t nl, VEC v)
{
    if (nl == LANES)
        _mm256_storeu_pd(p, v);
    else
        _mm256_maskstore_pd(p, _mm256_castpd_si256(m), v);
}

static inline TARGET void istore(int64_t *p, MASK m, int64_t nl, IVEC iv)
{
    if (nl == LANES)
        _mm256_storeu_si256((__m256i *)p, iv);
    else
        _mm256_maskstore_epi64((long long *)p, _mm256_castpd_si256(m), iv);
}

static inline TARGET VEC vzero(void) { return _mm256_setzero_pd(); }
static inline TARGET VEC vset1(T a) { return _mm256_set1_pd(a); }
static inline TARGET VEC vnan(void) { return _mm256_set1_pd(NAN); }
static inline TARGET VEC vadd(VEC a, VEC b) { return _mm256_add_pd(a, b); }
static inline TARGET VEC vdiv(VEC a, VEC b) { return _mm256_div_pd(a, b); }
static inline TARGET VEC vmax(VEC a, VEC b) { return _mm256_max_pd(a, b); }
static inline TARGET T vhsum(VEC v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
static inline TARGET MASK vtake(VEC v, VEC mx)
{
    return _mm256_or_pd(_mm256_cmp_pd(v, mx, _CMP_GT_OQ),
                        _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
}
static inline TARGET MASK visnan(VEC v) { return _mm256_cmp_pd(v, v, _CMP_UNORD_Q); }
static inline TARGET MASK mor(MASK a, MASK b) { return _mm256_or_pd(a, b); }
static inline TARGET VEC vblend(MASK m, VEC a, VEC b) { return _mm256_blendv_pd(a, b, m); }
static inline TARGET IVEC iset1(int64_t a) { return _mm256_set1_epi64x(a); }
static inline TARGET IVEC iiota(int64_t s) { return _mm256_setr_epi64x(0, s, 2 * s, 3 * s); }
static inline TARGET IVEC iadd(IVEC a, IVEC b) { return _mm256_add_epi64(a, b); }
static inline TARGET IVEC iblend(MASK m, IVEC a, IVEC b)
{
    return _mm256_blendv_epi8(a, b, _mm256_castpd_si256(m));
}

#define POOL_PAIR 0
#include "pool_kernel_variants.h"

#define IDX32 0
#define KSET_T fc_pool_f64_kernels
#define KSET_NAME fc_pool_f64_avx2
#include "pool_kernel_misc_tmpl.h"

#endif

/* AVX2+FMA batch-norm micro-kernels: 8 floats or 4 doubles per vector; the
 * reductions widen 4 values at a time to double. */
#include "bn_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))

TARGET static inline double hsum_pd256(__m256d v)
{
    const __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v),
                                 _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

#define DV __m256d
#define DL 4
#define DZERO() _mm256_setzero_pd()
#define DSET1(s) _mm256_set1_pd(s)
#define DADD(a, b) _mm256_add_pd((a), (b))
#define DSUB(a, b) _mm256_sub_pd((a), (b))
#define DFMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define DMUL(a, b) _mm256_mul_pd((a), (b))
#define DLOADD(p) _mm256_loadu_pd(p)
#define DSTORED(p, v) _mm256_storeu_pd((p), (v))
#define DHSUM(v) hsum_pd256(v)

/* ---- float32 ---- */
#define T float
#define TV __m256
#define TL 8
#define TLOAD(p) _mm256_loadu_ps(p)
#define TSTORE(p, v) _mm256_storeu_ps((p), (v))
#define TSET1(s) _mm256_set1_ps(s)
#define TSUB(a, b) _mm256_sub_ps((a), (b))
#define TMUL(a, b) _mm256_mul_ps((a), (b))
#define TFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define DLOADT(p) _mm256_cvtps_pd(_mm_loadu_ps(p))
#define DSTORET(p, v) _mm_storeu_ps((p), _mm256_cvtpd_ps(v))
#define NAME(op) f32_bn_##op##_avx2
#define TABLE f32_bn_avx2
#define TABLE_T f32_bn_kernels
#include "bn_kernel_tmpl.h"

/* ---- float64 ---- */
#define T double
#define TV __m256d
#define TL 4
#define TLOAD(p) _mm256_loadu_pd(p)
#define TSTORE(p, v) _mm256_storeu_pd((p), (v))
#define TSET1(s) _mm256_set1_pd(s)
#define TSUB(a, b) _mm256_sub_pd((a), (b))
#define TMUL(a, b) _mm256_mul_pd((a), (b))
#define TFMA(a, b, c) _mm256_fmadd_pd((a), (b), (c))
#define DLOADT(p) _mm256_loadu_pd(p)
#define DSTORET(p, v) _mm256_storeu_pd((p), (v))
#define NAME(op) f64_bn_##op##_avx2
#define TABLE f64_bn_avx2
#define TABLE_T f64_bn_kernels
#include "bn_kernel_tmpl.h"

#else
const f32_bn_kernels f32_bn_avx2 = {0};
const f64_bn_kernels f64_bn_avx2 = {0};
#endif

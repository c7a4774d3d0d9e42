/* AVX-512 batch-norm micro-kernels: 16 floats or 8 doubles per vector; the
 * reductions widen 8 values at a time to double. */
#include "bn_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

#define DV __m512d
#define DL 8
#define DZERO() _mm512_setzero_pd()
#define DSET1(s) _mm512_set1_pd(s)
#define DADD(a, b) _mm512_add_pd((a), (b))
#define DSUB(a, b) _mm512_sub_pd((a), (b))
#define DFMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define DMUL(a, b) _mm512_mul_pd((a), (b))
#define DLOADD(p) _mm512_loadu_pd(p)
#define DSTORED(p, v) _mm512_storeu_pd((p), (v))
#define DHSUM(v) _mm512_reduce_add_pd(v)

/* ---- float32 ---- */
#define T float
#define TV __m512
#define TL 16
#define TLOAD(p) _mm512_loadu_ps(p)
#define TSTORE(p, v) _mm512_storeu_ps((p), (v))
#define TSET1(s) _mm512_set1_ps(s)
#define TSUB(a, b) _mm512_sub_ps((a), (b))
#define TMUL(a, b) _mm512_mul_ps((a), (b))
#define TFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define DLOADT(p) _mm512_cvtps_pd(_mm256_loadu_ps(p))
#define DSTORET(p, v) _mm256_storeu_ps((p), _mm512_cvtpd_ps(v))
#define NAME(op) f32_bn_##op##_avx512
#define TABLE f32_bn_avx512
#define TABLE_T f32_bn_kernels
#include "bn_kernel_tmpl.h"

/* ---- float64 ---- */
#define T double
#define TV __m512d
#define TL 8
#define TLOAD(p) _mm512_loadu_pd(p)
#define TSTORE(p, v) _mm512_storeu_pd((p), (v))
#define TSET1(s) _mm512_set1_pd(s)
#define TSUB(a, b) _mm512_sub_pd((a), (b))
#define TMUL(a, b) _mm512_mul_pd((a), (b))
#define TFMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define DLOADT(p) _mm512_loadu_pd(p)
#define DSTORET(p, v) _mm512_storeu_pd((p), (v))
#define NAME(op) f64_bn_##op##_avx512
#define TABLE f64_bn_avx512
#define TABLE_T f64_bn_kernels
#include "bn_kernel_tmpl.h"

#else
/* Not x86: the dispatcher never selects these; the generic ones stand in. */
const f32_bn_kernels f32_bn_avx512 = {0};
const f64_bn_kernels f64_bn_avx512 = {0};
#endif

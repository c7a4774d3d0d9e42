/* AVX-512 convolution micro-kernels, float64, 8 lanes: direct forward
 * (8 channels x 3 rows) and weight gradient (12 x 16 channels). */
#include "conv_direct.h"
#include "conv_wgrad.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T double
#define VEC __m512d
#define LANES 8
#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define VZERO() _mm512_setzero_pd()
#define VLOAD(m, p) _mm512_maskz_loadu_pd((__mmask8)(m), (p))
#define VGATHER(m, p, sw) _mm512_mask_i32gather_pd(_mm512_setzero_pd(), \
    (__mmask8)(m), _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, \
    6, 7), _mm256_set1_epi32((int)(sw))), (p), 8)
#define VBCAST(p) _mm512_set1_pd(*(p))
#define VFMA(a, b, c) _mm512_fmadd_pd((a), (b), (c))
#define VADD(a, b) _mm512_add_pd((a), (b))
#define VRELU(v) _mm512_max_pd(_mm512_setzero_pd(), (v))
#define VSTORE(p, m, v) _mm512_mask_storeu_pd((p), (__mmask8)(m), (v))
/* compressed in a register, then stored under a prefix mask */
#define VSTORE_PACKED(p, m, v) _mm512_mask_storeu_pd((p),                     \
    (__mmask8)((1u << __builtin_popcount(m)) - 1),                            \
    _mm512_maskz_compress_pd((__mmask8)(m), (v)))

#define KB 8
#define NV 3
#define KERNEL_NAME f64_conv_direct_8x3x8_avx512
#include "conv_direct_kernel_tmpl.h"
#undef KB

#define VLOADU(p) _mm512_loadu_pd(p)
#define VSTOREU(p, v) _mm512_storeu_pd((p), (v))
#define CB 12
#define KV 2
#define WGRAD_NAME f64_conv_wgrad_12x16_avx512
#include "conv_wgrad_kernel_tmpl.h"

#else
void f64_conv_direct_8x3x8_avx512(const fc_direct_tile *t, const double *x,
                                  const double *wp, const double *b, double *y)
{ (void)t; (void)x; (void)wp; (void)b; (void)y; }
void f64_conv_wgrad_12x16_avx512(const fc_wgrad_tile *t, const double *x,
                                 const double *g, double *gw)
{ (void)t; (void)x; (void)g; (void)gw; }
#endif

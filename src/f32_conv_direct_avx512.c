/* AVX-512 convolution micro-kernels, float32, 16 lanes: the forward
 * (direct) kernels, 8 channels x 3 rows (24 accumulators) for dense layers
 * and 1 channel x 8 rows for depthwise ones, and the weight-gradient
 * kernels; stride-2 rows load by permute. */
#include "conv_direct.h"
#include "conv_wgrad.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define T float
#define VEC __m512
#define LANES 16
#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define VZERO() _mm512_setzero_ps()
#define VLOAD(m, p) _mm512_maskz_loadu_ps((__mmask16)(m), (p))
#define VGATHER(m, p, sw) _mm512_mask_i32gather_ps(_mm512_setzero_ps(), \
    (__mmask16)(m), _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, \
    6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)(sw))), (p), 4)
/* Two loads and one two-source permute instead of a 16-element gather. */
#define VLOAD_S2(m, p) _mm512_permutex2var_ps(                                \
    _mm512_maskz_loadu_ps((__mmask16)(m), (p)),                               \
    _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30), \
    _mm512_maskz_loadu_ps((__mmask16)((m) >> 16), (p) + 16))
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
/* max(0, v) with v second: MAXPS returns the second operand for a NaN. */
#define VRELU(v) _mm512_max_ps(_mm512_setzero_ps(), (v))
#define VSTORE(p, m, v) _mm512_mask_storeu_ps((p), (__mmask16)(m), (v))

#define KB 8
#define NV 3
#define KERNEL_NAME f32_conv_direct_8x3x16_avx512
#include "conv_direct_kernel_tmpl.h"
#undef KB
#undef NV
#undef KERNEL_NAME

#define KB 1
#define NV 8
#define KERNEL_NAME f32_conv_direct_1x8x16_avx512
#include "conv_direct_kernel_tmpl.h"
#undef KB

/* Weight gradient: 12 input x 32 output channels (24 accumulators). */
#define VLOADU(p) _mm512_loadu_ps(p)
#define VSTOREU(p, v) _mm512_storeu_ps((p), (v))
#define CB 12
#define KV 2
#define WGRAD_NAME f32_conv_wgrad_12x32_avx512
#include "conv_wgrad_kernel_tmpl.h"

#else
/* Not x86: the dispatcher never selects these. */
void f32_conv_direct_8x3x16_avx512(const fc_direct_tile *t, const float *x,
                                   const float *wp, const float *b, float *y)
{ (void)t; (void)x; (void)wp; (void)b; (void)y; }
void f32_conv_direct_1x8x16_avx512(const fc_direct_tile *t, const float *x,
                                   const float *wp, const float *b, float *y)
{ (void)t; (void)x; (void)wp; (void)b; (void)y; }
void f32_conv_wgrad_12x32_avx512(const fc_wgrad_tile *t, const float *x,
                                 const float *g, float *gw)
{ (void)t; (void)x; (void)g; (void)gw; }
#endif

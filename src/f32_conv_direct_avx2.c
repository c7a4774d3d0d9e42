/* AVX2+FMA convolution micro-kernels, float32, 8 lanes: direct forward,
 * 4 channels x 3 rows (12 of the 16 registers) for dense layers and
 * 1 channel x 6 rows for depthwise ones, and weight gradient (6 x 16).  AVX2 has no mask
 * registers: the lane bits become a vector mask on the fly. */
#include "conv_direct.h"
#include "conv_wgrad.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))

TARGET static inline __m256i lane_mask(uint32_t bits)
{
    const __m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)bits), sel), sel);
}

/* the lanes in bits, side by side from p (AVX2 has no compress) */
TARGET static inline void store_packed(float *p, uint32_t bits, __m256 v)
{
    float lanes[8];
    int i = 0;
    _mm256_storeu_ps(lanes, v);
    for (int l = 0; l < 8; l++)
        if ((bits >> l) & 1)
            p[i++] = lanes[l];
}

TARGET static inline __m256 gather(uint32_t bits, const float *p, int64_t sw)
{
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32((int)sw));
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, idx,
                                    _mm256_castsi256_ps(lane_mask(bits)), 4);
}

#define T float
#define VEC __m256
#define LANES 8
#define VZERO() _mm256_setzero_ps()
#define VLOAD(m, p) _mm256_maskload_ps((p), lane_mask(m))
#define VGATHER(m, p, sw) gather((m), (p), (sw))
#define VBCAST(p) _mm256_broadcast_ss(p)
#define VFMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm256_add_ps((a), (b))
#define VRELU(v) _mm256_max_ps(_mm256_setzero_ps(), (v))
#define VSTORE(p, m, v) _mm256_maskstore_ps((p), lane_mask(m), (v))
#define VSTORE_PACKED(p, m, v) store_packed((p), (m), (v))

#define KB 4
#define NV 3
#define KERNEL_NAME f32_conv_direct_4x3x8_avx2
#include "conv_direct_kernel_tmpl.h"
#undef KB
#undef NV
#undef KERNEL_NAME

#define KB 1
#define NV 6
#define KERNEL_NAME f32_conv_direct_1x6x8_avx2
#include "conv_direct_kernel_tmpl.h"
#undef KB

/* Weight gradient: 6 input x 16 output channels (12 accumulators + 2 + 1). */
#define VLOADU(p) _mm256_loadu_ps(p)
#define VSTOREU(p, v) _mm256_storeu_ps((p), (v))
#define CB 6
#define KV 2
#define WGRAD_NAME f32_conv_wgrad_6x16_avx2
#include "conv_wgrad_kernel_tmpl.h"

#else
void f32_conv_direct_4x3x8_avx2(const fc_direct_tile *t, const float *x,
                                const float *wp, const float *b, float *y)
{ (void)t; (void)x; (void)wp; (void)b; (void)y; }
void f32_conv_direct_1x6x8_avx2(const fc_direct_tile *t, const float *x,
                                const float *wp, const float *b, float *y)
{ (void)t; (void)x; (void)wp; (void)b; (void)y; }
void f32_conv_wgrad_6x16_avx2(const fc_wgrad_tile *t, const float *x,
                              const float *g, float *gw)
{ (void)t; (void)x; (void)g; (void)gw; }
#endif

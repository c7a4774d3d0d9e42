/* AVX-512 convolution micro-kernels, float32, 16 lanes: the forward
 * (direct) kernels, 8 channels x 3 rows (24 accumulators) for dense layers
 * and 1 channel x 8 rows for depthwise ones, and the weight-gradient
 * kernels; the weight-packing transpose. */
#include "conv_direct.h"
#include "conv_wgrad.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "f32_transpose_avx512.h"

#define T float
#define VEC __m512
#define LANES 16
#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define VZERO() _mm512_setzero_ps()
#define VLOAD(m, p) _mm512_maskz_loadu_ps((__mmask16)(m), (p))
#define VGATHER(m, p, sw) _mm512_mask_i32gather_ps(_mm512_setzero_ps(), \
    (__mmask16)(m), _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, \
    6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32((int)(sw))), (p), 4)
#define VBCAST(p) _mm512_set1_ps(*(p))
#define VFMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define VADD(a, b) _mm512_add_ps((a), (b))
/* max(0, v) with v second: MAXPS returns the second operand for a NaN. */
#define VRELU(v) _mm512_max_ps(_mm512_setzero_ps(), (v))
#define VSTORE(p, m, v) _mm512_mask_storeu_ps((p), (__mmask16)(m), (v))
/* compressed in a register, then stored under a prefix mask */
#define VSTORE_PACKED(p, m, v) _mm512_mask_storeu_ps((p),                     \
    (__mmask16)((1u << __builtin_popcount(m)) - 1),                           \
    _mm512_maskz_compress_ps((__mmask16)(m), (v)))

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
#undef CB
#undef KV
#undef WGRAD_NAME

/* ... and 16 x 16 for layers of 16 channels (CIFAR ResNets), where the
 * 12 x 32 tile would compute a third of zeros. */
#define CB 16
#define KV 1
#define WGRAD_NAME f32_conv_wgrad_16x16_avx512
#include "conv_wgrad_kernel_tmpl.h"

/* Channels-last variant: 6 output pixels x 64 output channels (24
 * accumulators); per input channel and tap, 4 weight vectors and 6
 * broadcasts feed 24 FMAs.  A tile of fewer pixels (a row's or a call's
 * last) computes only those: each count compiles to its own body, NP its
 * constant (16 tiles of Winograd ran as 6 + 6 + 6 computed pixels). */
TARGET static inline __attribute__((always_inline)) void
nhwc_6x64(const fc_nhwc_tile *t, const float *x, const float *wp, const float *bias,
          float *out, const int NP)
{
    __m512 acc[6][4];
#pragma GCC unroll 6
    for (int j = 0; j < NP; j++)
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            acc[j][v] = t->accumulate ? _mm512_loadu_ps(out + j * t->ldo + 16 * v)
                                      : _mm512_setzero_ps();

    for (int64_t tap = 0; tap < t->taps; tap++) {
        const float *px[6];
        const float *w = wp + tap * t->wtap;
#pragma GCC unroll 6
        for (int j = 0; j < NP; j++)
            px[j] = x + t->pix[j] + t->tapoff[tap];
        for (int64_t c = 0; c < t->cb; c++) {
            __m512 wv[4];
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++)
                wv[v] = _mm512_loadu_ps(w + c * t->ws + 16 * v);
#pragma GCC unroll 6
            for (int j = 0; j < NP; j++) {
                const __m512 b = _mm512_set1_ps(px[j][c * t->cs]);
#pragma GCC unroll 4
                for (int v = 0; v < 4; v++)
                    acc[j][v] = _mm512_fmadd_ps(b, wv[v], acc[j][v]);
            }
        }
    }

    if (t->last) {
        __m512 b[4];
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            b[v] = bias ? _mm512_loadu_ps(bias + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 6
        for (int j = 0; j < NP; j++)
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) {
                acc[j][v] = _mm512_add_ps(acc[j][v], b[v]);
                if (t->relu)   /* max(0, v) with v second: keeps a NaN */
                    acc[j][v] = _mm512_max_ps(_mm512_setzero_ps(), acc[j][v]);
            }
    }
#pragma GCC unroll 6
    for (int j = 0; j < NP; j++)
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++)
            _mm512_storeu_ps(out + j * t->ldo + 16 * v, acc[j][v]);
}

TARGET void f32_conv_direct_nhwc_6x64_avx512(const fc_nhwc_tile *t,
                                             const float *x, const float *wp,
                                             const float *bias, float *out)
{
    switch (t->np) {
    case 6: nhwc_6x64(t, x, wp, bias, out, 6); break;
    case 5: nhwc_6x64(t, x, wp, bias, out, 5); break;
    case 4: nhwc_6x64(t, x, wp, bias, out, 4); break;
    case 3: nhwc_6x64(t, x, wp, bias, out, 3); break;
    case 2: nhwc_6x64(t, x, wp, bias, out, 2); break;
    default: nhwc_6x64(t, x, wp, bias, out, 1); break;
    }
}

/* Weight packing: a 16 x ncols block of the weight (16 output channels,
 * rows lds apart) transposed in registers, so that each column's 16 values
 * lie together: rows 0-7 at dst[j], rows 8-15 at dst[j] + hi.  With scale,
 * each value is multiplied by its row's factor (float64). */
TARGET void f32_pack_16x16_avx512(const float *src, int64_t lds, int ncols,
                                  const double *scale, int64_t hi,
                                  float *const *dst)
{
    const __mmask16 m = (__mmask16)((1u << ncols) - 1);
    __m512 r[16], col[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
        r[i] = _mm512_maskz_loadu_ps(m, src + i * lds);
    f32_transpose_16x16_avx512(r, col);
    /* The factors as two floats (hi + lo): w * hi + w * lo in one FMA is
     * w * scale to within an ulp, where converting each value to double and
     * back costs six instructions per column (a third of a 9 MB packing
     * pass).  Factors that are not finite floats (inf, NaN, past FLT_MAX)
     * take the exact double product. */
    __m512d d0 = _mm512_set1_pd(1.0), d1 = _mm512_set1_pd(1.0);
    __m512 s_hi = _mm512_set1_ps(1.0f), s_lo = _mm512_setzero_ps();
    int exact = 0;
    if (scale) {
        d0 = _mm512_loadu_pd(scale);
        d1 = _mm512_loadu_pd(scale + 8);
        const __m256 h0 = _mm512_cvtpd_ps(d0), h1 = _mm512_cvtpd_ps(d1);
        s_hi = _mm512_insertf32x8(_mm512_castps256_ps512(h0), h1, 1);
        s_lo = _mm512_insertf32x8(
            _mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_sub_pd(d0, _mm512_cvtps_pd(h0)))),
            _mm512_cvtpd_ps(_mm512_sub_pd(d1, _mm512_cvtps_pd(h1))), 1);
        exact = _mm512_fpclass_ps_mask(s_lo, 0x99) != 0;   /* NaN or inf */
    }
    for (int j = 0; j < ncols; j++) {
        __m256 lo, up;
        if (exact) {
            lo = _mm512_cvtpd_ps(_mm512_mul_pd(
                _mm512_cvtps_pd(_mm512_castps512_ps256(col[j])), d0));
            up = _mm512_cvtpd_ps(_mm512_mul_pd(
                _mm512_cvtps_pd(_mm512_extractf32x8_ps(col[j], 1)), d1));
        } else {
            const __m512 v = scale ? _mm512_fmadd_ps(col[j], s_hi, _mm512_mul_ps(col[j], s_lo))
                                   : col[j];
            if (hi == 8) {   /* the halves adjoin: one store */
                _mm512_storeu_ps(dst[j], v);
                continue;
            }
            lo = _mm512_castps512_ps256(v);
            up = _mm512_extractf32x8_ps(v, 1);
        }
        _mm256_storeu_ps(dst[j], lo);
        _mm256_storeu_ps(dst[j] + hi, up);
    }
}

#else
/* Not x86: the dispatcher never selects these. */
void f32_conv_direct_nhwc_6x64_avx512(const fc_nhwc_tile *t, const float *x,
                                      const float *wp, const float *bias, float *out)
{ (void)t; (void)x; (void)wp; (void)bias; (void)out; }
void f32_conv_direct_8x3x16_avx512(const fc_direct_tile *t, const float *x,
                                   const float *wp, const float *b, float *y)
{ (void)t; (void)x; (void)wp; (void)b; (void)y; }
void f32_conv_direct_1x8x16_avx512(const fc_direct_tile *t, const float *x,
                                   const float *wp, const float *b, float *y)
{ (void)t; (void)x; (void)wp; (void)b; (void)y; }
void f32_conv_wgrad_12x32_avx512(const fc_wgrad_tile *t, const float *x,
                                 const float *g, float *gw)
{ (void)t; (void)x; (void)g; (void)gw; }
void f32_conv_wgrad_16x16_avx512(const fc_wgrad_tile *t, const float *x,
                                 const float *g, float *gw)
{ (void)t; (void)x; (void)g; (void)gw; }
void f32_pack_16x16_avx512(const float *src, int64_t lds, int ncols,
                           const double *scale, int64_t hi, float *const *dst)
{ (void)src; (void)lds; (void)ncols; (void)scale; (void)hi; (void)dst; }
#endif

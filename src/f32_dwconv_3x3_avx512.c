/* AVX-512 depthwise 3x3 kernels, float32, stride 1 and row dilation 1:
 * whole planes, 16 output columns per vector.
 *
 * Forward: four output rows at a time read six input rows; each loaded
 * vector (row i, column shift s) feeds every output row it reaches, so 18
 * loads serve 36 FMAs, with the nine weights held in registers for the
 * plane.  Weight gradient: one sweep over the plane with the nine tap sums
 * in registers.  Column masks cover the padding and the row's end. */
#include "conv_dw.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))

/* Lanes of column tile ct whose input column under tap column s exists. */
static inline uint32_t column_mask(const fc_dw_plane *p, int64_t ct, int s)
{
    uint32_t m = 0;
    for (int l = 0; l < 16; l++) {
        const int64_t ow = ct * 16 + l, iw = ow - p->pl + s * p->dw;
        if (ow < p->Q && iw >= 0 && iw < p->W)
            m |= (uint32_t)1 << l;
    }
    return m;
}

TARGET void f32_dwconv_3x3_avx512(const fc_dw_plane *p, const float *x,
                                  const float *w, float bias, float *y)
{
    const int64_t nct = (p->Q + 15) / 16;
    __m512 wt[9];
    for (int t = 0; t < 9; t++)
        wt[t] = _mm512_set1_ps(w[t]);
    for (int64_t ct = 0; ct < nct; ct++) {
        const __mmask16 m0 = (__mmask16)column_mask(p, ct, 0);
        const __mmask16 m1 = (__mmask16)column_mask(p, ct, 1);
        const __mmask16 m2 = (__mmask16)column_mask(p, ct, 2);
        __mmask16 store = 0;
        for (int l = 0; l < 16 && ct * 16 + l < p->Q; l++)
            store |= (__mmask16)(1u << l);
        const int64_t iw0 = ct * 16 - p->pl;
        for (int64_t oh0 = 0; oh0 < p->P; oh0 += 4) {
            __m512 acc[4];
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                acc[j] = _mm512_set1_ps(bias);
#pragma GCC unroll 6
            for (int i = 0; i < 6; i++) {
                const int64_t ih = oh0 - p->pt + i;
                if (ih < 0 || ih >= p->H)
                    continue;
                const float *row = x + ih * p->W + iw0;
                const __m512 v0 = _mm512_maskz_loadu_ps(m0, row);
                const __m512 v1 = _mm512_maskz_loadu_ps(m1, row + p->dw);
                const __m512 v2 = _mm512_maskz_loadu_ps(m2, row + 2 * p->dw);
#pragma GCC unroll 4
                for (int j = 0; j < 4; j++) {
                    const int r = i - j;   /* kernel row linking input i, output j */
                    if (r < 0 || r > 2)
                        continue;
                    acc[j] = _mm512_fmadd_ps(wt[3 * r], v0, acc[j]);
                    acc[j] = _mm512_fmadd_ps(wt[3 * r + 1], v1, acc[j]);
                    acc[j] = _mm512_fmadd_ps(wt[3 * r + 2], v2, acc[j]);
                }
            }
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++) {
                if (oh0 + j >= p->P)
                    break;
                __m512 v = acc[j];
                if (p->relu)   /* max with v second: a NaN stays */
                    v = _mm512_max_ps(_mm512_setzero_ps(), v);
                _mm512_mask_storeu_ps(y + (oh0 + j) * p->Q + ct * 16, store, v);
            }
        }
    }
}

TARGET void f32_dwconv_wgrad_3x3_avx512(const fc_dw_plane *p, const float *x,
                                        const float *gy, float *gw)
{
    const int64_t nct = (p->Q + 15) / 16;
    __m512 acc[9];
    for (int t = 0; t < 9; t++)
        acc[t] = _mm512_setzero_ps();
    for (int64_t ct = 0; ct < nct; ct++) {
        const __mmask16 m0 = (__mmask16)column_mask(p, ct, 0);
        const __mmask16 m1 = (__mmask16)column_mask(p, ct, 1);
        const __mmask16 m2 = (__mmask16)column_mask(p, ct, 2);
        __mmask16 gm = 0;
        for (int l = 0; l < 16 && ct * 16 + l < p->Q; l++)
            gm |= (__mmask16)(1u << l);
        const int64_t iw0 = ct * 16 - p->pl;
        for (int64_t oh = 0; oh < p->P; oh++) {
            const __m512 g = _mm512_maskz_loadu_ps(gm, gy + oh * p->Q + ct * 16);
#pragma GCC unroll 3
            for (int r = 0; r < 3; r++) {
                const int64_t ih = oh - p->pt + r * p->dh;
                if (ih < 0 || ih >= p->H)
                    continue;
                const float *row = x + ih * p->W + iw0;
                acc[3 * r] = _mm512_fmadd_ps(g, _mm512_maskz_loadu_ps(m0, row), acc[3 * r]);
                acc[3 * r + 1] = _mm512_fmadd_ps(g, _mm512_maskz_loadu_ps(m1, row + p->dw), acc[3 * r + 1]);
                acc[3 * r + 2] = _mm512_fmadd_ps(g, _mm512_maskz_loadu_ps(m2, row + 2 * p->dw), acc[3 * r + 2]);
            }
        }
    }
    for (int t = 0; t < 9; t++)
        gw[t] += _mm512_reduce_add_ps(acc[t]);
}

#else
void f32_dwconv_3x3_avx512(const fc_dw_plane *p, const float *x,
                           const float *w, float bias, float *y)
{ (void)p; (void)x; (void)w; (void)bias; (void)y; }
void f32_dwconv_wgrad_3x3_avx512(const fc_dw_plane *p, const float *x,
                                 const float *gy, float *gw)
{ (void)p; (void)x; (void)gy; (void)gw; }
#endif

/* AVX-512 kernels of the streamed convolution, float32 (conv_streamed.h):
 * 8 weight rows broadcast against a panel of 48 pixels (24 accumulators),
 * and dot products along q for the pixels left over. */
#include "conv_streamed.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define INLINE static inline __attribute__((always_inline))
#define MR FC_STREAM_MR
#define NR FC_STREAM_NR

/* Rows past nk repeat the last one (read, never stored), so that the loop
 * has no row test. */
INLINE void row_pointers(const float *a, int64_t lda, int nk, const float *ar[MR])
{
    for (int i = 0; i < MR; i++)
        ar[i] = a + (i < nk ? i : nk - 1) * lda;
}

/* max(v, 0) with NaN kept (MAXPS returns its second operand when either
 * is NaN), as torch.relu */
TARGET INLINE __m512 finish(__m512 v, const fc_stream_epilogue *ep, int i)
{
    if (ep->scale)
        v = _mm512_mul_ps(v, _mm512_set1_ps(ep->scale[i]));
    if (ep->bias)
        v = _mm512_add_ps(v, _mm512_set1_ps(ep->bias[i]));
    return ep->relu ? _mm512_max_ps(_mm512_setzero_ps(), v) : v;
}

TARGET INLINE void panel(const int NV, int64_t qn, const float *a, int64_t lda, int nk,
                         const float *b, uint32_t last, float *c, int64_t ldc,
                         int add, const fc_stream_epilogue *ep)
{
    __m512 acc[MR][3];
    const float *ar[MR];
    row_pointers(a, lda, nk, ar);
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NV; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (int64_t q = 0; q < qn; q++, b += NR) {
        __m512 bv[3];
        for (int j = 0; j < NV; j++)
            bv[j] = _mm512_loadu_ps(b + 16 * j);
        for (int i = 0; i < MR; i++) {
            const __m512 t = _mm512_set1_ps(ar[i][q]);
            for (int j = 0; j < NV; j++)
                acc[i][j] = _mm512_fmadd_ps(t, bv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < MR && i < nk; i++)
        for (int j = 0; j < NV; j++) {
            const __mmask16 m = (__mmask16)(j == NV - 1 ? last : 0xFFFFu);
            float *cij = c + i * ldc + 16 * j;
            __m512 v = acc[i][j];
            if (add)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, cij));
            if (ep)
                v = finish(v, ep, i);
            _mm512_mask_storeu_ps(cij, m, v);
        }
}

TARGET void f32_streamed_panel_8x48_avx512(int64_t qn, const float *a, int64_t lda,
                                           int nk, const float *b, int nv, uint32_t last,
                                           float *c, int64_t ldc, int add,
                                           const fc_stream_epilogue *ep)
{
    if (nv == 3)
        panel(3, qn, a, lda, nk, b, last, c, ldc, add, ep);
    else if (nv == 2)
        panel(2, qn, a, lda, nk, b, last, c, ldc, add, ep);
    else
        panel(1, qn, a, lda, nk, b, last, c, ldc, add, ep);
}

/* ND columns at once: each weight vector loaded once for all of them. */
TARGET INLINE void dots(const int ND, int64_t qn, const float *ar[MR], int nk,
                        const float *bt, float *c, int64_t ldc, int add,
                        const fc_stream_epilogue *ep)
{
    __m512 acc[MR][3];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < ND; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (int64_t q = 0; q < qn; q += 16) {
        const __mmask16 m = (__mmask16)(qn - q >= 16 ? 0xFFFFu : (1u << (qn - q)) - 1);
        __m512 bv[3];
        for (int j = 0; j < ND; j++)
            bv[j] = _mm512_maskz_loadu_ps(m, bt + j * qn + q);
        for (int i = 0; i < MR; i++) {
            const __m512 t = _mm512_maskz_loadu_ps(m, ar[i] + q);
            for (int j = 0; j < ND; j++)
                acc[i][j] = _mm512_fmadd_ps(t, bv[j], acc[i][j]);
        }
    }
    for (int i = 0; i < MR && i < nk; i++)
        for (int j = 0; j < ND; j++) {
            float v = _mm512_reduce_add_ps(acc[i][j]);
            if (add)
                v += c[i * ldc + j];
            if (ep) {
                if (ep->scale)
                    v *= ep->scale[i];
                if (ep->bias)
                    v += ep->bias[i];
                if (ep->relu && v < 0)   /* NaN stays */
                    v = 0;
            }
            c[i * ldc + j] = v;
        }
}

TARGET void f32_streamed_dots_8_avx512(int64_t qn, const float *a, int64_t lda, int nk,
                                       const float *bt, int nd, float *c, int64_t ldc,
                                       int add, const fc_stream_epilogue *ep)
{
    const float *ar[MR];
    row_pointers(a, lda, nk, ar);
    for (int j = 0; j < nd; j += 3) {
        const int n = nd - j < 3 ? nd - j : 3;
        if (n == 3)
            dots(3, qn, ar, nk, bt + j * qn, c + j, ldc, add, ep);
        else if (n == 2)
            dots(2, qn, ar, nk, bt + j * qn, c + j, ldc, add, ep);
        else
            dots(1, qn, ar, nk, bt + j * qn, c + j, ldc, add, ep);
    }
}

/* Up to 16 pixels of an output row at a time, by masked loads (lanes
 * outside the input row read nothing and give the padding's zero), stored
 * straight into their panel: a run crossing a panel's end is loaded again
 * from where the next panel begins, so no store is read back at once. */
TARGET void f32_streamed_gather_s1_avx512(const fc_stream_tap *tp, const float *xc,
                                          const fc_stream_split *sp, float *blk,
                                          int64_t qn, int64_t qq)
{
    const int64_t end = sp->np * NR;   /* pixels past it are dot products */
    for (int64_t oh = 0; oh < tp->P; oh++) {
        const int64_t ih = oh * tp->sh + tp->ih0;
        const int inside = ih >= 0 && ih < tp->H;
        const float *xr = inside ? xc + ih * tp->W + tp->col0 : xc;   /* unread if not */
        for (int64_t ow = 0; ow < tp->Q; ow += 16) {
            const int64_t p = oh * tp->Q + ow;
            if (p >= end)
                break;
            const int64_t n = tp->Q - ow < 16 ? tp->Q - ow : 16;
            const int64_t a = tp->lo > ow ? tp->lo - ow : 0;
            const int64_t b = tp->hi - ow < n ? tp->hi - ow : n;
            const uint32_t load = inside && b > a ? ((1u << b) - 1) & ~((1u << a) - 1) : 0;
            const int64_t j = p / NR, l = p % NR;
            const int64_t fit = NR - l < n ? NR - l : n;
            _mm512_mask_storeu_ps(blk + (j * qn + qq) * NR + l, (__mmask16)((1u << fit) - 1),
                                  _mm512_maskz_loadu_ps((__mmask16)load, xr + ow));
            if (fit < n && p + fit < end)
                _mm512_mask_storeu_ps(blk + ((j + 1) * qn + qq) * NR,
                                      (__mmask16)((1u << (n - fit)) - 1),
                                      _mm512_maskz_loadu_ps((__mmask16)(load >> fit),
                                                            xr + ow + fit));
        }
    }
    if (end > sp->PQ) {   /* the last panel's lanes past the image */
        float *dst = blk + ((sp->np - 1) * qn + qq) * NR;
        for (int64_t l = sp->PQ - end + NR; l < NR; l++)
            dst[l] = 0.0f;
    }
    for (int64_t d = 0; d < sp->nd; d++) {
        const int64_t ih = sp->dot_oh[d] * tp->sh + tp->ih0, ow = sp->dot_ow[d];
        blk[end * qn + d * qn + qq] = ih >= 0 && ih < tp->H && ow >= tp->lo && ow < tp->hi
            ? xc[ih * tp->W + tp->col0 + ow] : 0.0f;
    }
}

#else
/* Not x86: the dispatcher never selects these. */
void f32_streamed_panel_8x48_avx512(int64_t qn, const float *a, int64_t lda,
                                    int nk, const float *b, int nv, uint32_t last,
                                    float *c, int64_t ldc, int add,
                                    const fc_stream_epilogue *ep)
{ (void)qn; (void)a; (void)lda; (void)nk; (void)b; (void)nv; (void)last; (void)c;
  (void)ldc; (void)add; (void)ep; }
void f32_streamed_gather_s1_avx512(const fc_stream_tap *tp, const float *xc,
                                   const fc_stream_split *sp, float *blk,
                                   int64_t qn, int64_t qq)
{ (void)tp; (void)xc; (void)sp; (void)blk; (void)qn; (void)qq; }
void f32_streamed_dots_8_avx512(int64_t qn, const float *a, int64_t lda, int nk,
                                const float *bt, int nd, float *c, int64_t ldc,
                                int add, const fc_stream_epilogue *ep)
{ (void)qn; (void)a; (void)lda; (void)nk; (void)bt; (void)nd; (void)c; (void)ldc;
  (void)add; (void)ep; }
#endif

/* AVX-512 kernels of the streamed convolution, float32 (conv_streamed.h):
 * 8 weight rows broadcast against a panel of 48 pixels (24 accumulators),
 * dot products along q for the pixels left over, and the gather of B
 * (column stride 1 or 2). */
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

/* ND columns of NROWS rows from row i0, each weight vector loaded once for
 * all columns: eight rows when ND <= 2 (eight independent sums hide the
 * FMA latency), four when ND is 3 (the accumulators of eight rows did not
 * stay in registers).  The vector sums wait in part until the last block
 * adds them up: one horizontal sum per output, not one per block. */
TARGET INLINE void dots(const int ND, const int NROWS, int64_t qn, const float *const *ar,
                        int nk, const float *bt, float *part, int add, float *c, int64_t ldc,
                        const fc_stream_epilogue *ep, int i0)
{
    /* Every loop over acc is unrolled whole, so that it lives in registers
     * (else GCC keeps it on the stack and stores each sum at each step). */
    __m512 acc[MR][3];
#pragma GCC unroll 24
    for (int i = 0; i < NROWS; i++)
#pragma GCC unroll 3
        for (int j = 0; j < ND; j++)
            acc[i][j] = add ? _mm512_loadu_ps(part + ((i0 + i) * FC_STREAM_MAXDOTS + j) * 16)
                            : _mm512_setzero_ps();
    for (int64_t q = 0; q < qn; q += 16) {
        const __mmask16 m = (__mmask16)(qn - q >= 16 ? 0xFFFFu : (1u << (qn - q)) - 1);
        __m512 bv[3];
#pragma GCC unroll 3
        for (int j = 0; j < ND; j++)
            bv[j] = _mm512_maskz_loadu_ps(m, bt + j * qn + q);
#pragma GCC unroll 8
        for (int i = 0; i < NROWS; i++) {
            const __m512 t = _mm512_maskz_loadu_ps(m, ar[i0 + i] + q);
#pragma GCC unroll 3
            for (int j = 0; j < ND; j++)
                acc[i][j] = _mm512_fmadd_ps(t, bv[j], acc[i][j]);
        }
    }
    if (!ep) {
#pragma GCC unroll 8
        for (int i = 0; i < NROWS; i++)
#pragma GCC unroll 3
            for (int j = 0; j < ND; j++)
                _mm512_storeu_ps(part + ((i0 + i) * FC_STREAM_MAXDOTS + j) * 16, acc[i][j]);
        return;
    }
    float sum[MR][3];
#pragma GCC unroll 8
    for (int i = 0; i < NROWS; i++)
#pragma GCC unroll 3
        for (int j = 0; j < ND; j++)
            sum[i][j] = _mm512_reduce_add_ps(acc[i][j]);
    for (int i = 0; i < NROWS && i0 + i < nk; i++)
        for (int j = 0; j < ND; j++) {
            /* multiply, then add, each rounded as in the panels' epilogue
             * (scalar intrinsics: the compiler does not fuse them) */
            const int r = i0 + i;
            __m128 v = _mm_set_ss(sum[i][j]);
            if (ep->scale)
                v = _mm_mul_ss(v, _mm_set_ss(ep->scale[r]));
            if (ep->bias)
                v = _mm_add_ss(v, _mm_set_ss(ep->bias[r]));
            float f = _mm_cvtss_f32(v);
            if (ep->relu && f < 0)   /* NaN stays */
                f = 0;
            c[r * ldc + j] = f;
        }
}

TARGET void f32_streamed_dots_8_avx512(int64_t qn, const float *a, int64_t lda, int nk,
                                       const float *bt, int nd, float *part, int add,
                                       float *c, int64_t ldc, const fc_stream_epilogue *ep)
{
    const float *ar[MR];
    row_pointers(a, lda, nk, ar);
    for (int j = 0; j < nd; j += 3) {
        const int n = nd - j < 3 ? nd - j : 3;
        const float *b = bt + j * qn;
        float *pj = part + j * 16;
        if (n == 3) {
            dots(3, MR / 2, qn, ar, nk, b, pj, add, c + j, ldc, ep, 0);
            dots(3, MR / 2, qn, ar, nk, b, pj, add, c + j, ldc, ep, MR / 2);
        } else if (n == 2) {
            dots(2, MR, qn, ar, nk, b, pj, add, c + j, ldc, ep, 0);
        } else {
            dots(1, MR, qn, ar, nk, b, pj, add, c + j, ldc, ep, 0);
        }
    }
}

/* A chunk's 16 lanes: its window of 16 sw floats, every sw-th kept (the
 * even elements of two vectors, by one permute, when sw is 2). */
TARGET INLINE __m512 chunk_lanes(const fc_stream_chunk *c, const int sw, const float *xc)
{
    const __m512 lo = _mm512_maskz_loadu_ps((__mmask16)c->load, xc + c->src);
    if (sw == 1)
        return lo;
    const __m512 hi = _mm512_maskz_loadu_ps((__mmask16)(c->load >> 16), xc + c->src + 16);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14,
                                           16, 18, 20, 22, 24, 26, 28, 30);
    return _mm512_permutex2var_ps(lo, even, hi);
}

TARGET INLINE void gather(const fc_stream_chunk *ch, int64_t nch, const int64_t *dots,
                          const fc_stream_split *sp, const int sw, const float *xc,
                          float *blk, int64_t qn, int64_t qq)
{
    float *row = blk + qq * NR, *dot = blk + sp->np * NR * qn + qq;
    for (int64_t i = 0; i < nch; i++)
        _mm512_mask_storeu_ps(row + ch[i].j * NR * qn + ch[i].l, (__mmask16)ch[i].store,
                              chunk_lanes(ch + i, sw, xc));
    for (int64_t d = 0; d < sp->nd; d++)
        dot[d * qn] = dots[d] >= 0 ? xc[dots[d]] : 0.0f;
}

TARGET void f32_streamed_gather_avx512(const fc_stream_chunk *ch, int64_t nch,
                                       const int64_t *dots, const fc_stream_split *sp,
                                       int sw, const float *xc, float *blk, int64_t qn,
                                       int64_t qq)
{
    if (sw == 1)
        gather(ch, nch, dots, sp, 1, xc, blk, qn, qq);
    else
        gather(ch, nch, dots, sp, 2, xc, blk, qn, qq);
}

#else
/* Not x86: the dispatcher never selects these. */
void f32_streamed_panel_8x48_avx512(int64_t qn, const float *a, int64_t lda,
                                    int nk, const float *b, int nv, uint32_t last,
                                    float *c, int64_t ldc, int add,
                                    const fc_stream_epilogue *ep)
{ (void)qn; (void)a; (void)lda; (void)nk; (void)b; (void)nv; (void)last; (void)c;
  (void)ldc; (void)add; (void)ep; }
void f32_streamed_gather_avx512(const fc_stream_chunk *ch, int64_t nch,
                                const int64_t *dots, const fc_stream_split *sp, int sw,
                                const float *xc, float *blk, int64_t qn, int64_t qq)
{ (void)ch; (void)nch; (void)dots; (void)sp; (void)sw; (void)xc; (void)blk; (void)qn;
  (void)qq; }
void f32_streamed_dots_8_avx512(int64_t qn, const float *a, int64_t lda, int nk,
                                const float *bt, int nd, float *part, int add, float *c,
                                int64_t ldc, const fc_stream_epilogue *ep)
{ (void)qn; (void)a; (void)lda; (void)nk; (void)bt; (void)nd; (void)part; (void)add;
  (void)c; (void)ldc; (void)ep; }
#endif

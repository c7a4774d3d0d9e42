/* The streamed convolution, float32 with AVX-512 (conv_streamed.h): dense
 * layers (groups 1) of any kernel size, stride, padding and dilation.
 *
 * Two phases.  All threads gather B, the im2col matrix of every image, in
 * blocks of FC_STREAM_QB rows q and, within a block, one panel of 48
 * pixels after another (then the leftover pixels as columns), so that a
 * kernel call reads its panel contiguously.  Then each thread takes a
 * fixed range of blocks of 8 output channels and walks B block by block:
 * the 8 weight rows' slice of a block (16 KB) is read from the caller's
 * array once and stays in L1 while every panel of every image passes
 * under it; the thread's outputs (its channels x all pixels) stay in L2
 * across blocks, accumulated in y, and the last block adds the epilogue.
 * Each output is summed in one order whatever the thread count.
 *
 * The batch norm's factor (wscale) multiplies the sum, as the eager
 * conv -> batch_norm does, instead of being folded into the weights:
 * folding would be the per-call pass over the weights that this
 * algorithm exists to avoid.  Factors that are not finite floats send the
 * call to the direct algorithm, whose exact folding handles them. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef FASTCONV_OPENMP
#include <omp.h>
#endif

#include "conv_internal.h"
#include "conv_streamed.h"

typedef struct {
    fc_stream_panel_f32_fn panel;
    fc_stream_dots_f32_fn dots;
    fc_stream_gather_f32_fn gather;
} stream_kernels;

static int select_kernels(stream_kernels *k)
{
    if (fc_isa_active() != FC_ISA_AVX512)
        return 0;
    k->panel = f32_streamed_panel_8x48_avx512;
    k->dots = f32_streamed_dots_8_avx512;
    k->gather = f32_streamed_gather_avx512;
    return 1;
}

static fc_stream_split split_of(int64_t PQ)
{
    fc_stream_split sp;
    const int64_t rem = PQ % FC_STREAM_NR;
    sp.PQ = PQ;
    sp.np = PQ / FC_STREAM_NR;
    sp.nd = rem;
    sp.nv = 3;
    sp.last = 0xFFFFu;
    if (rem > FC_STREAM_MAXDOTS) {
        const int64_t nv = (rem + 15) / 16, lanes = rem - 16 * (nv - 1);
        sp.np++;
        sp.nd = 0;
        sp.nv = nv;
        sp.last = lanes == 16 ? 0xFFFFu : (1u << lanes) - 1;
    }
    sp.img = sp.np * FC_STREAM_NR + sp.nd;
    return sp;
}

/* Where one tap (r, t) reads a channel plane: output pixel (oh, ow) reads
 * row oh sh + ih0 (outside 0 <= ih < H: padding), column col0 + ow sw
 * (lo <= ow < hi read inside the row). */
typedef struct {
    int64_t H, W, P, Q;
    int64_t sh, ih0;
    int64_t col0, lo, hi;
} fc_stream_tap;

static fc_stream_tap tap_of(const fc_conv_shape *s, int64_t r, int64_t t)
{
    fc_stream_tap tp;
    tp.H = s->H; tp.W = s->W; tp.P = s->P; tp.Q = s->Q;
    tp.sh = s->sh;
    tp.ih0 = r * s->dh - s->pt;
    tp.col0 = t * s->dw - s->pl;
    /* output columns lo <= ow < hi read inside the row: 0 <= col0 + ow sw < W */
    tp.lo = tp.col0 >= 0 ? 0 : (-tp.col0 + s->sw - 1) / s->sw;
    tp.hi = s->W - tp.col0 <= 0 ? 0 : (s->W - tp.col0 + s->sw - 1) / s->sw;
    if (tp.hi > s->Q)
        tp.hi = s->Q;
    if (tp.lo > tp.hi)
        tp.lo = tp.hi;
    return tp;
}

/* Chunks that one row of pixels can make: each run of 16 splits at most
 * once at a panel's end, and the last panel's tail takes three more. */
static int64_t max_chunks(const fc_conv_shape *s)
{
    return 2 * s->P * ((s->Q + 15) / 16) + 3;
}

/* The load mask of output lanes a <= l < b of a chunk read with column
 * stride sw (1 or 2): window elements sw l (the kernel keeps the even
 * elements of a 32-float window when sw is 2). */
static uint32_t window_mask(int64_t a, int64_t b, int64_t sw)
{
    if (b <= a)
        return 0;
    const uint64_t span = ((1ull << (sw * b)) - 1) & ~((1ull << (sw * a)) - 1);
    return (uint32_t)(sw == 1 ? span : span & 0x55555555u);
}

/* The tap's chunks (column stride sw of 1 or 2; returns how many) and the
 * plane offsets of its dot pixels. */
static int64_t chunks_of(const fc_stream_tap *tp, const fc_stream_split *sp, int64_t sw,
                         fc_stream_chunk *ch, int64_t *dots)
{
    const int64_t end = sp->np * FC_STREAM_NR;   /* pixels past it are dots */
    int64_t n = 0;
    for (int64_t oh = 0; oh < tp->P; oh++) {
        const int64_t ih = oh * tp->sh + tp->ih0;
        const int inside = ih >= 0 && ih < tp->H;
        for (int64_t ow = 0; ow < tp->Q; ow += 16) {
            const int64_t p = oh * tp->Q + ow;
            if (p >= end)
                break;
            const int64_t len = tp->Q - ow < 16 ? tp->Q - ow : 16;
            /* lanes a <= l < b read inside the row */
            int64_t a = tp->lo > ow ? tp->lo - ow : 0;
            int64_t b = tp->hi - ow < len ? tp->hi - ow : len;
            if (!inside || b < a)
                a = b = 0;
            const int64_t l = p % FC_STREAM_NR;
            const int64_t fit = FC_STREAM_NR - l < len ? FC_STREAM_NR - l : len;
            const int64_t src = inside ? ih * tp->W + tp->col0 + ow * sw : 0;
            ch[n].src = src;
            ch[n].j = p / FC_STREAM_NR;
            ch[n].l = l;
            ch[n].store = (1u << fit) - 1;
            ch[n].load = window_mask(a, b < fit ? b : fit, sw);
            n++;
            if (fit < len && p + fit < end) {   /* on into the next panel */
                ch[n].src = src + fit * sw;
                ch[n].j = p / FC_STREAM_NR + 1;
                ch[n].l = 0;
                ch[n].store = (1u << (len - fit)) - 1;
                ch[n].load = window_mask(a > fit ? a - fit : 0, b > fit ? b - fit : 0, sw);
                n++;
            }
        }
    }
    for (int64_t l = sp->PQ - (end - FC_STREAM_NR); end > sp->PQ && l < FC_STREAM_NR; l += 16) {
        const int64_t len = FC_STREAM_NR - l < 16 ? FC_STREAM_NR - l : 16;
        ch[n].src = 0;
        ch[n].j = sp->np - 1;
        ch[n].l = l;
        ch[n].store = (1u << len) - 1;
        ch[n].load = 0;
        n++;
    }
    for (int64_t d = 0; d < sp->nd; d++) {
        const int64_t oh = (end + d) / tp->Q, ow = (end + d) % tp->Q;
        const int64_t ih = oh * tp->sh + tp->ih0;
        dots[d] = ih >= 0 && ih < tp->H && ow >= tp->lo && ow < tp->hi
            ? ih * tp->W + tp->col0 + ow * sw : -1;
    }
    return n;
}

/* The generic gather (column stride 3 or more): the input value under each
 * output pixel for the tap, zero in the padding, into the panels and dot
 * columns. */
static void gather_strided(const fc_stream_tap *tp, int64_t sw, const float *xc,
                           const fc_stream_split *sp, float *blk, int64_t qn, int64_t qq)
{
    const int64_t end = sp->np * FC_STREAM_NR;
    for (int64_t p = 0; p < end + sp->nd; p++) {
        const int64_t oh = p / tp->Q, ow = p % tp->Q, ih = oh * tp->sh + tp->ih0;
        const float v = p < sp->PQ && ih >= 0 && ih < tp->H && ow >= tp->lo && ow < tp->hi
            ? xc[ih * tp->W + tp->col0 + ow * sw] : 0.0f;
        if (p < end)
            blk[(p / FC_STREAM_NR * qn + qq) * FC_STREAM_NR + p % FC_STREAM_NR] = v;
        else
            blk[end * qn + (p - end) * qn + qq] = v;
    }
}

int fc_conv2d_streamed_f32(const fc_conv_shape *s, const float *x, const float *w,
                           const double *wscale, const float *bias, int relu, float *y)
{
    stream_kernels kn;
    if (s->N == 0 || s->P == 0 || s->Q == 0 || s->K == 0 || s->groups != 1 ||
        !select_kernels(&kn))
        return fc_conv2d_direct_f32(s, x, w, wscale, bias, relu, y);

    const int64_t N = s->N, K = s->K, CRS = s->C * s->R * s->S;
    const int64_t nkb = (K + FC_STREAM_MR - 1) / FC_STREAM_MR;
    const fc_stream_split sp = split_of(s->P * s->Q);
    const int nt = fc_get_num_threads();
    float *scale = NULL;
    int err = 0;

    if (wscale) {
        scale = (float *)fc_malloc((size_t)K * sizeof(float));
        if (scale == NULL)
            return FC_ENOMEM;
        for (int64_t k = 0; k < K; k++) {
            scale[k] = (float)wscale[k];
            if (!isfinite(scale[k])) {
                free(scale);
                return fc_conv2d_direct_f32(s, x, w, wscale, bias, relu, y);
            }
        }
    }
    /* column stride 1 or 2: each tap's chunks, listed once for every channel */
    const int64_t taps = s->R * s->S, mch = max_chunks(s);
    fc_stream_chunk *ch = NULL;
    int64_t *nch = NULL, *dots = NULL;
    if (s->sw <= 2) {
        ch = (fc_stream_chunk *)fc_malloc((size_t)(taps * mch) * sizeof(fc_stream_chunk));
        nch = (int64_t *)fc_malloc((size_t)taps * sizeof(int64_t));
        dots = (int64_t *)fc_malloc((size_t)(taps * FC_STREAM_MAXDOTS) * sizeof(int64_t));
    }
    float *B = (float *)fc_scratch(FC_SLOT_COL, (size_t)(CRS * N * sp.img) * sizeof(float));
    if (B == NULL || (s->sw <= 2 && (ch == NULL || nch == NULL || dots == NULL))) {
        free(scale);
        free(ch);
        free(nch);
        free(dots);
        return FC_ENOMEM;
    }
    for (int64_t i = 0; ch && i < taps; i++) {
        const fc_stream_tap tp = tap_of(s, i / s->S, i % s->S);
        nch[i] = chunks_of(&tp, &sp, s->sw, ch + i * mch, dots + i * FC_STREAM_MAXDOTS);
    }

#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int64_t i = 0; i < s->C * N; i++) {
            const int64_t c = i / N, n = i % N;
            const float *xc = x + (n * s->C + c) * s->H * s->W;
            for (int64_t tap = 0; tap < taps; tap++) {
                const int64_t q = c * taps + tap;
                const int64_t q0 = q / FC_STREAM_QB * FC_STREAM_QB;
                const int64_t qn = CRS - q0 < FC_STREAM_QB ? CRS - q0 : FC_STREAM_QB;
                float *blk = B + q0 * N * sp.img + n * sp.img * qn;
                if (ch) {
                    kn.gather(ch + tap * mch, nch[tap], dots + tap * FC_STREAM_MAXDOTS, &sp,
                              (int)s->sw, xc, blk, qn, q - q0);
                } else {
                    const fc_stream_tap tp = tap_of(s, tap / s->S, tap % s->S);
                    gather_strided(&tp, s->sw, xc, &sp, blk, qn, q - q0);
                }
            }
        }
        /* the implied barrier: B is whole */
        int t = 0, nth = 1;
#ifdef FASTCONV_OPENMP
        t = omp_get_thread_num();
        nth = omp_get_num_threads();
#endif
        int64_t kb0 = nkb * t / nth, kb1 = nkb * (t + 1) / nth;
        /* the dot products' vector sums, per block of channels and image */
        float *part = NULL;
        if (sp.nd && kb1 > kb0) {
            part = (float *)fc_scratch(FC_SLOT_OUTPUT,
                                       (size_t)((kb1 - kb0) * N * FC_STREAM_PART) * sizeof(float));
            if (part == NULL) {
#pragma omp atomic write
                err = FC_ENOMEM;
                kb1 = kb0;
            }
        }
        for (int64_t q0 = 0; q0 < CRS; q0 += FC_STREAM_QB) {
            const int64_t qn = CRS - q0 < FC_STREAM_QB ? CRS - q0 : FC_STREAM_QB;
            const int add = q0 > 0, final = q0 + qn == CRS;
            const float *blk = B + q0 * N * sp.img;
            for (int64_t kb = kb0; kb < kb1; kb++) {
                const int64_t k0 = kb * FC_STREAM_MR;
                const int nk = (int)(K - k0 < FC_STREAM_MR ? K - k0 : FC_STREAM_MR);
                const float *a = w + k0 * CRS + q0;
                fc_stream_epilogue ep;
                ep.scale = scale ? scale + k0 : NULL;
                ep.bias = bias ? bias + k0 : NULL;
                ep.relu = relu;
                for (int64_t n = 0; n < N; n++) {
                    const float *bn = blk + n * sp.img * qn;
                    float *yn = y + (n * K + k0) * sp.PQ;
                    for (int64_t j = 0; j < sp.np; j++) {
                        const int last = j == sp.np - 1;
                        kn.panel(qn, a, CRS, nk, bn + j * FC_STREAM_NR * qn,
                                 last ? (int)sp.nv : 3, last ? sp.last : 0xFFFFu,
                                 yn + j * FC_STREAM_NR, sp.PQ, add, final ? &ep : NULL);
                    }
                    if (sp.nd)
                        kn.dots(qn, a, CRS, nk, bn + sp.np * FC_STREAM_NR * qn, (int)sp.nd,
                                part + ((kb - kb0) * N + n) * FC_STREAM_PART, add,
                                yn + sp.np * FC_STREAM_NR, sp.PQ, final ? &ep : NULL);
                }
            }
        }
    }
    free(scale);
    free(ch);
    free(nch);
    free(dots);
    return err;
}

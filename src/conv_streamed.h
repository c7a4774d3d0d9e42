/* The streamed convolution: an im2col GEMM whose weights are read as the
 * caller stores them, for layers whose weights outweigh their pixels
 * (ResNet-50's 512-channel 3x3 layer on 7x7 images: 9.4 MB of weights, 49
 * pixels).
 *
 * The direct kernels put output channels in the vector lanes, so they
 * need the weight reordered ([c][tap][16 channels]) on every call: a pass
 * over megabytes for a few dozen pixels.  Here the lanes hold pixels: a
 * weight w[k][c][r][s] is broadcast straight from the caller's row k (its
 * C R S values are contiguous), and the input is gathered into im2col
 * panels of FC_STREAM_NR pixels, which are kilobytes.  The GEMM is
 * y[k][pixel] = sum over q = (c, r, s) of w[k][q] B[q][pixel], 8 rows of
 * w against a panel of 48 pixels per kernel call; pixels left over past
 * the last whole panel (a 7x7 image is 48 + 1) are dot products along q,
 * where the weight row is a vector load, so they cost no wasted lanes. */
#ifndef FC_CONV_STREAMED_H
#define FC_CONV_STREAMED_H

#include <stdint.h>

#define FC_STREAM_MR 8          /* output channels (weight rows) per call */
#define FC_STREAM_NR 48         /* pixels per panel: three vectors */
#define FC_STREAM_QB 512        /* rows q of B per block: 8 weight rows of it in L1 */
#define FC_STREAM_MAXDOTS 8     /* more leftover pixels take a panel */

/* How an image's P Q pixels split: np panels (the last nv vectors wide,
 * its last vector's lanes in `last`), then nd pixels as dot products;
 * img: floats of B per image and row q. */
typedef struct {
    int64_t PQ, np, nd, nv, img;
    uint32_t last;
} fc_stream_split;

/* A run of up to 16 pixels of one output row, for one tap, that lands in
 * one panel: loaded from the window of 16 sw floats at src (from the
 * channel plane's start; column stride sw of 1 or 2, every sw-th float
 * kept; the window's elements outside `load` read nothing and give the
 * padding's zero) and stored to lanes l .. of panel j under `store`.  The
 * driver lists them per tap (the same for every channel), the last
 * panel's lanes past the image included (load 0). */
typedef struct {
    int64_t src, j, l;
    uint32_t load, store;
} fc_stream_chunk;

/* Row qq of a block of qn rows of B, for one image and tap: plane xc's
 * values for the tap's nch chunks (read with column stride sw, 1 or 2)
 * into the image's panels at blk, and for the dot pixels (offsets in the
 * plane, or -1: padding) into its nd dot columns after the panels. */
typedef void (*fc_stream_gather_f32_fn)(const fc_stream_chunk *ch, int64_t nch,
                                        const int64_t *dots, const fc_stream_split *sp,
                                        int sw, const float *xc, float *blk, int64_t qn,
                                        int64_t qq);

/* What the last block of q adds: y = sum * scale[i] + bias[i] (scale or
 * bias NULL: 1 or 0), then max(y, 0) when relu.  Pointers at the rows'
 * first channel. */
typedef struct {
    const float *scale, *bias;
    int relu;
} fc_stream_epilogue;

/* c[i][j] (+= when add) sum_{q < qn} a[i lda + q] b[q NR + j] for rows
 * i < nk (<= MR) and the pixels j of nv (1-3) vectors, the last one's
 * lanes in `last`; then the epilogue when ep is not NULL.  b: a panel,
 * NR floats per q (lanes past the pixels are read, not stored). */
typedef void (*fc_stream_panel_f32_fn)(int64_t qn, const float *a, int64_t lda,
                                       int nk, const float *b, int nv,
                                       uint32_t last, float *c, int64_t ldc,
                                       int add, const fc_stream_epilogue *ep);

/* The same for nd (<= MAXDOTS) pixels stored as columns of B, bt[j qn + q]:
 * vector sums along q kept between blocks in part[(i MAXDOTS + j) 16 ..]
 * (read when add), added up into c with the epilogue when ep is not NULL. */
#define FC_STREAM_PART (FC_STREAM_MR * FC_STREAM_MAXDOTS * 16)   /* floats */
typedef void (*fc_stream_dots_f32_fn)(int64_t qn, const float *a, int64_t lda,
                                      int nk, const float *bt, int nd, float *part,
                                      int add, float *c, int64_t ldc,
                                      const fc_stream_epilogue *ep);

void f32_streamed_panel_8x48_avx512(int64_t qn, const float *a, int64_t lda,
                                    int nk, const float *b, int nv, uint32_t last,
                                    float *c, int64_t ldc, int add,
                                    const fc_stream_epilogue *ep);
void f32_streamed_gather_avx512(const fc_stream_chunk *ch, int64_t nch,
                                const int64_t *dots, const fc_stream_split *sp, int sw,
                                const float *xc, float *blk, int64_t qn, int64_t qq);
void f32_streamed_dots_8_avx512(int64_t qn, const float *a, int64_t lda, int nk,
                                const float *bt, int nd, float *part, int add, float *c,
                                int64_t ldc, const fc_stream_epilogue *ep);

#endif

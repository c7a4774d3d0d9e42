/* Winograd F(2x2, 3x3) and F(2x2, 5x5) convolutions: the transforms'
 * micro-kernels (f32_winograd_avx512.c) and the layout the driver
 * (conv_winograd.c) holds them to.
 *
 * A 2x2 output tile is B^T d B of its T x T input patch d (V: T^2 values
 * per channel; T = 4 for 3x3 filters, 6 for 5x5), multiplied point by
 * point with G g G^T of each filter g (U: T^2 values per channel pair),
 * summed over input channels (T^2 GEMMs, one per point xi of the grid)
 * and brought back by A^T M A (Lavin and Gray, "Fast Algorithms for
 * Convolutional Neural Networks", 2016; Toom-Cook at 0, +-1, +-2 and
 * infinity for 5x5): 16 multiplications for 4 outputs where the direct
 * convolution makes 36, and 36 where it makes 100.
 *
 * Tiles are taken 16 at a time (a "group": the vector lanes), in one or
 * two runs along rows of tiles, or, where rows of tiles are short (CIFAR's
 * 8 x 8 images: 4 tiles), from a block of tile rows; the GEMMs run on the
 * direct
 * convolution's 8 x 3 x 16 kernel (fc_direct_tile with one tap), so a work
 * item is three groups. */
#ifndef FC_CONV_WINOGRAD_H
#define FC_CONV_WINOGRAD_H

#include <stdint.h>

#define FC_WINO_LANES 16        /* tiles per group */
#define FC_WINO_GROUPS 3        /* groups per item: the kernel's NV */
#define FC_WINO_KB 8            /* output channels per GEMM block: its KB */
#define FC_WINO_TB (FC_WINO_LANES * FC_WINO_GROUPS)   /* tiles per item */

/* Winograd of few tiles (conv_winograd.c), for 3x3 filters, undilated: at
 * most FC_WINO_FEW_TILES tiles (images x tiles per image), or at most
 * FC_WINO_FEW_TILES_DEEP with 128 input channels or more (its M, 4 KB a
 * tile, then fills the L2; the tile-lane GEMMs win beyond: 784 tiles of
 * 128-256 channels ran 1.4-1.5x slower this way, and 196 tiles of 64
 * channels 1.7x, while 196 tiles of 128-256 channels ran 1.25-1.3x faster). */
#define FC_WINO_FEW_TILES 64
#define FC_WINO_FEW_TILES_DEEP 256

/* Beyond this magnitude (or not finite) a value could make the transforms
 * overflow where the direct sum would not, or turn an inf into inf - inf:
 * such inputs are computed exactly, output by output, and such weights
 * send the call to the direct algorithm. */
#define FC_WINO_SAFE 0x1p40f

/* U for KB output channels from k0 and every input channel: the weight
 * block w[k0 ..][C][R][R] (nk <= KB rows, rows C R^2 apart), each filter
 * times wscale[k] (double, rounded once to float, as the direct kernels
 * fold it) when wscale is not NULL, transformed into u[xi][c][KB] (xi
 * planes `plane` floats apart; rows past nk zero).  Returns nonzero when a
 * folded weight is out of the safe range. */
typedef int (*fc_wino_weight_f32_fn)(const float *w, int64_t C, int nk,
                                     const double *wscale, float *u,
                                     int64_t plane);

/* Where the patches of a row of tiles lie in x (one image, channel 0 at
 * its first row of the phase: dilation dh takes every dh-th row).  Patch
 * rows are rows of the phase, rstride floats apart; patch columns are
 * `step` columns of x apart (dilation 1 or 2; 1 for 5x5 filters). */
typedef struct {
    int64_t C, cstride;         /* channels, floats between channels (H W) */
    int64_t rstride, nrows;     /* floats between rows (dh W), rows (of the phase) */
    int64_t W;                  /* columns of x */
    int step;
} fc_wino_plane;

/* A run of a group's lanes along one row of tiles: lane l's T x T patch
 * starts at row `row0` and x column xcol0 + 2 step l. */
#define FC_WINO_MAXSEG 2
typedef struct {
    int64_t row0, xcol0;
    uint32_t lanes;             /* the lanes of the run */
} fc_wino_segment;

/* V for one group: 16 tiles in nseg (<= FC_WINO_MAXSEG) runs (rows and
 * columns outside the plane: zero padding), every channel;
 * v[xi * plane + c * ldv + lane].  Returns nonzero when an input value
 * read is out of the safe range. */
typedef int (*fc_wino_input_f32_fn)(const fc_wino_plane *pl, const float *x,
                                    const fc_wino_segment *seg, int nseg,
                                    float *v, int64_t ldv, int64_t plane);

/* Outputs of one group's run and output channel: m[xi * plane + lane] ->
 * the 2 x 2 tiles, + bias, ReLU when relu, stored from y (lane 0's first
 * output; rows ldy apart, columns `step` apart): nrows (1-2) rows, the
 * columns (0-31) in cols. */
typedef void (*fc_wino_output_f32_fn)(const float *m, int64_t plane,
                                      float bias, int relu, float *y,
                                      int64_t ldy, int nrows, uint32_t cols,
                                      int step);

/* A block of rt rows of tw tiles (tw <= 8, rt tw <= 16) of narrow images,
 * tile (r, tc) in lane r tw + tc; consecutive tile rows of the batch, so a
 * block may run on into the next image.  Tile row r's patches start at
 * input row row0[r], column col0, of the image at x + img[r]; its outputs
 * are yrows[r] (0-2) rows at yoff[r] from the output channel's plane in
 * image 0.  Rows past the batch's last: row0 = H (read as zeros), yrows 0. */
#define FC_WINO_MAXRT 8
typedef struct {
    int64_t img[FC_WINO_MAXRT], row0[FC_WINO_MAXRT], yoff[FC_WINO_MAXRT];
    int yrows[FC_WINO_MAXRT];
    int64_t col0;
    int tw, rt;
} fc_wino_block;

/* V of such a block. */
typedef int (*fc_wino_input_block_f32_fn)(const fc_wino_block *bk, const float *x,
                                          int64_t C, int64_t H, int64_t W, float *v,
                                          int64_t ldv, int64_t plane);
/* ... and its outputs for one output channel (y: its plane in image 0),
 * the columns (0-15) in cols, rows ldy apart. */
typedef void (*fc_wino_output_block_f32_fn)(const float *m, int64_t plane,
                                            float bias, int relu, float *y,
                                            int64_t ldy, const fc_wino_block *bk,
                                            uint32_t cols);

/* 3x3 filters (T = 4) */
int f32_winograd_weight_2x2_3x3_avx512(const float *w, int64_t C, int nk,
                                       const double *wscale, float *u,
                                       int64_t plane);
int f32_winograd_input_2x2_3x3_avx512(const fc_wino_plane *pl, const float *x,
                                      const fc_wino_segment *seg, int nseg,
                                      float *v, int64_t ldv, int64_t plane);
void f32_winograd_output_2x2_3x3_avx512(const float *m, int64_t plane,
                                        float bias, int relu, float *y,
                                        int64_t ldy, int nrows, uint32_t cols,
                                        int step);
int f32_winograd_input_block_3x3_avx512(const fc_wino_block *bk, const float *x,
                                        int64_t C, int64_t H, int64_t W, float *v,
                                        int64_t ldv, int64_t plane);
void f32_winograd_output_block_3x3_avx512(const float *m, int64_t plane,
                                          float bias, int relu, float *y,
                                          int64_t ldy, const fc_wino_block *bk,
                                          uint32_t cols);
/* For few tiles (conv_winograd.c), output channels in the lanes: U of 16
 * output channels (rows of the weight, ldw apart) and cb input channels,
 * u[xi plane + c ldu + k], returning nonzero when a weight is out of the
 * safe range; and one tile's outputs, scaled and biased, into a
 * channels-last buffer. */
int f32_winograd_weight_rows_3x3_avx512(const float *w, int64_t ldw, int nk, int64_t cb,
                                        float *u, int64_t ldu, int64_t plane);
/* ... and of the input gradient's convolution, from the forward weight */
int f32_winograd_weight_flipped_3x3_avx512(const float *src, int64_t ldk, int nc, int64_t cb,
                                           float *u, int64_t ldu, int64_t plane);
void f32_winograd_output_cl_3x3_avx512(const float *m, int64_t plane, const float *scale,
                                       const float *bias, int relu, float *o, int64_t ldr,
                                       int nrows, int ncols);
/* Stride 2 (3x3 and 7x7 filters): each 2 x 2 output tile reads an
 * (R + 2) x (R + 2) patch d.  Along a row or column, the taps of each
 * parity pair up (g_a, g_a+2), and a pair's share of the two outputs,
 *   y0 += g_a d_a + g_a+2 d_a+2,   y1 += g_a d_a+2 + g_a+2 d_a+4,
 * takes three products: (d_a - d_a+2) g_a for y0 alone, d_a+2 (g_a +
 * g_a+2) for both and (d_a+4 - d_a+2) g_a+2 for y1 alone (a stride-1
 * F(2, 2)); a tap left single takes two, d_a g_a and d_a+2 g_a.  Products
 * that go to the same outputs sum into one point: three points per axis,
 * for 3x3 (pair g0 g2, single g1) of 2, 1 and 2 products (5 where the
 * direct sum makes 6), for 7x7 (pairs g0 g2, g4 g6, g1 g3, single g5) of 4,
 * 3 and 4 (11 where it makes 14).  Two-dimensionally 9 points xi = 3 i +
 * j, each a sum over len(xi) = L(i) L(j) products per input channel (25
 * products for 4 outputs where the direct sum makes 36; 121 for 196), by
 * additions alone.  A point's rows (input channel c, product q) are
 * c len + q, so that one GEMM over contiguous rows sums a block of
 * channels; its plane starts fc_wino_s2_offset(R, xi, chans, ld) floats
 * in (planes one cache line over their rows). */
static inline int fc_wino_s2_axis(int64_t R, int i)
{
    return R == 7 ? (i == 1 ? 3 : 4) : (i == 1 ? 1 : 2);
}

static inline int fc_wino_s2_len(int64_t R, int xi)
{
    return fc_wino_s2_axis(R, xi / 3) * fc_wino_s2_axis(R, xi % 3);
}

static inline int64_t fc_wino_s2_offset(int64_t R, int xi, int64_t chans, int64_t ld)
{
    int64_t rows = 0;
    for (int p = 0; p < xi; p++)
        rows += fc_wino_s2_len(R, p);
    return rows * chans * ld + 16 * (int64_t)xi;
}

/* Each axis's products in the transforms' order (3 taps: d0 - d2, d1 |
 * d2 | d4 - d2, d3; 7 taps: four | three | four), their points and their
 * places within the point: product (a, b) of input channel c (a along the
 * axis of rows, b of columns) lies in point xi = 3 point[a] + point[b],
 * row c len(xi) + product[a] L(point[b]) + product[b]. */
static const int FC_WINO_S2_POINT3[5] = {0, 0, 1, 2, 2};
static const int FC_WINO_S2_PRODUCT3[5] = {0, 1, 0, 0, 1};
static const int FC_WINO_S2_POINT7[11] = {0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2};
static const int FC_WINO_S2_PRODUCT7[11] = {0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3};

/* U of 16 output channels (rows of the weight, ldw apart; the first nk)
 * and cb input channels of R x R filters (R = 3 or 7), lanes k of u + off[xi]
 * (point xi's plane), rows ld floats apart.  Nonzero when a weight is out
 * of the safe range. */
int f32_winograd_weight_s2_avx512(int64_t R, const float *w, int64_t ldw, int nk, int64_t cb,
                                  float *u, const int64_t off[9], int64_t ld);
/* V of up to 16 tiles along a row of tiles (lanes l < len; the others
 * zero): tile l's patch at rows row0 .., columns col0 + 4 l .. of x (one
 * image's channel 0, H x W planes; outside: zero padding), channels c0 ..
 * c0 + nc - 1 at v (lane 0) + off[xi], rows ld floats apart.  Nonzero
 * when an input read is out of the safe range. */
int f32_winograd_input_s2_avx512(int64_t R, const float *x, int64_t c0, int64_t nc, int64_t H,
                                 int64_t W, int64_t row0, int64_t col0, int len, float *v,
                                 const int64_t off[9], int64_t ld);
/* One tile's 2 x 2 outputs of 64 output channels from its 9 points
 * (m[xi plane + k]): as f32_winograd_output_cl_3x3_avx512. */
void f32_winograd_output_s2_avx512(const float *m, int64_t plane, const float *scale,
                                   const float *bias, int relu, float *o, int64_t ldr,
                                   int nrows, int ncols);
/* 5x5 filters (T = 6) */
int f32_winograd_weight_2x2_5x5_avx512(const float *w, int64_t C, int nk,
                                       const double *wscale, float *u,
                                       int64_t plane);
int f32_winograd_input_2x2_5x5_avx512(const fc_wino_plane *pl, const float *x,
                                      const fc_wino_segment *seg, int nseg,
                                      float *v, int64_t ldv, int64_t plane);
void f32_winograd_output_2x2_5x5_avx512(const float *m, int64_t plane,
                                        float bias, int relu, float *y,
                                        int64_t ldy, int nrows, uint32_t cols,
                                        int step);
int f32_winograd_input_block_5x5_avx512(const fc_wino_block *bk, const float *x,
                                        int64_t C, int64_t H, int64_t W, float *v,
                                        int64_t ldv, int64_t plane);
void f32_winograd_output_block_5x5_avx512(const float *m, int64_t plane,
                                          float bias, int relu, float *y,
                                          int64_t ldy, const fc_wino_block *bk,
                                          uint32_t cols);

#endif

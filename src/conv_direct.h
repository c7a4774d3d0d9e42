/* The direct convolution's micro-kernel interface (conv_direct.c drives,
 * f32_conv_direct_*.c and conv_direct_generic.c compute).
 *
 * A tile is KB output channels x NV output rows x LANES output columns,
 * accumulated in registers over all input channels and kernel taps; output
 * pixels run along the vector lanes, so stores go straight to NCHW rows.
 * Input rows are located through per-(row, tap) offsets, and every load is
 * masked per lane: padding, rows outside the image and columns past the
 * output are masked-off lanes that read nothing (XNNPACK's indirection idea,
 * with masks instead of a zero buffer). */
#ifndef FC_CONV_DIRECT_H
#define FC_CONV_DIRECT_H

#include <stdint.h>

/* Input channels per cache block: 32 channels x (NV + R - 1) rows of a
 * tile plus their weights stay well inside a 32-48 KB L1. */
#define FC_DIRECT_CBLOCK 32

typedef struct {
    int64_t Cg, taps;           /* input channels of the group, R * S */
    int64_t cblock;             /* input channels per cache block */
    int64_t cstride;            /* H * W: next input channel */
    int64_t sw;                 /* input columns between neighbouring lanes */
    const int64_t *off;         /* [taps][NV] input offset of lane 0 */
    const uint32_t *mask;       /* [taps][NV] lanes whose input is in bounds */
    int64_t ystride;            /* P * Q: next output channel */
    int64_t yrow;               /* Q: next output row */
    int64_t nk, nrows;          /* channels and rows of this tile to store */
    uint32_t store_mask;        /* lanes of this tile to store */
    /* NULL, or per row: the lanes that are outputs,
     * stored side by side from y + yoff[row] (a row of the flat walk
     * crosses output-row ends, whose padding columns it skips) */
    const int64_t *yoff;
    const uint32_t *ylanes;
    int relu;
} fc_direct_tile;

/* x: channel 0 of the image's group, wp: packed weights [taps][Cg][KB],
 * bias: KB values or NULL, y: first output of the tile. */
typedef void (*fc_direct_f32_fn)(const fc_direct_tile *t, const float *x,
                                 const float *wp, const float *bias, float *y);
typedef void (*fc_direct_f64_fn)(const fc_direct_tile *t, const double *x,
                                 const double *wp, const double *bias,
                                 double *y);

typedef struct {
    int lanes, kb, nv;
    fc_direct_f32_fn fn;
} fc_direct_f32_kernel;

typedef struct {
    int lanes, kb, nv;
    fc_direct_f64_fn fn;
} fc_direct_f64_kernel;

/* The channels-last variant for small images: output channels in lanes.
 * The input is copied zero-padded (NCHW planes), so every tap of every
 * output pixel reads inside it; each input value is broadcast, so its
 * layout needs no transposition.  A call accumulates, for NP output pixels
 * (any positions: their padded-input pixels are listed) x KT output
 * channels, one block of input channels under every tap into a
 * channels-last output buffer; the call for the last block also adds the
 * bias and applies the ReLU, and the driver transposes into NCHW. */
typedef struct {
    int64_t cb, taps;           /* reduction: input channels x taps */
    const int64_t *tapoff;      /* [taps] padded-input pixels from tap 0 */
    const int64_t *pix;         /* [np] padded-input pixel of each output */
    int64_t cs;                 /* floats per padded-input plane (channel) */
    int64_t ws;                 /* floats per packed-weight row (tap, c) */
    int64_t wtap;               /* floats per packed-weight tap */
    int64_t ldo;                /* floats per output-buffer pixel */
    int np;                     /* pixels of this tile (1-6) */
    int accumulate;             /* add to the buffer (later channel blocks) */
    int last;                   /* the last channel block: bias, ReLU */
    int relu;
} fc_nhwc_tile;

/* x: the image's padded copy at the block's first channel; wp: packed
 * weights [taps][Cg][ws] at the block's first channel and the tile's first
 * output channel; bias: KT values or NULL; out: the tile's first pixel and
 * channel in the buffer. */
typedef void (*fc_nhwc_f32_fn)(const fc_nhwc_tile *t, const float *x,
                               const float *wp, const float *bias, float *out);
typedef void (*fc_nhwc_f64_fn)(const fc_nhwc_tile *t, const double *x,
                               const double *wp, const double *bias,
                               double *out);
#define FC_NHWC_NP 6
#define FC_NHWC_KT 64
/* input channels per block: a block's weights (taps x 64 x 64) stay in L2 */
#define FC_NHWC_CB 64

/* Weight packing (see f32_pack_16x16_avx512): 16 rows x ncols <= 16
 * columns of src, transposed, times scale[row] when scale is not NULL. */
typedef void (*fc_pack16_f32_fn)(const float *src, int64_t lds, int ncols,
                                 const double *scale, int64_t hi,
                                 float *const *dst);
typedef void (*fc_pack16_f64_fn)(const double *src, int64_t lds, int ncols,
                                 const double *scale, int64_t hi,
                                 double *const *dst);

/* The micro-kernels, named dtype_op_tile_isa. */
void f32_pack_16x16_avx512(const float *src, int64_t lds, int ncols,
                           const double *scale, int64_t hi, float *const *dst);
void f32_conv_direct_nhwc_6x64_avx512(const fc_nhwc_tile *, const float *,
                                      const float *, const float *, float *);
void f32_conv_direct_8x3x16_avx512(const fc_direct_tile *, const float *,
                                   const float *, const float *, float *);
void f32_conv_direct_1x8x16_avx512(const fc_direct_tile *, const float *,
                                   const float *, const float *, float *);
void f32_conv_direct_4x3x8_avx2(const fc_direct_tile *, const float *,
                                const float *, const float *, float *);
void f32_conv_direct_1x6x8_avx2(const fc_direct_tile *, const float *,
                                const float *, const float *, float *);
void f32_conv_direct_4x2x8_generic(const fc_direct_tile *, const float *,
                                   const float *, const float *, float *);
void f32_conv_direct_1x4x8_generic(const fc_direct_tile *, const float *,
                                   const float *, const float *, float *);
void f64_conv_direct_8x3x8_avx512(const fc_direct_tile *, const double *,
                                  const double *, const double *, double *);
void f64_conv_direct_4x2x8_generic(const fc_direct_tile *, const double *,
                                   const double *, const double *, double *);
void f64_conv_direct_1x4x8_generic(const fc_direct_tile *, const double *,
                                   const double *, const double *, double *);

#endif

/* The weight-gradient micro-kernel interface (driven by conv_direct_tmpl.h).
 *
 * Per kernel tap, gw[c][k] = sum over output pixels o of
 * x[pixel(o) + tap][c] * gy[o][k]: a matrix product whose inner dimension is
 * the pixels.  The driver lays both operands out channels-last (the input
 * zero-padded, so that every tap of every pixel reads inside it) and hands a
 * micro-kernel a run of pixels; the kernel keeps a CB x (KV vectors) tile of
 * gw in registers, broadcasting CB input values and loading KV vectors of
 * output channels per pixel — the outer-product form of a GEMM kernel, with
 * no horizontal sums. */
#ifndef FC_CONV_WGRAD_H
#define FC_CONV_WGRAD_H

#include <stdint.h>

typedef struct {
    int64_t npix;            /* pixels in the run */
    const int64_t *pix;      /* [npix] padded-input pixel of tap (0, 0) */
    int64_t tapoff;          /* padded-input pixels from tap (0, 0) to this tap */
    int64_t xs;              /* floats per padded-input pixel */
    int64_t gs;              /* floats per grad_output pixel */
    int64_t ldw;             /* floats between rows c of the gw tile */
} fc_wgrad_tile;

/* x: channel c0 of padded-input pixel 0; gy: channel k0 of the run's first
 * output pixel; gw: element (c0, k0) of this tap's gw, accumulated into. */
typedef void (*fc_wgrad_f32_fn)(const fc_wgrad_tile *t, const float *x,
                                const float *gy, float *gw);
typedef void (*fc_wgrad_f64_fn)(const fc_wgrad_tile *t, const double *x,
                                const double *gy, double *gw);

/* cb input channels x kt = kv * lanes output channels per call. */
typedef struct {
    int cb, kt;
    fc_wgrad_f32_fn fn;
} fc_wgrad_f32_kernel;

typedef struct {
    int cb, kt;
    fc_wgrad_f64_fn fn;
} fc_wgrad_f64_kernel;

void f32_conv_wgrad_12x32_avx512(const fc_wgrad_tile *, const float *,
                                 const float *, float *);
void f32_conv_wgrad_16x16_avx512(const fc_wgrad_tile *, const float *,
                                 const float *, float *);
void f32_conv_wgrad_6x16_avx2(const fc_wgrad_tile *, const float *,
                              const float *, float *);
void f32_conv_wgrad_4x8_generic(const fc_wgrad_tile *, const float *,
                                const float *, float *);
void f64_conv_wgrad_12x16_avx512(const fc_wgrad_tile *, const double *,
                                 const double *, double *);
void f64_conv_wgrad_4x8_generic(const fc_wgrad_tile *, const double *,
                                const double *, double *);

#endif

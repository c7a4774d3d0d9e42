/* Depthwise 3x3 plane kernels (f32_dwconv_3x3_avx512.c), for the common
 * MobileNet case: one input channel per group, stride 1, row dilation 1.
 * A call covers one (image, channel) plane. */
#ifndef FC_CONV_DW_H
#define FC_CONV_DW_H

#include <stdint.h>

typedef struct {
    int64_t H, W, P, Q;     /* input and output plane */
    int64_t pt, pl;         /* top and left padding */
    int64_t dh, dw;         /* dilation (dh is 1 for the forward kernel) */
    int relu;
} fc_dw_plane;

typedef void (*fc_dw3x3_f32_fn)(const fc_dw_plane *, const float *,
                                const float *, float, float *);
typedef void (*fc_dw3x3_f64_fn)(const fc_dw_plane *, const double *,
                                const double *, double, double *);
typedef void (*fc_dw3x3_wgrad_f32_fn)(const fc_dw_plane *, const float *,
                                      const float *, float *);
typedef void (*fc_dw3x3_wgrad_f64_fn)(const fc_dw_plane *, const double *,
                                      const double *, double *);

/* y = conv(x, w[3][3]) + bias over one plane (relu when asked). */
void f32_dwconv_3x3_avx512(const fc_dw_plane *p, const float *x,
                           const float *w, float bias, float *y);
/* gw[3][3] += correlation of one input plane with its output gradient. */
void f32_dwconv_wgrad_3x3_avx512(const fc_dw_plane *p, const float *x,
                                 const float *gy, float *gw);

#endif

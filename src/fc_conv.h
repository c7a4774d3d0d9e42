/* Convolution entry points (conv_im2col.c, conv_direct.c).
 *
 * Tensors are C-contiguous NCHW; the weight is K x C/groups x R x S.  The
 * output size P x Q is given (the Python layer computed it), so any padding,
 * symmetric or not, is described by its top and left parts alone. */
#ifndef FC_CONV_H
#define FC_CONV_H

#include <stdint.h>

typedef struct {
    int64_t N, C, H, W;     /* input */
    int64_t K, R, S;        /* output channels, kernel rows and columns */
    int64_t P, Q;           /* output rows and columns */
    int64_t sh, sw;         /* stride */
    int64_t pt, pl;         /* top and left padding */
    int64_t dh, dw;         /* dilation */
    int64_t groups;
} fc_conv_shape;

/* FC_CONV_WINOGRAD: F(2x2, 3x3) or F(2x2, 5x5) for float32 where it applies
 * (fc_conv2d_winograd_efficiency_f32 > 0), its stride-2 variant for 3x3
 * and 7x7 filters where that applies (conv_winograd.h: at most 256 tiles,
 * or one block each of 64 output and 32 input channels), the direct
 * algorithm elsewhere;
 * for the gradients, the direct weight gradient and a stride-1 layer's
 * input gradient (a convolution itself) by Winograd. */
/* FC_CONV_STREAMED: the forward pass as an im2col GEMM on the weights as
 * stored, pixels in the vector lanes (conv_streamed.h), for float32 dense
 * layers with AVX-512, the direct algorithm elsewhere; for the gradients,
 * im2col's weight gradient and a stride-1 input gradient (a convolution
 * itself) by Winograd of few tiles where it applies, else by the streamed
 * GEMM. */
enum fc_conv_algo { FC_CONV_IM2COL = 0, FC_CONV_DIRECT = 1, FC_CONV_WINOGRAD = 2,
                    FC_CONV_STREAMED = 3 };

/* Return 0, or FC_ENOMEM (fastconv.h) when a workspace cannot be allocated. */

/* y = conv(x, w') + bias (bias may be NULL), then max(y, 0) when relu,
 * where w'[k] = w[k] * wscale[k] computed in double and rounded once (a
 * batch norm folded in: the bits of fc_bn_fold_weight), or w'= w when
 * wscale is NULL; FC_CONV_STREAMED, and FC_CONV_WINOGRAD where it takes
 * few tiles, multiply each sum by wscale[k] rounded to float instead. */
int fc_conv2d_f32(const fc_conv_shape *s, int algo, const float *x,
                  const float *w, const double *wscale, const float *bias,
                  int relu, float *y);
int fc_conv2d_f64(const fc_conv_shape *s, int algo, const double *x,
                  const double *w, const double *wscale, const double *bias,
                  int relu, double *y);

/* Gradients of conv2d: each output pointer may be NULL to skip it. */
int fc_conv2d_backward_f32(const fc_conv_shape *s, int algo, const float *gy,
                           const float *x, const float *w, float *gx,
                           float *gw, float *gb);
int fc_conv2d_backward_f64(const fc_conv_shape *s, int algo, const double *gy,
                           const double *x, const double *w, double *gx,
                           double *gw, double *gb);

/* Fraction of the direct algorithm's vector lanes that compute real
 * outputs for this shape at the active ISA (lanes past the image's edge are
 * wasted): what algorithm="auto" weighs against im2col. */
double fc_conv2d_direct_efficiency_f32(const fc_conv_shape *s);
double fc_conv2d_direct_efficiency_f64(const fc_conv_shape *s);
/* The same for the Winograd GEMMs (tiles x output channels); 0 where the
 * algorithm does not apply (float32, AVX-512, dense 3x3, stride and
 * dilation 1). */
double fc_conv2d_winograd_efficiency_f32(const fc_conv_shape *s);
/* The same for the direct weight-gradient kernels' channel tiles. */
double fc_conv2d_wgrad_efficiency_f32(const fc_conv_shape *s);
double fc_conv2d_wgrad_efficiency_f64(const fc_conv_shape *s);

#endif

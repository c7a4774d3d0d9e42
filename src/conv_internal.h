/* Shared between the convolution files; not part of the C API. */
#ifndef FC_CONV_INTERNAL_H
#define FC_CONV_INTERNAL_H

#include "fastconv.h"

int fc_conv2d_im2col_f32(const fc_conv_shape *s, const float *x,
                         const float *w, const float *bias, int relu, float *y);
int fc_conv2d_im2col_f64(const fc_conv_shape *s, const double *x,
                         const double *w, const double *bias, int relu,
                         double *y);
int fc_conv2d_backward_im2col_f32(const fc_conv_shape *s, const float *gy,
                                  const float *x, const float *w, float *gx,
                                  float *gw);
int fc_conv2d_backward_im2col_f64(const fc_conv_shape *s, const double *gy,
                                  const double *x, const double *w,
                                  double *gx, double *gw);

/* wscale: per-output-channel factors applied while packing, or NULL */
int fc_conv2d_direct_f32(const fc_conv_shape *s, const float *x,
                         const float *w, const double *wscale,
                         const float *bias, int relu, float *y);
int fc_conv2d_direct_f64(const fc_conv_shape *s, const double *x,
                         const double *w, const double *wscale,
                         const double *bias, int relu, double *y);
int fc_conv2d_winograd_f32(const fc_conv_shape *s, const float *x,
                           const float *w, const double *wscale,
                           const float *bias, int relu, float *y);
int fc_conv2d_streamed_f32(const fc_conv_shape *s, const float *x,
                           const float *w, const double *wscale,
                           const float *bias, int relu, float *y);
/* The input gradient is one stride-1 convolution of grad_output per phase
 * of the input (a stride-1 layer's: one, with the whole flipped weight),
 * run by input_algo: FC_CONV_DIRECT, FC_CONV_WINOGRAD
 * (fc_conv2d_winograd_f32) or FC_CONV_STREAMED (fc_conv2d_streamed_f32);
 * float64 runs it direct.  im2col's GEMM and col2im where a phase would
 * start past grad_output's edge (padding wider than the dilated kernel). */
int fc_conv2d_backward_direct_f32(const fc_conv_shape *s, const float *gy,
                                  const float *x, const float *w,
                                  int input_algo, float *gx, float *gw);
int fc_conv2d_backward_direct_f64(const fc_conv_shape *s, const double *gy,
                                  const double *x, const double *w,
                                  int input_algo, double *gx, double *gw);

/* Whether the pure-GEMM shortcut applies: a 1x1, stride-1, unpadded
 * convolution reads its input exactly as the im2col matrix. */
static inline int fc_conv_is_pointwise(const fc_conv_shape *s)
{
    return s->R == 1 && s->S == 1 && s->sh == 1 && s->sw == 1 &&
           s->pt == 0 && s->pl == 0 && s->P == s->H && s->Q == s->W;
}

/* Balanced enough to split `items` whole work items over `nt` threads. */
static inline int fc_split_outer(int64_t items, int nt)
{
    return nt > 1 && (items >= 4 * (int64_t)nt || (items >= nt && items % nt == 0));
}

/* The channels-last walk's output transposition, which the Winograd
 * convolution of few tiles reuses: nk (<= 16) columns of a channels-last
 * buffer (pixels ldo apart), pixels [o_lo, o_hi), into their NCHW planes
 * (PQ apart) from dst. */
void fc_planes_of_columns_f32(const float *src, int64_t ldo, int64_t nk, int64_t PQ,
                              int64_t o_lo, int64_t o_hi, float *dst);

/* C = A B^T (add: C += A B^T), float32, M x N from A (M x Kr) and B
 * (N x Kr), row-major; AVX-512 (gemm_nt.c).  0, or FC_ENOMEM. */
int fc_sgemm_nt_f32(int64_t M, int64_t N, int64_t Kr, const float *A, int64_t lda,
                    const float *B, int64_t ldb, int add, float *C, int64_t ldc);

/* The input gradient of a dense stride-1 3x3 layer by Winograd of few
 * tiles (conv_winograd.c), s its convolution of gy with the forward weight
 * w turned and transposed (s->C the forward's K), read from w as it is:
 * 0, FC_ENOMEM, or FC_WINO_DECLINED where it does not apply or met values
 * out of its safe range (gx then to be computed otherwise). */
#define FC_WINO_DECLINED (-1)
int fc_conv2d_winograd_flipped_f32(const fc_conv_shape *s, const float *gy, const float *w,
                                   float *gx);

#endif

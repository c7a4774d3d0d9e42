/* Batch-norm entry points (batchnorm.c).
 *
 * x is C-contiguous N x C x HW (HW: the product of the spatial extents, 1 for
 * a 2-D input); a channel's values are N strided chunks of HW.  weight and
 * bias (gamma, beta) may be NULL (1 and 0).  Statistics are accumulated in
 * double as shifted sums (the shift: a value of the channel near the
 * values summed), merged with Chan's formula, so a float32 input whose mean
 * is large against its spread keeps an accurate variance.  The work is
 * split over OpenMP threads by pieces of the array in memory order (see
 * bn_plan in batchnorm.c), the partial statistics merged per channel in an
 * order fixed by the shape: the same bits for any thread count.
 * Every function returns 0, or FC_ENOMEM when a workspace cannot be
 * allocated (before anything is written). */
#ifndef FC_BATCHNORM_H
#define FC_BATCHNORM_H

#include <stdint.h>

typedef struct {
    int64_t N, C, HW;
} fc_bn_shape;

/* The running statistics as the caller keeps them, updated in place in
 * training mode: any float type, any stride (in elements, may be negative);
 * a NULL pointer skips that statistic.
 *   mean = (1 - momentum) * mean + momentum * batch mean
 *   var  = (1 - momentum) * var  + momentum * batch var * M / (M - 1)
 * with M = N * HW values per channel, computed in double. */
typedef struct {
    void *mean, *var;
    int64_t mean_stride, var_stride;
    int mean_f64, var_f64;          /* 1: double, 0: float */
    double momentum;
} fc_bn_running;

/* Training: y = (x - mean) / sqrt(var + eps) * weight + bias with the batch
 * mean and biased variance; one read of x for the statistics, one fused
 * pass for the output.  run may be NULL. */
int fc_batch_norm_train_f32(const fc_bn_shape *s, const float *x,
                            const float *weight, const float *bias, double eps,
                            const fc_bn_running *run, float *y);
int fc_batch_norm_train_f64(const fc_bn_shape *s, const double *x,
                            const double *weight, const double *bias,
                            double eps, const fc_bn_running *run, double *y);

/* Eval: the same with the running statistics (C-contiguous, x's dtype). */
int fc_batch_norm_eval_f32(const fc_bn_shape *s, const float *x,
                           const float *mean, const float *var,
                           const float *weight, const float *bias, double eps,
                           float *y);
int fc_batch_norm_eval_f64(const fc_bn_shape *s, const double *x,
                           const double *mean, const double *var,
                           const double *weight, const double *bias,
                           double eps, double *y);

/* Gradients through the batch statistics of x (recomputed in the same pass
 * that sums grad_output):  with xhat = (x - mean) * invstd, M values per
 * channel,  gb = sum(gy),  gw = sum(gy * xhat),
 *   gx = weight * invstd / M * (M * gy - gb - xhat * gw).
 * One pass over (x, gy) for the sums, one for gx. */
int fc_batch_norm_backward_train_f32(const fc_bn_shape *s, const float *gy,
                                     const float *x, const float *weight,
                                     double eps, float *gx, float *gw,
                                     float *gb);
int fc_batch_norm_backward_train_f64(const fc_bn_shape *s, const double *gy,
                                     const double *x, const double *weight,
                                     double eps, double *gx, double *gw,
                                     double *gb);

/* Gradients with the running statistics held constant:
 * gx = weight * invstd * gy, gw = sum(gy * xhat), gb = sum(gy); one pass. */
int fc_batch_norm_backward_eval_f32(const fc_bn_shape *s, const float *gy,
                                    const float *x, const float *mean,
                                    const float *var, const float *weight,
                                    double eps, float *gx, float *gw,
                                    float *gb);
int fc_batch_norm_backward_eval_f64(const fc_bn_shape *s, const double *gy,
                                    const double *x, const double *mean,
                                    const double *var, const double *weight,
                                    double eps, double *gx, double *gw,
                                    double *gb);

/* A per-channel vector, float or double (f64), C-contiguous; p NULL:
 * absent. */
typedef struct {
    const void *p;
    int f64;
} fc_bn_vector;

/* The factors of a batch norm folded into a convolution, per channel k:
 * scale[k] = gamma[k] / sqrt(var[k] + eps) and
 * fused_bias[k] = (bias[k] - mean[k]) * scale[k] + beta[k], in double (float
 * vectors widened exactly), each operation rounded as NumPy's would (no
 * contraction); gamma absent means 1, bias and beta absent mean 0. */
void fc_bn_fold_factors(int64_t K, fc_bn_vector var, fc_bn_vector gamma,
                        fc_bn_vector bias, fc_bn_vector mean, fc_bn_vector beta,
                        double eps, double *scale, double *fused_bias);

/* Batch norm folded into a convolution's K x L weight:
 * out[k][i] = (T)((double)w[k][i] * scale[k]), rounded once. */
void fc_bn_fold_weight_f32(int64_t K, int64_t L, const float *w,
                           const double *scale, float *out);
void fc_bn_fold_weight_f64(int64_t K, int64_t L, const double *w,
                           const double *scale, double *out);

#endif

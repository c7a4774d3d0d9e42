/* Convolution entry points: the bias gradient, then the chosen algorithm. */
#include "conv_internal.h"

/* grad_bias[k] = sum of gy over N, P, Q, accumulated in double. */
#define BIAS_GRAD(T, NAME)                                                   \
    static void NAME(const fc_conv_shape *s, const T *gy, T *gb)             \
    {                                                                        \
        const int64_t PQ = s->P * s->Q;                                      \
        _Pragma("omp parallel for num_threads(fc_get_num_threads()) schedule(static)") \
        for (int64_t k = 0; k < s->K; k++) {                                 \
            double acc = 0;                                                  \
            for (int64_t n = 0; n < s->N; n++) {                             \
                const T *row = gy + (n * s->K + k) * PQ;                     \
                for (int64_t i = 0; i < PQ; i++)                             \
                    acc += row[i];                                           \
            }                                                                \
            gb[k] = (T)acc;                                                  \
        }                                                                    \
    }
BIAS_GRAD(float, bias_grad_f32)
BIAS_GRAD(double, bias_grad_f64)

int fc_conv2d_f32(const fc_conv_shape *s, int algo, const float *x,
                  const float *w, const float *bias, int relu, float *y)
{
    return algo == FC_CONV_DIRECT ? fc_conv2d_direct_f32(s, x, w, bias, relu, y)
                                  : fc_conv2d_im2col_f32(s, x, w, bias, relu, y);
}

int fc_conv2d_f64(const fc_conv_shape *s, int algo, const double *x,
                  const double *w, const double *bias, int relu, double *y)
{
    return algo == FC_CONV_DIRECT ? fc_conv2d_direct_f64(s, x, w, bias, relu, y)
                                  : fc_conv2d_im2col_f64(s, x, w, bias, relu, y);
}

int fc_conv2d_backward_f32(const fc_conv_shape *s, int algo, const float *gy,
                           const float *x, const float *w, float *gx,
                           float *gw, float *gb)
{
    if (gb)
        bias_grad_f32(s, gy, gb);
    return algo == FC_CONV_DIRECT
        ? fc_conv2d_backward_direct_f32(s, gy, x, w, gx, gw)
        : fc_conv2d_backward_im2col_f32(s, gy, x, w, gx, gw);
}

int fc_conv2d_backward_f64(const fc_conv_shape *s, int algo, const double *gy,
                           const double *x, const double *w, double *gx,
                           double *gw, double *gb)
{
    if (gb)
        bias_grad_f64(s, gy, gb);
    return algo == FC_CONV_DIRECT
        ? fc_conv2d_backward_direct_f64(s, gy, x, w, gx, gw)
        : fc_conv2d_backward_im2col_f64(s, gy, x, w, gx, gw);
}

/* Convolution entry points: the bias gradient, then the chosen algorithm. */
#include <stdlib.h>

#include "conv_internal.h"

/* grad_bias[k] = sum of gy over N, P, Q, accumulated in double: eight
 * sums side by side (a pixel's index mod 8 picks one), which the compiler
 * keeps in vectors; one running sum waited out every addition's latency
 * (11% of cifar_res16's backward). */
#define BIAS_LANES 8
#define BIAS_GRAD(T, NAME)                                                   \
    static void NAME(const fc_conv_shape *s, const T *gy, T *gb)             \
    {                                                                        \
        const int64_t PQ = s->P * s->Q;                                      \
        _Pragma("omp parallel for num_threads(fc_get_num_threads()) schedule(static)") \
        for (int64_t k = 0; k < s->K; k++) {                                 \
            double acc[BIAS_LANES] = {0};                                    \
            for (int64_t n = 0; n < s->N; n++) {                             \
                const T *row = gy + (n * s->K + k) * PQ;                     \
                int64_t i = 0;                                               \
                for (; i + BIAS_LANES <= PQ; i += BIAS_LANES)                \
                    for (int j = 0; j < BIAS_LANES; j++)                     \
                        acc[j] += row[i + j];                                \
                for (; i < PQ; i++)                                          \
                    acc[i % BIAS_LANES] += row[i];                           \
            }                                                                \
            gb[k] = (T)(((acc[0] + acc[1]) + (acc[2] + acc[3])) +            \
                        ((acc[4] + acc[5]) + (acc[6] + acc[7])));            \
        }                                                                    \
    }
BIAS_GRAD(float, bias_grad_f32)
BIAS_GRAD(double, bias_grad_f64)

/* The direct and Winograd algorithms fold wscale into the weight while
 * packing or transforming it, the streamed one multiplies the sums by it;
 * im2col multiplies by the weight as stored, so it gets a folded copy. */
#define CONV_FORWARD(T, NAME, DIRECT, WINOGRAD, STREAMED, IM2COL, FOLD)      \
    int NAME(const fc_conv_shape *s, int algo, const T *x, const T *w,       \
             const double *wscale, const T *bias, int relu, T *y)            \
    {                                                                        \
        const int64_t L = s->C / s->groups * s->R * s->S;                    \
        T *folded = NULL;                                                    \
        int err;                                                             \
        if (algo == FC_CONV_WINOGRAD)                                        \
            return WINOGRAD(s, x, w, wscale, bias, relu, y);                 \
        if (algo == FC_CONV_STREAMED)                                        \
            return STREAMED(s, x, w, wscale, bias, relu, y);                 \
        if (algo == FC_CONV_DIRECT)                                          \
            return DIRECT(s, x, w, wscale, bias, relu, y);                   \
        if (wscale && s->K * L > 0) {                                        \
            folded = (T *)fc_malloc((size_t)(s->K * L) * sizeof(T));         \
            if (folded == NULL)                                              \
                return FC_ENOMEM;                                            \
            FOLD(s->K, L, w, wscale, folded);                                \
        }                                                                    \
        err = IM2COL(s, x, folded ? folded : w, bias, relu, y);              \
        free(folded);                                                        \
        return err;                                                          \
    }
CONV_FORWARD(float, fc_conv2d_f32, fc_conv2d_direct_f32, fc_conv2d_winograd_f32,
             fc_conv2d_streamed_f32, fc_conv2d_im2col_f32,
             fc_bn_fold_weight_f32)
/* float64 has no Winograd or streamed kernels: the direct algorithm runs */
CONV_FORWARD(double, fc_conv2d_f64, fc_conv2d_direct_f64, fc_conv2d_direct_f64,
             fc_conv2d_direct_f64, fc_conv2d_im2col_f64,
             fc_bn_fold_weight_f64)

/* FC_CONV_STREAMED, for the gradients: the weight gradient by im2col's
 * GEMM (few pixels: it writes the weight-sized result once) and the input
 * gradient by Winograd of few tiles where it applies (float32, dense
 * stride-1 3x3: reading the weight as stored), else by the streamed GEMM
 * (a stride-1 convolution with the flipped weight); the other algorithms
 * compute both. */
#define CONV_BACKWARD(T, SUF)                                                       \
    static int backward_##SUF(const fc_conv_shape *s, int algo, const T *gy,       \
                              const T *x, const T *w, T *gx, T *gw)                \
    {                                                                               \
        int err;                                                                    \
        if (algo == FC_CONV_IM2COL)                                                 \
            return fc_conv2d_backward_im2col_##SUF(s, gy, x, w, gx, gw);           \
        if (algo != FC_CONV_STREAMED)                                               \
            return fc_conv2d_backward_direct_##SUF(s, gy, x, w, algo, gx, gw);     \
        err = fc_conv2d_backward_im2col_##SUF(s, gy, x, w, NULL, gw);              \
        return err ? err : fc_conv2d_backward_direct_##SUF(s, gy, x, w, algo, gx, NULL); \
    }
CONV_BACKWARD(float, f32)
CONV_BACKWARD(double, f64)

int fc_conv2d_backward_f32(const fc_conv_shape *s, int algo, const float *gy,
                           const float *x, const float *w, float *gx,
                           float *gw, float *gb)
{
    if (gb)
        bias_grad_f32(s, gy, gb);
    return backward_f32(s, algo, gy, x, w, gx, gw);
}

int fc_conv2d_backward_f64(const fc_conv_shape *s, int algo, const double *gy,
                           const double *x, const double *w, double *gx,
                           double *gw, double *gb)
{
    if (gb)
        bias_grad_f64(s, gy, gb);
    return backward_f64(s, algo, gy, x, w, gx, gw);
}

/* The batch-norm micro-kernels' interface (batchnorm.c drives,
 * bn_kernels_{generic,avx2,avx512}.c compute).
 *
 * Each micro-kernel works on one contiguous run of n values of one channel.
 * The reductions accumulate in double and add their results into out[];
 * the element-wise ones compute in the data's own type.  For float32 a
 * double mean m is carried as mhi + mlo (two floats): (x - mhi) - mlo keeps
 * x - m accurate to float precision of the difference, not of the mean. */
#ifndef FC_BN_KERNELS_H
#define FC_BN_KERNELS_H

#include <stdint.h>

#define FC_BN_FNS(T, P)                                                        \
    /* out[0] += sum(x - k), out[1] += sum((x - k)^2) */                       \
    typedef void (*P##_bn_stats_fn)(const T *x, int64_t n, double k,           \
                                    double *out);                              \
    /* out[0..3] += sum(d), sum(d^2), sum(g), sum(g d) with d = x - k */       \
    typedef void (*P##_bn_stats_grad_fn)(const T *x, const T *g, int64_t n,    \
                                         double k, double *out);               \
    /* y = ((x - mhi) - mlo) * scale + shift */                                \
    typedef void (*P##_bn_affine_fn)(const T *x, int64_t n, T mhi, T mlo,      \
                                     T scale, T shift, T *y);                  \
    /* gx = kg * g + (a * ((x - mhi) - mlo) + c) */                            \
    typedef void (*P##_bn_grad_fn)(const T *g, const T *x, int64_t n, T kg,    \
                                   T mhi, T mlo, T a, T c, T *gx);             \
    /* gx = kg * g;  out[0..1] += sum(g), sum(g (x - m)) */                    \
    typedef void (*P##_bn_grad_eval_fn)(const T *g, const T *x, int64_t n,     \
                                        double m, T kg, T *gx, double *out);   \
    /* y = (T)((double)x * s): one rounding of the double product */           \
    typedef void (*P##_bn_scale_fn)(const T *x, int64_t n, double s, T *y);    \
    /* Row forms: the same per position i of `rows` rows (ldx apart), the    \
     * per-channel values given as arrays along the row, sums accumulated     \
     * per position (in registers down the rows, then into the arrays). */   \
    /* s1[i] += x[r][i] - k[i], s2[i] += (x[r][i] - k[i])^2 */                  \
    typedef void (*P##_bn_rstats_fn)(const T *x, int64_t ldx, int64_t rows,    \
                                     int64_t n, const double *k, double *s1,   \
                                     double *s2);                              \
    /* and sg[i] += g[r][i], sgd[i] += g[r][i] (x[r][i] - k[i]) */              \
    typedef void (*P##_bn_rstats_grad_fn)(const T *x, const T *g, int64_t ldx, \
                                          int64_t rows, int64_t n,             \
                                          const double *k, double *s1,         \
                                          double *s2, double *sg,              \
                                          double *sgd);                        \
    typedef void (*P##_bn_raffine_fn)(const T *x, int64_t n, const T *mhi,     \
                                      const T *mlo, const T *scale,            \
                                      const T *shift, T *y);                   \
    typedef void (*P##_bn_rgrad_fn)(const T *g, const T *x, int64_t n,         \
                                    const T *kg, const T *mhi, const T *mlo,   \
                                    const T *a, const T *c, T *gx);            \
    /* gx = kg g; sg[i] += g[r][i], sgd[i] += g[r][i] (x[r][i] - m[i]) */      \
    typedef void (*P##_bn_rgrad_eval_fn)(const T *g, const T *x, int64_t ldx,  \
                                         int64_t rows, int64_t n,              \
                                         const double *m, const T *kg, T *gx,  \
                                         double *sg, double *sgd);             \
    typedef struct {                                                           \
        P##_bn_stats_fn stats;                                                 \
        P##_bn_stats_grad_fn stats_grad;                                       \
        P##_bn_affine_fn affine;                                               \
        P##_bn_grad_fn grad;                                                   \
        P##_bn_grad_eval_fn grad_eval;                                         \
        P##_bn_scale_fn scale;                                                 \
        P##_bn_rstats_fn rstats;                                               \
        P##_bn_rstats_grad_fn rstats_grad;                                     \
        P##_bn_raffine_fn raffine;                                             \
        P##_bn_rgrad_fn rgrad;                                                 \
        P##_bn_rgrad_eval_fn rgrad_eval;                                       \
    } P##_bn_kernels;

FC_BN_FNS(float, f32)
FC_BN_FNS(double, f64)

/* One table per dtype and instruction set, named dtype_bn_isa. */
extern const f32_bn_kernels f32_bn_generic, f32_bn_avx2, f32_bn_avx512;
extern const f64_bn_kernels f64_bn_generic, f64_bn_avx2, f64_bn_avx512;

#endif

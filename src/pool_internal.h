/* The pooling micro-kernel interface (pool.c drives, f32_pool_*.c,
 * f64_pool_*.c and pool_generic.c compute; pool_kernel_tmpl.h is the body
 * they share).
 *
 * Forward: a micro-kernel computes n consecutive output columns, whose
 * windows lie wholly inside the input along the row ("interior" columns),
 * of `rows` consecutive output rows; output columns run along the vector
 * lanes.  The driver clips the windows' rows to the input (nr rows remain,
 * rstep apart, the same count for all the rows of a call) and computes the
 * border columns itself.  Input rows of a window are arithmetic (dilation
 * dh), so two numbers describe them.
 *
 * Variants: ROW takes kw and sw at run time, S1 kw at run time and stride 1;
 * K2S2, K3S2 and K3S1 are the common 2x2/s2, 3x3/s2 and 3x3/s1 windows with
 * the window width and stride compiled in (their heights, dilation and
 * padding still come at run time). */
#ifndef FC_POOL_INTERNAL_H
#define FC_POOL_INTERNAL_H

#include <stdint.h>

#include "fastconv.h"

typedef struct {
    int64_t nr;       /* window rows inside the input (>= 1) */
    int64_t rstep;    /* plane offset between them: dh * W */
    int64_t kw, sw, dw;
    int64_t n;        /* output columns per row */
    int64_t rows;     /* output rows (>= 1) */
    int64_t xrow;     /* plane offset from one output row's taps to the next's */
    int64_t yrow;     /* output (and index) elements from one row to the next */
    int64_t off;      /* plane offset of the first tap of the first output:
                         ih * W + iw of (first window row, column tap 0) */
    int64_t avail;    /* elements readable from the plane's start on (to the
                         end of the input): a partial last vector whose
                         full-width loads stay below it loads full width */
} fc_pool_row;

enum {
    FC_POOL_ROW = 0, FC_POOL_S1, FC_POOL_K2S2, FC_POOL_K3S2, FC_POOL_K3S1,
    FC_POOL_VARIANTS
};

/* x: the input plane; y, ind: the first output (and index). */
typedef void (*fc_maxpool_idx_f32_fn)(const fc_pool_row *r, const float *x,
                                      float *y, int64_t *ind);
typedef void (*fc_maxpool_f32_fn)(const fc_pool_row *r, const float *x,
                                  float *y);
typedef void (*fc_avgpool_f32_fn)(const fc_pool_row *r, const float *x,
                                  float div, float *y);
typedef void (*fc_maxpool_idx_f64_fn)(const fc_pool_row *r, const double *x,
                                      double *y, int64_t *ind);
typedef void (*fc_maxpool_f64_fn)(const fc_pool_row *r, const double *x,
                                  double *y);
typedef void (*fc_avgpool_f64_fn)(const fc_pool_row *r, const double *x,
                                  double div, double *y);

/* The rest of the kernel set, per dtype:
 *   avgpool_global(planes, size, x, div, y): y[i] = sum of plane i / div;
 *   2-D, `rows` rows of n values, each array with its row stride (as, ...):
 *   avgpool_div(rows, n, a, as, div, ds, dst, ts):
 *                                     dst[r][i] = a[r][i] / div[r][i];
 *   avgpool_sumrows(rows, nsum, sstride, n, src, ss, dst, ts):
 *                                     dst[r][i] = sum_{j < nsum} src[r][j sstride + i];
 *   avgpool_sumrowsdiv(rows, nsum, sstride, n, src, ss, div, ds, dst, ts):
 *                                     the same sum / div[r][i];
 *   1-D:
 *   avgpool_sums1(kw, v, n, dst):     dst[i] = sum_{s < kw} v[i - s];
 *   avgpool_dup2(v, n, dst):          dst[i] = v[i / 2]. */
#define FC_POOL_KERNEL_SET(T, DT)                                            \
    typedef struct {                                                         \
        fc_maxpool_idx_##DT##_fn max_idx[FC_POOL_VARIANTS];                  \
        fc_maxpool_##DT##_fn max[FC_POOL_VARIANTS];                          \
        fc_avgpool_##DT##_fn avg[FC_POOL_VARIANTS];                          \
        void (*avg_global)(int64_t, int64_t, const T *, T, T *);             \
        void (*div)(int64_t, int64_t, const T *, int64_t, const T *,         \
                    int64_t, T *, int64_t);                                  \
        void (*sum_rows)(int64_t, int64_t, int64_t, int64_t, const T *,      \
                         int64_t, T *, int64_t);                             \
        void (*sum_rows_div)(int64_t, int64_t, int64_t, int64_t, const T *,  \
                             int64_t, const T *, int64_t, T *, int64_t);     \
        void (*sum_s1)(int64_t, const T *, int64_t, T *);                    \
        void (*dup2)(const T *, int64_t, T *);                               \
        int idx32;    /* indices tracked in 32 bits: planes < 2^31 only */   \
    } fc_pool_##DT##_kernels;
FC_POOL_KERNEL_SET(float, f32)
FC_POOL_KERNEL_SET(double, f64)
#undef FC_POOL_KERNEL_SET

/* One kernel set per dtype and instruction-set level. */
extern const fc_pool_f32_kernels fc_pool_f32_generic, fc_pool_f32_avx2,
    fc_pool_f32_avx512;
extern const fc_pool_f64_kernels fc_pool_f64_generic, fc_pool_f64_avx2,
    fc_pool_f64_avx512;

#endif

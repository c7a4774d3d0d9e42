/* Pooling entry points (pool.c).
 *
 * Tensors are C-contiguous NCHW; every (n, c) plane is pooled on its own.
 * The Python layer has validated the geometry (fastconv/_params.py): P, Q >= 1,
 * padding at most half the kernel, and every window holds at least one
 * element of the input.  Max-pool indices are int64 flat indices ih * W + iw
 * into each input plane, as in PyTorch. */
#ifndef FC_POOL_H
#define FC_POOL_H

#include <stdint.h>

typedef struct {
    int64_t N, C, H, W;     /* input */
    int64_t P, Q;           /* output rows and columns */
    int64_t kh, kw;         /* window */
    int64_t sh, sw;         /* stride */
    int64_t ph, pw;         /* padding, the same on both sides */
    int64_t dh, dw;         /* dilation (1 for average pooling) */
} fc_pool_shape;

/* Return 0, or FC_ENOMEM (fastconv.h) when a workspace cannot be allocated. */

/* y = max over each window; indices (may be NULL: then not computed) = where.
 * A NaN wins and the last NaN's index is kept; ties keep the first element
 * in row-major order; padding never wins. */
int fc_max_pool2d_f32(const fc_pool_shape *s, const float *x, float *y,
                      int64_t *indices);
int fc_max_pool2d_f64(const fc_pool_shape *s, const double *x, double *y,
                      int64_t *indices);

/* gx (N x C x H x W) = 0, then gy[n, c, i] added at gx[n, c, indices[n, c, i]]
 * for every i < P * Q, in order.  Each plane's indices are checked before
 * anything is added through them: when one lies outside [0, H * W) the call
 * returns FC_EINDEX, having written only inside gx, whose contents are then
 * undefined.  (Checking here rather than in a separate pass saves a read of
 * the indices: the check and the scatter read the same plane from cache.)
 * Only N, C, H, W, P and Q of the shape are read. */
int fc_max_pool2d_backward_f32(const fc_pool_shape *s, const float *gy,
                               const int64_t *indices, float *gx);
int fc_max_pool2d_backward_f64(const fc_pool_shape *s, const double *gy,
                               const int64_t *indices, double *gx);

/* y = sum over each window's in-bounds elements / divisor: divisor_override
 * when it is not 0, else the window's size counting padding (but not what
 * ceil_mode adds past it) when count_include_pad, else the number of
 * in-bounds elements (PyTorch's rule). */
int fc_avg_pool2d_f32(const fc_pool_shape *s, int count_include_pad,
                      int64_t divisor_override, const float *x, float *y);
int fc_avg_pool2d_f64(const fc_pool_shape *s, int count_include_pad,
                      int64_t divisor_override, const double *x, double *y);

/* gx = gradient of avg_pool2d: each input element receives gy / divisor of
 * every window that holds it. */
int fc_avg_pool2d_backward_f32(const fc_pool_shape *s, int count_include_pad,
                               int64_t divisor_override, const float *gy,
                               float *gx);
int fc_avg_pool2d_backward_f64(const fc_pool_shape *s, int count_include_pad,
                               int64_t divisor_override, const double *gy,
                               double *gx);

#endif

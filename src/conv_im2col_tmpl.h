/* im2col convolution, written once for both float types.
 *
 * Included by conv_im2col.c with T (float or double), FN(name) (adds the
 * dtype suffix) and GEMM (fc_sgemm_rm or fc_dgemm_rm) defined.
 *
 * The column matrix is built for a tile of `tp` consecutive output pixels
 * (flattened over P x Q) at a time, so its size is bounded whatever the
 * image.  All parallelism is ours: the BLAS runs on one thread inside our
 * OpenMP threads (its own thread pool, spinning beside ours on the same
 * cores, costs more than it gives).  The forward pass splits (image, group,
 * tile) items over threads; the backward pass splits images and groups when
 * there are enough of them, else the input channels of each tile, which own
 * disjoint columns of the weight gradient and disjoint input planes. */

/* Rows [c_lo, c_hi) x R x S of the column matrix of one image and group:
 * col[(c R + r) S + s][t] = x[c][ih][iw] for output pixel p0 + t, zero where
 * (ih, iw) falls in the padding.  With `add`, the adjoint instead: x += col
 * (col2im), used for the input gradient. */
static void FN(im2col_rows)(const fc_conv_shape *s, T *xg, int64_t c_lo,
                            int64_t c_hi, int64_t p0, int64_t tp, T *col,
                            int add)
{
    const int64_t R = s->R, S = s->S, H = s->H, W = s->W, Q = s->Q;
    const int64_t sw = s->sw;
    for (int64_t c = c_lo; c < c_hi; c++) {
        T *plane = xg + c * H * W;
        for (int64_t r = 0; r < R; r++) {
            for (int64_t ks = 0; ks < S; ks++) {
                T *dst = col + ((c * R + r) * S + ks) * tp;
                int64_t t = 0, op = p0;
                while (t < tp) {
                    const int64_t oh = op / Q, ow = op % Q;
                    const int64_t run = Q - ow < tp - t ? Q - ow : tp - t;
                    const int64_t ih = oh * s->sh - s->pt + r * s->dh;
                    const int64_t iw0 = ow * sw - s->pl + ks * s->dw;
                    T *out = dst + t;
                    int64_t lo = 0, hi = 0;   /* in-bounds pixels [lo, hi) */
                    if (ih >= 0 && ih < H && iw0 < W) {
                        lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
                        hi = (W - 1 - iw0) / sw + 1;
                        if (hi > run) hi = run;
                        if (lo > hi) lo = hi;
                    }
                    if (add) {
                        T *row = plane + ih * W + iw0;
                        for (int64_t j = lo; j < hi; j++)
                            row[j * sw] += out[j];
                    } else {
                        const T *row = plane + ih * W + iw0;
                        for (int64_t j = 0; j < lo; j++) out[j] = 0;
                        if (sw == 1) {
                            for (int64_t j = lo; j < hi; j++) out[j] = row[j];
                        } else {
                            for (int64_t j = lo; j < hi; j++) out[j] = row[j * sw];
                        }
                        for (int64_t j = hi; j < run; j++) out[j] = 0;
                    }
                    t += run;
                    op += run;
                }
            }
        }
    }
}

/* Output pixels per tile: the column matrix of one thread kept near 2 MB
 * (an L2's worth), never below 64 pixels, a multiple of 16. */
static int64_t FN(im2col_tile)(int64_t CRS, int64_t PQ)
{
    int64_t tp = ((int64_t)2 << 20) / (CRS * (int64_t)sizeof(T));
    tp = tp / 16 * 16;
    if (tp < 64) tp = 64;
    return tp < PQ ? tp : PQ;
}

/* Bias and ReLU on a freshly computed tile, while it is still in cache. */
static void FN(epilogue)(T *y, int64_t ld, int64_t rows, int64_t cols,
                         const T *bias, int relu)
{
    for (int64_t k = 0; k < rows; k++) {
        T *row = y + k * ld;
        const T b = bias ? bias[k] : (T)0;
        if (relu) {
            for (int64_t j = 0; j < cols; j++) {
                T v = row[j] + b;
                row[j] = v < 0 ? (T)0 : v;   /* NaN stays NaN, as torch.relu */
            }
        } else if (bias) {
            for (int64_t j = 0; j < cols; j++) row[j] += b;
        }
    }
}

/* One (image, group, tile) of the forward pass. */
static void FN(forward_item)(const fc_conv_shape *s, int64_t item,
                             int64_t ntiles, int64_t tp, const T *x,
                             const T *w, const T *bias, int relu, T *y,
                             T *col)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t CRS = Cg * s->R * s->S, PQ = s->P * s->Q, HW = s->H * s->W;
    const int64_t n = item / (G * ntiles), g = item / ntiles % G;
    const int64_t p0 = item % ntiles * tp;
    const int64_t len = tp < PQ - p0 ? tp : PQ - p0;
    T *xg = (T *)x + (n * s->C + g * Cg) * HW;
    const T *wg = w + g * Kg * CRS;
    T *yt = y + (n * s->K + g * Kg) * PQ + p0;

    if (len <= 0)
        return;
    if (col == NULL) {   /* pointwise: x itself is the column matrix */
        GEMM(0, 0, Kg, len, Cg, 1, wg, Cg, xg + p0, HW, 0, yt, PQ);
    } else {
        FN(im2col_rows)(s, xg, 0, Cg, p0, len, col, 0);
        GEMM(0, 0, Kg, len, CRS, 1, wg, CRS, col, len, 0, yt, PQ);
    }
    FN(epilogue)(yt, PQ, Kg, len, bias ? bias + g * Kg : NULL, relu);
}

int FN(fc_conv2d_im2col)(const fc_conv_shape *s, const T *x, const T *w,
                         const T *bias, int relu, T *y)
{
    const int64_t Cg = s->C / s->groups;
    const int64_t CRS = Cg * s->R * s->S, PQ = s->P * s->Q;
    const int64_t images = s->N * s->groups;
    const int pointwise = fc_conv_is_pointwise(s);
    const int nt = fc_get_num_threads();
    int64_t tp, ntiles;
    int err = 0;

    if (images == 0 || PQ == 0 || s->K == 0)
        return 0;
    tp = pointwise ? PQ : FN(im2col_tile)(CRS, PQ);
    ntiles = (PQ + tp - 1) / tp;
    /* Cut tiles finer until the items share out evenly over the threads. */
    while (!fc_split_outer(images * ntiles, nt) && nt > 1 && ntiles < PQ) {
        ntiles++;
        tp = (PQ + ntiles - 1) / ntiles;
    }
    ntiles = (PQ + tp - 1) / tp;

    fc_blas_threads(1);
#pragma omp parallel num_threads(nt)
    {
        T *col = pointwise ? NULL : (T *)fc_scratch(FC_SLOT_COL, CRS * tp * sizeof(T));
        const int ok = pointwise || col != NULL;
        if (!ok) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
#pragma omp for schedule(guided)
        for (int64_t it = 0; it < images * ntiles; it++)
            if (ok)
                FN(forward_item)(s, it, ntiles, tp, x, w, bias, relu, y, col);
    }
    fc_blas_threads(nt);
    return err;
}

/* The share [c0, c1) of input channels of one (image, group) and one tile
 * of output pixels [p0, p0 + len) in the backward pass: its columns of the
 * weight gradient (gwg, leading dimension CRS) and its planes of the input
 * gradient.  `col` holds the tile's full column matrix layout. */
static void FN(backward_share)(const fc_conv_shape *s, int64_t c0, int64_t c1,
                               int64_t p0, int64_t len, const T *gyg, T *xg,
                               const T *wg, T *gxg, T *gwg, T *col)
{
    const int64_t Kg = s->K / s->groups, Cg = s->C / s->groups;
    const int64_t RS = s->R * s->S, CRS = Cg * RS, PQ = s->P * s->Q;
    const int64_t HW = s->H * s->W, rows = (c1 - c0) * RS;
    if (rows <= 0)
        return;
    if (col == NULL) {   /* pointwise: x is the column matrix */
        if (gwg)
            GEMM(0, 1, Kg, c1 - c0, len, 1, gyg + p0, PQ, xg + c0 * HW + p0,
                 HW, 1, gwg + c0, Cg);
        if (gxg)
            GEMM(1, 0, c1 - c0, len, Kg, 1, wg + c0, Cg, gyg + p0, PQ, 0,
                 gxg + c0 * HW + p0, HW);
        return;
    }
    T *mine = col + c0 * RS * len;
    if (gwg) {
        FN(im2col_rows)(s, xg, c0, c1, p0, len, col, 0);
        GEMM(0, 1, Kg, rows, len, 1, gyg + p0, PQ, mine, len, 1,
             gwg + c0 * RS, CRS);
    }
    if (gxg) {
        GEMM(1, 0, rows, len, Kg, 1, wg + c0 * RS, CRS, gyg + p0, PQ, 0,
             mine, len);
        FN(im2col_rows)(s, gxg, c0, c1, p0, len, col, 1);
    }
}

int FN(fc_conv2d_backward_im2col)(const fc_conv_shape *s, const T *gy,
                                  const T *x, const T *w, T *gx, T *gw)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t CRS = Cg * s->R * s->S, PQ = s->P * s->Q;
    const int64_t HW = s->H * s->W, wsize = s->K * CRS;
    const int pointwise = fc_conv_is_pointwise(s);
    const int nt = fc_get_num_threads();
    const int64_t items = s->N * G;
    const int64_t tp = pointwise ? PQ : FN(im2col_tile)(CRS, PQ > 0 ? PQ : 1);
    const int outer = fc_split_outer(items, nt);
    T *partial = NULL;
    int err = 0;

    if (gx)
        memset(gx, 0, (size_t)(s->N * s->C * HW) * sizeof(T));
    if (gw)
        memset(gw, 0, (size_t)wsize * sizeof(T));
    if (items == 0 || PQ == 0 || (!gx && !gw))
        return 0;
    if (outer && gw) {
        /* Each thread sums its images' share of the weight gradient
         * privately; the shares are added in thread order, so a fixed
         * thread count gives the same bits every run. */
        partial = (T *)fc_calloc((size_t)(wsize * nt), sizeof(T));
        if (partial == NULL)
            return FC_ENOMEM;
    }

    fc_blas_threads(1);
#pragma omp parallel num_threads(nt)
    {
        int tid = 0, nthr = 1;
#ifdef FASTCONV_OPENMP
        tid = omp_get_thread_num();
        nthr = omp_get_num_threads();
#endif
        T *col = pointwise ? NULL : (T *)fc_scratch(FC_SLOT_COL, CRS * tp * sizeof(T));
        const int ok = pointwise || col != NULL;
        if (!ok) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
        if (outer) {
#pragma omp for schedule(static)
            for (int64_t it = 0; it < items; it++) {
                const int64_t n = it / G, g = it % G;
                T *mygw = partial ? partial + tid * wsize + g * Kg * CRS : NULL;
                for (int64_t p0 = 0; ok && p0 < PQ; p0 += tp)
                    FN(backward_share)(s, 0, Cg, p0, tp < PQ - p0 ? tp : PQ - p0,
                                       gy + (n * s->K + g * Kg) * PQ,
                                       (T *)x + (n * s->C + g * Cg) * HW,
                                       w + g * Kg * CRS,
                                       gx ? gx + (n * s->C + g * Cg) * HW : NULL,
                                       mygw, col);
            }
        } else {
            /* Every thread takes its channels of every tile; the shared
             * `col` of thread 0 is not needed, each has its own. */
            const int64_t c0 = Cg * tid / nthr, c1 = Cg * (tid + 1) / nthr;
            for (int64_t it = 0; it < items; it++) {
                const int64_t n = it / G, g = it % G;
                for (int64_t p0 = 0; ok && p0 < PQ; p0 += tp)
                    FN(backward_share)(s, c0, c1, p0, tp < PQ - p0 ? tp : PQ - p0,
                                       gy + (n * s->K + g * Kg) * PQ,
                                       (T *)x + (n * s->C + g * Cg) * HW,
                                       w + g * Kg * CRS,
                                       gx ? gx + (n * s->C + g * Cg) * HW : NULL,
                                       gw ? gw + g * Kg * CRS : NULL, col);
            }
        }
    }
    fc_blas_threads(nt);
    if (partial) {
        for (int t = 0; t < nt; t++)
            for (int64_t i = 0; i < wsize; i++)
                gw[i] += partial[t * wsize + i];
        free(partial);
    }
    return err;
}

/* im2col convolution, written once for both float types.
 *
 * Included by conv_im2col.c with T (float or double), FN(name) (adds the
 * dtype suffix) and GEMM (fc_sgemm_rm or fc_dgemm_rm) defined.
 *
 * The column matrix is built for a tile of `tp` consecutive output pixels
 * (flattened over P x Q) at a time, so its size is bounded whatever the
 * image.  Work is split two ways: across our OpenMP threads by (image,
 * group, tile) with the BLAS on one thread, or, when there are too few such
 * items, tile after tile with the BLAS threaded and the packing split over
 * channels. */

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

/* Packing (or its adjoint) of channels [0, Cg), split over `nt` threads by
 * channel: channels own disjoint rows of col and disjoint planes of x. */
static void FN(im2col)(const fc_conv_shape *s, T *xg, int64_t Cg, int64_t p0,
                       int64_t tp, T *col, int add, int nt)
{
    if (nt <= 1 || Cg < 2) {
        FN(im2col_rows)(s, xg, 0, Cg, p0, tp, col, add);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t c = 0; c < Cg; c++)
        FN(im2col_rows)(s, xg, c, c + 1, p0, tp, col, add);
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
                             T *col, int nt)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t CRS = Cg * s->R * s->S, PQ = s->P * s->Q, HW = s->H * s->W;
    const int64_t n = item / (G * ntiles), g = item / ntiles % G;
    const int64_t p0 = item % ntiles * tp;
    const int64_t len = tp < PQ - p0 ? tp : PQ - p0;
    T *xg = (T *)x + (n * s->C + g * Cg) * HW;
    const T *wg = w + g * Kg * CRS;
    T *yt = y + (n * s->K + g * Kg) * PQ + p0;

    if (col == NULL) {   /* pointwise: x itself is the column matrix */
        GEMM(0, 0, Kg, len, Cg, 1, wg, Cg, xg + p0, HW, 0, yt, PQ);
    } else {
        FN(im2col)(s, xg, Cg, p0, len, col, 0, nt);
        GEMM(0, 0, Kg, len, CRS, 1, wg, CRS, col, len, 0, yt, PQ);
    }
    FN(epilogue)(yt, PQ, Kg, len, bias ? bias + g * Kg : NULL, relu);
}

int FN(fc_conv2d_im2col)(const fc_conv_shape *s, const T *x, const T *w,
                         const T *bias, int relu, T *y)
{
    const int64_t Cg = s->C / s->groups;
    const int64_t CRS = Cg * s->R * s->S, PQ = s->P * s->Q;
    const int pointwise = fc_conv_is_pointwise(s);
    const int nt = fc_get_num_threads();
    int64_t tp, ntiles, items;
    int err = 0;

    if (s->N == 0 || PQ == 0 || s->K == 0)
        return 0;
    tp = pointwise ? PQ : FN(im2col_tile)(CRS, PQ);
    ntiles = (PQ + tp - 1) / tp;
    items = s->N * s->groups * ntiles;
    if (pointwise && items < nt) {   /* give a lone GEMM more columns to split */
        tp = (PQ + nt - 1) / nt;
        ntiles = (PQ + tp - 1) / tp;
        items = s->N * s->groups * ntiles;
    }

    if (fc_split_outer(items, nt)) {
        fc_blas_threads(1);
#pragma omp parallel num_threads(nt)
        {
            T *col = pointwise ? NULL : (T *)malloc(CRS * tp * sizeof(T));
            int ok = pointwise || col != NULL;
            if (!ok) {
#pragma omp atomic write
                err = FC_ENOMEM;
            }
#pragma omp for schedule(static)
            for (int64_t it = 0; it < items; it++)
                if (ok)
                    FN(forward_item)(s, it, ntiles, tp, x, w, bias, relu, y,
                                     col, 1);
            free(col);
        }
        fc_blas_threads(nt);
    } else {
        T *col = pointwise ? NULL : (T *)malloc(CRS * tp * sizeof(T));
        if (!pointwise && col == NULL)
            return FC_ENOMEM;
        for (int64_t it = 0; it < items; it++)
            FN(forward_item)(s, it, ntiles, tp, x, w, bias, relu, y, col, nt);
        free(col);
    }
    return err;
}

/* One (image, group) of the backward pass, tile after tile: the weight
 * gradient accumulates into gw (K/G x CRS of this group), the input gradient
 * is scattered back through the adjoint of the packing. */
static void FN(backward_item)(const fc_conv_shape *s, int64_t item, int64_t tp,
                              const T *gy, const T *x, const T *w, T *gx,
                              T *gw, T *col, int nt)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t CRS = Cg * s->R * s->S, PQ = s->P * s->Q, HW = s->H * s->W;
    const int64_t n = item / G, g = item % G;
    const int pointwise = col == NULL;
    T *xg = (T *)x + (n * s->C + g * Cg) * HW;
    T *gxg = gx ? gx + (n * s->C + g * Cg) * HW : NULL;
    const T *wg = w + g * Kg * CRS;
    T *gwg = gw ? gw + g * Kg * CRS : NULL;
    const T *gyg = gy + (n * s->K + g * Kg) * PQ;

    for (int64_t p0 = 0; p0 < PQ; p0 += tp) {
        const int64_t len = tp < PQ - p0 ? tp : PQ - p0;
        if (pointwise) {
            if (gwg)
                GEMM(0, 1, Kg, Cg, len, 1, gyg + p0, PQ, xg + p0, HW, 1, gwg, Cg);
            if (gxg)
                GEMM(1, 0, Cg, len, Kg, 1, wg, Cg, gyg + p0, PQ, 0, gxg + p0, HW);
            continue;
        }
        if (gwg) {
            FN(im2col)(s, xg, Cg, p0, len, col, 0, nt);
            GEMM(0, 1, Kg, CRS, len, 1, gyg + p0, PQ, col, len, 1, gwg, CRS);
        }
        if (gxg) {
            GEMM(1, 0, CRS, len, Kg, 1, wg, CRS, gyg + p0, PQ, 0, col, len);
            FN(im2col)(s, gxg, Cg, p0, len, col, 1, nt);
        }
    }
}

int FN(fc_conv2d_backward_im2col)(const fc_conv_shape *s, const T *gy,
                                  const T *x, const T *w, T *gx, T *gw)
{
    const int64_t Cg = s->C / s->groups;
    const int64_t CRS = Cg * s->R * s->S, PQ = s->P * s->Q;
    const int64_t wsize = s->K * CRS;
    const int pointwise = fc_conv_is_pointwise(s);
    const int nt = fc_get_num_threads();
    const int64_t items = s->N * s->groups;
    const int64_t tp = pointwise ? PQ : FN(im2col_tile)(CRS, PQ > 0 ? PQ : 1);
    int err = 0;

    if (gx)
        memset(gx, 0, (size_t)(s->N * s->C * s->H * s->W) * sizeof(T));
    if (gw)
        memset(gw, 0, (size_t)wsize * sizeof(T));
    if (items == 0 || PQ == 0 || (!gx && !gw))
        return 0;

    if (fc_split_outer(items, nt)) {
        /* Each thread sums its share of the weight gradient privately; the
         * shares are added in thread order, so a fixed thread count gives
         * the same bits every run. */
        T *partial = gw ? (T *)calloc((size_t)(wsize * nt), sizeof(T)) : NULL;
        if (gw && partial == NULL)
            return FC_ENOMEM;
        fc_blas_threads(1);
#pragma omp parallel num_threads(nt)
        {
            int tid = 0;
#ifdef FASTCONV_OPENMP
            tid = omp_get_thread_num();
#endif
            T *col = pointwise ? NULL : (T *)malloc(CRS * tp * sizeof(T));
            int ok = pointwise || col != NULL;
            if (!ok) {
#pragma omp atomic write
                err = FC_ENOMEM;
            }
#pragma omp for schedule(static)
            for (int64_t it = 0; it < items; it++)
                if (ok)
                    FN(backward_item)(s, it, tp, gy, x, w, gx,
                                      partial ? partial + tid * wsize : NULL,
                                      col, 1);
            free(col);
        }
        fc_blas_threads(nt);
        if (gw) {
            for (int t = 0; t < nt; t++)
                for (int64_t i = 0; i < wsize; i++)
                    gw[i] += partial[t * wsize + i];
            free(partial);
        }
    } else {
        T *col = pointwise ? NULL : (T *)malloc(CRS * tp * sizeof(T));
        if (!pointwise && col == NULL)
            return FC_ENOMEM;
        for (int64_t it = 0; it < items; it++)
            FN(backward_item)(s, it, tp, gy, x, w, gx, gw, col, nt);
        free(col);
    }
    return err;
}

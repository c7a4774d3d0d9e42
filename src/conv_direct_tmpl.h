/* Direct convolution driver, written once for both float types: weight
 * packing, tiling, masks, threading.  The micro-kernel (conv_direct.h) is
 * the only part that knows the instruction set.
 *
 * Included by conv_direct.c with T, FN(name) and KERNEL_T (the kernel
 * record type) defined, and FN(select_kernel)(depthwise) available. */

/* Weights of group g as [K/G blocks of kb][Cg][R][S][kb], zero-padded past
 * K/G so the micro-kernel never tests the channel count. */
static void FN(pack_weights)(const fc_conv_shape *s, int kb, const T *w,
                             T *wp)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t taps = s->R * s->S, nkb = (Kg + kb - 1) / kb;
    for (int64_t g = 0; g < G; g++)
        for (int64_t b = 0; b < nkb; b++) {
            T *dst = wp + (g * nkb + b) * Cg * taps * kb;
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t t = 0; t < taps; t++)
                    for (int64_t k = 0; k < kb; k++) {
                        const int64_t kk = b * kb + k;
                        dst[(c * taps + t) * kb + k] = kk < Kg ?
                            w[((g * Kg + kk) * Cg + c) * taps + t] : (T)0;
                    }
        }
}

/* Offsets and lane masks of the tile whose top-left output is (oh0, ow0). */
static void FN(tile_masks)(const fc_conv_shape *s, int lanes, int nv,
                           int64_t oh0, int64_t ow0, fc_direct_tile *t,
                           int64_t *row_off, int64_t *col_off, uint32_t *mask)
{
    const int64_t R = s->R, S = s->S;
    uint32_t colmask[S > 0 ? S : 1];
    for (int64_t ks = 0; ks < S; ks++) {
        const int64_t iw0 = ow0 * s->sw - s->pl + ks * s->dw;
        uint32_t m = 0;
        for (int l = 0; l < lanes; l++) {
            const int64_t iw = iw0 + l * s->sw;
            if (ow0 + l < s->Q && iw >= 0 && iw < s->W)
                m |= (uint32_t)1 << l;
        }
        col_off[ks] = iw0;
        colmask[ks] = m;
    }
    for (int j = 0; j < nv; j++)
        for (int64_t r = 0; r < R; r++) {
            const int64_t ih = (oh0 + j) * s->sh - s->pt + r * s->dh;
            const int valid = oh0 + j < s->P && ih >= 0 && ih < s->H;
            row_off[j * R + r] = valid ? ih * s->W : 0;
            for (int64_t ks = 0; ks < S; ks++)
                mask[(j * R + r) * S + ks] = valid ? colmask[ks] : 0;
        }
    t->nrows = s->P - oh0 < nv ? s->P - oh0 : nv;
    t->store_mask = 0;
    for (int l = 0; l < lanes && ow0 + l < s->Q; l++)
        t->store_mask |= (uint32_t)1 << l;
}

int FN(fc_conv2d_direct)(const fc_conv_shape *s, const T *x, const T *w,
                         const T *bias, int relu, T *y)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S, P = s->P, Q = s->Q;
    const KERNEL_T ker = FN(select_kernel)(Cg == 1);
    const int kb = ker.kb, nv = ker.nv, lanes = ker.lanes;
    const int64_t nkb = (Kg + kb - 1) / kb;
    const int64_t nrt = (P + nv - 1) / nv, nct = (Q + lanes - 1) / lanes;
    const int64_t items = s->N * G * nrt * nct * nkb;
    const int nt = fc_get_num_threads();
    T *wp, *bp;
    int err = 0;

    if (items == 0)
        return 0;
    wp = (T *)malloc((size_t)(G * nkb * Cg * R * S * kb) * sizeof(T));
    bp = (T *)calloc((size_t)(G * nkb * kb), sizeof(T));
    if (wp == NULL || bp == NULL) {
        free(wp);
        free(bp);
        return FC_ENOMEM;
    }
    FN(pack_weights)(s, kb, w, wp);
    if (bias)
        for (int64_t g = 0; g < G; g++)
            for (int64_t k = 0; k < Kg; k++)
                bp[g * nkb * kb + k] = bias[g * Kg + k];

    /* Channel blocks vary fastest: the input tile they share stays in cache. */
#pragma omp parallel num_threads(nt)
    {
        int64_t *row_off = (int64_t *)malloc(sizeof(int64_t) * (nv * R + S));
        uint32_t *mask = (uint32_t *)malloc(sizeof(uint32_t) * nv * R * S);
        fc_direct_tile t;
        int64_t last_tile = -1;
        const int ok = row_off != NULL && mask != NULL;
        if (!ok) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
        t.Cg = Cg; t.R = R; t.S = S;
        t.cstride = s->H * s->W; t.sw = s->sw;
        t.row_off = row_off; t.col_off = row_off + nv * R; t.mask = mask;
        t.ystride = P * Q; t.yrow = Q; t.relu = relu;
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            if (!ok)
                continue;
            const int64_t b = it % nkb, tile = it / nkb;
            const int64_t ct = tile % nct, rt = tile / nct % nrt;
            const int64_t g = tile / (nct * nrt) % G, n = tile / (nct * nrt * G);
            const int64_t oh0 = rt * nv, ow0 = ct * lanes;
            if (tile != last_tile) {
                FN(tile_masks)(s, lanes, nv, oh0, ow0, &t, row_off,
                               row_off + nv * R, mask);
                last_tile = tile;
            }
            t.nk = Kg - b * kb < kb ? Kg - b * kb : kb;
            ker.fn(&t, x + (n * s->C + g * Cg) * s->H * s->W,
                   wp + (g * nkb + b) * Cg * R * S * kb,
                   bias ? bp + (g * nkb + b) * kb : NULL,
                   y + ((n * s->K + g * Kg + b * kb) * P + oh0) * Q + ow0);
        }
        free(row_off);
        free(mask);
    }
    free(wp);
    free(bp);
    return err;
}

/* Input gradient of a stride-1 convolution: a direct convolution of the
 * output gradient with the weight flipped in space and transposed in
 * channels, padded by dilation * (kernel - 1) - padding on the top/left. */
static int FN(grad_input_stride1)(const fc_conv_shape *s, const T *gy,
                                  const T *w, T *gx)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S;
    fc_conv_shape t = *s;
    T *wt = (T *)malloc((size_t)(s->K * Cg * R * S) * sizeof(T));
    int err;
    if (wt == NULL)
        return FC_ENOMEM;
    for (int64_t g = 0; g < G; g++)
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t k = 0; k < Kg; k++)
                for (int64_t r = 0; r < R; r++)
                    for (int64_t ks = 0; ks < S; ks++)
                        wt[(((g * Cg + c) * Kg + k) * R + r) * S + ks] =
                            w[(((g * Kg + k) * Cg + c) * R + R - 1 - r) * S + S - 1 - ks];
    t.C = s->K; t.H = s->P; t.W = s->Q;
    t.K = s->C; t.P = s->H; t.Q = s->W;
    t.pt = s->dh * (R - 1) - s->pt;
    t.pl = s->dw * (S - 1) - s->pl;
    err = FN(fc_conv2d_direct)(&t, gy, wt, NULL, 0, gx);
    free(wt);
    return err;
}

/* Input gradient for any stride, gathered: each input pixel sums the output
 * gradients whose windows cover it.  Threads own disjoint (n, c) planes. */
static void FN(grad_input_gather)(const fc_conv_shape *s, const T *gy,
                                  const T *w, T *gx)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S, P = s->P, Q = s->Q, H = s->H, W = s->W;
#pragma omp parallel for num_threads(fc_get_num_threads()) schedule(static)
    for (int64_t nc = 0; nc < s->N * s->C; nc++) {
        const int64_t n = nc / s->C, c = nc % s->C, g = c / Cg;
        T *out = gx + nc * H * W;
        for (int64_t ih = 0; ih < H; ih++)
            for (int64_t iw = 0; iw < W; iw++) {
                T acc = 0;
                for (int64_t r = 0; r < R; r++) {
                    const int64_t hp = ih + s->pt - r * s->dh;
                    if (hp < 0 || hp % s->sh || hp / s->sh >= P)
                        continue;
                    for (int64_t ks = 0; ks < S; ks++) {
                        const int64_t wq = iw + s->pl - ks * s->dw;
                        if (wq < 0 || wq % s->sw || wq / s->sw >= Q)
                            continue;
                        for (int64_t k = 0; k < Kg; k++)
                            acc += gy[((n * s->K + g * Kg + k) * P + hp / s->sh) * Q + wq / s->sw] *
                                   w[(((g * Kg + k) * Cg + c % Cg) * R + r) * S + ks];
                    }
                }
                out[ih * W + iw] = acc;
            }
    }
}

/* Weight gradient by direct correlation of the input with the output
 * gradient; threads own disjoint output channels, so no reduction races. */
static void FN(grad_weight)(const fc_conv_shape *s, const T *gy, const T *x,
                            T *gw)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S, P = s->P, Q = s->Q, H = s->H, W = s->W;
    const int64_t sw = s->sw;
#pragma omp parallel for num_threads(fc_get_num_threads()) schedule(static)
    for (int64_t kk = 0; kk < s->K; kk++) {
        const int64_t g = kk / Kg;
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t r = 0; r < R; r++)
                for (int64_t ks = 0; ks < S; ks++) {
                    /* output columns whose input column is inside the image */
                    const int64_t off = ks * s->dw - s->pl;
                    int64_t q_lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
                    int64_t q_hi = off >= W ? 0 : (W - 1 - off) / sw + 1;
                    if (q_hi > Q) q_hi = Q;
                    T acc = 0;
                    for (int64_t n = 0; n < s->N; n++) {
                        const T *gyk = gy + (n * s->K + kk) * P * Q;
                        const T *xc = x + (n * s->C + g * Cg + c) * H * W;
                        for (int64_t p = 0; p < P; p++) {
                            const int64_t ih = p * s->sh - s->pt + r * s->dh;
                            if (ih < 0 || ih >= H)
                                continue;
                            const T *gr = gyk + p * Q;
                            const T *xr = xc + ih * W + off;
                            for (int64_t q = q_lo; q < q_hi; q++)
                                acc += gr[q] * xr[q * sw];
                        }
                    }
                    gw[((kk * Cg + c) * R + r) * S + ks] = acc;
                }
    }
}

int FN(fc_conv2d_backward_direct)(const fc_conv_shape *s, const T *gy,
                                  const T *x, const T *w, T *gx, T *gw)
{
    int err = 0;
    if (gw)
        FN(grad_weight)(s, gy, x, gw);
    if (gx) {
        if (s->sh == 1 && s->sw == 1 && s->P > 0 && s->Q > 0)
            err = FN(grad_input_stride1)(s, gy, w, gx);
        else
            FN(grad_input_gather)(s, gy, w, gx);
    }
    return err;
}

/* Direct convolution driver, written once for both float types: weight
 * packing, tiling, masks, threading.  The micro-kernel (conv_direct.h) is
 * the only part that knows the instruction set.
 *
 * Included by conv_direct.c with T, FN(name) and KERNEL_T (the kernel
 * record type) defined, and FN(select_kernel)(depthwise) available. */

/* Weights of group g as [K/G blocks of kb][R*S taps][Cg][kb], zero-padded
 * past K/G so the micro-kernel never tests the channel count.  For layers
 * with megabytes of weights the repacking costs as much as the convolution
 * itself, so it is split over threads by block, and reads each block's kb
 * weight rows in order while its writes stay in the block (in L2). */
static void FN(pack_weights)(const fc_conv_shape *s, int kb, const T *w,
                             T *wp)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t taps = s->R * s->S, nkb = (Kg + kb - 1) / kb;
#pragma omp parallel for num_threads(fc_get_num_threads()) schedule(static)
    for (int64_t gb = 0; gb < G * nkb; gb++) {
        const int64_t g = gb / nkb, b = gb % nkb;
        const int64_t nk = Kg - b * kb < kb ? Kg - b * kb : kb;
        const T *src = w + (g * Kg + b * kb) * Cg * taps;
        T *dst = wp + gb * Cg * taps * kb;
        for (int64_t c = 0; c < Cg; c++)
            for (int64_t t = 0; t < taps; t++) {
                T *d = dst + (t * Cg + c) * kb;
                for (int64_t k = 0; k < nk; k++)
                    d[k] = src[(k * Cg + c) * taps + t];
                for (int64_t k = nk; k < kb; k++)
                    d[k] = 0;
            }
    }
}

/* Input offsets and lane masks, per tap and row, of the tile whose top-left
 * output is (oh0, ow0).  Rows outside the image get an empty mask (and
 * offset 0), so their loads read nothing. */
static void FN(tile_masks)(const fc_conv_shape *s, int lanes, int nv,
                           int64_t oh0, int64_t ow0, fc_direct_tile *t,
                           int64_t *off, uint32_t *mask)
{
    const int64_t R = s->R, S = s->S;
    for (int64_t ks = 0; ks < S; ks++) {
        const int64_t iw0 = ow0 * s->sw - s->pl + ks * s->dw;
        uint32_t colmask = 0;
        for (int l = 0; l < lanes; l++) {
            const int64_t iw = iw0 + l * s->sw;
            if (ow0 + l < s->Q && iw >= 0 && iw < s->W)
                colmask |= (uint32_t)1 << l;
        }
        for (int64_t r = 0; r < R; r++)
            for (int j = 0; j < nv; j++) {
                const int64_t ih = (oh0 + j) * s->sh - s->pt + r * s->dh;
                const int valid = oh0 + j < s->P && ih >= 0 && ih < s->H;
                const int64_t i = (r * S + ks) * nv + j;
                off[i] = valid ? ih * s->W + iw0 : 0;
                mask[i] = valid ? colmask : 0;
            }
    }
    t->nrows = s->P - oh0 < nv ? s->P - oh0 : nv;
    t->store_mask = 0;
    for (int l = 0; l < lanes && ow0 + l < s->Q; l++)
        t->store_mask |= (uint32_t)1 << l;
}

/* Packed weights and bias of one call, and the micro-kernel they suit. */
typedef struct {
    KERNEL_T ker;
    int64_t nkb;     /* channel blocks per group */
    const T *wp;     /* [G][nkb][taps][Cg][kb] */
    const T *bp;     /* [G][nkb][kb] or NULL */
} FN(direct_plan);

/* Work items are (image, tile, group, channel block).  Which of tile and
 * block varies fastest decides what stays in cache between consecutive
 * micro-kernel calls: the input tile (blocks fastest) or the block's packed
 * weights (tiles fastest).  Layers whose weights outweigh an image's input
 * (deep, narrow layers: 512 channels at 7x7 or 14x14) stream megabytes of
 * weights from L3 per tile in the first order, so they take the second. */
static int FN(weights_outer)(const fc_conv_shape *s)
{
    return s->K * s->R * s->S > s->H * s->W;
}

static inline void FN(decode_item)(int64_t it, int weights_outer, int64_t nkb,
                                   int64_t G, int64_t ntiles, int64_t *b,
                                   int64_t *g, int64_t *tile, int64_t *n)
{
    if (weights_outer) {
        *tile = it % ntiles;
        *b = it / ntiles % nkb;
        *g = it / (ntiles * nkb) % G;
        *n = it / (ntiles * nkb * G);
    } else {
        *b = it % nkb;
        *g = it / nkb % G;
        *tile = it / (nkb * G) % ntiles;
        *n = it / (nkb * G * ntiles);
    }
}

/* The row-tiled walk over the output: tiles of NV rows x LANES columns,
 * lanes along each output row, offsets and masks per tile. */
static int FN(direct_rows)(const fc_conv_shape *s, const FN(direct_plan) *pl,
                           const T *x, int relu, T *y)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S, P = s->P, Q = s->Q;
    const int kb = pl->ker.kb, nv = pl->ker.nv, lanes = pl->ker.lanes;
    const int64_t nkb = pl->nkb;
    const int64_t nrt = (P + nv - 1) / nv, nct = (Q + lanes - 1) / lanes;
    const int64_t items = s->N * G * nrt * nct * nkb;
    const int weights_outer = FN(weights_outer)(s);
    int err = 0;

#pragma omp parallel num_threads(fc_get_num_threads())
    {
        int64_t *off = (int64_t *)malloc(sizeof(int64_t) * nv * R * S);
        uint32_t *mask = (uint32_t *)malloc(sizeof(uint32_t) * nv * R * S);
        fc_direct_tile t;
        int64_t last_tile = -1;
        const int ok = off != NULL && mask != NULL;
        if (!ok) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
        t.Cg = Cg; t.taps = R * S; t.cblock = FC_DIRECT_CBLOCK;
        t.cstride = s->H * s->W; t.sw = s->sw;
        t.off = off; t.mask = mask;
        t.ystride = P * Q; t.yrow = Q; t.relu = relu;
#pragma omp for schedule(static)
        for (int64_t it = 0; it < items; it++) {
            if (!ok)
                continue;
            int64_t b, g, tile, n;
            FN(decode_item)(it, weights_outer, nkb, G, nrt * nct, &b, &g, &tile, &n);
            const int64_t ct = tile % nct, rt = tile / nct;
            const int64_t oh0 = rt * nv, ow0 = ct * lanes;
            if (n * nrt * nct + tile != last_tile) {
                FN(tile_masks)(s, lanes, nv, oh0, ow0, &t, off, mask);
                last_tile = n * nrt * nct + tile;
            }
            t.nk = Kg - b * kb < kb ? Kg - b * kb : kb;
            pl->ker.fn(&t, x + (n * s->C + g * Cg) * s->H * s->W,
                       pl->wp + (g * nkb + b) * Cg * R * S * kb,
                       pl->bp ? pl->bp + (g * nkb + b) * kb : NULL,
                       y + ((n * s->K + g * Kg + b * kb) * P + oh0) * Q + ow0);
        }
        free(off);
        free(mask);
    }
    return err;
}

/* Geometry of the flat walk (stride 1 only).  The input is copied with its
 * padding into planes Wp = Q + dw (S - 1) wide; output pixel (oh, ow) then
 * reads plane offset oh Wp + ow + r dh Wp + s dw, linear in o = oh Wp + ow.
 * Lanes run over o, across row ends, and the Wp - Q columns past each row's
 * end are computed and dropped.  Narrow images fill their vectors this way
 * (a 7-wide image uses 7 of every 9 lanes instead of 7 of 16). */
typedef struct {
    int64_t Hp, Wp;      /* padded plane */
    int64_t L;           /* output positions P * Wp, rounded up to tiles */
    int64_t cs;          /* channel stride of the padded copy */
    int64_t ntile;       /* tiles of NV vectors */
} FN(flat_geometry);

static FN(flat_geometry) FN(flat_plan)(const fc_conv_shape *s, int nv,
                                       int lanes)
{
    FN(flat_geometry) f;
    const int64_t span = (int64_t)nv * lanes;
    f.Hp = s->P + s->dh * (s->R - 1);
    f.Wp = s->Q + s->dw * (s->S - 1);
    f.ntile = (s->P * f.Wp + span - 1) / span;
    f.L = f.ntile * span;
    /* every lane of every tile reads inside its channel's copy */
    f.cs = f.L + s->dh * (s->R - 1) * f.Wp + s->dw * (s->S - 1);
    return f;
}

/* Whether the flat walk fills more lanes than the row walk, by a margin
 * that pays for its two copies. */
static int FN(use_flat)(const fc_conv_shape *s, int lanes)
{
    const int64_t Wp = s->Q + s->dw * (s->S - 1);
    const int64_t rows = (s->Q + lanes - 1) / lanes * lanes;
    const int64_t pb = s->P + s->dh * (s->R - 1) - s->H - s->pt;
    const int64_t pr = Wp - s->W - s->pl;
    if (s->sh != 1 || s->sw != 1 || s->pt < 0 || s->pl < 0 || pb < 0 || pr < 0)
        return 0;
    return (double)s->Q / Wp > (double)s->Q / rows + 0.05;
}

static int FN(direct_flat)(const fc_conv_shape *s, const FN(direct_plan) *pl,
                           const T *x, int relu, T *y)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S, P = s->P, Q = s->Q, H = s->H, W = s->W;
    const int kb = pl->ker.kb, nv = pl->ker.nv, lanes = pl->ker.lanes;
    const int64_t nkb = pl->nkb;
    const FN(flat_geometry) f = FN(flat_plan)(s, nv, lanes);
    const int nt = fc_get_num_threads();
    /* images per pass: copies of a few MB, at least one image */
    const int64_t per_image = (s->C * f.cs + s->K * f.L) * (int64_t)sizeof(T);
    const int weights_outer = FN(weights_outer)(s);
    int64_t nb = ((int64_t)8 << 20) / (per_image > 0 ? per_image : 1);
    int64_t *off;
    uint32_t *mask;
    T *xp, *yp;
    int err = 0;

    if (nb < 1) nb = 1;
    if (nb > s->N) nb = s->N;
    xp = (T *)fc_scratch(FC_SLOT_INPUT, (size_t)(nb * s->C * f.cs) * sizeof(T));
    yp = (T *)fc_scratch(FC_SLOT_OUTPUT, (size_t)(nb * s->K * f.L) * sizeof(T));
    off = (int64_t *)malloc(sizeof(int64_t) * nv * R * S);
    mask = (uint32_t *)malloc(sizeof(uint32_t) * nv * R * S);
    if (!xp || !yp || !off || !mask) {
        free(off); free(mask);
        return FC_ENOMEM;
    }
    for (int64_t r = 0; r < R; r++)
        for (int64_t ks = 0; ks < S; ks++)
            for (int j = 0; j < nv; j++) {
                off[(r * S + ks) * nv + j] = j * lanes + r * s->dh * f.Wp + ks * s->dw;
                mask[(r * S + ks) * nv + j] = lanes == 32 ? 0xffffffffu : ((uint32_t)1 << lanes) - 1;
            }

    for (int64_t n0 = 0; n0 < s->N; n0 += nb) {
        const int64_t nn = s->N - n0 < nb ? s->N - n0 : nb;
        const int64_t items = nn * f.ntile * G * nkb;
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t nc = 0; nc < nn * s->C; nc++) {
            const T *src = x + (n0 * s->C + nc) * H * W;
            T *dst = xp + nc * f.cs;
            memset(dst, 0, (size_t)f.cs * sizeof(T));
            for (int64_t ih = 0; ih < H; ih++)
                memcpy(dst + (ih + s->pt) * f.Wp + s->pl, src + ih * W,
                       (size_t)W * sizeof(T));
        }
#pragma omp parallel num_threads(nt)
        {
            fc_direct_tile t;
            t.Cg = Cg; t.taps = R * S; t.cblock = FC_DIRECT_CBLOCK;
            t.cstride = f.cs; t.sw = 1; t.off = off; t.mask = mask;
            t.ystride = f.L; t.yrow = lanes; t.relu = relu;
            t.nrows = nv; t.store_mask = mask[0];
#pragma omp for schedule(static)
            for (int64_t it = 0; it < items; it++) {
                int64_t b, g, tile, n;
                FN(decode_item)(it, weights_outer, nkb, G, f.ntile, &b, &g, &tile, &n);
                const int64_t o0 = tile * nv * lanes;
                t.nk = Kg - b * kb < kb ? Kg - b * kb : kb;
                pl->ker.fn(&t, xp + (n * s->C + g * Cg) * f.cs + o0,
                           pl->wp + (g * nkb + b) * Cg * R * S * kb,
                           pl->bp ? pl->bp + (g * nkb + b) * kb : NULL,
                           yp + (n * s->K + g * Kg + b * kb) * f.L + o0);
            }
        }
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t nk = 0; nk < nn * s->K; nk++) {
            const T *src = yp + nk * f.L;
            T *dst = y + (n0 * s->K + nk) * P * Q;
            for (int64_t oh = 0; oh < P; oh++)
                memcpy(dst + oh * Q, src + oh * f.Wp, (size_t)Q * sizeof(T));
        }
    }
    free(off); free(mask);
    return err;
}

int FN(fc_conv2d_direct)(const fc_conv_shape *s, const T *x, const T *w,
                         const T *bias, int relu, T *y)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    FN(direct_plan) pl;
    T *wp, *bp;
    int err;

    if (s->N == 0 || s->P == 0 || s->Q == 0 || s->K == 0)
        return 0;
    pl.ker = FN(select_kernel)(Cg == 1);
    pl.nkb = (Kg + pl.ker.kb - 1) / pl.ker.kb;
    wp = (T *)fc_scratch(FC_SLOT_WEIGHT, (size_t)(G * pl.nkb * Cg * s->R * s->S *
                                                  pl.ker.kb) * sizeof(T));
    bp = bias ? (T *)calloc((size_t)(G * pl.nkb * pl.ker.kb), sizeof(T)) : NULL;
    if (wp == NULL || (bias && bp == NULL)) {
        free(bp);
        return FC_ENOMEM;
    }
    FN(pack_weights)(s, pl.ker.kb, w, wp);
    if (bias)
        for (int64_t g = 0; g < G; g++)
            for (int64_t k = 0; k < Kg; k++)
                bp[g * pl.nkb * pl.ker.kb + k] = bias[g * Kg + k];
    pl.wp = wp;
    pl.bp = bp;
    err = FN(use_flat)(s, pl.ker.lanes) ? FN(direct_flat)(s, &pl, x, relu, y)
                                        : FN(direct_rows)(s, &pl, x, relu, y);
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

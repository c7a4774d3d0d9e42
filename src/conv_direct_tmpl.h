/* Direct convolution driver, written once for both float types: weight
 * packing, tiling, masks, threading.  The micro-kernel (conv_direct.h) is
 * the only part that knows the instruction set.
 *
 * Included by conv_direct.c with T, FN(name) and KERNEL_T (the kernel
 * record type) defined, and FN(select_kernel)(depthwise) available. */

/* Weight value (k, c, t) times the folded batch norm's factor of channel
 * k, in double and rounded once (fuse_conv_bn's bits), when there is one. */
static inline T FN(scaled)(T v, const double *scale, int64_t k)
{
    return scale ? (T)((double)v * scale[k]) : v;
}

/* Bytes ahead of each of the sixteen rows that the transpose prefetches.
 * Its sixteen streams of a few hundred bytes each are too short for the
 * hardware prefetchers, and packing megabytes of weights stalled on them:
 * four lines ahead made the 9 MB layers (512 channels, 3x3, at 7x7 and
 * 14x14) 5-12% faster. */
#define FC_PACK_AHEAD 256

/* Packs nk rows of the weight (output channels, lds values apart), cn
 * input channels from src on, channel-innermost: value (i, c, t) goes to
 * dst[(t * cn + c) * ld + i] for i < 8 and dst[hi + (t * cn + c) * ld + i - 8]
 * for i >= 8; rows nk .. nfill are zero.  scale: the rows' factors or NULL.
 * Sixteen whole rows go through the ISA's transpose when there is one:
 * element by element, the transposition of a 9 MB weight cost as much as
 * the convolution that used it. */
static void FN(pack_rows)(const T *src, int64_t lds, int64_t cn, int64_t taps,
                          int64_t nk, int nfill, const double *scale,
                          int64_t ld, int64_t hi, T *dst)
{
    const int64_t L = cn * taps;
    const PACK16_T pack16 = FN(select_pack16)();
    if (pack16 != NULL && nk == 16 && nfill == 16) {
        T *d[16];
        int64_t c = 0, t = 0;   /* column j is (c, t) */
        for (int64_t j = 0; j < L; j += 16) {
            const int ncols = L - j < 16 ? (int)(L - j) : 16;
            for (int i = 0; i < ncols; i++) {
                d[i] = dst + (t * cn + c) * ld;
                if (++t == taps) {
                    t = 0;
                    c++;
                }
            }
            /* (an address past a row's end is only prefetched, never read) */
            for (int i = 0; i < 16; i++)
                __builtin_prefetch((const void *)((uintptr_t)(src + i * lds + j) +
                                                  FC_PACK_AHEAD), 0, 3);
            pack16(src + j, lds, ncols, scale, hi, d);
        }
        return;
    }
    for (int64_t c = 0; c < cn; c++)
        for (int64_t t = 0; t < taps; t++) {
            T *d = dst + (t * cn + c) * ld;
            for (int i = 0; i < nfill; i++)
                d[i < 8 ? i : hi + i - 8] =
                    i < nk ? FN(scaled)(src[i * lds + c * taps + t], scale, i) : (T)0;
        }
}

/* Weights of group g as [K/G blocks of kb][R*S taps][Cg][kb], zero-padded
 * past K/G so the micro-kernel never tests the channel count; blocks of 8
 * are packed two at a time by the 16-row transpose.  Split over threads by
 * block: for layers with megabytes of weights the packing is a fair part
 * of the call.  shifted: the layout of the shifted walk (direct_shifted),
 * whose taps are the R kernel rows and whose channels the (c, kernel
 * column) pairs: [blocks][R][Cg][S][kb] (a few input channels: small). */
static void FN(pack_weights)(const fc_conv_shape *s, int kb, int shifted,
                             const T *w, const double *wscale, T *wp)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t taps = s->R * s->S, nkb = (Kg + kb - 1) / kb;
    const int64_t step = kb == 8 && !shifted && FN(select_pack16)() != NULL ? 2 : 1;
    const int64_t nsteps = (nkb + step - 1) / step;
#pragma omp parallel for num_threads(fc_get_num_threads()) schedule(static)
    for (int64_t gs = 0; gs < G * nsteps; gs++) {
        const int64_t g = gs / nsteps, b0 = gs % nsteps * step;
        const T *src = w + (g * Kg + b0 * kb) * Cg * taps;
        const double *sc = wscale ? wscale + g * Kg + b0 * kb : NULL;
        T *dst = wp + (g * nkb + b0) * Cg * taps * kb;
        if (shifted) {
            const int64_t nk = Kg - b0 * kb < kb ? Kg - b0 * kb : kb;
            for (int64_t c = 0; c < Cg; c++)
                for (int64_t t = 0; t < taps; t++) {
                    T *d = dst + ((t / s->S * Cg + c) * s->S + t % s->S) * kb;
                    for (int64_t k = 0; k < kb; k++)
                        d[k] = k < nk ? FN(scaled)(src[(k * Cg + c) * taps + t], sc, k) : (T)0;
                }
            continue;
        }
        if (step == 2 && Kg - b0 * kb >= 16) {
            FN(pack_rows)(src, Cg * taps, Cg, taps, 16, 16, sc, kb, taps * Cg * kb, dst);
            continue;
        }
        for (int64_t b = b0; b < b0 + step && b < nkb; b++) {
            const int64_t i0 = (b - b0) * kb;
            const int64_t nk = Kg - b * kb < kb ? Kg - b * kb : kb;
            FN(pack_rows)(src + i0 * Cg * taps, Cg * taps, Cg, taps, nk, kb,
                          sc ? sc + i0 : NULL, kb, 0, dst + i0 * Cg * taps);
        }
    }
}

/* The parts of the tiles' offsets and masks that depend on the row alone
 * or on the column alone, computed once per call: for tile row rt, row
 * tap r and row j of the tile, rowoff (offset of the input row) and rowok
 * (all ones inside the image, 0 outside); for tile column ct and column
 * tap ks, coloff (offset in the row) and colmask (lanes inside the output
 * row and the image row); storemask per tile column. */
typedef struct {
    int64_t *rowoff, *coloff;
    uint32_t *rowok, *colmask, *storemask;
} FN(tile_parts);

static int FN(make_tile_parts)(const fc_conv_shape *s, int lanes, int nv, int64_t wh,
                               int64_t nrt, int64_t nct, FN(tile_parts) *tp)
{
    const int64_t R = s->R, S = s->S, sw = s->sw, nrow = nrt * R * nv, ncol = nct * S;
    tp->rowoff = (int64_t *)fc_malloc(sizeof(int64_t) * (size_t)(nrow + ncol));
    tp->rowok = (uint32_t *)fc_malloc(sizeof(uint32_t) * (size_t)(nrow + ncol + nct));
    if (tp->rowoff == NULL || tp->rowok == NULL) {
        free(tp->rowoff);
        free(tp->rowok);
        return FC_ENOMEM;
    }
    tp->coloff = tp->rowoff + nrow;
    tp->colmask = tp->rowok + nrow;
    tp->storemask = tp->colmask + ncol;
    for (int64_t rt = 0; rt < nrt; rt++)
        for (int64_t r = 0; r < R; r++)
            for (int j = 0; j < nv; j++) {
                const int64_t oh = rt * nv + j, ih = oh * s->sh - s->pt + r * s->dh;
                const int valid = oh < s->P && ih >= 0 && ih < s->H;
                const int64_t i = (rt * R + r) * nv + j;
                tp->rowoff[i] = valid ? ih * (wh > 0 ? wh : s->W) : 0;
                tp->rowok[i] = valid ? 0xFFFFFFFFu : 0;
            }
    for (int64_t ct = 0; ct < nct; ct++) {
        const int64_t ow0 = ct * lanes;
        for (int64_t ks = 0; ks < S; ks++) {
            const int64_t iw0 = ow0 * sw - s->pl + ks * s->dw;
            /* column phases (wh > 0): lane l reads phase plane f, column
             * (iw0 - f) / 2 + l, consecutive */
            const int64_t f = wh > 0 ? (iw0 % 2 + 2) % 2 : 0;
            /* lanes lo .. hi - 1: inside the output row and the image row */
            const int64_t lo = iw0 >= 0 ? 0 : (-iw0 + sw - 1) / sw;
            int64_t hi = iw0 < s->W ? (s->W - 1 - iw0) / sw + 1 : 0;
            if (hi > s->Q - ow0) hi = s->Q - ow0;
            if (hi > lanes) hi = lanes;
            tp->coloff[ct * S + ks] = wh > 0 ? f * s->H * wh + (iw0 - f) / 2 : iw0;
            tp->colmask[ct * S + ks] = hi <= lo ? 0 :
                (uint32_t)(((uint64_t)1 << hi) - ((uint64_t)1 << lo));
        }
        tp->storemask[ct] = 0;
        for (int l = 0; l < lanes && ow0 + l < s->Q; l++)
            tp->storemask[ct] |= (uint32_t)1 << l;
    }
    return 0;
}

static void FN(free_tile_parts)(FN(tile_parts) *tp)
{
    free(tp->rowoff);
    free(tp->rowok);
}

/* Input offsets and lane masks, per tap and row, of tile (rt, ct), from
 * its parts: rows outside the image get an empty mask (and offset 0), so
 * their loads read nothing.  No branches: this runs once per tile, and a
 * stem tile has 392 of them. */
static void FN(tile_masks)(const fc_conv_shape *s, int nv, const FN(tile_parts) *tp,
                           int64_t rt, int64_t ct, fc_direct_tile *t, int64_t *off,
                           uint32_t *mask)
{
    const int64_t R = s->R, S = s->S;
    const int64_t *rowoff = tp->rowoff + rt * R * nv;
    const uint32_t *rowok = tp->rowok + rt * R * nv;
    for (int64_t ks = 0; ks < S; ks++) {
        const int64_t col = tp->coloff[ct * S + ks];
        const uint32_t colmask = tp->colmask[ct * S + ks];
        for (int64_t r = 0; r < R; r++)
            for (int j = 0; j < nv; j++) {
                const int64_t i = (r * S + ks) * nv + j, k = r * nv + j;
                const uint32_t ok = rowok[k];
                off[i] = (rowoff[k] + col) & (int64_t)(int32_t)ok;
                mask[i] = colmask & ok;
            }
    }
    t->nrows = s->P - rt * nv < nv ? s->P - rt * nv : nv;
    t->store_mask = tp->storemask[ct];
}

/* One input channel per group and few outputs from it: the depthwise
 * micro-kernel (one channel, more rows).  With many outputs per input
 * channel (LeNet's first layer), the dense kernel's channel block wins. */
static int FN(is_depthwise)(const fc_conv_shape *s)
{
    return s->C / s->groups == 1 && s->K / s->groups < 4;
}

/* Extent of the zero-padded input plane that every tap of every output
 * pixel reads inside: the image at (pt, pl), padding past it as needed. */
static void FN(padded_extent)(const fc_conv_shape *s, int64_t *Hp, int64_t *Wp)
{
    const int64_t reach_h = (s->P - 1) * s->sh + (s->R - 1) * s->dh + 1;
    const int64_t reach_w = (s->Q - 1) * s->sw + (s->S - 1) * s->dw + 1;
    *Hp = s->H + s->pt > reach_h ? s->H + s->pt : reach_h;
    *Wp = s->W + s->pl > reach_w ? s->W + s->pl : reach_w;
}

/* Images n0 .. n0 + nn of x, zero-padded to Hp x Wp and channels-last with
 * xs floats per pixel, each group's Cg channels at g * Cgp (the rest zero).
 * Called from inside a parallel region: rows are shared out. */
static void FN(pad_channels_last)(const fc_conv_shape *s, const T *x,
                                  int64_t n0, int64_t nn, int64_t Cgp,
                                  int64_t Hp, int64_t Wp, int64_t xs, T *xp)
{
    const int64_t G = s->groups, Cg = s->C / G, H = s->H, W = s->W;
    const PACK16_T pack16 = FN(select_pack16)();
#pragma omp for schedule(static)
    for (int64_t row = 0; row < nn * Hp; row++) {
        const int64_t n = row / Hp, ih = row % Hp - s->pt;
        T *dst = xp + row * Wp * xs;
        memset(dst, 0, (size_t)(Wp * xs) * sizeof(T));
        if (ih < 0 || ih >= H)
            continue;
        dst += s->pl * xs;
        for (int64_t g = 0; g < G; g++) {
            int64_t c = 0;
            /* 16 channels x 16 pixels at a time by the ISA's transpose */
            if (pack16 != NULL)
                for (; c + 16 <= Cg; c += 16)
                    for (int64_t iw = 0; iw < W; iw += 16) {
                        T *d[16];
                        const int ncols = W - iw < 16 ? (int)(W - iw) : 16;
                        for (int j = 0; j < ncols; j++)
                            d[j] = dst + (iw + j) * xs + g * Cgp + c;
                        pack16(x + (((n0 + n) * s->C + g * Cg + c) * H + ih) * W + iw,
                               H * W, ncols, NULL, 8, d);
                    }
            for (; c < Cg; c++) {
                const T *src = x + (((n0 + n) * s->C + g * Cg + c) * H + ih) * W;
                for (int64_t iw = 0; iw < W; iw++)
                    dst[iw * xs + g * Cgp + c] = src[iw];
            }
        }
    }
}

/* One channel of x (src) zero-padded into a plane Wp wide at (pt, pl),
 * cs floats long (cs >= the rows the plane needs; the rest zero). */
static void FN(pad_plane)(const fc_conv_shape *s, const T *src, int64_t Wp,
                          int64_t cs, T *dst)
{
    /* each float written once: the zeros around the rows, then the rows */
    const int64_t top = s->pt * Wp, right = Wp - s->pl - s->W;
    memset(dst, 0, (size_t)(top + s->pl) * sizeof(T));
    for (int64_t ih = 0; ih < s->H; ih++) {
        T *row = dst + top + ih * Wp + s->pl;
        memcpy(row, src + ih * s->W, (size_t)s->W * sizeof(T));
        /* this row's right padding and the next row's left one */
        memset(row + s->W, 0, (size_t)(right + (ih + 1 < s->H ? s->pl : 0)) * sizeof(T));
    }
    const int64_t end = top + s->H * Wp;
    memset(dst + end, 0, (size_t)(cs - end) * sizeof(T));
}

/* Images n0 .. n0 + nn of x, each channel padded by pad_plane, planes cs
 * floats apart.  Called from inside a parallel region: planes are shared
 * out. */
static void FN(pad_planes)(const fc_conv_shape *s, const T *x, int64_t n0,
                           int64_t nn, int64_t Wp, int64_t cs, T *xp)
{
#pragma omp for schedule(static)
    for (int64_t nc = 0; nc < nn * s->C; nc++)
        FN(pad_plane)(s, x + (n0 * s->C + nc) * s->H * s->W, Wp, cs, xp + nc * cs);
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

/* Column stride 2: the image is first split into its even and odd
 * columns (two planes H x wh per channel), where a tap's lanes are
 * consecutive: whole loads, where loading every other input took two
 * loads and a permute per vector (or a gather): the ResNet stem ran
 * 13-14% faster. */
static int64_t FN(phase_width)(const fc_conv_shape *s)
{
    return s->sw == 2 ? (s->W + 1) / 2 : 0;
}

/* The row-tiled walk over the output: tiles of NV rows x LANES columns,
 * lanes along each output row, offsets and masks per tile.
 *
 * Work items that write disjoint outputs are handed out guided rather than
 * static: on a shared two-core machine one thread is often descheduled, and
 * a static split then makes the whole call wait for it. */
static int FN(direct_rows)(const fc_conv_shape *s, const FN(direct_plan) *pl,
                           const T *x, int relu, T *y)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S, P = s->P, Q = s->Q, H = s->H, W = s->W;
    const int kb = pl->ker.kb, nv = pl->ker.nv, lanes = pl->ker.lanes;
    const int64_t wh = FN(phase_width)(s);
    const int64_t nkb = pl->nkb;
    const int64_t nrt = (P + nv - 1) / nv, nct = (Q + lanes - 1) / lanes;
    const int weights_outer = FN(weights_outer)(s);
    const int64_t cs = wh > 0 ? 2 * H * wh : H * W;
    const int nt = fc_get_num_threads();
    /* images per pass: all of x read in place, or (phases) copies of a few
     * MB at a time, at least one image */
    int64_t nb = wh > 0 ? ((int64_t)8 << 20) / (s->C * cs * (int64_t)sizeof(T)) : s->N;
    T *xp = NULL;
    int err = 0;

    if (nb < 1) nb = 1;
    if (nb > s->N) nb = s->N;
    FN(tile_parts) parts;
    if (wh > 0) {
        xp = (T *)fc_scratch(FC_SLOT_INPUT, (size_t)(nb * s->C * cs) * sizeof(T));
        if (xp == NULL)
            return FC_ENOMEM;
    }
    if (FN(make_tile_parts)(s, lanes, nv, wh, nrt, nct, &parts))
        return FC_ENOMEM;
    for (int64_t n0 = 0; n0 < s->N && !err; n0 += nb) {
        const int64_t nn = s->N - n0 < nb ? s->N - n0 : nb;
        /* blocks fastest: an item is a tile's every block (one decoding,
         * one set of masks, one hand-out for nkb kernel calls) */
        const int64_t per_item = weights_outer ? 1 : nkb;
        const int64_t items = nn * G * nrt * nct * nkb / per_item;
        const T *xin = wh > 0 ? xp : x + n0 * s->C * cs;
        if (wh > 0) {
#pragma omp parallel for num_threads(nt) schedule(static)
            for (int64_t row = 0; row < nn * s->C * H; row++) {
                const T *src = x + n0 * s->C * H * W + row * W;
                T *even = xp + row / H * cs + row % H * wh, *odd = even + H * wh;
                for (int64_t i = 0; i < W / 2; i++) {
                    even[i] = src[2 * i];
                    odd[i] = src[2 * i + 1];
                }
                if (W % 2) {   /* the odd plane's last column is never read unmasked */
                    even[wh - 1] = src[W - 1];
                    odd[wh - 1] = (T)0;
                }
            }
        }
#pragma omp parallel num_threads(nt)
        {
            int64_t *off = (int64_t *)fc_malloc(sizeof(int64_t) * nv * R * S);
            uint32_t *mask = (uint32_t *)fc_malloc(sizeof(uint32_t) * nv * R * S);
            fc_direct_tile t;
            int64_t last_tile = -1;
            const int ok = off != NULL && mask != NULL;
            if (!ok) {
#pragma omp atomic write
                err = FC_ENOMEM;
            }
            t.Cg = Cg; t.taps = R * S; t.cblock = FC_DIRECT_CBLOCK;
            t.cstride = cs; t.sw = wh > 0 ? 1 : s->sw;
            t.off = off; t.mask = mask;
            t.ystride = P * Q; t.yrow = Q; t.relu = relu;
            t.yoff = NULL; t.ylanes = NULL;
#pragma omp for schedule(guided)
            for (int64_t it = 0; it < items; it++) {
                if (!ok)
                    continue;
                int64_t b0, g, tile, n;
                FN(decode_item)(it * per_item, weights_outer, nkb, G, nrt * nct, &b0, &g, &tile,
                                &n);
                const int64_t ct = tile % nct, rt = tile / nct;
                const int64_t oh0 = rt * nv, ow0 = ct * lanes;
                if (n * nrt * nct + tile != last_tile) {
                    FN(tile_masks)(s, nv, &parts, rt, ct, &t, off, mask);
                    last_tile = n * nrt * nct + tile;
                }
                for (int64_t b = b0; b < b0 + per_item; b++) {
                    t.nk = Kg - b * kb < kb ? Kg - b * kb : kb;
                    pl->ker.fn(&t, xin + (n * s->C + g * Cg) * cs,
                               pl->wp + (g * nkb + b) * Cg * R * S * kb,
                               pl->bp ? pl->bp + (g * nkb + b) * kb : NULL,
                               y + (((n0 + n) * s->K + g * Kg + b * kb) * P + oh0) * Q + ow0);
                }
            }
            free(off);
            free(mask);
        }
    }
    FN(free_tile_parts)(&parts);
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

/* Fraction of the computed lanes that are real outputs, walking by rows
 * (tiles of nv rows x lanes columns) or flat (tiles of nv x lanes
 * positions of the padded-width grid). */
static double FN(rows_efficiency)(const fc_conv_shape *s, int nv, int lanes)
{
    const int64_t nrt = (s->P + nv - 1) / nv, nct = (s->Q + lanes - 1) / lanes;
    return (double)(s->P * s->Q) / (double)(nrt * nv * nct * lanes);
}

static int FN(flat_possible)(const fc_conv_shape *s)
{
    const int64_t pb = s->P + s->dh * (s->R - 1) - s->H - s->pt;
    const int64_t pr = s->Q + s->dw * (s->S - 1) - s->W - s->pl;
    return s->sh == 1 && s->sw == 1 && s->pt >= 0 && s->pl >= 0 && pb >= 0 && pr >= 0;
}

static double FN(flat_efficiency)(const fc_conv_shape *s, int nv, int lanes)
{
    return (double)(s->P * s->Q) / (double)FN(flat_plan)(s, nv, lanes).L;
}

/* Whether the flat walk fills more lanes than the row walk, by a margin
 * that pays for its two copies. */
static int FN(use_flat)(const fc_conv_shape *s, int nv, int lanes)
{
    return FN(flat_possible)(s) &&
           FN(flat_efficiency)(s, nv, lanes) > FN(rows_efficiency)(s, nv, lanes) + 0.05;
}

/* The shifted walk, for layers with few input channels (LeNet's first
 * layer: one channel, 5x5).  The row and flat walks hand the micro-kernel
 * Cg channels per tap, so with one channel each call is 25 short taps whose
 * set-up (offsets, masks, pointers) costs as much as their 24 FMAs, and
 * each tile has its offsets and masks computed again.  Here each image is
 * copied S times, copy ks holding, for every padded row i and output column
 * ow, the input under kernel column ks: x[i - pt][ow sw + ks dw - pl] (zero
 * outside the image), rows Q wide.  Output position o = oh Q + ow, which is
 * y's own NCHW order, then reads copy ks at o + r dh Q: the (c, ks) pairs
 * are the kernel's channels (Cg S of them in a row) and the R kernel rows
 * its taps, all at fixed offsets.  Lanes run over o across row ends, every
 * load is a whole unmasked vector, and the tiles store straight into y
 * (the last one through a buffer when P Q is not whole vectors).  Row
 * stride 1 only: copy rows are shared by all R kernel rows.
 *
 * The copies cost S times the input, which pays only while the row walk's
 * calls are short: at 8 and 6 channels (3x3, 32x32, K = 16) the row walk
 * was 7-9% faster, at 4 channels and fewer the shifted one 6-22% (and
 * LeNet's 1 channel 5x5 2.3 times). */
static int FN(use_shifted)(const fc_conv_shape *s)
{
    const int64_t Cg = s->C / s->groups;
    return !FN(is_depthwise)(s) && s->sh == 1 && Cg <= 4 &&
           Cg * s->S <= FC_DIRECT_CBLOCK;
}

static double FN(shifted_efficiency)(const fc_conv_shape *s, int nv, int lanes)
{
    const int64_t span = (int64_t)nv * lanes, PQ = s->P * s->Q;
    return (double)PQ / (double)((PQ + span - 1) / span * span);
}

/* The lane efficiency of the shifted, row or flat walk, output-channel
 * blocks included. */
static double FN(lanes_efficiency)(const fc_conv_shape *s, KERNEL_T ker)
{
    const int64_t Kg = s->K / s->groups;
    const double kfill = (double)Kg / (double)((Kg + ker.kb - 1) / ker.kb * ker.kb);
    if (FN(use_shifted)(s))
        return kfill * FN(shifted_efficiency)(s, ker.nv, ker.lanes);
    return kfill * (FN(use_flat)(s, ker.nv, ker.lanes)
                    ? FN(flat_efficiency)(s, ker.nv, ker.lanes)
                    : FN(rows_efficiency)(s, ker.nv, ker.lanes));
}

/* Where a flat-walk tile's rows go in y (the packed store): per row of
 * lanes, the lanes that are outputs (not the padding columns past an
 * output row's end, nor past the last row) and the NCHW offset of the
 * first, the others following it there. */
static void FN(flat_outputs)(const fc_conv_shape *s, int64_t Wp, int64_t o0,
                             int nv, int lanes, int64_t *yoff, uint32_t *ylanes)
{
    int64_t oh = o0 / Wp, ow = o0 % Wp;   /* of lane l of row j, in turn */
    for (int j = 0; j < nv; j++) {
        yoff[j] = -1;
        ylanes[j] = 0;
        for (int l = 0; l < lanes; l++) {
            if (oh < s->P && ow < s->Q) {
                ylanes[j] |= (uint32_t)1 << l;
                if (yoff[j] < 0)
                    yoff[j] = oh * s->Q + ow;
            }
            if (++ow == Wp) {
                ow = 0;
                oh++;
            }
        }
        if (yoff[j] < 0)
            yoff[j] = 0;
    }
}

static int FN(direct_flat)(const fc_conv_shape *s, const FN(direct_plan) *pl,
                           const T *x, int relu, T *y)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S, P = s->P, Q = s->Q;
    const int kb = pl->ker.kb, nv = pl->ker.nv, lanes = pl->ker.lanes;
    const int64_t nkb = pl->nkb;
    const FN(flat_geometry) f = FN(flat_plan)(s, nv, lanes);
    const int nt = fc_get_num_threads();
    /* Without padding the image's own planes are the padded planes (H x W):
     * the kernels then read x itself, the last tile masking the lanes past
     * the output (which would read past the plane), and nothing is copied:
     * a 1x1 layer spent a third of its kernel time on that copy. */
    const int in_place = f.Hp == s->H && f.Wp == s->W && s->pt == 0 && s->pl == 0;
    const int64_t cs = in_place ? s->H * s->W : f.cs;
    /* images per pass: copies of a few MB, at least one image (counting
     * an output's worth too: the tiles' stores stay near the copy) */
    const int64_t per_image = (s->C * f.cs + s->K * f.L) * (int64_t)sizeof(T);
    const int weights_outer = FN(weights_outer)(s);
    const int64_t nmask = nv * R * S;   /* offsets and masks of a tap set */
    int64_t nb = in_place ? s->N : ((int64_t)8 << 20) / (per_image > 0 ? per_image : 1);
    int64_t *off, *yoff;
    uint32_t *mask, *ylanes;
    T *xp = NULL;

    if (nb < 1) nb = 1;
    if (nb > s->N) nb = s->N;
    if (!in_place)
        xp = (T *)fc_scratch(FC_SLOT_INPUT, (size_t)(nb * s->C * f.cs) * sizeof(T));
    /* offsets [taps][nv]; masks [taps][nv], then the last tile's (in
     * place); then each tile's output offsets and lanes */
    off = (int64_t *)fc_malloc(sizeof(int64_t) * (nmask + nv * f.ntile));
    mask = (uint32_t *)fc_malloc(sizeof(uint32_t) * (2 * nmask + nv * f.ntile));
    if ((!in_place && !xp) || !off || !mask) {
        free(off); free(mask);
        return FC_ENOMEM;
    }
    yoff = off + nmask;
    ylanes = mask + 2 * nmask;
    for (int64_t tile = 0; tile < f.ntile; tile++)
        FN(flat_outputs)(s, f.Wp, tile * nv * lanes, nv, lanes, yoff + tile * nv,
                         ylanes + tile * nv);
    for (int64_t r = 0; r < R; r++)
        for (int64_t ks = 0; ks < S; ks++)
            for (int j = 0; j < nv; j++) {
                const int64_t i = (r * S + ks) * nv + j;
                /* the last tile's lanes whose input lies inside the plane
                 * (all of its outputs' do; lanes past them would read the
                 * next plane, or past the end of x) */
                const int64_t o = (f.ntile - 1) * nv * lanes + j * lanes;
                const int64_t end = s->H * s->W - (o + r * s->dh * f.Wp + ks * s->dw);
                const int64_t live = end < 0 ? 0 : end;
                off[i] = j * lanes + r * s->dh * f.Wp + ks * s->dw;
                mask[i] = lanes == 32 ? 0xffffffffu : ((uint32_t)1 << lanes) - 1;
                mask[nmask + i] = live >= lanes ? mask[i] : ((uint32_t)1 << live) - 1;
            }

    for (int64_t n0 = 0; n0 < s->N; n0 += nb) {
        const int64_t nn = s->N - n0 < nb ? s->N - n0 : nb;
        const int64_t items = nn * f.ntile * G * nkb;
        /* the pass's planes: its copy, or (in place) the images themselves */
        const T *xin = in_place ? x + n0 * s->C * cs : xp;
#pragma omp parallel num_threads(nt)
        {
            fc_direct_tile t;
            if (!in_place)
                FN(pad_planes)(s, x, n0, nn, f.Wp, f.cs, xp);
            t.Cg = Cg; t.taps = R * S; t.cblock = FC_DIRECT_CBLOCK;
            t.cstride = cs; t.sw = 1; t.off = off;
            t.ystride = P * Q; t.yrow = lanes; t.relu = relu;
            t.nrows = nv; t.store_mask = mask[0];
#pragma omp for schedule(guided)
            for (int64_t it = 0; it < items; it++) {
                int64_t b, g, tile, n;
                FN(decode_item)(it, weights_outer, nkb, G, f.ntile, &b, &g, &tile, &n);
                const int64_t o0 = tile * nv * lanes;
                T *yt = y + ((n0 + n) * s->K + g * Kg + b * kb) * P * Q;
                t.mask = in_place && tile == f.ntile - 1 ? mask + nmask : mask;
                t.yoff = yoff + tile * nv;
                t.ylanes = ylanes + tile * nv;
                t.nk = Kg - b * kb < kb ? Kg - b * kb : kb;
                pl->ker.fn(&t, xin + (n * s->C + g * Cg) * cs + o0,
                           pl->wp + (g * nkb + b) * Cg * R * S * kb,
                           pl->bp ? pl->bp + (g * nkb + b) * kb : NULL, yt);
            }
        }
    }
    free(off); free(mask);
    return 0;
}

/* Rows row_lo .. row_hi of the shifted copies of one image (x at its
 * channel 0), channel c's copy ks at buf + (c S + ks) cs. */
static void FN(shifted_copy)(const fc_conv_shape *s, const T *x, int64_t row_lo,
                             int64_t row_hi, int64_t cs, T *buf)
{
    const int64_t H = s->H, W = s->W, Q = s->Q, S = s->S, sw = s->sw;
    for (int64_t c = 0; c < s->C; c++)
        for (int64_t ks = 0; ks < S; ks++) {
            /* output columns lo .. hi read inside the image row */
            const int64_t shift = ks * s->dw - s->pl;
            int64_t lo = shift >= 0 ? 0 : (-shift + sw - 1) / sw;
            int64_t hi = shift >= W ? 0 : (W - 1 - shift) / sw + 1;
            if (hi > Q) hi = Q;
            if (lo > hi) lo = hi;
            T *d = buf + (c * S + ks) * cs;
            for (int64_t i = row_lo; i < row_hi; i++, d += Q) {
                const int64_t ih = i - s->pt;
                if (ih < 0 || ih >= H) {
                    memset(d, 0, (size_t)Q * sizeof(T));
                    continue;
                }
                const T *src = x + (c * H + ih) * W;
                for (int64_t ow = 0; ow < lo; ow++)
                    d[ow] = 0;
                if (sw == 1 && hi > lo)
                    memcpy(d + lo, src + lo + shift, (size_t)(hi - lo) * sizeof(T));
                else if (sw != 1)
                    for (int64_t ow = lo; ow < hi; ow++)
                        d[ow] = src[ow * sw + shift];
                for (int64_t ow = hi; ow < Q; ow++)
                    d[ow] = 0;
            }
        }
}

/* The shifted walk (see use_shifted).  Work items are (image, run of
 * tiles): the thread copies the rows its run reads, then runs its tiles,
 * output-channel blocks fastest so that the tile's input stays in L1 (a
 * block's weights, R x at most 32 x kb values, stay in L1 or L2 too).
 * Images are items of their own, so nothing waits for a shared copy; a few
 * images are cut into runs to give every thread work, and large ones so
 * that a run's copy stays in L2. */
static int FN(direct_shifted)(const fc_conv_shape *s, const FN(direct_plan) *pl,
                              const T *x, int relu, T *y)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S, Q = s->Q, PQ = s->P * s->Q;
    const int kb = pl->ker.kb, nv = pl->ker.nv, lanes = pl->ker.lanes;
    const int64_t nkb = pl->nkb, span = (int64_t)nv * lanes;
    const int64_t ntile = (PQ + span - 1) / span;
    const int64_t reach = (R - 1) * s->dh;     /* copy rows past the output row */
    const int nt = fc_get_num_threads();
    const int64_t full_rows = (ntile * span + Q - 1) / Q + reach;
    const int64_t full_bytes = s->C * S * full_rows * Q * (int64_t)sizeof(T);
    int64_t runs = (4 * nt + s->N - 1) / s->N, per_run, rows, cs;
    int64_t *off;
    uint32_t *mask;
    int err = 0;

    if (runs < full_bytes / ((int64_t)256 << 10) + 1)
        runs = full_bytes / ((int64_t)256 << 10) + 1;
    if (runs > ntile) runs = ntile;
    per_run = (ntile + runs - 1) / runs;
    runs = (ntile + per_run - 1) / per_run;
    /* a run's positions start anywhere in a row */
    rows = (per_run * span + Q - 1) / Q + 1 + reach;
    if (rows > full_rows) rows = full_rows;
    cs = (rows * Q + 15) / 16 * 16;
    off = (int64_t *)fc_malloc(sizeof(int64_t) * nv * R);
    mask = (uint32_t *)fc_malloc(sizeof(uint32_t) * nv * R);
    if (!off || !mask) {
        free(off); free(mask);
        return FC_ENOMEM;
    }
    for (int64_t r = 0; r < R; r++)
        for (int j = 0; j < nv; j++) {
            off[r * nv + j] = j * lanes + r * s->dh * Q;
            mask[r * nv + j] = lanes == 32 ? 0xffffffffu : ((uint32_t)1 << lanes) - 1;
        }

#pragma omp parallel num_threads(nt)
    {
        /* the copies, then a tile's worth of output for the last tile */
        T *buf = (T *)fc_scratch(FC_SLOT_INPUT, (size_t)(s->C * S * cs + kb * span) * sizeof(T));
        T *ybuf = buf != NULL ? buf + s->C * S * cs : NULL;
        fc_direct_tile t;
        if (buf == NULL) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
        t.Cg = Cg * S; t.taps = R; t.cblock = FC_DIRECT_CBLOCK;
        t.cstride = cs; t.sw = 1; t.off = off; t.mask = mask;
        t.yrow = lanes; t.relu = relu; t.store_mask = mask[0];
        t.yoff = NULL; t.ylanes = NULL;
#pragma omp for schedule(guided)
        for (int64_t it = 0; it < s->N * runs; it++) {
            if (buf == NULL)
                continue;
            const int64_t n = it / runs, run = it % runs;
            const int64_t t_lo = run * per_run;
            const int64_t t_hi = t_lo + per_run < ntile ? t_lo + per_run : ntile;
            const int64_t row_lo = t_lo * span / Q;
            const int64_t row_hi = (t_hi * span - 1) / Q + reach + 1;
            FN(shifted_copy)(s, x + n * s->C * s->H * s->W, row_lo, row_hi, cs, buf);
            for (int64_t g = 0; g < G; g++)
                for (int64_t tile = t_lo; tile < t_hi; tile++) {
                    const int64_t o0 = tile * span;
                    const int64_t nvec = (PQ - o0 + lanes - 1) / lanes;
                    /* a last vector past P Q goes through ybuf */
                    const int whole = o0 + span <= PQ || (PQ - o0) % lanes == 0;
                    t.nrows = nvec < nv ? nvec : nv;
                    t.ystride = whole ? PQ : span;
                    for (int64_t b = 0; b < nkb; b++) {
                        T *yt = y + (n * s->K + g * Kg + b * kb) * PQ + o0;
                        t.nk = Kg - b * kb < kb ? Kg - b * kb : kb;
                        pl->ker.fn(&t, buf + g * Cg * S * cs + o0 - row_lo * Q,
                                   pl->wp + (g * nkb + b) * R * Cg * S * kb,
                                   pl->bp ? pl->bp + (g * nkb + b) * kb : NULL,
                                   whole ? yt : ybuf);
                        if (!whole)
                            for (int64_t k = 0; k < t.nk; k++)
                                memcpy(yt + k * PQ, ybuf + k * span,
                                       (size_t)(PQ - o0) * sizeof(T));
                    }
                }
        }
    }
    free(off); free(mask);
    return err;
}

/* Fraction of useful lanes of the channels-last walk (FC_NHWC_NP pixels x
 * FC_NHWC_KT channels per tile), or 0 where it does not exist. */
static double FN(nhwc_efficiency)(const fc_conv_shape *s)
{
    const int64_t Kg = s->K / s->groups, PQ = s->P * s->Q;
    if (FN(select_nhwc)() == NULL || FN(is_depthwise)(s))
        return 0;
    return (double)PQ / (double)((PQ + FC_NHWC_NP - 1) / FC_NHWC_NP * FC_NHWC_NP) *
           (double)Kg / (double)((Kg + FC_NHWC_KT - 1) / FC_NHWC_KT * FC_NHWC_KT);
}

/* Packs output channels [k0, k0 + 64) of group g, input channels
 * [c0, c0 + cn), for the channels-last kernel: [tap][cn][ld], 16 at a time,
 * channels past the group's Kg zero. */
static void FN(pack_nhwc_block)(const fc_conv_shape *s, const T *w,
                                const double *wscale, int64_t g, int64_t k0,
                                int64_t c0, int64_t cn, int64_t ld, T *dst)
{
    const int64_t Cg = s->C / s->groups, Kg = s->K / s->groups, taps = s->R * s->S;
    for (int64_t k = k0; k < k0 + FC_NHWC_KT; k += 16) {
        const int64_t nk = Kg - k < 16 ? (Kg - k > 0 ? Kg - k : 0) : 16;
        FN(pack_rows)(w + ((g * Kg + (nk ? k : 0)) * Cg + c0) * taps, Cg * taps, cn,
                      taps, nk, 16, wscale && nk ? wscale + g * Kg + k : NULL, ld, 8,
                      dst + k - k0);
    }
}

/* nk (<= 16) channels of a channels-last buffer (src: the first one's
 * column, pixels ldo apart), pixels [o_lo, o_hi), into their NCHW planes
 * (dst: the first one's, planes PQ apart): 16 pixels at a time by the
 * ISA's transpose, element by element at the edges. */
static void FN(planes_of_columns)(const T *src, int64_t ldo, int64_t nk, int64_t PQ,
                                  int64_t o_lo, int64_t o_hi, T *dst)
{
    const PACK16_T pack16 = FN(select_pack16)();
    int64_t o0 = o_lo;
    if (pack16 != NULL) {
        T *d[16];
        for (int j = 0; j < nk; j++)
            d[j] = dst + j * PQ + o0;
        for (; o0 + 16 <= o_hi; o0 += 16) {
            pack16(src + o0 * ldo, ldo, (int)nk, NULL, 8, d);
            for (int j = 0; j < nk; j++)
                d[j] += 16;
        }
    }
    for (int64_t j = 0; j < nk; j++)
        for (int64_t o = o0; o < o_hi; o++)
            dst[j * PQ + o] = src[o * ldo + j];
}

/* Output channels [k0, k0 + 16) of group g of one image, pixels [o_lo,
 * o_hi), from the channels-last buffer ob (pixels ldo apart, biased and
 * rectified by the kernel) into the NCHW image y. */
static void FN(nhwc_output)(const fc_conv_shape *s, const T *ob, int64_t ldo,
                            int64_t g, int64_t k0, int64_t o_lo, int64_t o_hi, T *y)
{
    const int64_t Kg = s->K / s->groups, PQ = s->P * s->Q;
    const int64_t Kgp = (Kg + FC_NHWC_KT - 1) / FC_NHWC_KT * FC_NHWC_KT;
    FN(planes_of_columns)(ob + g * Kgp + k0, ldo, Kg - k0 < 16 ? Kg - k0 : 16, PQ, o_lo, o_hi,
                          y + (g * Kg + k0) * PQ);
}

/* The channels-last walk (conv_direct.h): a few images at a time are
 * copied padded (NCHW planes: the kernel broadcasts input values, so any
 * layout serves, and a transposed copy cost 5-10% of small layers),
 * weights as [group][tap][Cg][Kg rounded up to KT].  Items are (image,
 * group, channel block, run of pixel tiles); within an item, input-channel blocks run outside the tiles so that the
 * block's weights stay in L2 across the run.  The output is accumulated
 * channels-last, then biased, rectified and transposed into NCHW.  Items
 * are few and large, so they are handed out one at a time (dynamic): a
 * guided schedule gives the first thread half of eight items at once.  An
 * item that covers all of its images' pixels transposes its channels into
 * the output at once, while they are in cache.  In a batch whose images
 * each fit L2 (copy and staged output), or whose images are single items
 * (64 channels or fewer), an item is a whole image: it makes the image's
 * padded copy itself, in its thread's own buffer, and runs all its blocks
 * there: no barrier, and the copy is still in cache when the kernel reads
 * it.
 *
 * When all images fit one pass and one run of tiles per channel block
 * (the deep layers of small images, whose weights are megabytes), an item
 * takes a channel block for all the images, and packs its blocks of
 * weights into its thread's own L2-sized buffer just before using them,
 * instead of writing the whole packed weight to memory and reading it
 * back: that packing is memory-bound and was a third of such a call. */
static int FN(direct_nhwc)(const fc_conv_shape *s, const T *x, const T *w,
                           const double *wscale, const T *bias, int relu, T *y)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t taps = s->R * s->S, PQ = s->P * s->Q;
    const int64_t Kgp = (Kg + FC_NHWC_KT - 1) / FC_NHWC_KT * FC_NHWC_KT;
    const int64_t ldo = G * Kgp;
    const int64_t nkb = Kgp / FC_NHWC_KT, ntiles = (PQ + FC_NHWC_NP - 1) / FC_NHWC_NP;
    const int64_t cbmax = Cg < FC_NHWC_CB ? Cg : FC_NHWC_CB;
    const NHWC_T fn = FN(select_nhwc)();
    const int nt = fc_get_num_threads();
    int64_t Hp, Wp, nb, runs, *pix, *tapoff;
    int inline_pack, own, err = 0;
    T *xp = NULL, *wt = NULL, *ob = NULL, *bp = NULL;

    FN(padded_extent)(s, &Hp, &Wp);
    nb = ((int64_t)16 << 20) / ((Hp * Wp * s->C + PQ * ldo) * (int64_t)sizeof(T));
    if (nb < 1) nb = 1;
    if (nb > s->N) nb = s->N;
    /* enough runs per image for the threads, none shorter than 8 tiles */
    runs = (4 * nt + nb * G * nkb - 1) / (nb * G * nkb);
    if (runs > (ntiles + 7) / 8) runs = (ntiles + 7) / 8;
    if (runs < 1) runs = 1;
    inline_pack = nb == s->N && runs == 1 && G * nkb >= 2 * nt;
    /* an item per image, all its blocks: each thread pads and stages its
     * own images, when there are images enough for the threads and one
     * image's copy and output fit in L2 */
    own = !inline_pack && (G * nkb == 1 ? runs == 1 :
        s->N >= 2 * nt &&
        (Hp * Wp * s->C + PQ * ldo) * (int64_t)sizeof(T) <= ((int64_t)1 << 20));
    if (own) {
        nb = s->N;
        runs = 1;
    }
    if (!own) {
        xp = (T *)fc_scratch(FC_SLOT_INPUT, (size_t)(nb * Hp * Wp * s->C) * sizeof(T));
        ob = (T *)fc_scratch(FC_SLOT_OUTPUT, (size_t)(nb * PQ * ldo) * sizeof(T));
    }
    if (!inline_pack)
        wt = (T *)fc_scratch(FC_SLOT_WEIGHT, (size_t)(G * taps * Cg * Kgp) * sizeof(T));
    pix = (int64_t *)fc_malloc(sizeof(int64_t) * (PQ + taps));
    /* the kernel reads 64 channels of bias: zero past each group's Kg */
    if (bias)
        bp = (T *)fc_calloc((size_t)ldo, sizeof(T));
    if ((!own && (xp == NULL || ob == NULL)) || (!inline_pack && wt == NULL) ||
        pix == NULL || (bias && bp == NULL)) {
        free(pix);
        free(bp);
        return FC_ENOMEM;
    }
    if (bias)
        for (int64_t g = 0; g < G; g++)
            memcpy(bp + g * Kgp, bias + g * Kg, (size_t)Kg * sizeof(T));
    tapoff = pix + PQ;
    for (int64_t o = 0; o < PQ; o++)
        pix[o] = o / s->Q * s->sh * Wp + o % s->Q * s->sw;
    for (int64_t t = 0; t < taps; t++)
        tapoff[t] = t / s->S * s->dh * Wp + t % s->S * s->dw;
    if (!inline_pack) {
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t gb = 0; gb < G * nkb; gb++)
            FN(pack_nhwc_block)(s, w, wscale, gb / nkb, gb % nkb * FC_NHWC_KT, 0, Cg,
                                Kgp, wt + (gb / nkb * taps * Cg) * Kgp + gb % nkb * FC_NHWC_KT);
    }

    for (int64_t n0 = 0; n0 < s->N; n0 += nb) {
        const int64_t nn = s->N - n0 < nb ? s->N - n0 : nb;
        /* with inline packing an item takes all the pass's images */
        const int64_t per_item = inline_pack ? nn : 1;
        const int64_t items = own ? nn : nn / per_item * G * nkb * runs;
#pragma omp parallel num_threads(nt)
        {
            fc_nhwc_tile t;
            T *mine = inline_pack ? (T *)fc_scratch(FC_SLOT_WEIGHT,
                (size_t)(taps * cbmax * FC_NHWC_KT) * sizeof(T)) : NULL;
            /* own: this thread's padded image and output buffer */
            T *xo = own ? (T *)fc_scratch(FC_SLOT_INPUT,
                (size_t)(Hp * Wp * s->C) * sizeof(T)) : NULL;
            T *oo = own ? (T *)fc_scratch(FC_SLOT_OUTPUT, (size_t)(PQ * ldo) * sizeof(T)) : NULL;
            const int ok = (!inline_pack || mine != NULL) && (!own || (xo != NULL && oo != NULL));
            if (!ok) {
#pragma omp atomic write
                err = FC_ENOMEM;
            }
            if (!own)
                FN(pad_planes)(s, x, n0, nn, Wp, Hp * Wp, xp);
            t.taps = taps; t.tapoff = tapoff; t.cs = Hp * Wp; t.ldo = ldo;
            t.relu = relu;
#pragma omp for schedule(dynamic)
            for (int64_t it = 0; it < items; it++) {
                const int64_t run = own ? 0 : it % runs;
                const int64_t n1 = own ? it : it / (runs * nkb * G) * per_item;
                const int64_t t_lo = ntiles * run / runs, t_hi = ntiles * (run + 1) / runs;
                /* the item's blocks (group, output channels): one, or (own)
                 * all of the image's */
                const int64_t gb_lo = own ? 0 : it / runs % (nkb * G);
                const int64_t gb_hi = own ? G * nkb : gb_lo + 1;
                /* the padded images and output buffer: the pass's, or
                 * (own) the thread's, holding image n1 alone */
                const T *xb = own ? xo : xp;
                T *obb = own ? oo : ob;
                const int64_t nbase = own ? n1 : 0;
                if (!ok)
                    continue;
                if (own)
                    for (int64_t c = 0; c < s->C; c++)
                        FN(pad_plane)(s, x + ((n0 + n1) * s->C + c) * s->H * s->W, Wp,
                                      Hp * Wp, xo + c * Hp * Wp);
                for (int64_t gb = gb_lo; gb < gb_hi; gb++) {
                    const int64_t g = gb / nkb, b = gb % nkb;
                    for (int64_t c0 = 0; c0 < Cg; c0 += FC_NHWC_CB) {
                        const T *wb;
                        t.cb = Cg - c0 < FC_NHWC_CB ? Cg - c0 : FC_NHWC_CB;
                        t.accumulate = c0 > 0;
                        t.last = c0 + FC_NHWC_CB >= Cg;
                        if (inline_pack) {
                            FN(pack_nhwc_block)(s, w, wscale, g, b * FC_NHWC_KT, c0, t.cb,
                                                FC_NHWC_KT, mine);
                            wb = mine;
                            t.ws = FC_NHWC_KT; t.wtap = t.cb * FC_NHWC_KT;
                        } else {
                            wb = wt + (g * taps * Cg + c0) * Kgp + b * FC_NHWC_KT;
                            t.ws = Kgp; t.wtap = Cg * Kgp;
                        }
                        for (int64_t n = n1; n < n1 + per_item; n++)
                            for (int64_t tile = t_lo; tile < t_hi; tile++) {
                                const int64_t o0 = tile * FC_NHWC_NP;
                                t.pix = pix + o0;
                                t.np = (int)(PQ - o0 < FC_NHWC_NP ? PQ - o0 : FC_NHWC_NP);
                                fn(&t, xb + ((n - nbase) * s->C + g * Cg + c0) * Hp * Wp, wb,
                                   bp ? bp + g * Kgp + b * FC_NHWC_KT : NULL,
                                   obb + ((n - nbase) * PQ + o0) * ldo + g * Kgp + b * FC_NHWC_KT);
                            }
                    }
                    /* the item's outputs are final: into NCHW while they
                     * are in cache */
                    const int64_t o_hi = t_hi * FC_NHWC_NP < PQ ? t_hi * FC_NHWC_NP : PQ;
                    for (int64_t n = n1; n < n1 + per_item; n++)
                        for (int64_t k = b * FC_NHWC_KT; k < (b + 1) * FC_NHWC_KT && k < Kg; k += 16)
                            FN(nhwc_output)(s, obb + (n - nbase) * PQ * ldo, ldo, g, k,
                                            t_lo * FC_NHWC_NP, o_hi, y + (n0 + n) * s->K * PQ);
                }
            }
        }
        if (err)
            break;
    }
    free(pix);
    free(bp);
    return err;
}

/* Whether the channels-last walk beats the others: for a batch, as soon as
 * it fills as many lanes (each thread then pads and stages whole images in
 * its own cache: r50_b32_3x3_128 15-18% faster, dilated_3x3_d2 7-15%);
 * for one image, only when it fills clearly more, since it pays for a
 * reordered copy of the input and weights that the others need not make
 * (vgg_256x56 ran 24% slower on it).  Not the thread count: results must
 * not depend on it. */
static int FN(use_nhwc)(const fc_conv_shape *s)
{
    const KERNEL_T ker = FN(select_kernel)(FN(is_depthwise)(s));
    const double nhwc = FN(nhwc_efficiency)(s), lanes = FN(lanes_efficiency)(s, ker);
    if (s->N >= 4 && nhwc > 0 && nhwc >= lanes)
        return 1;
    return nhwc > lanes + 0.1;
}

/* The lane efficiency the direct algorithm will run at (for "auto"). */
double FN(fc_conv2d_direct_efficiency)(const fc_conv_shape *s)
{
    const KERNEL_T ker = FN(select_kernel)(FN(is_depthwise)(s));
    return FN(use_nhwc)(s) ? FN(nhwc_efficiency)(s) : FN(lanes_efficiency)(s, ker);
}

/* Whether a depthwise plane kernel applies (conv_dw.h): one input channel
 * per group, 3x3, stride 1; row dilation 1 for the forward. */
static int FN(dw3x3_shape)(const fc_conv_shape *s)
{
    return s->C / s->groups == 1 && s->R == 3 && s->S == 3 && s->sh == 1 &&
           s->sw == 1;
}

static fc_dw_plane FN(dw_plane)(const fc_conv_shape *s, int relu)
{
    fc_dw_plane p;
    p.H = s->H; p.W = s->W; p.P = s->P; p.Q = s->Q;
    p.pt = s->pt; p.pl = s->pl; p.dh = s->dh; p.dw = s->dw;
    p.relu = relu;
    return p;
}

/* Depthwise forward, a plane per item. */
static void FN(direct_dw3x3)(const fc_conv_shape *s, const T *x, const T *w,
                             const T *bias, int relu, T *y)
{
    const int64_t Kg = s->K / s->groups, HW = s->H * s->W, PQ = s->P * s->Q;
    const fc_dw_plane p = FN(dw_plane)(s, relu);
    const DW_T fn = FN(select_dw3x3)();
#pragma omp parallel for num_threads(fc_get_num_threads()) schedule(guided)
    for (int64_t nk = 0; nk < s->N * s->K; nk++) {
        const int64_t n = nk / s->K, k = nk % s->K;
        fn(&p, x + (n * s->C + k / Kg) * HW, w + k * 9, bias ? bias[k] : (T)0,
           y + nk * PQ);
    }
}

int FN(fc_conv2d_direct)(const fc_conv_shape *s, const T *x, const T *w,
                         const double *wscale, const T *bias, int relu, T *y)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    FN(direct_plan) pl;
    T *wp, *bp;
    int err;

    if (s->N == 0 || s->P == 0 || s->Q == 0 || s->K == 0)
        return 0;
    if (FN(use_nhwc)(s))
        return FN(direct_nhwc)(s, x, w, wscale, bias, relu, y);
    if (FN(dw3x3_shape)(s) && s->dh == 1 && FN(select_dw3x3)() != NULL) {
        /* the plane kernels read the weight as it is: fold a copy (9 K values) */
        T *folded = NULL;
        if (wscale) {
            folded = (T *)fc_malloc((size_t)(s->K * 9) * sizeof(T));
            if (folded == NULL)
                return FC_ENOMEM;
            FN(fc_bn_fold_weight)(s->K, 9, w, wscale, folded);
        }
        FN(direct_dw3x3)(s, x, folded ? folded : w, bias, relu, y);
        free(folded);
        return 0;
    }
    pl.ker = FN(select_kernel)(FN(is_depthwise)(s));
    pl.nkb = (Kg + pl.ker.kb - 1) / pl.ker.kb;
    wp = (T *)fc_scratch(FC_SLOT_WEIGHT, (size_t)(G * pl.nkb * Cg * s->R * s->S *
                                                  pl.ker.kb) * sizeof(T));
    bp = bias ? (T *)fc_calloc((size_t)(G * pl.nkb * pl.ker.kb), sizeof(T)) : NULL;
    if (wp == NULL || (bias && bp == NULL)) {
        free(bp);
        return FC_ENOMEM;
    }
    FN(pack_weights)(s, pl.ker.kb, FN(use_shifted)(s), w, wscale, wp);
    if (bias)
        for (int64_t g = 0; g < G; g++)
            for (int64_t k = 0; k < Kg; k++)
                bp[g * pl.nkb * pl.ker.kb + k] = bias[g * Kg + k];
    pl.wp = wp;
    pl.bp = bp;
    if (FN(use_shifted)(s))
        err = FN(direct_shifted)(s, &pl, x, relu, y);
    else if (FN(use_flat)(s, pl.ker.nv, pl.ker.lanes))
        err = FN(direct_flat)(s, &pl, x, relu, y);
    else
        err = FN(direct_rows)(s, &pl, x, relu, y);
    free(bp);
    return err;
}

/* The input gradient gx[c][i][j] sums grad_output[k][p][q] w[k][c][r][s]
 * over i = p sh - pt + r dh and j = q sw - pl + s dw.  One axis, for the
 * input positions i = st u + a (phase a): the taps r that reach them are
 * those with (a + pad - r dil) divisible by st, an arithmetic progression
 * r = top, top - rstep, ... (n of them, rstep = st / gcd(st, dil)), the
 * m-th reaching grad_output row u + e0 + m step (step = dil / gcd);
 * `out` positions are in the phase.  Stride 1 is one phase with every
 * tap, in reverse. */
typedef struct {
    int64_t n, top, rstep, e0, step, out;
} FN(phase_axis);

static FN(phase_axis) FN(phase_of)(int64_t a, int64_t st, int64_t pad, int64_t dil,
                                   int64_t K, int64_t in)
{
    FN(phase_axis) ph;
    int64_t g = st, d = dil;
    while (d) {   /* gcd(st, dil) */
        const int64_t t = g % d;
        g = d;
        d = t;
    }
    ph.rstep = st / g;
    ph.step = dil / g;
    ph.top = -1;
    for (int64_t r = K - 1; r >= 0 && r > K - 1 - ph.rstep; r--)
        if ((a + pad - r * dil) % st == 0) {
            ph.top = r;
            break;
        }
    ph.n = ph.top >= 0 ? ph.top / ph.rstep + 1 : 0;
    ph.e0 = ph.n ? (a + pad - ph.top * dil) / st : 0;
    ph.out = in > a ? (in - a + st - 1) / st : 0;
    return ph;
}

/* A phase's weight, the taps that reach it with channels transposed:
 * ws[g][c][k][m][n] = w[g][k][c][rows.top - m rows.rstep][cols.top - n
 * cols.rstep].  By blocks of 16 input channels, so that each k's block is
 * one contiguous read and the 16 rows of ws advance together (element by
 * element over c then k, each read was a new cache line: 2.9 ms of
 * vgg_512x14's 9.4 MB on one thread). */
static int FN(phase_weight)(const fc_conv_shape *s, const T *w, const FN(phase_axis) *rows,
                            const FN(phase_axis) *cols, T *ws)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G, S = s->S;
    const int64_t RS = s->R * S, M = rows->n, N = cols->n, MN = M * N, CB = 16;
    const int64_t ncb = (Cg + CB - 1) / CB;
    /* where each phase tap reads its filter: the index arithmetic once per
     * call, not once per weight (a pass over 9 MB of weights took 1.4 ms
     * with it inside) */
    int64_t *idx = (int64_t *)fc_malloc(sizeof(int64_t) * (size_t)MN);
    if (idx == NULL)
        return FC_ENOMEM;
    for (int64_t m = 0; m < M; m++)
        for (int64_t n = 0; n < N; n++)
            idx[m * N + n] = (rows->top - m * rows->rstep) * S + cols->top - n * cols->rstep;
#pragma omp parallel for num_threads(fc_get_num_threads()) schedule(static)
    for (int64_t gcb = 0; gcb < G * ncb; gcb++) {
        const int64_t g = gcb / ncb, c0 = gcb % ncb * CB;
        const int64_t nc = Cg - c0 < CB ? Cg - c0 : CB;
        for (int64_t k = 0; k < Kg; k++) {
            const T *src = w + ((g * Kg + k) * Cg + c0) * RS;
            for (int64_t c = 0; c < nc; c++) {
                T *dst = ws + ((g * Cg + c0 + c) * Kg + k) * MN;
                for (int64_t i = 0; i < MN; i++)
                    dst[i] = src[c * RS + idx[i]];
            }
        }
    }
    free(idx);
    return 0;
}

/* The input gradient by phases: phase (a, b) of the input, pixels (sh u +
 * a, sw v + b), is a stride-1 convolution of grad_output with the phase's
 * weight, by `algo` (input_conv), scattered into the phase (written in
 * place at stride 1); phases no tap reaches are zero.  1.6-2.6x faster
 * than im2col's col2im on stride-2 layers.  Returns 1, computing nothing,
 * where a phase would start past grad_output's first row or column
 * (padding wider than the dilated kernel, which the kernels' walks do not
 * take as a negative padding): the caller then takes im2col. */
static int FN(grad_input)(const fc_conv_shape *s, const T *gy, const T *w, int algo,
                          T *gx, int *err)
{
    const int64_t H = s->H, W = s->W, sh = s->sh, sw = s->sw;
    const int one = sh == 1 && sw == 1;
    *err = 0;
    for (int64_t a = 0; a < sh; a++) {
        const FN(phase_axis) rows = FN(phase_of)(a, sh, s->pt, s->dh, s->R, H);
        if (rows.n && rows.out && rows.e0 > 0)
            return 1;
    }
    for (int64_t b = 0; b < sw; b++) {
        const FN(phase_axis) cols = FN(phase_of)(b, sw, s->pl, s->dw, s->S, W);
        if (cols.n && cols.out && cols.e0 > 0)
            return 1;
    }
    const int64_t U = (H + sh - 1) / sh, V = (W + sw - 1) / sw;
    T *ws = (T *)fc_malloc((size_t)(s->K * (s->C / s->groups) * s->R * s->S) * sizeof(T));
    T *out = one ? gx : (T *)fc_malloc((size_t)(s->N * s->C * U * V) * sizeof(T));
    if (ws == NULL || out == NULL) {
        free(ws);
        if (!one)
            free(out);
        *err = FC_ENOMEM;
        return 0;
    }
    for (int64_t a = 0; a < sh && !*err; a++) {
        const FN(phase_axis) rows = FN(phase_of)(a, sh, s->pt, s->dh, s->R, H);
        for (int64_t b = 0; b < sw && !*err; b++) {
            const FN(phase_axis) cols = FN(phase_of)(b, sw, s->pl, s->dw, s->S, W);
            const int64_t pu = rows.out, pv = cols.out, reached = rows.n && cols.n;
            if (pu == 0 || pv == 0)
                continue;
            if (reached) {
                fc_conv_shape t = *s;
                t.C = s->K; t.H = s->P; t.W = s->Q;
                t.K = s->C; t.R = rows.n; t.S = cols.n; t.P = pu; t.Q = pv;
                t.sh = t.sw = 1;
                t.dh = rows.step; t.dw = cols.step;
                t.pt = -rows.e0; t.pl = -cols.e0;
                /* stride 1: the whole filter turned, which a kernel may
                 * read as stored; else (or where it declines) the copy */
                *err = one ? FN(input_conv_turned)(algo, &t, gy, w, out) : FC_WINO_DECLINED;
                if (*err == FC_WINO_DECLINED) {
                    *err = FN(phase_weight)(s, w, &rows, &cols, ws);
                    if (!*err)
                        *err = FN(input_conv)(algo, &t, gy, ws, out);
                }
            }
            if (one)
                continue;
#pragma omp parallel for num_threads(fc_get_num_threads()) schedule(static)
            for (int64_t nc = 0; nc < s->N * s->C; nc++) {
                const T *src = out + nc * pu * pv;
                T *dst = gx + nc * H * W + a * W + b;
                for (int64_t u = 0; u < pu; u++)
                    for (int64_t v = 0; v < pv; v++)
                        dst[u * sh * W + v * sw] = reached ? src[u * pv + v] : (T)0;
            }
        }
    }
    free(ws);
    if (!one)
        free(out);
    return 0;
}

/* Weight gradient of a depthwise layer (one input channel per group):
 * per output channel and tap, a dot product of grad_output rows with input
 * rows, which the compiler vectorises along the row.  Threads own disjoint
 * output channels. */
static void FN(grad_weight_depthwise)(const fc_conv_shape *s, const T *gy,
                                      const T *x, T *gw)
{
    const int64_t Kg = s->K / s->groups, R = s->R, S = s->S;
    const int64_t P = s->P, Q = s->Q, H = s->H, W = s->W, sw = s->sw;
#pragma omp parallel for num_threads(fc_get_num_threads()) schedule(static)
    for (int64_t k = 0; k < s->K; k++) {
        const int64_t c = k / Kg;   /* the group's one input channel */
        for (int64_t r = 0; r < R; r++)
            for (int64_t ks = 0; ks < S; ks++) {
                const int64_t off = ks * s->dw - s->pl;
                int64_t q_lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
                int64_t q_hi = off >= W ? 0 : (W - 1 - off) / sw + 1;
                T acc = 0;
                if (q_hi > Q) q_hi = Q;
                for (int64_t n = 0; n < s->N; n++)
                    for (int64_t p = 0; p < P; p++) {
                        const int64_t ih = p * s->sh - s->pt + r * s->dh;
                        if (ih < 0 || ih >= H)
                            continue;
                        const T *g = gy + ((n * s->K + k) * P + p) * Q;
                        const T *xr = x + ((n * s->C + c) * H + ih) * W + off;
                        for (int64_t q = q_lo; q < q_hi; q++)
                            acc += g[q] * xr[q * sw];
                    }
                gw[(k * R + r) * S + ks] = acc;
            }
    }
}

/* Output pixels per micro-kernel run: their grad_output rows for one block
 * of output channels (128 x 32 floats) stay in L1 across input blocks. */
#define FC_WGRAD_PIXELS 128

/* Weight gradient by the channels-last micro-kernels (conv_wgrad.h).
 * Images are laid out a few at a time: the input zero-padded and
 * channels-last, grad_output channels-last, each group's channels padded to
 * whole kernel blocks with zeros.  Work items are (image, pixel run, share of
 * output-channel blocks); each thread sums into its own copy of gw, and the
 * copies are added in thread order (the same bits every run at a fixed
 * thread count). */
static int FN(grad_weight)(const fc_conv_shape *s, const T *gy, const T *x,
                           T *gw)
{
    const int64_t G = s->groups, Cg = s->C / G, Kg = s->K / G;
    const int64_t R = s->R, S = s->S, taps = R * S, P = s->P, Q = s->Q;
    const int64_t PQ = P * Q;
    const WGRAD_T ker = FN(select_wgrad)(Cg, Kg);
    const int64_t Cgp = (Cg + ker.cb - 1) / ker.cb * ker.cb;
    const int64_t Kgp = (Kg + ker.kt - 1) / ker.kt * ker.kt;
    const int64_t xs = G * Cgp, gs = G * Kgp;
    int64_t Hp, Wp, per_image;
    const int64_t wt_size = G * taps * Cgp * Kgp;
    const int64_t nruns = (PQ + FC_WGRAD_PIXELS - 1) / FC_WGRAD_PIXELS;
    const int64_t nkt = Kgp / ker.kt;
    const int nt = fc_get_num_threads();
    const PACK16_T pack16 = FN(select_pack16)();
    int64_t nb, ksplit = 1, *pix;
    T *partial, *buf;
    int err = 0;

    if (FN(is_depthwise)(s)) {
        const DW_WGRAD_T fn = FN(select_dw3x3_wgrad)();
        if (fn == NULL || !FN(dw3x3_shape)(s)) {
            FN(grad_weight_depthwise)(s, gy, x, gw);
            return 0;
        }
        const fc_dw_plane p = FN(dw_plane)(s, 0);
        /* output channels are independent; each sums its images in order */
#pragma omp parallel for num_threads(nt) schedule(static)
        for (int64_t k = 0; k < s->K; k++) {
            for (int t = 0; t < 9; t++)
                gw[k * 9 + t] = 0;
            for (int64_t n = 0; n < s->N; n++)
                fn(&p, x + (n * s->C + k / Kg) * s->H * s->W, gy + (n * s->K + k) * PQ,
                   gw + k * 9);
        }
        return 0;
    }
    memset(gw, 0, (size_t)(s->K * Cg * taps) * sizeof(T));
    if (s->N == 0 || PQ == 0)
        return 0;
    FN(padded_extent)(s, &Hp, &Wp);
    per_image = Hp * Wp * xs + PQ * gs;
    nb = ((int64_t)16 << 20) / (per_image * (int64_t)sizeof(T));
    if (nb < 1) nb = 1;
    if (nb > s->N) nb = s->N;
    /* One small image: share its output-channel blocks out as well. */
    while (nb * nruns * ksplit < 4 * nt && ksplit < nkt)
        ksplit *= 2;
    buf = (T *)fc_scratch(FC_SLOT_INPUT, (size_t)(nb * per_image) * sizeof(T));
    pix = (int64_t *)fc_malloc(sizeof(int64_t) * PQ);
    partial = (T *)fc_calloc((size_t)(wt_size * nt), sizeof(T));
    if (buf == NULL || pix == NULL || partial == NULL) {
        free(pix);
        free(partial);
        return FC_ENOMEM;
    }
    for (int64_t o = 0; o < PQ; o++)
        pix[o] = o / Q * s->sh * Wp + o % Q * s->sw;

    for (int64_t n0 = 0; n0 < s->N; n0 += nb) {
        const int64_t nn = s->N - n0 < nb ? s->N - n0 : nb;
        const int64_t items = nn * nruns * ksplit;
        T *xp = buf, *gt = buf + nb * Hp * Wp * xs;
#pragma omp parallel num_threads(nt)
        {
            FN(pad_channels_last)(s, x, n0, nn, Cgp, Hp, Wp, xs, xp);
#pragma omp for schedule(static)
            for (int64_t row = 0; row < nn * P; row++) {
                const int64_t n = row / P, p = row % P;
                T *dst = gt + (n * PQ + p * Q) * gs;
                for (int64_t q = 0; q < Q; q++)
                    for (int64_t k = Kg; k < Kgp; k++)
                        for (int64_t g = 0; g < G; g++)
                            dst[q * gs + g * Kgp + k] = 0;
                /* 16 channels x 16 pixels at a time by the ISA's transpose:
                 * element by element, each store was a new cache line (9%
                 * of cifar_res16's backward) */
                for (int64_t g = 0; g < G; g++)
                    for (int64_t k0 = 0; k0 < Kg; k0 += 16) {
                        const int64_t nk = Kg - k0 < 16 ? Kg - k0 : 16;
                        const T *src = gy + (((n0 + n) * s->K + g * Kg + k0) * P + p) * Q;
                        if (pack16 != NULL && nk == 16) {
                            for (int64_t q0 = 0; q0 < Q; q0 += 16) {
                                const int ncols = Q - q0 < 16 ? (int)(Q - q0) : 16;
                                T *d[16];
                                for (int i = 0; i < ncols; i++)
                                    d[i] = dst + (q0 + i) * gs + g * Kgp + k0;
                                pack16(src + q0, PQ, ncols, NULL, 8, d);
                            }
                            continue;
                        }
                        for (int64_t k = 0; k < nk; k++)
                            for (int64_t q = 0; q < Q; q++)
                                dst[q * gs + g * Kgp + k0 + k] = src[k * PQ + q];
                    }
            }
            int tid = 0;
#ifdef FASTCONV_OPENMP
            tid = omp_get_thread_num();
#endif
            T *mine = partial + tid * wt_size;
            fc_wgrad_tile t;
            t.xs = xs;
            t.gs = gs;
            t.ldw = Kgp;
#pragma omp for schedule(static)
            for (int64_t it = 0; it < items; it++) {
                const int64_t share = it % ksplit, run = it / ksplit % nruns;
                const int64_t n = it / (ksplit * nruns);
                const int64_t o0 = run * FC_WGRAD_PIXELS;
                const int64_t chunk = (nkt + ksplit - 1) / ksplit;
                const int64_t kt_lo = share * chunk;
                const int64_t kt_hi = kt_lo + chunk < nkt ? kt_lo + chunk : nkt;
                t.npix = PQ - o0 < FC_WGRAD_PIXELS ? PQ - o0 : FC_WGRAD_PIXELS;
                t.pix = pix + o0;
                for (int64_t tap = 0; tap < taps; tap++) {
                    t.tapoff = tap / S * s->dh * Wp + tap % S * s->dw;
                    for (int64_t g = 0; g < G; g++)
                        for (int64_t kt = kt_lo; kt < kt_hi; kt++)
                            for (int64_t c0 = 0; c0 < Cgp; c0 += ker.cb)
                                ker.fn(&t, xp + n * Hp * Wp * xs + g * Cgp + c0,
                                       gt + (n * PQ + o0) * gs + g * Kgp + kt * ker.kt,
                                       mine + ((g * taps + tap) * Cgp + c0) * Kgp +
                                           kt * ker.kt);
                }
            }
        }
    }
    /* [g][tap][c][k] copies to [k][c][tap], 16 output channels at a time
     * so that both sides move through whole cache lines. */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t gc = 0; gc < G * Cg; gc++) {
        const int64_t g = gc / Cg, c = gc % Cg;
        for (int64_t k0 = 0; k0 < Kg; k0 += 16)
            for (int64_t tap = 0; tap < taps; tap++)
                for (int64_t k = k0; k < k0 + 16 && k < Kg; k++) {
                    T acc = 0;
                    for (int t = 0; t < nt; t++)
                        acc += partial[t * wt_size + ((g * taps + tap) * Cgp + c) * Kgp + k];
                    gw[((g * Kg + k) * Cg + c) * taps + tap] = acc;
                }
    }
    free(pix);
    free(partial);
    return err;
}

/* Fraction of the weight-gradient kernel's tile that holds real channels
 * (for "auto"); depthwise layers have their own kernels. */
double FN(fc_conv2d_wgrad_efficiency)(const fc_conv_shape *s)
{
    const int64_t Cg = s->C / s->groups, Kg = s->K / s->groups;
    const WGRAD_T ker = FN(select_wgrad)(Cg, Kg);
    if (FN(is_depthwise)(s))
        return 1.0;
    return wgrad_fill(Cg, Kg, ker.cb, ker.kt);
}

int FN(fc_conv2d_backward_direct)(const fc_conv_shape *s, const T *gy,
                                  const T *x, const T *w, int input_algo,
                                  T *gx, T *gw)
{
    int err = 0;
    if (gw)
        err = FN(grad_weight)(s, gy, x, gw);
    if (gx && !err) {
        /* an empty grad_output, or a phase past its edge: im2col's col2im */
        const int empty = s->P == 0 || s->Q == 0;
        if (empty || FN(grad_input)(s, gy, w, input_algo, gx, &err))
            err = FN(fc_conv2d_backward_im2col)(s, gy, x, w, gx, NULL);
    }
    return err;
}

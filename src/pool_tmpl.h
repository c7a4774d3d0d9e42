/* Pooling drivers, written once for both float types: window clipping,
 * border columns, divisors, threads.  The micro-kernels (pool_internal.h)
 * are the only part that knows the instruction set.
 *
 * Included by pool.c with T, FN(name), KSET (the kernel-set type),
 * KERNELS() (the active set) and GENERIC (the plain-C set) defined. */

/* ---- max pooling ---- */

/* One output, outside the micro-kernels (its window crosses the left or
 * right edge): PyTorch's scan, `if (v > max || isnan(v))`, from -inf and the
 * index of the window's first element inside the input. */
static void FN(max_one)(const fc_pool_shape *s, const T *xp,
                        const pool_span_t *rs, const pool_span_t *cs, T *y,
                        int64_t *ind)
{
    T mx = -(T)INFINITY;
    int64_t at = rs->first * s->W + cs->first;
    for (int64_t j = 0; j < rs->n; j++) {
        const int64_t row = (rs->first + j * s->dh) * s->W + cs->first;
        for (int64_t c = 0; c < cs->n; c++) {
            const int64_t i = row + c * s->dw;
            const T v = xp[i];
            if (v > mx || isnan(v)) {
                mx = v;
                at = i;
            }
        }
    }
    *y = mx;
    if (ind)
        *ind = at;
}

int FN(fc_max_pool2d)(const fc_pool_shape *s, const T *x, T *y,
                      int64_t *indices)
{
    const KSET *ks = KERNELS();
    const int variant = pool_variant(s);
    const int64_t H = s->H, W = s->W, P = s->P, Q = s->Q, HW = H * W;
    const int64_t planes = s->N * s->C;
    const int64_t nb = (P + POOL_ROW_BLOCK - 1) / POOL_ROW_BLOCK, items = planes * nb;
    const int nt = pool_threads(planes * ((HW + P * Q) * (int64_t)sizeof(T) +
                                          (indices ? P * Q * 8 : 0)));
    pool_span_t *rsp, *csp;
    int64_t q_lo, q_hi;
    if (items == 0)
        return 0;
    if (indices && ks->idx32 && HW > INT32_MAX)
        ks = GENERIC;
    rsp = (pool_span_t *)fc_malloc((size_t)(P + Q) * sizeof(pool_span_t));
    if (rsp == NULL)
        return FC_ENOMEM;
    csp = rsp + P;
    pool_spans(rsp, P, s->kh, s->sh, s->ph, s->dh, H, -1);
    pool_spans(csp, Q, s->kw, s->sw, s->pw, s->dw, W, -1);
    pool_interior(s, &q_lo, &q_hi);
    /* work items: blocks of output rows of one plane */
#pragma omp parallel for num_threads(nt) schedule(dynamic, pool_chunk(items, nt))
    for (int64_t it = 0; it < items; it++) {
        const int64_t pl = it / nb, oh_end = (it - pl * nb + 1) * POOL_ROW_BLOCK;
        const T *xp = x + pl * HW;
        int64_t oh = (it - pl * nb) * POOL_ROW_BLOCK;
        while (oh < P && oh < oh_end) {
            const pool_span_t *rs = rsp + oh;
            const int64_t n = pool_run(rsp, oh, (oh_end < P ? oh_end : P) - oh, s->sh);
            T *yr = y + (pl * P + oh) * Q;
            int64_t *ir = indices ? indices + (pl * P + oh) * Q : NULL;
            const int interior = rs->n > 0 && q_hi > q_lo;
            if (interior) {
                fc_pool_row r;
                r.nr = rs->n;
                r.rstep = s->dh * W;
                r.kw = s->kw;
                r.sw = s->sw;
                r.dw = s->dw;
                r.n = q_hi - q_lo;
                r.rows = n;
                r.xrow = s->sh * W;
                r.yrow = Q;
                r.off = rs->first * W + q_lo * s->sw - s->pw;
                r.avail = (planes - pl) * HW;
                if (ir)
                    ks->max_idx[variant](&r, xp, yr + q_lo, ir + q_lo);
                else
                    ks->max[variant](&r, xp, yr + q_lo);
            }
            /* the border columns: [0, b_lo) and [b_hi, Q) */
            const int64_t b_lo = interior ? q_lo : Q, b_hi = interior ? q_hi : Q;
            for (int64_t i = 0; i < n; i++) {
                for (int64_t ow = 0; ow < b_lo; ow++)
                    FN(max_one)(s, xp, rs + i, csp + ow, yr + i * Q + ow,
                                ir ? ir + i * Q + ow : NULL);
                for (int64_t ow = b_hi; ow < Q; ow++)
                    FN(max_one)(s, xp, rs + i, csp + ow, yr + i * Q + ow,
                                ir ? ir + i * Q + ow : NULL);
            }
            oh += n;
        }
    }
    free(rsp);
    return 0;
}

int FN(fc_max_pool2d_backward)(const fc_pool_shape *s, const T *gy,
                               const int64_t *indices, T *gx)
{
    const int64_t planes = s->N * s->C, HW = s->H * s->W, PQ = s->P * s->Q;
    const int nt = pool_threads(planes * ((HW + PQ) * (int64_t)sizeof(T) + PQ * 8));
    int err = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, pool_chunk(planes, nt))
    for (int64_t pl = 0; pl < planes; pl++) {
        T *g = gx + pl * HW;
        const T *d = gy + pl * PQ;
        const int64_t *at = indices + pl * PQ;
        /* seen as unsigned, a negative index is larger than any valid one */
        uint64_t top = 0;
        for (int64_t i = 0; i < PQ; i++)
            top = (uint64_t)at[i] > top ? (uint64_t)at[i] : top;
        if (PQ > 0 && top >= (uint64_t)HW) {
#pragma omp atomic write
            err = FC_EINDEX;
            continue;
        }
        memset(g, 0, (size_t)HW * sizeof(T));
        for (int64_t i = 0; i < PQ; i++)
            g[at[i]] += d[i];
    }
    return err;
}

/* ---- average pooling ---- */

/* One output outside the micro-kernels: the sum in row-major order /
 * divisor. */
static void FN(avg_one)(const fc_pool_shape *s, const T *xp,
                        const pool_span_t *rs, const pool_span_t *cs,
                        int64_t divisor_override, T *y)
{
    const int64_t div = divisor_override ? divisor_override : rs->len * cs->len;
    T acc = 0;
    for (int64_t j = 0; j < rs->n; j++) {
        const T *row = xp + (rs->first + j) * s->W + cs->first;
        for (int64_t c = 0; c < cs->n; c++)
            acc += row[c];
    }
    *y = acc / (T)div;
}

/* The divisor of every output (P x Q), the same for all planes. */
static T *FN(avg_divisors)(const fc_pool_shape *s, int count_pad,
                           int64_t divisor_override)
{
    T *div = (T *)fc_malloc((size_t)(s->P * s->Q) * sizeof(T));
    if (div == NULL)
        return NULL;
    for (int64_t oh = 0; oh < s->P; oh++) {
        const int64_t hlen = avg_len(oh, s->kh, s->sh, s->ph, s->H, count_pad);
        for (int64_t ow = 0; ow < s->Q; ow++)
            div[oh * s->Q + ow] = (T)(divisor_override ? divisor_override
                : hlen * avg_len(ow, s->kw, s->sw, s->pw, s->W, count_pad));
    }
    return div;
}

/* Stride-1 average pooling, a plane at a time, from micro-kernels: the
 * plane between zero columns (the padding; the plane itself when there is
 * none), the sums of kw consecutive values along the whole flattened plane
 * in one pass (the sums that straddle two rows are never used), then each
 * output row is the sum of its window's rows of sums over the divisors.  No
 * border column is left to scalar code, and each sum of kw columns serves
 * every window holding that row. */
static int FN(avg_pool_s1)(const fc_pool_shape *s, const KSET *ks,
                           const pool_span_t *rsp, const T *div, int nt,
                           const T *x, T *y)
{
    const int64_t H = s->H, W = s->W, P = s->P, Q = s->Q, pw = s->pw;
    const int64_t Wp = W + 2 * pw;          /* = Q + kw - 1 at stride 1 */
    const int64_t planes = s->N * s->C, nsum = (H - 1) * Wp + Q;
    int err = 0;
#pragma omp parallel num_threads(nt)
    {
        T *sums = (T *)fc_malloc((size_t)(H * Wp) * sizeof(T));
        T *padded = pw ? (T *)fc_calloc((size_t)(H * Wp), sizeof(T)) : NULL;
        const int ok = sums != NULL && (padded != NULL || pw == 0);
        if (!ok) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
#pragma omp for schedule(dynamic, pool_chunk(planes, nt))
        for (int64_t pl = 0; pl < planes; pl++) {
            const T *src = x + pl * H * W;
            if (!ok)
                continue;
            if (pw) {           /* the zero columns stay zero */
                for (int64_t ih = 0; ih < H; ih++)
                    memcpy(padded + ih * Wp + pw, src + ih * W, (size_t)W * sizeof(T));
                src = padded;
            }
            /* sums[i] = src[i] + ... + src[i + kw - 1] */
            ks->sum_s1(s->kw, src + s->kw - 1, nsum, sums);
            /* runs of output rows whose windows have the same rows */
            for (int64_t oh = 0, n; oh < P; oh += n) {
                n = pool_run(rsp, oh, P - oh, s->sh);
                ks->sum_rows_div(n, rsp[oh].n, Wp, Q, sums + rsp[oh].first * Wp,
                                 s->sh * Wp, div + oh * Q, Q,
                                 y + (pl * P + oh) * Q, Q);
            }
        }
        free(sums);
        free(padded);
    }
    return err;
}

int FN(fc_avg_pool2d)(const fc_pool_shape *s, int count_pad,
                      int64_t divisor_override, const T *x, T *y)
{
    const KSET *ks = KERNELS();
    const int variant = pool_variant(s);
    const int64_t H = s->H, W = s->W, P = s->P, Q = s->Q, HW = H * W;
    const int64_t planes = s->N * s->C;
    const int64_t nb = (P + POOL_ROW_BLOCK - 1) / POOL_ROW_BLOCK, items = planes * nb;
    const int nt = pool_threads(planes * (HW + P * Q) * (int64_t)sizeof(T));
    pool_span_t *rsp, *csp;
    int64_t q_lo, q_hi;
    if (items == 0)
        return 0;
    if (pool_is_global(s)) {
        /* blocks of planes, each summed by one contiguous pass */
        const int64_t block = 64, nblocks = (planes + block - 1) / block;
        const T div = (T)(divisor_override ? divisor_override : HW);
#pragma omp parallel for num_threads(nt) schedule(dynamic, pool_chunk(nblocks, nt))
        for (int64_t b = 0; b < nblocks; b++) {
            const int64_t n = planes - b * block < block ? planes - b * block : block;
            ks->avg_global(n, HW, x + b * block * HW, div, y + b * block);
        }
        return 0;
    }
    rsp = (pool_span_t *)fc_malloc((size_t)(P + Q) * sizeof(pool_span_t));
    if (rsp == NULL)
        return FC_ENOMEM;
    csp = rsp + P;
    pool_spans(rsp, P, s->kh, s->sh, s->ph, 1, H, count_pad);
    pool_spans(csp, Q, s->kw, s->sw, s->pw, 1, W, count_pad);
    if (pool_avg_separable(s)) {
        T *div = FN(avg_divisors)(s, count_pad, divisor_override);
        int err = div ? FN(avg_pool_s1)(s, ks, rsp, div, nt, x, y) : FC_ENOMEM;
        free(div);
        free(rsp);
        return err;
    }
    pool_interior(s, &q_lo, &q_hi);
#pragma omp parallel for num_threads(nt) schedule(dynamic, pool_chunk(items, nt))
    for (int64_t it = 0; it < items; it++) {
        const int64_t pl = it / nb, oh_end = (it - pl * nb + 1) * POOL_ROW_BLOCK;
        const T *xp = x + pl * HW;
        int64_t oh = (it - pl * nb) * POOL_ROW_BLOCK;
        while (oh < P && oh < oh_end) {
            const pool_span_t *rs = rsp + oh;
            const int64_t n = pool_run(rsp, oh, (oh_end < P ? oh_end : P) - oh, s->sh);
            T *yr = y + (pl * P + oh) * Q;
            const int interior = rs->n > 0 && q_hi > q_lo;
            if (interior) {
                /* inside the row every window has kw columns, counted either way */
                const int64_t div = divisor_override ? divisor_override : rs->len * s->kw;
                fc_pool_row r;
                r.nr = rs->n;
                r.rstep = W;
                r.kw = s->kw;
                r.sw = s->sw;
                r.dw = 1;
                r.n = q_hi - q_lo;
                r.rows = n;
                r.xrow = s->sh * W;
                r.yrow = Q;
                r.off = rs->first * W + q_lo * s->sw - s->pw;
                r.avail = (planes - pl) * HW;
                ks->avg[variant](&r, xp, (T)div, yr + q_lo);
            }
            const int64_t b_lo = interior ? q_lo : Q, b_hi = interior ? q_hi : Q;
            for (int64_t i = 0; i < n; i++) {
                for (int64_t ow = 0; ow < b_lo; ow++)
                    FN(avg_one)(s, xp, rs + i, csp + ow, divisor_override,
                                yr + i * Q + ow);
                for (int64_t ow = b_hi; ow < Q; ow++)
                    FN(avg_one)(s, xp, rs + i, csp + ow, divisor_override,
                                yr + i * Q + ow);
            }
            oh += n;
        }
    }
    free(rsp);
    return 0;
}

/* One input row of the average-pool gradient from v, the sum over the
 * output rows whose windows hold it of gy / divisor (v[q] = 0 for q < 0 and
 * q >= Q): out[iw] = sum of v[q] over the windows q holding column iw. */
static void FN(avg_expand)(const fc_pool_shape *s, const KSET *ks,
                           const T *v, T *out)
{
    const int64_t W = s->W, kw = s->kw, sw = s->sw, pw = s->pw;
    if (sw == 1) {
        ks->sum_s1(kw, v + pw, W, out);
    } else if (kw == 2 && sw == 2) {        /* pw is 0 or 1 */
        if (pw == 0) {
            ks->dup2(v, W, out);
        } else {
            out[0] = v[0];
            if (W > 1)
                ks->dup2(v + 1, W - 1, out + 1);
        }
    } else {
        for (int64_t iw = 0; iw < W; iw++) {
            const int64_t a = iw + pw;
            int64_t q = a - kw + 1 <= 0 ? 0 : (a - kw + sw) / sw;
            int64_t q_end = a / sw + 1;
            T acc = 0;
            if (q_end > s->Q)
                q_end = s->Q;
            for (; q < q_end; q++)
                acc += v[q];
            out[iw] = acc;
        }
    }
}

/* The gradient of stride-1 average pooling (both ways), a plane at a time:
 * each input element receives gd = gy / divisor of the kh x kw windows
 * holding it, so gx is the kh x kw box sum of gd placed in a zero plane G,
 * kh - 1 - ph rows down and kw - 1 - pw columns right.  Three micro-kernel
 * calls a plane: gd into G, the sums of kw consecutive values along the
 * flattened G (those straddling two rows are never used), the sums of kh
 * rows of those into gx. */
static int FN(avg_backward_s1)(const fc_pool_shape *s, const KSET *ks,
                               const T *div, int nt, const T *gy, T *gx)
{
    const int64_t H = s->H, W = s->W, P = s->P, Q = s->Q;
    const int64_t Hg = H + s->kh - 1, Wg = W + s->kw - 1;
    const int64_t top = s->kh - 1 - s->ph, left = s->kw - 1 - s->pw;
    const int64_t planes = s->N * s->C;
    int err = 0;
#pragma omp parallel num_threads(nt)
    {
        T *g = (T *)fc_calloc((size_t)(Hg * Wg), sizeof(T));   /* borders stay 0 */
        T *sums = (T *)fc_malloc((size_t)(Hg * Wg) * sizeof(T));
        const int ok = g != NULL && sums != NULL;
        if (!ok) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
#pragma omp for schedule(dynamic, pool_chunk(planes, nt))
        for (int64_t pl = 0; pl < planes; pl++) {
            if (!ok)
                continue;
            ks->div(P, Q, gy + pl * P * Q, Q, div, Q, g + top * Wg + left, Wg);
            /* sums[i] = g[i] + ... + g[i + kw - 1] */
            ks->sum_s1(s->kw, g + s->kw - 1, (Hg - 1) * Wg + W, sums);
            ks->sum_rows(H, s->kh, Wg, W, sums, Wg, gx + pl * H * W, W);
        }
        free(g);
        free(sums);
    }
    return err;
}

int FN(fc_avg_pool2d_backward)(const fc_pool_shape *s, int count_pad,
                               int64_t divisor_override, const T *gy, T *gx)
{
    const KSET *ks = KERNELS();
    const int64_t H = s->H, W = s->W, P = s->P, Q = s->Q;
    const int64_t planes = s->N * s->C, HW = H * W, PQ = P * Q;
    const int64_t vlen = s->kw + Q + W + s->pw + 2;
    /* 2-wide, stride-2 windows read v[0 .. (W - 1 + pw) / 2] only: a row
     * of gd itself can serve as v when no v[q >= Q] is read */
    const int direct = s->kw == 2 && s->sw == 2 && (W - 1 + s->pw) / 2 < Q;
    const int nt = pool_threads(planes * (HW + PQ) * (int64_t)sizeof(T));
    T *div;
    int err = 0;
    if (planes == 0)
        return 0;
    if (pool_is_global(s)) {
        const T d = (T)(divisor_override ? divisor_override : HW);
#pragma omp parallel for num_threads(nt) schedule(dynamic, pool_chunk(planes, nt))
        for (int64_t pl = 0; pl < planes; pl++) {
            const T g = gy[pl] / d;
            T *out = gx + pl * HW;
            for (int64_t i = 0; i < HW; i++)
                out[i] = g;
        }
        return 0;
    }
    div = FN(avg_divisors)(s, count_pad, divisor_override);
    if (div == NULL)
        return FC_ENOMEM;
    if (pool_avg_backward_box(s)) {
        err = FN(avg_backward_s1)(s, ks, div, nt, gy, gx);
        free(div);
        return err;
    }

    /* Per plane: gd = gy / divisor; then each input row ih gathers the rows
     * of gd whose windows hold it (v), and spreads v along the row. */
#pragma omp parallel num_threads(nt)
    {
        T *gd = (T *)fc_malloc((size_t)PQ * sizeof(T));
        T *vbuf = (T *)fc_calloc((size_t)vlen, sizeof(T));
        T *v = vbuf + s->kw;       /* v[-kw .. -1] and v[Q ..] stay 0 */
        const int ok = gd != NULL && vbuf != NULL;
        if (!ok) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
#pragma omp for schedule(dynamic, pool_chunk(planes, nt))
        for (int64_t pl = 0; pl < planes; pl++) {
            T *out = gx + pl * HW;
            if (!ok)
                continue;
            ks->div(1, PQ, gy + pl * PQ, 0, div, 0, gd, 0);
            for (int64_t ih = 0; ih < H; ih++) {
                const int64_t a = ih + s->ph;
                const int64_t lo = a - s->kh + 1 <= 0 ? 0 : (a - s->kh + s->sh) / s->sh;
                const int64_t hi = a / s->sh < P - 1 ? a / s->sh : P - 1;
                const int64_t n = hi >= lo ? hi - lo + 1 : 0;
                if (n == 1 && direct) {
                    FN(avg_expand)(s, ks, gd + lo * Q, out + ih * W);
                } else {
                    ks->sum_rows(1, n, Q, Q, n > 0 ? gd + lo * Q : gd, 0, v, 0);
                    FN(avg_expand)(s, ks, v, out + ih * W);
                }
            }
        }
        free(gd);
        free(vbuf);
    }
    free(div);
    return err;
}

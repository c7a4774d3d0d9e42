/* Bodies of the batch-norm micro-kernels, written once for every ISA and
 * both float types.
 *
 * Included by each bn_kernels_<isa>.c after it defines, for its ISA:
 *   T, TARGET (an attribute list or nothing), NAME(op) (the kernel's full
 *   name) and TABLE (the name of the kernel table),
 *   TV, TL: a vector of TL values of T, with TLOAD(p), TSTORE(p, v),
 *     TSET1(s), TSUB(a, b), TMUL(a, b), TFMA(a, b, c) = a * b + c;
 *   DV, DL: a vector of DL doubles, with DLOADT(p) (DL values of T at p,
 *     widened), DSTORET(p, v) (DL doubles stored as T), DLOADD(p) and
 *     DSTORED(p, v) (DL doubles of a double array), DZERO(), DSET1(s),
 *     DADD, DSUB, DMUL, DFMA(a, b, c), DHSUM(v).
 * Only those lines know the instruction set.  The reductions keep several
 * independent accumulators (the adds' latency, not the loads, would bind a
 * single chain); tails shorter than a vector run as scalar code. */

#define BN_RED_UNROLL 4   /* vectors of DL in flight per reduction */

/* out[0] += sum(x - k), out[1] += sum((x - k)^2). */
TARGET static void NAME(stats)(const T *x, int64_t n, double k, double *out)
{
    const DV kv = DSET1(k);
    DV s[BN_RED_UNROLL], q[BN_RED_UNROLL];
    int64_t i = 0;
#pragma GCC unroll 8
    for (int u = 0; u < BN_RED_UNROLL; u++) {
        s[u] = DZERO();
        q[u] = DZERO();
    }
    for (; i + BN_RED_UNROLL * DL <= n; i += BN_RED_UNROLL * DL) {
#pragma GCC unroll 8
        for (int u = 0; u < BN_RED_UNROLL; u++) {
            const DV d = DSUB(DLOADT(x + i + u * DL), kv);
            s[u] = DADD(s[u], d);
            q[u] = DFMA(d, d, q[u]);
        }
    }
    for (; i + DL <= n; i += DL) {
        const DV d = DSUB(DLOADT(x + i), kv);
        s[0] = DADD(s[0], d);
        q[0] = DFMA(d, d, q[0]);
    }
#pragma GCC unroll 8
    for (int u = 1; u < BN_RED_UNROLL; u++) {
        s[0] = DADD(s[0], s[u]);
        q[0] = DADD(q[0], q[u]);
    }
    double ts = DHSUM(s[0]), tq = DHSUM(q[0]);
    for (; i < n; i++) {
        const double d = (double)x[i] - k;
        ts += d;
        tq += d * d;
    }
    out[0] += ts;
    out[1] += tq;
}

/* out[0..3] += sum(d), sum(d^2), sum(g), sum(g d), with d = x - k. */
TARGET static void NAME(stats_grad)(const T *x, const T *g, int64_t n,
                                    double k, double *out)
{
    const DV kv = DSET1(k);
    DV s[2], q[2], sg[2], sgd[2];
    int64_t i = 0;
#pragma GCC unroll 8
    for (int u = 0; u < 2; u++)
        s[u] = q[u] = sg[u] = sgd[u] = DZERO();
    for (; i + 2 * DL <= n; i += 2 * DL) {
#pragma GCC unroll 8
        for (int u = 0; u < 2; u++) {
            const DV d = DSUB(DLOADT(x + i + u * DL), kv);
            const DV gv = DLOADT(g + i + u * DL);
            s[u] = DADD(s[u], d);
            q[u] = DFMA(d, d, q[u]);
            sg[u] = DADD(sg[u], gv);
            sgd[u] = DFMA(gv, d, sgd[u]);
        }
    }
    for (; i + DL <= n; i += DL) {
        const DV d = DSUB(DLOADT(x + i), kv);
        const DV gv = DLOADT(g + i);
        s[0] = DADD(s[0], d);
        q[0] = DFMA(d, d, q[0]);
        sg[0] = DADD(sg[0], gv);
        sgd[0] = DFMA(gv, d, sgd[0]);
    }
    double ts = DHSUM(DADD(s[0], s[1])), tq = DHSUM(DADD(q[0], q[1]));
    double tg = DHSUM(DADD(sg[0], sg[1])), tgd = DHSUM(DADD(sgd[0], sgd[1]));
    for (; i < n; i++) {
        const double d = (double)x[i] - k, gi = (double)g[i];
        ts += d;
        tq += d * d;
        tg += gi;
        tgd += gi * d;
    }
    out[0] += ts;
    out[1] += tq;
    out[2] += tg;
    out[3] += tgd;
}

/* y = ((x - mhi) - mlo) * scale + shift. */
TARGET static void NAME(affine)(const T *x, int64_t n, T mhi, T mlo, T scale,
                                T shift, T *y)
{
    const TV mh = TSET1(mhi), ml = TSET1(mlo), sc = TSET1(scale),
             sh = TSET1(shift);
    int64_t i = 0;
    for (; i + 2 * TL <= n; i += 2 * TL) {
        const TV v0 = TSUB(TSUB(TLOAD(x + i), mh), ml);
        const TV v1 = TSUB(TSUB(TLOAD(x + i + TL), mh), ml);
        TSTORE(y + i, TFMA(v0, sc, sh));
        TSTORE(y + i + TL, TFMA(v1, sc, sh));
    }
    for (; i + TL <= n; i += TL)
        TSTORE(y + i, TFMA(TSUB(TSUB(TLOAD(x + i), mh), ml), sc, sh));
    for (; i < n; i++)
        y[i] = ((x[i] - mhi) - mlo) * scale + shift;
}

/* gx = kg * g + (a * ((x - mhi) - mlo) + c). */
TARGET static void NAME(grad)(const T *g, const T *x, int64_t n, T kg, T mhi,
                              T mlo, T a, T c, T *gx)
{
    const TV kv = TSET1(kg), mh = TSET1(mhi), ml = TSET1(mlo), av = TSET1(a),
             cv = TSET1(c);
    int64_t i = 0;
    for (; i + 2 * TL <= n; i += 2 * TL) {
        const TV d0 = TSUB(TSUB(TLOAD(x + i), mh), ml);
        const TV d1 = TSUB(TSUB(TLOAD(x + i + TL), mh), ml);
        TSTORE(gx + i, TFMA(kv, TLOAD(g + i), TFMA(av, d0, cv)));
        TSTORE(gx + i + TL, TFMA(kv, TLOAD(g + i + TL), TFMA(av, d1, cv)));
    }
    for (; i + TL <= n; i += TL) {
        const TV d = TSUB(TSUB(TLOAD(x + i), mh), ml);
        TSTORE(gx + i, TFMA(kv, TLOAD(g + i), TFMA(av, d, cv)));
    }
    for (; i < n; i++)
        gx[i] = kg * g[i] + (a * ((x[i] - mhi) - mlo) + c);
}

/* gx = kg * g;  out[0] += sum(g), out[1] += sum(g (x - m)). */
TARGET static void NAME(grad_eval)(const T *g, const T *x, int64_t n, double m,
                                   T kg, T *gx, double *out)
{
#define BN_HALVES (TL / DL)   /* double vectors per vector of T */
    const TV kv = TSET1(kg);
    const DV mv = DSET1(m);
    DV sg[2 * BN_HALVES], sgd[2 * BN_HALVES];
    int64_t i = 0;
#pragma GCC unroll 8
    for (int u = 0; u < 2 * BN_HALVES; u++)
        sg[u] = sgd[u] = DZERO();
    for (; i + 2 * TL <= n; i += 2 * TL) {
        TSTORE(gx + i, TMUL(kv, TLOAD(g + i)));
        TSTORE(gx + i + TL, TMUL(kv, TLOAD(g + i + TL)));
#pragma GCC unroll 8
        for (int u = 0; u < 2 * BN_HALVES; u++) {
            const DV gv = DLOADT(g + i + u * DL);
            const DV d = DSUB(DLOADT(x + i + u * DL), mv);
            sg[u] = DADD(sg[u], gv);
            sgd[u] = DFMA(gv, d, sgd[u]);
        }
    }
#pragma GCC unroll 8
    for (int u = 1; u < 2 * BN_HALVES; u++) {
        sg[0] = DADD(sg[0], sg[u]);
        sgd[0] = DADD(sgd[0], sgd[u]);
    }
    double tg = DHSUM(sg[0]), tgd = DHSUM(sgd[0]);
    for (; i < n; i++) {
        const double gi = (double)g[i];
        gx[i] = kg * g[i];
        tg += gi;
        tgd += gi * ((double)x[i] - m);
    }
    out[0] += tg;
    out[1] += tgd;
#undef BN_HALVES
}

/* y = (T)((double)x * s), rounded once (batch norm folded into a weight). */
TARGET static void NAME(scale)(const T *x, int64_t n, double s, T *y)
{
    const DV sv = DSET1(s);
    int64_t i = 0;
    for (; i + 2 * DL <= n; i += 2 * DL) {
        DSTORET(y + i, DMUL(DLOADT(x + i), sv));
        DSTORET(y + i + DL, DMUL(DLOADT(x + i + DL), sv));
    }
    for (; i < n; i++)
        y[i] = (T)((double)x[i] * s);
}

/* ---- row forms: per-position values, no reduction across the row ---- */

TARGET static void NAME(rstats)(const T *x, int64_t ldx, int64_t rows,
                                int64_t n, const double *k, double *s1,
                                double *s2)
{
    int64_t i = 0;
    for (; i + 4 * DL <= n; i += 4 * DL) {
        DV kv[4], a1[4], a2[4];
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            kv[u] = DLOADD(k + i + u * DL);
            a1[u] = DLOADD(s1 + i + u * DL);
            a2[u] = DLOADD(s2 + i + u * DL);
        }
        for (int64_t r = 0; r < rows; r++) {
            const T *xr = x + r * ldx + i;
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) {
                const DV d = DSUB(DLOADT(xr + u * DL), kv[u]);
                a1[u] = DADD(a1[u], d);
                a2[u] = DFMA(d, d, a2[u]);
            }
        }
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) {
            DSTORED(s1 + i + u * DL, a1[u]);
            DSTORED(s2 + i + u * DL, a2[u]);
        }
    }
    for (; i + DL <= n; i += DL) {
        const DV kv = DLOADD(k + i);
        DV a1 = DLOADD(s1 + i), a2 = DLOADD(s2 + i);
        for (int64_t r = 0; r < rows; r++) {
            const DV d = DSUB(DLOADT(x + r * ldx + i), kv);
            a1 = DADD(a1, d);
            a2 = DFMA(d, d, a2);
        }
        DSTORED(s1 + i, a1);
        DSTORED(s2 + i, a2);
    }
    for (; i < n; i++) {
        for (int64_t r = 0; r < rows; r++) {
            const double d = (double)x[r * ldx + i] - k[i];
            s1[i] += d;
            s2[i] += d * d;
        }
    }
}

TARGET static void NAME(rstats_grad)(const T *x, const T *g, int64_t ldx,
                                     int64_t rows, int64_t n, const double *k,
                                     double *s1, double *s2, double *sg,
                                     double *sgd)
{
    int64_t i = 0;
    for (; i + 2 * DL <= n; i += 2 * DL) {
        DV kv[2], a1[2], a2[2], ag[2], agd[2];
#pragma GCC unroll 2
        for (int u = 0; u < 2; u++) {
            kv[u] = DLOADD(k + i + u * DL);
            a1[u] = DLOADD(s1 + i + u * DL);
            a2[u] = DLOADD(s2 + i + u * DL);
            ag[u] = DLOADD(sg + i + u * DL);
            agd[u] = DLOADD(sgd + i + u * DL);
        }
        for (int64_t r = 0; r < rows; r++) {
            const T *xr = x + r * ldx + i, *gr = g + r * ldx + i;
#pragma GCC unroll 2
            for (int u = 0; u < 2; u++) {
                const DV d = DSUB(DLOADT(xr + u * DL), kv[u]);
                const DV gv = DLOADT(gr + u * DL);
                a1[u] = DADD(a1[u], d);
                a2[u] = DFMA(d, d, a2[u]);
                ag[u] = DADD(ag[u], gv);
                agd[u] = DFMA(gv, d, agd[u]);
            }
        }
#pragma GCC unroll 2
        for (int u = 0; u < 2; u++) {
            DSTORED(s1 + i + u * DL, a1[u]);
            DSTORED(s2 + i + u * DL, a2[u]);
            DSTORED(sg + i + u * DL, ag[u]);
            DSTORED(sgd + i + u * DL, agd[u]);
        }
    }
    for (; i < n; i++) {
        for (int64_t r = 0; r < rows; r++) {
            const double d = (double)x[r * ldx + i] - k[i], gi = (double)g[r * ldx + i];
            s1[i] += d;
            s2[i] += d * d;
            sg[i] += gi;
            sgd[i] += gi * d;
        }
    }
}

TARGET static void NAME(raffine)(const T *x, int64_t n, const T *mhi,
                                 const T *mlo, const T *scale, const T *shift,
                                 T *y)
{
    int64_t i = 0;
    for (; i + TL <= n; i += TL) {
        const TV d = TSUB(TSUB(TLOAD(x + i), TLOAD(mhi + i)), TLOAD(mlo + i));
        TSTORE(y + i, TFMA(d, TLOAD(scale + i), TLOAD(shift + i)));
    }
    for (; i < n; i++)
        y[i] = ((x[i] - mhi[i]) - mlo[i]) * scale[i] + shift[i];
}

TARGET static void NAME(rgrad)(const T *g, const T *x, int64_t n, const T *kg,
                               const T *mhi, const T *mlo, const T *a,
                               const T *c, T *gx)
{
    int64_t i = 0;
    for (; i + TL <= n; i += TL) {
        const TV d = TSUB(TSUB(TLOAD(x + i), TLOAD(mhi + i)), TLOAD(mlo + i));
        TSTORE(gx + i, TFMA(TLOAD(kg + i), TLOAD(g + i),
                            TFMA(TLOAD(a + i), d, TLOAD(c + i))));
    }
    for (; i < n; i++)
        gx[i] = kg[i] * g[i] + (a[i] * ((x[i] - mhi[i]) - mlo[i]) + c[i]);
}

TARGET static void NAME(rgrad_eval)(const T *g, const T *x, int64_t ldx,
                                    int64_t rows, int64_t n, const double *m,
                                    const T *kg, T *gx, double *sg,
                                    double *sgd)
{
#define BN_HALVES (TL / DL)   /* double vectors per vector of T */
    int64_t i = 0;
    for (; i + TL <= n; i += TL) {
        const TV kv = TLOAD(kg + i);
        DV mv[BN_HALVES], ag[BN_HALVES], agd[BN_HALVES];
#pragma GCC unroll 4
        for (int h = 0; h < BN_HALVES; h++) {
            mv[h] = DLOADD(m + i + h * DL);
            ag[h] = DLOADD(sg + i + h * DL);
            agd[h] = DLOADD(sgd + i + h * DL);
        }
        for (int64_t r = 0; r < rows; r++) {
            const T *gr = g + r * ldx + i, *xr = x + r * ldx + i;
            TSTORE(gx + r * ldx + i, TMUL(kv, TLOAD(gr)));
#pragma GCC unroll 4
            for (int h = 0; h < BN_HALVES; h++) {
                const DV gv = DLOADT(gr + h * DL);
                const DV d = DSUB(DLOADT(xr + h * DL), mv[h]);
                ag[h] = DADD(ag[h], gv);
                agd[h] = DFMA(gv, d, agd[h]);
            }
        }
#pragma GCC unroll 4
        for (int h = 0; h < BN_HALVES; h++) {
            DSTORED(sg + i + h * DL, ag[h]);
            DSTORED(sgd + i + h * DL, agd[h]);
        }
    }
    for (; i < n; i++) {
        for (int64_t r = 0; r < rows; r++) {
            const double gi = (double)g[r * ldx + i];
            gx[r * ldx + i] = kg[i] * g[r * ldx + i];
            sg[i] += gi;
            sgd[i] += gi * ((double)x[r * ldx + i] - m[i]);
        }
    }
#undef BN_HALVES
}

const TABLE_T TABLE = {NAME(stats), NAME(stats_grad), NAME(affine), NAME(grad),
                       NAME(grad_eval), NAME(scale), NAME(rstats),
                       NAME(rstats_grad), NAME(raffine), NAME(rgrad),
                       NAME(rgrad_eval)};

#undef BN_RED_UNROLL

/* The template's parameters end with it: the next dtype defines its own. */
#undef T
#undef TV
#undef TL
#undef TLOAD
#undef TSTORE
#undef TSET1
#undef TSUB
#undef TMUL
#undef TFMA
#undef DLOADT
#undef DSTORET
#undef NAME
#undef TABLE
#undef TABLE_T

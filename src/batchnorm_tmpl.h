/* Batch-norm drivers, written once for both float types.
 *
 * Included by batchnorm.c with T (float or double), FN(name) (adds the dtype
 * suffix), KERNELS_T (the micro-kernel table type) and SELECT() (the table
 * of the instruction set active now) defined.
 *
 * Each op runs one of two plans (bn_plan in batchnorm.c): pieces in memory
 * order for long runs, per-position sums over stacked rows for short ones.
 * Every pass hands each thread the same run of items, walked forwards
 * (walking the output pass backwards, to meet the values read last while
 * still in cache, measured 25-40% slower: the prefetchers follow ascending
 * streams).  Statistics are shifted sums in double; partial results merge
 * per channel with Chan's formula in an order fixed by the shape, so the
 * result does not depend on the thread count. */

/* A double mean as the (mhi, mlo) pair of T the kernels subtract. */
static inline void FN(split)(double mean, T *mhi, T *mlo)
{
    *mhi = (T)mean;
    *mlo = (T)(mean - (double)*mhi);
}

/* Per-channel coefficients of the output passes. */
typedef struct {
    T mhi, mlo, scale, shift;     /* affine: ((x - mhi) - mlo) * scale + shift */
    T kg, a, c;                   /* grad: kg * g + (a * (x - mean) + c) */
} FN(bn_coef);

/* The same along a super-row (rows plan): one array per coefficient. */
typedef struct {
    T *mhi, *mlo, *scale, *shift, *kg, *a, *c;
    double *m;
} FN(bn_rowcoef);

/* Training forward coefficients of channel c from its moments over M
 * values; the running statistics updated. */
static inline void FN(train_coef)(const bn_moments *m, int64_t M, double eps,
                                  const T *weight, const T *bias, int64_t c,
                                  const fc_bn_running *run, FN(bn_coef) *q)
{
    /* rounding can leave m2 a hair below 0; a NaN (a NaN or inf in the
     * channel) stays NaN, as in PyTorch */
    const double var = m->m2 < 0 ? 0.0 : m->m2 / (double)M;
    const double invstd = 1.0 / sqrt(var + eps);
    FN(split)(m->mean, &q->mhi, &q->mlo);
    q->scale = (T)((weight ? (double)weight[c] : 1.0) * invstd);
    q->shift = bias ? bias[c] : (T)0;
    if (run)
        bn_update_running(run, c, m->mean, var, M);
}

/* sum(g (x - mean)) over channel c, in a pass of its own. */
static double FN(centred_dot)(const fc_bn_shape *s, const T *gy, const T *x,
                              int64_t c, double mean)
{
    double acc = 0;
    for (int64_t n = 0; n < s->N; n++) {
        const int64_t off = (n * s->C + c) * s->HW;
        for (int64_t i = 0; i < s->HW; i++)
            acc += (double)gy[off + i] * ((double)x[off + i] - mean);
    }
    return acc;
}

/* Training backward: channel c's gradients of weight and bias and the
 * coefficients of grad_input, from its statistics over M values. */
static inline void FN(grad_coef)(const fc_bn_shape *s, const T *gy,
                                 const T *x, const bn_part *q, int64_t M,
                                 double eps, const T *weight, int64_t c,
                                 T *gw, T *gb, FN(bn_coef) *o)
{
    const double var = q->m.m2 < 0 ? 0.0 : q->m.m2 / (double)M;   /* NaN stays */
    const double invstd = 1.0 / sqrt(var + eps);
    /* sum(g (x - mean)) from the sum about k0 ... */
    double sgd = q->sgd + (q->k0 - q->m.mean) * q->sg;
    /* ... which holds only for finite sums: with an infinite g each of its
     * terms has the sign of (x - mean) (PyTorch's), not of (x - k0), and
     * the correction can add inf to -inf.  Rare: summed again about the
     * mean (not needed when the mean itself is NaN or inf: all NaN then). */
    if (!(isfinite(sgd) && isfinite(q->sg)) && isfinite(q->m.mean))
        sgd = FN(centred_dot)(s, gy, x, c, q->m.mean);
    const double dw = sgd * invstd, db = q->sg;
    const double kg = (weight ? (double)weight[c] : 1.0) * invstd;
    gw[c] = (T)dw;
    gb[c] = (T)db;
    FN(split)(q->m.mean, &o->mhi, &o->mlo);
    o->kg = (T)kg;
    o->a = (T)(-kg * invstd * dw / (double)M);
    o->c = (T)(-kg * db / (double)M);
}

/* Eval coefficients (the running statistics, x's dtype). */
static void FN(eval_coef)(int64_t C, const T *mean, const T *var,
                          const T *weight, const T *bias, double eps,
                          FN(bn_coef) *coef)
{
    for (int64_t c = 0; c < C; c++) {
        const double invstd = 1.0 / sqrt((double)var[c] + eps);
        coef[c].mhi = mean[c];
        coef[c].mlo = 0;
        coef[c].scale = (T)((weight ? (double)weight[c] : 1.0) * invstd);
        coef[c].shift = bias ? bias[c] : (T)0;
        coef[c].kg = coef[c].scale;
    }
}

/* ------------------------------------------------------------------------
 * rows plan: helpers */

/* Calls body(row, nrows, len) for item r's super-rows in groups of up to
 * BN_ROW_GROUP that share their length (the last super-row may be short). */
#define BN_ROW_GROUPS(pl, s, r, body)                                          \
    do {                                                                       \
        const int64_t full_ = (s)->N % (pl)->k ? (pl)->Np - 1 : (pl)->Np;      \
        const int64_t end_ = (r).r1 < full_ ? (r).r1 : full_;                  \
        for (int64_t row_ = (r).r0; row_ < end_; row_ += BN_ROW_GROUP)         \
            body(row_, (end_ - row_ < BN_ROW_GROUP ? end_ - row_ : BN_ROW_GROUP), \
                 (r).c1 - (r).c0);                                             \
        if ((r).r1 > full_ && full_ >= (r).r0) {                               \
            const int64_t len_ = bn_row_len((pl), (s), full_, (r).c0, (r).c1); \
            if (len_ > 0)                                                      \
                body(full_, 1, len_);                                          \
        }                                                                      \
    } while (0)

/* Sum of `acc` (one block's per-position sums) over channel c's positions. */
static inline double FN(gather)(const bn_plan *p, const fc_bn_shape *s,
                                const double *acc, int64_t c)
{
    double t = 0;
    for (int64_t j = 0; j < p->k; j++) {
        const double *a = acc + j * p->L + c * s->HW;
        for (int64_t h = 0; h < s->HW; h++)
            t += a[h];
    }
    return t;
}

/* Shifts of block b: channel c's first value in the block. */
static inline double FN(block_shift)(const bn_plan *p, const fc_bn_shape *s,
                                     const T *x, int64_t b, int64_t c)
{
    return bn_shift((double)x[b * p->rb * p->Lp + c * s->HW]);
}

/* The per-position shifts of item r (positions c0.. of its block). */
static inline void FN(item_shifts)(const bn_plan *p, const fc_bn_shape *s,
                                   const T *x, const bn_rows_item *r,
                                   double *k)
{
    for (int64_t i = r->c0; i < r->c1; i++)
        k[i - r->c0] = FN(block_shift)(p, s, x, r->b, bn_pos_channel(p, s, i));
}

/* Spread per-channel coefficients along the super-row. */
static void FN(spread)(const bn_plan *p, const fc_bn_shape *s,
                       const FN(bn_coef) *coef, int grad, FN(bn_rowcoef) *rc)
{
    for (int64_t i = 0; i < p->Lp; i++) {
        const FN(bn_coef) *q = &coef[bn_pos_channel(p, s, i)];
        rc->mhi[i] = q->mhi;
        rc->mlo[i] = q->mlo;
        if (grad) {
            rc->kg[i] = q->kg;
            rc->a[i] = q->a;
            rc->c[i] = q->c;
        } else {
            rc->scale[i] = q->scale;
            rc->shift[i] = q->shift;
        }
    }
}

/* One workspace: C coefficients, Lp of each row coefficient (T) and of m
 * (double), `nacc` arrays of nb * Lp double sums, C * nb records. */
typedef struct {
    FN(bn_coef) *coef;
    FN(bn_rowcoef) rc;
    double *acc;
    void *rec;
    void *mem;
} FN(bn_work);

static int FN(work_alloc)(const bn_plan *p, const fc_bn_shape *s, int nacc,
                          size_t rec_size, FN(bn_work) *w)
{
    const size_t C = (size_t)s->C, Lp = p->rows ? (size_t)p->Lp : 0;
    const size_t nrec = p->rows ? (size_t)p->nb * C : (size_t)p->items;
    const size_t sacc = p->rows ? (size_t)nacc * (size_t)(p->nb * p->Lp) : 0;
    const size_t bytes = C * sizeof(FN(bn_coef)) + 7 * Lp * sizeof(T) +
                         Lp * sizeof(double) + sacc * sizeof(double) +
                         nrec * rec_size + 64;
    char *m = (char *)fc_malloc(bytes);
    if (m == NULL)
        return FC_ENOMEM;
    w->mem = m;
    /* doubles first, then the records (doubles inside), then T */
    w->acc = (double *)m;
    w->rc.m = w->acc + sacc;
    w->rec = (void *)(w->rc.m + Lp);
    w->coef = (FN(bn_coef) *)((char *)w->rec + nrec * rec_size);
    T *t = (T *)(w->coef + C);
    w->rc.mhi = t;
    w->rc.mlo = t + Lp;
    w->rc.scale = t + 2 * Lp;
    w->rc.shift = t + 3 * Lp;
    w->rc.kg = t + 4 * Lp;
    w->rc.a = t + 5 * Lp;
    w->rc.c = t + 6 * Lp;
    return 0;
}

/* ------------------------------------------------------------------------
 * training forward */

int FN(fc_batch_norm_train)(const fc_bn_shape *s, const T *x, const T *weight,
                            const T *bias, double eps, const fc_bn_running *run,
                            T *y)
{
    const KERNELS_T *k = SELECT();
    const bn_plan pl = bn_plan_for(s);
    const int64_t C = s->C, M = s->N * s->HW;
    FN(bn_work) w;
    if (pl.items == 0)
        return 0;
    if (FN(work_alloc)(&pl, s, 2, sizeof(bn_moments), &w))
        return FC_ENOMEM;
    bn_moments *mo = (bn_moments *)w.rec;
    double *s1 = w.acc, *s2 = w.acc + pl.nb * pl.Lp;
#pragma omp parallel num_threads(bn_threads(s, pl.items))
    {
        int64_t lo, hi;
        bn_thread_items(pl.items, &lo, &hi);
        if (!pl.rows) {
            for (int64_t it = lo; it < hi; it++) {
                int64_t off, len;
                double acc[2] = {0, 0};
                bn_piece(&pl, s, it, &off, &len);
                const double shift = bn_shift((double)x[off]);
                k->stats(x + off, len, shift, acc);
                mo[it] = (bn_moments){0, 0, 0};
                bn_moments_add_shifted(&mo[it], (double)len, shift, acc[0], acc[1]);
            }
        } else {
            double ks[BN_COLS];
            for (int64_t it = lo; it < hi; it++) {
                const bn_rows_item r = bn_rows_at(&pl, it);
                double *a1 = s1 + r.b * pl.Lp + r.c0, *a2 = s2 + r.b * pl.Lp + r.c0;
                FN(item_shifts)(&pl, s, x, &r, ks);
                memset(a1, 0, (size_t)(r.c1 - r.c0) * sizeof(double));
                memset(a2, 0, (size_t)(r.c1 - r.c0) * sizeof(double));
#define BODY(row, nr, len) k->rstats(x + (row) * pl.Lp + r.c0, pl.Lp, (nr), \
                                   (len), ks, a1, a2)
                BN_ROW_GROUPS(&pl, s, r, BODY);
#undef BODY
            }
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            bn_moments m = {0, 0, 0};
            if (!pl.rows) {
                for (int64_t i = 0; i < s->N * pl.ppc; i++)
                    bn_moments_merge(&m, &mo[bn_piece_of(&pl, s, c, i)]);
            } else {
                for (int64_t b = 0; b < pl.nb; b++)
                    bn_moments_add_shifted(
                        &m, (double)(bn_block_rows(&pl, s, b) * s->HW),
                        FN(block_shift)(&pl, s, x, b, c),
                        FN(gather)(&pl, s, s1 + b * pl.Lp, c),
                        FN(gather)(&pl, s, s2 + b * pl.Lp, c));
            }
            FN(train_coef)(&m, M, eps, weight, bias, c, run, &w.coef[c]);
        }
        if (pl.rows) {
#pragma omp single
            FN(spread)(&pl, s, w.coef, 0, &w.rc);
        }
        if (!pl.rows) {
            for (int64_t it = lo; it < hi; it++) {
                int64_t off, len;
                const FN(bn_coef) *q = &w.coef[bn_piece(&pl, s, it, &off, &len)];
                k->affine(x + off, len, q->mhi, q->mlo, q->scale, q->shift, y + off);
            }
        } else {
            for (int64_t it = lo; it < hi; it++) {
                const bn_rows_item r = bn_rows_at(&pl, it);
                for (int64_t row = r.r0; row < r.r1; row++) {
                    const int64_t off = row * pl.Lp + r.c0;
                    k->raffine(x + off, bn_row_len(&pl, s, row, r.c0, r.c1),
                               w.rc.mhi + r.c0, w.rc.mlo + r.c0,
                               w.rc.scale + r.c0, w.rc.shift + r.c0, y + off);
                }
            }
        }
    }
    free(w.mem);
    return 0;
}

/* ------------------------------------------------------------------------
 * eval forward: one pass */

int FN(fc_batch_norm_eval)(const fc_bn_shape *s, const T *x, const T *mean,
                           const T *var, const T *weight, const T *bias,
                           double eps, T *y)
{
    const KERNELS_T *k = SELECT();
    const bn_plan pl = bn_plan_for(s);
    FN(bn_work) w;
    if (pl.items == 0)
        return 0;
    if (FN(work_alloc)(&pl, s, 0, 0, &w))
        return FC_ENOMEM;
    FN(eval_coef)(s->C, mean, var, weight, bias, eps, w.coef);
    if (pl.rows)
        FN(spread)(&pl, s, w.coef, 0, &w.rc);
#pragma omp parallel num_threads(bn_threads(s, pl.items))
    {
        int64_t lo, hi;
        bn_thread_items(pl.items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++) {
            if (!pl.rows) {
                int64_t off, len;
                const FN(bn_coef) *q = &w.coef[bn_piece(&pl, s, it, &off, &len)];
                k->affine(x + off, len, q->mhi, q->mlo, q->scale, q->shift, y + off);
                continue;
            }
            const bn_rows_item r = bn_rows_at(&pl, it);
            for (int64_t row = r.r0; row < r.r1; row++) {
                const int64_t off = row * pl.Lp + r.c0;
                k->raffine(x + off, bn_row_len(&pl, s, row, r.c0, r.c1),
                           w.rc.mhi + r.c0, w.rc.mlo + r.c0, w.rc.scale + r.c0,
                           w.rc.shift + r.c0, y + off);
            }
        }
    }
    free(w.mem);
    return 0;
}

/* ------------------------------------------------------------------------
 * training backward: statistics of x recomputed in the pass that sums g */

int FN(fc_batch_norm_backward_train)(const fc_bn_shape *s, const T *gy,
                                     const T *x, const T *weight, double eps,
                                     T *gx, T *gw, T *gb)
{
    const KERNELS_T *k = SELECT();
    const bn_plan pl = bn_plan_for(s);
    const int64_t C = s->C, M = s->N * s->HW;
    FN(bn_work) w;
    if (pl.items == 0)
        return 0;
    if (FN(work_alloc)(&pl, s, 4, sizeof(bn_part), &w))
        return FC_ENOMEM;
    bn_part *parts = (bn_part *)w.rec;
    const int64_t nacc = pl.nb * pl.Lp;
    double *s1 = w.acc, *s2 = s1 + nacc, *sg = s2 + nacc, *sgd = sg + nacc;
#pragma omp parallel num_threads(bn_threads(s, pl.items))
    {
        int64_t lo, hi;
        bn_thread_items(pl.items, &lo, &hi);
        if (!pl.rows) {
            for (int64_t it = lo; it < hi; it++) {
                int64_t off, len;
                double acc[4] = {0, 0, 0, 0};
                bn_part *p = &parts[it];
                bn_piece(&pl, s, it, &off, &len);
                p->k0 = bn_shift((double)x[off]);
                k->stats_grad(x + off, gy + off, len, p->k0, acc);
                p->m = (bn_moments){0, 0, 0};
                bn_moments_add_shifted(&p->m, (double)len, p->k0, acc[0], acc[1]);
                p->sg = acc[2];
                p->sgd = acc[3];
            }
        } else {
            double ks[BN_COLS];
            for (int64_t it = lo; it < hi; it++) {
                const bn_rows_item r = bn_rows_at(&pl, it);
                const int64_t o = r.b * pl.Lp + r.c0, n = r.c1 - r.c0;
                FN(item_shifts)(&pl, s, x, &r, ks);
                memset(s1 + o, 0, (size_t)n * sizeof(double));
                memset(s2 + o, 0, (size_t)n * sizeof(double));
                memset(sg + o, 0, (size_t)n * sizeof(double));
                memset(sgd + o, 0, (size_t)n * sizeof(double));
#define BODY(row, nr, len) k->rstats_grad(x + (row) * pl.Lp + r.c0,          \
                                        gy + (row) * pl.Lp + r.c0, pl.Lp, (nr), \
                                        (len), ks, s1 + o, s2 + o, sg + o,     \
                                        sgd + o)
                BN_ROW_GROUPS(&pl, s, r, BODY);
#undef BODY
            }
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            bn_part q = {{0, 0, 0}, 0, 0, 0};
            const int64_t n = pl.rows ? pl.nb : s->N * pl.ppc;
            for (int64_t i = 0; i < n; i++) {
                bn_part r;
                if (!pl.rows) {
                    r = parts[bn_piece_of(&pl, s, c, i)];
                } else {
                    const int64_t o = i * pl.Lp;
                    const double d1 = FN(gather)(&pl, s, s1 + o, c);
                    r.k0 = FN(block_shift)(&pl, s, x, i, c);
                    r.m = (bn_moments){0, 0, 0};
                    bn_moments_add_shifted(&r.m, (double)(bn_block_rows(&pl, s, i) * s->HW),
                                           r.k0, d1, FN(gather)(&pl, s, s2 + o, c));
                    r.sg = FN(gather)(&pl, s, sg + o, c);
                    r.sgd = FN(gather)(&pl, s, sgd + o, c);
                }
                if (i == 0) {
                    q = r;
                    continue;
                }
                bn_moments_merge(&q.m, &r.m);
                q.sg += r.sg;
                q.sgd += r.sgd + (r.k0 - q.k0) * r.sg;
            }
            FN(grad_coef)(s, gy, x, &q, M, eps, weight, c, gw, gb, &w.coef[c]);
        }
        if (pl.rows) {
#pragma omp single
            FN(spread)(&pl, s, w.coef, 1, &w.rc);
        }
        for (int64_t it = lo; it < hi; it++) {
            if (!pl.rows) {
                int64_t off, len;
                const FN(bn_coef) *q = &w.coef[bn_piece(&pl, s, it, &off, &len)];
                k->grad(gy + off, x + off, len, q->kg, q->mhi, q->mlo, q->a, q->c,
                        gx + off);
                continue;
            }
            const bn_rows_item r = bn_rows_at(&pl, it);
            for (int64_t row = r.r0; row < r.r1; row++) {
                const int64_t off = row * pl.Lp + r.c0;
                k->rgrad(gy + off, x + off, bn_row_len(&pl, s, row, r.c0, r.c1),
                         w.rc.kg + r.c0, w.rc.mhi + r.c0, w.rc.mlo + r.c0,
                         w.rc.a + r.c0, w.rc.c + r.c0, gx + off);
            }
        }
    }
    free(w.mem);
    return 0;
}

/* ------------------------------------------------------------------------
 * eval backward: one pass, the running statistics constant */

int FN(fc_batch_norm_backward_eval)(const fc_bn_shape *s, const T *gy,
                                    const T *x, const T *mean, const T *var,
                                    const T *weight, double eps, T *gx, T *gw,
                                    T *gb)
{
    const KERNELS_T *k = SELECT();
    const bn_plan pl = bn_plan_for(s);
    const int64_t C = s->C;
    FN(bn_work) w;
    if (pl.items == 0) {
        for (int64_t c = 0; c < C; c++)
            gw[c] = gb[c] = 0;
        return 0;
    }
    if (FN(work_alloc)(&pl, s, 2, 2 * sizeof(double), &w))
        return FC_ENOMEM;
    double *sums = (double *)w.rec;     /* pieces: (sum g, sum g (x - m)) */
    const int64_t nacc = pl.nb * pl.Lp;
    double *sg = w.acc, *sgd = w.acc + nacc;
    FN(eval_coef)(C, mean, var, weight, NULL, eps, w.coef);
    if (pl.rows) {
        for (int64_t i = 0; i < pl.Lp; i++) {
            const int64_t c = bn_pos_channel(&pl, s, i);
            w.rc.kg[i] = w.coef[c].kg;
            w.rc.m[i] = (double)mean[c];
        }
    }
#pragma omp parallel num_threads(bn_threads(s, pl.items))
    {
        int64_t lo, hi;
        bn_thread_items(pl.items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++) {
            if (!pl.rows) {
                int64_t off, len;
                const int64_t c = bn_piece(&pl, s, it, &off, &len);
                double *acc = sums + 2 * it;
                acc[0] = acc[1] = 0;
                k->grad_eval(gy + off, x + off, len, (double)mean[c], w.coef[c].kg,
                             gx + off, acc);
                continue;
            }
            const bn_rows_item r = bn_rows_at(&pl, it);
            const int64_t o = r.b * pl.Lp + r.c0, n = r.c1 - r.c0;
            memset(sg + o, 0, (size_t)n * sizeof(double));
            memset(sgd + o, 0, (size_t)n * sizeof(double));
#define BODY(row, nr, len) k->rgrad_eval(gy + (row) * pl.Lp + r.c0,           \
                                       x + (row) * pl.Lp + r.c0, pl.Lp, (nr),   \
                                       (len), w.rc.m + r.c0, w.rc.kg + r.c0,    \
                                       gx + (row) * pl.Lp + r.c0, sg + o, sgd + o)
            BN_ROW_GROUPS(&pl, s, r, BODY);
#undef BODY
        }
    }
    for (int64_t c = 0; c < C; c++) {
        double tg = 0, tgd = 0;
        if (!pl.rows) {
            for (int64_t i = 0; i < s->N * pl.ppc; i++) {
                const int64_t it = bn_piece_of(&pl, s, c, i);
                tg += sums[2 * it];
                tgd += sums[2 * it + 1];
            }
        } else {
            for (int64_t b = 0; b < pl.nb; b++) {
                tg += FN(gather)(&pl, s, sg + b * pl.Lp, c);
                tgd += FN(gather)(&pl, s, sgd + b * pl.Lp, c);
            }
        }
        gb[c] = (T)tg;
        gw[c] = (T)(tgd / sqrt((double)var[c] + eps));
    }
    free(w.mem);
    return 0;
}

/* ------------------------------------------------------------------------
 * batch norm folded into a convolution's weight */

void FN(fc_bn_fold_weight)(int64_t K, int64_t L, const T *w,
                           const double *scale, T *out)
{
    const KERNELS_T *k = SELECT();
    int64_t nt = fc_get_num_threads();
    if (nt > K * L / BN_MIN_PER_THREAD)
        nt = K * L / BN_MIN_PER_THREAD;
    if (nt > K)
        nt = K;
#pragma omp parallel for num_threads(nt > 1 ? (int)nt : 1) schedule(static)
    for (int64_t c = 0; c < K; c++)
        k->scale(w + c * L, L, scale[c], out + c * L);
}

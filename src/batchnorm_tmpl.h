/* Batch-norm drivers, written once for both float types.
 *
 * Included by batchnorm.c with T (float or double), FN(name) (adds the dtype
 * suffix), KERNELS_T (the micro-kernel table type) and SELECT() (the table
 * of the instruction set active now) defined.
 *
 * The work is a list of items (bn_plan in batchnorm.c): pieces of the
 * array in memory order when a channel's runs are long, (channel, part)
 * ranges walking the strided runs when they are short.  Every pass hands
 * each thread the same run of items, walked forwards (walking the output
 * pass backwards, to meet the last values read while still in cache,
 * measured 25-40% slower: the prefetchers follow ascending streams).
 * An item's statistics are shifted sums in double about its first
 * value, per block of BN_BLOCK values; items merge per channel with Chan's
 * formula in a fixed order, so the result does not depend on the thread
 * count. */

/* Calls body(c, offset, len) for each contiguous run of channel c's values
 * j in [j0, j1) (j = n * HW + hw) of the N x C x HW array. */
#define BN_SPANS(s, c, j0, j1, body)                                           \
    do {                                                                       \
        int64_t j_ = (j0);                                                     \
        while (j_ < (j1)) {                                                    \
            const int64_t n_ = j_ / (s)->HW, hw_ = j_ % (s)->HW;               \
            int64_t len_ = (s)->HW - hw_;                                      \
            if (len_ > (j1) - j_)                                              \
                len_ = (j1) - j_;                                              \
            body((c), ((n_ * (s)->C + (c)) * (s)->HW + hw_), len_);            \
            j_ += len_;                                                        \
        }                                                                      \
    } while (0)

/* Calls body(c, offset, len) for each run of item `it`, c its channel: one
 * run for a piece, the strided runs of its range for a (channel, part). */
#define BN_ITEM_RUNS(pl, s, it, body)                                          \
    do {                                                                       \
        if ((pl)->by_channel) {                                                \
            int64_t j0_, j1_;                                                  \
            const int64_t ci_ = bn_item_channel((pl), (s), (it));              \
            bn_item_range((pl), (s), (it), &j0_, &j1_);                        \
            BN_SPANS((s), ci_, j0_, j1_, body);                                \
        } else {                                                               \
            int64_t off_, len_;                                                \
            const int64_t ci_ = bn_piece((pl), (s), (it), &off_, &len_);       \
            body(ci_, off_, len_);                                             \
        }                                                                      \
    } while (0)

/* A double mean as the (mhi, mlo) pair of T the kernels subtract. */
static inline void FN(split)(double mean, T *mhi, T *mlo)
{
    *mhi = (T)mean;
    *mlo = (T)(mean - (double)*mhi);
}

/* Moments of item `it`, block by block (a piece is one block). */
static void FN(item_stats)(const KERNELS_T *k, const bn_plan *pl,
                           const fc_bn_shape *s, const T *x, int64_t it,
                           bn_moments *m)
{
    *m = (bn_moments){0, 0, 0};
    if (!pl->by_channel) {
        int64_t off, len;
        double acc[2] = {0, 0};
        bn_piece(pl, s, it, &off, &len);
        const double shift = (double)x[off];
        k->stats(x + off, len, shift, acc);
        bn_moments_add_shifted(m, (double)len, shift, acc[0], acc[1]);
        return;
    }
    const int64_t c = bn_item_channel(pl, s, it);
    int64_t j0, j1;
    bn_item_range(pl, s, it, &j0, &j1);
    for (int64_t b0 = j0; b0 < j1; b0 += BN_BLOCK) {
        const int64_t b1 = b0 + BN_BLOCK < j1 ? b0 + BN_BLOCK : j1;
        const double shift = (double)x[bn_offset(s, c, b0)];
        double acc[2] = {0, 0};
#define BODY(ch, off, len) k->stats(x + (off), (len), shift, acc)
        BN_SPANS(s, c, b0, b1, BODY);
#undef BODY
        bn_moments_add_shifted(m, (double)(b1 - b0), shift, acc[0], acc[1]);
    }
}

/* The same with grad_output: also sum(g) and sum(g (x - p->k0)), k0 the
 * item's first value. */
static void FN(item_stats_grad)(const KERNELS_T *k, const bn_plan *pl,
                                const fc_bn_shape *s, const T *x, const T *g,
                                int64_t it, bn_part *p)
{
    p->m = (bn_moments){0, 0, 0};
    p->sg = p->sgd = 0;
    if (!pl->by_channel) {
        int64_t off, len;
        double acc[4] = {0, 0, 0, 0};
        bn_piece(pl, s, it, &off, &len);
        p->k0 = (double)x[off];
        k->stats_grad(x + off, g + off, len, p->k0, acc);
        bn_moments_add_shifted(&p->m, (double)len, p->k0, acc[0], acc[1]);
        p->sg = acc[2];
        p->sgd = acc[3];
        return;
    }
    const int64_t c = bn_item_channel(pl, s, it);
    int64_t j0, j1;
    bn_item_range(pl, s, it, &j0, &j1);
    p->k0 = (double)x[bn_offset(s, c, j0)];
    for (int64_t b0 = j0; b0 < j1; b0 += BN_BLOCK) {
        const int64_t b1 = b0 + BN_BLOCK < j1 ? b0 + BN_BLOCK : j1;
        const double shift = (double)x[bn_offset(s, c, b0)];
        double acc[4] = {0, 0, 0, 0};
#define BODY(ch, off, len) k->stats_grad(x + (off), g + (off), (len), shift, acc)
        BN_SPANS(s, c, b0, b1, BODY);
#undef BODY
        bn_moments_add_shifted(&p->m, (double)(b1 - b0), shift, acc[0], acc[1]);
        p->sg += acc[2];
        p->sgd += acc[3] + (shift - p->k0) * acc[2];
    }
}

typedef struct {
    T mhi, mlo, scale, shift;     /* affine: ((x - mhi) - mlo) * scale + shift */
    T kg, a, c;                   /* grad: kg * g + (a * (x - mean) + c) */
} FN(bn_coef);

int FN(fc_batch_norm_train)(const fc_bn_shape *s, const T *x, const T *weight,
                            const T *bias, double eps, const fc_bn_running *run,
                            T *y)
{
    const KERNELS_T *k = SELECT();
    const bn_plan pl = bn_plan_for(s);
    const int64_t C = s->C, M = s->N * s->HW, per = bn_channel_items(&pl, s);
    if (pl.items == 0 || M == 0)
        return 0;
    bn_moments *mo = (bn_moments *)malloc((size_t)pl.items * sizeof(bn_moments));
    FN(bn_coef) *coef = (FN(bn_coef) *)malloc((size_t)C * sizeof(FN(bn_coef)));
    if (mo == NULL || coef == NULL) {
        free(mo);
        free(coef);
        return FC_ENOMEM;
    }
#pragma omp parallel num_threads(bn_threads(s, pl.items))
    {
        int64_t lo, hi;
        bn_thread_items(pl.items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++)
            FN(item_stats)(k, &pl, s, x, it, &mo[it]);
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            bn_moments m = {0, 0, 0};
            for (int64_t i = 0; i < per; i++)
                bn_moments_merge(&m, &mo[bn_channel_item(&pl, s, c, i)]);
            const double var = m.m2 > 0 ? m.m2 / (double)M : 0.0;
            const double invstd = 1.0 / sqrt(var + eps);
            FN(split)(m.mean, &coef[c].mhi, &coef[c].mlo);
            coef[c].scale = (T)((weight ? (double)weight[c] : 1.0) * invstd);
            coef[c].shift = bias ? bias[c] : (T)0;
            if (run)
                bn_update_running(run, c, m.mean, var, M);
        }
        for (int64_t it = lo; it < hi; it++) {
#define BODY(ch, off, len) k->affine(x + (off), (len), coef[ch].mhi,         \
                                     coef[ch].mlo, coef[ch].scale,             \
                                     coef[ch].shift, y + (off))
            BN_ITEM_RUNS(&pl, s, it, BODY);
#undef BODY
        }
    }
    free(mo);
    free(coef);
    return 0;
}

int FN(fc_batch_norm_eval)(const fc_bn_shape *s, const T *x, const T *mean,
                           const T *var, const T *weight, const T *bias,
                           double eps, T *y)
{
    const KERNELS_T *k = SELECT();
    const bn_plan pl = bn_plan_for(s);
    const int64_t C = s->C;
    if (pl.items == 0 || s->N * s->HW == 0)
        return 0;
    FN(bn_coef) *coef = (FN(bn_coef) *)malloc((size_t)C * sizeof(FN(bn_coef)));
    if (coef == NULL)
        return FC_ENOMEM;
    for (int64_t c = 0; c < C; c++) {
        const double invstd = 1.0 / sqrt((double)var[c] + eps);
        coef[c].mhi = mean[c];
        coef[c].mlo = 0;
        coef[c].scale = (T)((weight ? (double)weight[c] : 1.0) * invstd);
        coef[c].shift = bias ? bias[c] : (T)0;
    }
#pragma omp parallel num_threads(bn_threads(s, pl.items))
    {
        int64_t lo, hi;
        bn_thread_items(pl.items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++) {
#define BODY(ch, off, len) k->affine(x + (off), (len), coef[ch].mhi,         \
                                     coef[ch].mlo, coef[ch].scale,             \
                                     coef[ch].shift, y + (off))
            BN_ITEM_RUNS(&pl, s, it, BODY);
#undef BODY
        }
    }
    free(coef);
    return 0;
}

int FN(fc_batch_norm_backward_train)(const fc_bn_shape *s, const T *gy,
                                     const T *x, const T *weight, double eps,
                                     T *gx, T *gw, T *gb)
{
    const KERNELS_T *k = SELECT();
    const bn_plan pl = bn_plan_for(s);
    const int64_t C = s->C, M = s->N * s->HW, per = bn_channel_items(&pl, s);
    if (pl.items == 0 || M == 0)
        return 0;
    bn_part *parts = (bn_part *)malloc((size_t)pl.items * sizeof(bn_part));
    FN(bn_coef) *coef = (FN(bn_coef) *)malloc((size_t)C * sizeof(FN(bn_coef)));
    if (parts == NULL || coef == NULL) {
        free(parts);
        free(coef);
        return FC_ENOMEM;
    }
#pragma omp parallel num_threads(bn_threads(s, pl.items))
    {
        int64_t lo, hi;
        bn_thread_items(pl.items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++)
            FN(item_stats_grad)(k, &pl, s, x, gy, it, &parts[it]);
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            bn_part q = parts[bn_channel_item(&pl, s, c, 0)];
            for (int64_t i = 1; i < per; i++) {
                const bn_part *r = &parts[bn_channel_item(&pl, s, c, i)];
                bn_moments_merge(&q.m, &r->m);
                q.sg += r->sg;
                q.sgd += r->sgd + (r->k0 - q.k0) * r->sg;
            }
            const double var = q.m.m2 > 0 ? q.m.m2 / (double)M : 0.0;
            const double invstd = 1.0 / sqrt(var + eps);
            /* sum(g (x - mean)) from the sum about the first value */
            const double sgd = q.sgd + (q.k0 - q.m.mean) * q.sg;
            const double dw = sgd * invstd, db = q.sg;
            const double kg = (weight ? (double)weight[c] : 1.0) * invstd;
            gw[c] = (T)dw;
            gb[c] = (T)db;
            FN(split)(q.m.mean, &coef[c].mhi, &coef[c].mlo);
            coef[c].kg = (T)kg;
            coef[c].a = (T)(-kg * invstd * dw / (double)M);
            coef[c].c = (T)(-kg * db / (double)M);
        }
        for (int64_t it = lo; it < hi; it++) {
#define BODY(ch, off, len) k->grad(gy + (off), x + (off), (len), coef[ch].kg, \
                                   coef[ch].mhi, coef[ch].mlo, coef[ch].a,      \
                                   coef[ch].c, gx + (off))
            BN_ITEM_RUNS(&pl, s, it, BODY);
#undef BODY
        }
    }
    free(parts);
    free(coef);
    return 0;
}

int FN(fc_batch_norm_backward_eval)(const fc_bn_shape *s, const T *gy,
                                    const T *x, const T *mean, const T *var,
                                    const T *weight, double eps, T *gx, T *gw,
                                    T *gb)
{
    const KERNELS_T *k = SELECT();
    const bn_plan pl = bn_plan_for(s);
    const int64_t C = s->C, per = bn_channel_items(&pl, s);
    if (C == 0)
        return 0;
    if (s->N * s->HW == 0) {
        for (int64_t c = 0; c < C; c++)
            gw[c] = gb[c] = 0;
        return 0;
    }
    double *sums = (double *)malloc((size_t)pl.items * 2 * sizeof(double));
    FN(bn_coef) *coef = (FN(bn_coef) *)malloc((size_t)C * sizeof(FN(bn_coef)));
    if (sums == NULL || coef == NULL) {
        free(sums);
        free(coef);
        return FC_ENOMEM;
    }
    for (int64_t c = 0; c < C; c++)
        coef[c].kg = (T)((weight ? (double)weight[c] : 1.0) /
                         sqrt((double)var[c] + eps));
#pragma omp parallel num_threads(bn_threads(s, pl.items))
    {
        int64_t lo, hi;
        bn_thread_items(pl.items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++) {
            double *acc = sums + 2 * it;
            acc[0] = acc[1] = 0;
#define BODY(ch, off, len) k->grad_eval(gy + (off), x + (off), (len),        \
                                        (double)mean[ch], coef[ch].kg,          \
                                        gx + (off), acc)
            BN_ITEM_RUNS(&pl, s, it, BODY);
#undef BODY
        }
    }
    for (int64_t c = 0; c < C; c++) {
        double sg = 0, sgd = 0;
        for (int64_t i = 0; i < per; i++) {
            const int64_t it = bn_channel_item(&pl, s, c, i);
            sg += sums[2 * it];
            sgd += sums[2 * it + 1];
        }
        gb[c] = (T)sg;
        gw[c] = (T)(sgd / sqrt((double)var[c] + eps));
    }
    free(sums);
    free(coef);
    return 0;
}

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

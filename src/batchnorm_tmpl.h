/* Batch-norm drivers, written once for both float types.
 *
 * Included by batchnorm.c with T (float or double), FN(name) (adds the dtype
 * suffix), KERNELS_T (the micro-kernel table type) and SELECT() (the table
 * of the instruction set active now) defined.
 *
 * Work items are (channel, part): a channel's M = N * HW values, numbered
 * j = n * HW + hw, are cut into `parts` equal ranges (more than one only
 * when there are few channels), each range into blocks of BN_BLOCK values.
 * A block's statistics are shifted sums about its first value; blocks and
 * then parts are merged with Chan's formula, always in the same order, so
 * the result does not depend on the thread count.  Each thread owns a fixed
 * run of items in every pass, and walks it backwards in the output pass, so
 * that the values it read last for the statistics are still in its cache. */

/* Calls body(ptr, len, offset) for each contiguous run of channel c's
 * values j in [j0, j1) of the N x C x HW array a, forwards. */
#define BN_SPANS_FWD(s, a, c, j0, j1, body)                                    \
    do {                                                                       \
        int64_t j_ = (j0);                                                     \
        while (j_ < (j1)) {                                                    \
            const int64_t n_ = j_ / (s)->HW, hw_ = j_ % (s)->HW;               \
            int64_t len_ = (s)->HW - hw_;                                      \
            if (len_ > (j1) - j_)                                              \
                len_ = (j1) - j_;                                              \
            const int64_t off_ = (n_ * (s)->C + (c)) * (s)->HW + hw_;          \
            body(off_, len_);                                                  \
            j_ += len_;                                                        \
        }                                                                      \
    } while (0)

/* The same runs, last first. */
#define BN_SPANS_BWD(s, a, c, j0, j1, body)                                    \
    do {                                                                       \
        int64_t e_ = (j1);                                                     \
        while (e_ > (j0)) {                                                    \
            const int64_t n_ = (e_ - 1) / (s)->HW;                             \
            int64_t b_ = n_ * (s)->HW;                                         \
            if (b_ < (j0))                                                     \
                b_ = (j0);                                                     \
            const int64_t off_ = (n_ * (s)->C + (c)) * (s)->HW + (b_ - n_ * (s)->HW); \
            body(off_, e_ - b_);                                               \
            e_ = b_;                                                           \
        }                                                                      \
    } while (0)

/* Statistics of channel c's values [j0, j1), block by block, merged into m. */
static void FN(range_stats)(const KERNELS_T *k, const fc_bn_shape *s,
                            const T *x, int64_t c, int64_t j0, int64_t j1,
                            bn_moments *m)
{
    for (int64_t b0 = j0; b0 < j1; b0 += BN_BLOCK) {
        const int64_t b1 = b0 + BN_BLOCK < j1 ? b0 + BN_BLOCK : j1;
        const double shift = (double)x[bn_offset(s, c, b0)];
        double acc[2] = {0, 0};
#define BODY(off, len) k->stats(x + (off), (len), shift, acc)
        BN_SPANS_FWD(s, x, c, b0, b1, BODY);
#undef BODY
        bn_moments_add_shifted(m, (double)(b1 - b0), shift, acc[0], acc[1]);
    }
}

/* The same with grad_output: also sum(g) and sum(g (x - p->k0)). */
static void FN(range_stats_grad)(const KERNELS_T *k, const fc_bn_shape *s,
                                 const T *x, const T *g, int64_t c,
                                 int64_t j0, int64_t j1, bn_part *p)
{
    for (int64_t b0 = j0; b0 < j1; b0 += BN_BLOCK) {
        const int64_t b1 = b0 + BN_BLOCK < j1 ? b0 + BN_BLOCK : j1;
        const double shift = (double)x[bn_offset(s, c, b0)];
        double acc[4] = {0, 0, 0, 0};
#define BODY(off, len) k->stats_grad(x + (off), g + (off), (len), shift, acc)
        BN_SPANS_FWD(s, x, c, b0, b1, BODY);
#undef BODY
        bn_moments_add_shifted(&p->m, (double)(b1 - b0), shift, acc[0], acc[1]);
        p->sg += acc[2];
        p->sgd += acc[3] + (shift - p->k0) * acc[2];
    }
}

/* A double mean as the (mhi, mlo) pair of T the kernels subtract. */
static inline void FN(split)(double mean, T *mhi, T *mlo)
{
    *mhi = (T)mean;
    *mlo = (T)(mean - (double)*mhi);
}

typedef struct {
    T mhi, mlo, scale, shift;     /* affine: ((x - mhi) - mlo) * scale + shift */
    T kg, a, c;                   /* grad: kg * g + a * (x - mean) + c */
} FN(bn_coef);

int FN(fc_batch_norm_train)(const fc_bn_shape *s, const T *x, const T *weight,
                            const T *bias, double eps, const fc_bn_running *run,
                            T *y)
{
    const KERNELS_T *k = SELECT();
    const int64_t C = s->C, M = s->N * s->HW;
    const int64_t P = bn_parts(s), items = C * P;
    if (items == 0 || M == 0)
        return 0;
    bn_moments *parts = (bn_moments *)malloc((size_t)items * sizeof(bn_moments));
    FN(bn_coef) *coef = (FN(bn_coef) *)malloc((size_t)C * sizeof(FN(bn_coef)));
    if (parts == NULL || coef == NULL) {
        free(parts);
        free(coef);
        return FC_ENOMEM;
    }
    const int nt = bn_threads(s, items);
#pragma omp parallel num_threads(nt)
    {
        int64_t lo, hi;
        bn_thread_items(items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++) {
            const int64_t c = it / P, p = it % P;
            parts[it] = (bn_moments){0, 0, 0};
            FN(range_stats)(k, s, x, c, M * p / P, M * (p + 1) / P, &parts[it]);
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            bn_moments m = parts[c * P];
            for (int64_t p = 1; p < P; p++)
                bn_moments_merge(&m, &parts[c * P + p]);
            const double var = m.m2 > 0 ? m.m2 / (double)M : 0.0;
            const double invstd = 1.0 / sqrt(var + eps);
            FN(split)(m.mean, &coef[c].mhi, &coef[c].mlo);
            coef[c].scale = (T)((weight ? (double)weight[c] : 1.0) * invstd);
            coef[c].shift = bias ? bias[c] : (T)0;
            if (run)
                bn_update_running(run, c, m.mean, var, M);
        }
        for (int64_t it = hi - 1; it >= lo; it--) {
            const int64_t c = it / P, p = it % P;
            const FN(bn_coef) *q = &coef[c];
#define BODY(off, len) k->affine(x + (off), (len), q->mhi, q->mlo, q->scale, \
                                 q->shift, y + (off))
            BN_SPANS_BWD(s, x, c, M * p / P, M * (p + 1) / P, BODY);
#undef BODY
        }
    }
    free(parts);
    free(coef);
    return 0;
}

int FN(fc_batch_norm_eval)(const fc_bn_shape *s, const T *x, const T *mean,
                           const T *var, const T *weight, const T *bias,
                           double eps, T *y)
{
    const KERNELS_T *k = SELECT();
    const int64_t C = s->C, M = s->N * s->HW;
    const int64_t P = bn_parts(s), items = C * P;
    if (items == 0 || M == 0)
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
    const int nt = bn_threads(s, items);
#pragma omp parallel num_threads(nt)
    {
        int64_t lo, hi;
        bn_thread_items(items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++) {
            const int64_t c = it / P, p = it % P;
            const FN(bn_coef) *q = &coef[c];
#define BODY(off, len) k->affine(x + (off), (len), q->mhi, q->mlo, q->scale, \
                                 q->shift, y + (off))
            BN_SPANS_FWD(s, x, c, M * p / P, M * (p + 1) / P, BODY);
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
    const int64_t C = s->C, M = s->N * s->HW;
    const int64_t P = bn_parts(s), items = C * P;
    if (items == 0 || M == 0)
        return 0;
    bn_part *parts = (bn_part *)malloc((size_t)items * sizeof(bn_part));
    FN(bn_coef) *coef = (FN(bn_coef) *)malloc((size_t)C * sizeof(FN(bn_coef)));
    if (parts == NULL || coef == NULL) {
        free(parts);
        free(coef);
        return FC_ENOMEM;
    }
    const int nt = bn_threads(s, items);
#pragma omp parallel num_threads(nt)
    {
        int64_t lo, hi;
        bn_thread_items(items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++) {
            const int64_t c = it / P, p = it % P, j0 = M * p / P;
            bn_part *q = &parts[it];
            *q = (bn_part){{0, 0, 0}, (double)x[bn_offset(s, c, j0)], 0, 0};
            FN(range_stats_grad)(k, s, x, gy, c, j0, M * (p + 1) / P, q);
        }
#pragma omp barrier
#pragma omp for schedule(static)
        for (int64_t c = 0; c < C; c++) {
            bn_part q = parts[c * P];
            for (int64_t p = 1; p < P; p++) {
                const bn_part *r = &parts[c * P + p];
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
        for (int64_t it = hi - 1; it >= lo; it--) {
            const int64_t c = it / P, p = it % P;
            const FN(bn_coef) *q = &coef[c];
#define BODY(off, len) k->grad(gy + (off), x + (off), (len), q->kg, q->mhi, \
                               q->mlo, q->a, q->c, gx + (off))
            BN_SPANS_BWD(s, x, c, M * p / P, M * (p + 1) / P, BODY);
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
    const int64_t C = s->C, M = s->N * s->HW;
    const int64_t P = bn_parts(s), items = C * P;
    if (items == 0)
        return 0;
    if (M == 0) {
        for (int64_t c = 0; c < C; c++)
            gw[c] = gb[c] = 0;
        return 0;
    }
    double *sums = (double *)malloc((size_t)items * 2 * sizeof(double));
    if (sums == NULL)
        return FC_ENOMEM;
    const int nt = bn_threads(s, items);
#pragma omp parallel num_threads(nt)
    {
        int64_t lo, hi;
        bn_thread_items(items, &lo, &hi);
        for (int64_t it = lo; it < hi; it++) {
            const int64_t c = it / P, p = it % P;
            const double invstd = 1.0 / sqrt((double)var[c] + eps);
            const T kg = (T)((weight ? (double)weight[c] : 1.0) * invstd);
            const double m = (double)mean[c];
            double *acc = sums + 2 * it;
            acc[0] = acc[1] = 0;
#define BODY(off, len) k->grad_eval(gy + (off), x + (off), (len), m, kg, \
                                    gx + (off), acc)
            BN_SPANS_FWD(s, x, c, M * p / P, M * (p + 1) / P, BODY);
#undef BODY
        }
    }
    for (int64_t c = 0; c < C; c++) {
        double sg = 0, sgd = 0;
        for (int64_t p = 0; p < P; p++) {
            sg += sums[2 * (c * P + p)];
            sgd += sums[2 * (c * P + p) + 1];
        }
        gb[c] = (T)sg;
        gw[c] = (T)(sgd / sqrt((double)var[c] + eps));
    }
    free(sums);
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

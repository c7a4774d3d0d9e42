/* Winograd F(2x2, 3x3) and F(2x2, 5x5) convolutions, float32
 * (conv_winograd.h): dense 3x3 and 5x5 layers of stride 1 (dilated too, by
 * phases: 3x3 any, 5x5 along rows only), with AVX-512; and a stride-2
 * variant for 3x3 and 7x7 filters (winograd_few_tiles).
 *
 * Two layouts.  Few tiles under many weights (winograd_few_tiles, below)
 * put output channels in the lanes.  Otherwise tiles fill the lanes:
 * the weights are transformed once per call (U, [xi][block of 8 output
 * channels][c][8]).  A work item is three groups of 16 tiles: its input
 * transform V (T^2 x C x 48 floats) stays in the thread's L2 while, block
 * by block of 8 output channels, the T^2 GEMMs write M (T^2 x 8 x 48
 * floats, in L1 or nearly) and the output transform adds the bias and
 * applies the ReLU on its way to y: nothing of the size of the output is
 * written twice.
 *
 * Items are whole, and each output is computed the same way whichever
 * thread takes it, so results do not depend on the thread count.  Inputs
 * or weights out of the transforms' safe range (not finite, or beyond
 * FC_WINO_SAFE in magnitude) are not transformed: the weights send the
 * call to the direct algorithm, an item's inputs send its tiles to an exact
 * loop, so NaN and inf land where the direct convolution puts them. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conv_internal.h"
#include "conv_direct.h"
#include "conv_winograd.h"

typedef struct {
    fc_wino_weight_f32_fn weight;
    fc_wino_input_f32_fn input;
    fc_wino_output_f32_fn output;
    fc_wino_input_block_f32_fn input_block;
    fc_wino_output_block_f32_fn output_block;
    fc_direct_f32_fn gemm;       /* KB x NV x 16 with KB = 8, NV = 3 */
    int T;                       /* patch size: T^2 points xi */
} wino_kernels;

/* The transforms for R x R filters (3 or 5). */
static int select_kernels(wino_kernels *k, int64_t R)
{
    if (fc_isa_active() != FC_ISA_AVX512 || (R != 3 && R != 5))
        return 0;
    k->T = (int)R + 1;
    k->weight = R == 3 ? f32_winograd_weight_2x2_3x3_avx512 : f32_winograd_weight_2x2_5x5_avx512;
    k->input = R == 3 ? f32_winograd_input_2x2_3x3_avx512 : f32_winograd_input_2x2_5x5_avx512;
    k->output = R == 3 ? f32_winograd_output_2x2_3x3_avx512 : f32_winograd_output_2x2_5x5_avx512;
    k->input_block = R == 3 ? f32_winograd_input_block_3x3_avx512
                            : f32_winograd_input_block_5x5_avx512;
    k->output_block = R == 3 ? f32_winograd_output_block_3x3_avx512
                             : f32_winograd_output_block_5x5_avx512;
    k->gemm = f32_conv_direct_8x3x16_avx512;
    return 1;
}

/* Dilation splits the output into dh x dw phases (rows a + dh i, columns
 * b + dw j), each a stride-1 undilated convolution of a phase of the input
 * (rows a' + dh i', columns b' + dw j'): the same kernels run on each with
 * row and column steps.  Column steps of 1 and 2 are supported (5x5: 1). */
typedef struct {
    int64_t P, Q;               /* outputs of the phase */
    int64_t y0;                 /* its first output: row a, column b */
    int64_t xrow, xcol;         /* its input phase: row a', column b' */
    int64_t H, W;               /* rows and columns of the input phase */
    int64_t pt, pl;             /* the phase's padding (negative: an offset) */
} wino_phase;

/* Phase a of one axis: outputs a, a + d, ... < P read inputs
 * a - pad + d (i + r); (a - pad) = a' + d m with 0 <= a' < d. */
static void phase_axis(int64_t a, int64_t d, int64_t P, int64_t H, int64_t pad,
                       int64_t *np, int64_t *xa, int64_t *nh, int64_t *ppad)
{
    const int64_t A = a - pad;
    const int64_t m = A >= 0 ? A / d : -((-A + d - 1) / d);
    *np = P > a ? (P - a + d - 1) / d : 0;
    *xa = A - d * m;
    *nh = H > *xa ? (H - *xa + d - 1) / d : 0;
    *ppad = -m;
}

static wino_phase phase_of(const fc_conv_shape *s, int64_t a, int64_t b)
{
    wino_phase ph;
    phase_axis(a, s->dh, s->P, s->H, s->pt, &ph.P, &ph.xrow, &ph.H, &ph.pt);
    phase_axis(b, s->dw, s->Q, s->W, s->pl, &ph.Q, &ph.xcol, &ph.W, &ph.pl);
    ph.y0 = a * s->Q + b;
    return ph;
}

/* How a phase's tiles are grouped:
 * - rows of 16 tiles or more (undilated columns): the image's tiles in
 *   order, 16 at a time, in one or two runs along rows of tiles (a row of
 *   28 tiles fills 86% of the lanes in groups of its own, all of them
 *   this way: vgg_256x56 5% faster);
 * - short rows of 2-8 tiles (undilated; CIFAR's 8 x 8 images have 4): a
 *   block of rt = 16 / tw rows of tiles, read with whole loads of each row,
 *   the batch's tile rows one after another, so that a block runs on into
 *   the next image (LeNet's 14 x 14 images, 7 rows of 7 tiles: 87.5% of
 *   the lanes where blocks within an image filled 76.6%);
 * - otherwise 16 tiles of one row at a time (a third run costs more than
 *   the lanes it fills: rows of 14 tiles ran 1-12% slower in runs). */
typedef struct {
    int64_t th, tw;             /* tiles per image: rows, columns */
    int64_t rt;                 /* rows of tiles per group (blocks), or 0 */
    int runs;                   /* groups in runs across rows */
    int64_t gpr, gpi;           /* groups per row of tiles (along rows), per image
                                 * (not blocks) */
    int64_t rows;               /* tile rows of the batch: N th */
    int64_t ngroups, nitems;
} wino_grid;

static wino_grid grid_of(const fc_conv_shape *s, const wino_phase *ph)
{
    wino_grid g;
    g.th = (ph->P + 1) / 2;
    g.tw = (ph->Q + 1) / 2;
    g.rt = s->dh == 1 && s->dw == 1 && g.tw >= 2 && g.tw <= 8 ? 16 / g.tw : 0;
    g.runs = !g.rt && s->dw == 1 && g.tw >= FC_WINO_LANES;
    g.gpr = (g.tw + FC_WINO_LANES - 1) / FC_WINO_LANES;
    if (g.rt)
        g.gpi = 0;
    else if (g.runs)
        g.gpi = (g.th * g.tw + FC_WINO_LANES - 1) / FC_WINO_LANES;
    else
        g.gpi = g.th * g.gpr;
    g.rows = s->N * g.th;
    g.ngroups = g.rt ? (g.rows + g.rt - 1) / g.rt : s->N * g.gpi;
    g.nitems = (g.ngroups + FC_WINO_GROUPS - 1) / FC_WINO_GROUPS;
    return g;
}

static int applies(const fc_conv_shape *s)
{
    return s->groups == 1 && s->sh == 1 && s->sw == 1 &&
           ((s->R == 3 && s->S == 3 && s->dw <= 2) || (s->R == 5 && s->S == 5 && s->dw == 1));
}

/* Winograd of few tiles: input channels per block of U, output channels
 * per item (the 6 x 64 kernel's width) */
#define FC_WINO_FEW_CB 64
#define FC_WINO_FEW_KT 64

/* ... and for stride 2, where U's rows are FC_WINO_S2_CB input channels
 * times up to 4 products */
#define FC_WINO_S2_CB 32
/* ... and tiles per item where each item makes its own V */
#define FC_WINO_S2_RUN 128

/* Floats before point xi's plane in V (chans: input channels, ld: floats
 * per row) or U: stride 1 takes one row per channel at each point. */
static int64_t few_offset(int s2, int64_t R, int xi, int64_t chans, int64_t ld)
{
    return s2 ? fc_wino_s2_offset(R, xi, chans, ld) : xi * (chans * ld + 16);
}

/* 2 x 2 output tiles of an undilated layer, over the batch */
static int64_t tiles_of(const fc_conv_shape *s)
{
    return s->N * ((s->P + 1) / 2) * ((s->Q + 1) / 2);
}

static int few_tiles(const fc_conv_shape *s)
{
    const int64_t tiles = tiles_of(s);
    return s->R == 3 && s->dh == 1 && s->dw == 1 &&
           (tiles <= FC_WINO_FEW_TILES || (tiles <= FC_WINO_FEW_TILES_DEEP && s->C >= 128));
}

/* Stride 2 (conv_winograd.h): few tiles only */
static int strided_few_tiles(const fc_conv_shape *s)
{
    return fc_isa_active() == FC_ISA_AVX512 && s->groups == 1 && (s->R == 3 || s->R == 7) &&
           s->S == s->R && s->sh == 2 && s->sw == 2 && s->dh == 1 && s->dw == 1 &&
           (tiles_of(s) <= FC_WINO_FEW_TILES_DEEP ||
            (s->K <= FC_WINO_FEW_KT && s->C <= FC_WINO_S2_CB));
}

/* Fraction of the GEMMs' lanes (2 x 2 outputs x output channels) that
 * compute real outputs; 0 where the algorithm does not apply. */
double fc_conv2d_winograd_efficiency_f32(const fc_conv_shape *s)
{
    wino_kernels k;
    int64_t slots = 0;
    if (!applies(s) || !select_kernels(&k, s->R) || s->N * s->P * s->Q * s->K == 0)
        return 0.0;
    if (few_tiles(s)) {   /* tiles six at a time, output channels 64 */
        const int64_t tiles = tiles_of(s);
        const int64_t kp = (s->K + FC_WINO_FEW_KT - 1) / FC_WINO_FEW_KT * FC_WINO_FEW_KT;
        return (double)(s->N * s->P * s->Q) / (double)((tiles + 5) / 6 * 6 * 4) *
               (double)s->K / (double)kp;
    }
    for (int64_t a = 0; a < s->dh; a++)
        for (int64_t b = 0; b < s->dw; b++) {
            const wino_phase ph = phase_of(s, a, b);
            slots += grid_of(s, &ph).nitems * FC_WINO_TB * 4;
        }
    const int64_t kb = (s->K + FC_WINO_KB - 1) / FC_WINO_KB * FC_WINO_KB;
    return (double)(s->N * s->P * s->Q) / (double)slots * (double)s->K / (double)kb;
}

/* A group's place: its runs, each in image n: tiles tc .. tc + len - 1
 * of row tr in lanes l0 ..; a block's runs are its tile rows (in lanes
 * r tw ..), from one image or two or more.  Its outputs in the phase, run
 * by run: rows 2 tr .. p1 - 1, columns 2 tc .. q1 - 1. */
typedef struct {
    int nrun;
    struct {
        int64_t n, tr, tc, p1, q1;
        int l0, len;
    } run[FC_WINO_MAXRT];
} wino_group;

static wino_group group_at(const wino_phase *ph, const wino_grid *g, int64_t i)
{
    wino_group r;
    const int64_t n = g->rt ? 0 : i / g->gpi;
    r.nrun = 0;
    if (g->rt) {   /* a block of rows of tiles, the batch's rows in order */
        for (int64_t row = i * g->rt; row < (i + 1) * g->rt && row < g->rows; r.nrun++, row++) {
            r.run[r.nrun].n = row / g->th;
            r.run[r.nrun].tr = row % g->th;
            r.run[r.nrun].tc = 0;
            r.run[r.nrun].l0 = (int)(r.nrun * g->tw);
            r.run[r.nrun].len = (int)g->tw;
            r.run[r.nrun].p1 = 2 * (row % g->th) + 2;
            r.run[r.nrun].q1 = ph->Q;
        }
    } else if (!g->runs) {   /* up to 16 tiles of one row */
        const int64_t tc = i % g->gpr * FC_WINO_LANES;
        r.nrun = 1;
        r.run[0].n = n;
        r.run[0].tr = i % g->gpi / g->gpr;
        r.run[0].tc = tc;
        r.run[0].l0 = 0;
        r.run[0].len = (int)(g->tw - tc < FC_WINO_LANES ? g->tw - tc : FC_WINO_LANES);
        r.run[0].p1 = 2 * r.run[0].tr + 2;
        r.run[0].q1 = 2 * (tc + r.run[0].len);
    } else {
        const int64_t t0 = i % g->gpi * FC_WINO_LANES;
        const int64_t t1 = t0 + FC_WINO_LANES < g->th * g->tw ? t0 + FC_WINO_LANES
                                                                : g->th * g->tw;
        for (int64_t t = t0; t < t1; r.nrun++) {
            const int64_t tc = t % g->tw, len = t1 - t < g->tw - tc ? t1 - t : g->tw - tc;
            r.run[r.nrun].n = n;
            r.run[r.nrun].tr = t / g->tw;
            r.run[r.nrun].tc = tc;
            r.run[r.nrun].l0 = (int)(t - t0);
            r.run[r.nrun].len = (int)len;
            r.run[r.nrun].p1 = 2 * (t / g->tw) + 2;
            r.run[r.nrun].q1 = 2 * (tc + len);
            t += len;
        }
    }
    for (int k = 0; k < r.nrun; k++) {
        r.run[k].p1 = r.run[k].p1 < ph->P ? r.run[k].p1 : ph->P;
        r.run[k].q1 = r.run[k].q1 < ph->Q ? r.run[k].q1 : ph->Q;
    }
    return r;
}

/* One output computed alone, in double, with the folded weights' float
 * values: for inputs the transforms must not see. */
static float exact_output(const fc_conv_shape *s, const float *x, const float *w,
                          const double *wscale, const float *bias, int relu,
                          int64_t n, int64_t k, int64_t p, int64_t q)
{
    const double f = wscale ? wscale[k] : 1.0;
    double acc = 0.0;
    for (int64_t c = 0; c < s->C; c++)
        for (int64_t r = 0; r < s->R; r++) {
            const int64_t h = p - s->pt + s->dh * r;
            if (h < 0 || h >= s->H)
                continue;
            for (int64_t t = 0; t < s->S; t++) {
                const int64_t col = q - s->pl + s->dw * t;
                if (col < 0 || col >= s->W)
                    continue;
                const float wf = (float)(w[((k * s->C + c) * s->R + r) * s->S + t] * f);
                acc += (double)x[((n * s->C + c) * s->H + h) * s->W + col] * wf;
            }
        }
    float v = (float)acc + (bias ? bias[k] : 0.0f);
    return relu && v < 0 ? 0.0f : v;
}

/* A group's outputs of channels k0 .. k1 - 1, exactly. */
static void exact_group(const fc_conv_shape *s, const wino_phase *ph, const wino_group *gr,
                        int64_t k0, int64_t k1, const float *x, const float *w,
                        const double *wscale, const float *bias, int relu, float *y)
{
    for (int64_t k = k0; k < k1; k++)
        for (int r = 0; r < gr->nrun; r++)
            for (int64_t i = 2 * gr->run[r].tr; i < gr->run[r].p1; i++)
                for (int64_t j = 2 * gr->run[r].tc; j < gr->run[r].q1; j++) {
                    const int64_t p = ph->y0 / s->Q + s->dh * i, q = ph->y0 % s->Q + s->dw * j;
                    y[((gr->run[r].n * s->K + k) * s->P + p) * s->Q + q] =
                        exact_output(s, x, w, wscale, bias, relu, gr->run[r].n, k, p, q);
                }
}

/* One call's arguments and its transformed weights' layout. */
typedef struct {
    const fc_conv_shape *s;
    const wino_kernels *kn;
    const float *x, *w, *u, *bias;
    const double *wscale;
    float *y;
    int relu;
    int64_t uplane, vplane, mplane, nkb;
} wino_call;

/* V of one group (its runs gr) for nc channels from x (the input at
 * image 0's first such channel), at v (the group's lane 0), channels ldv
 * floats apart, points vplane apart; a block's description into bk (its
 * outputs need it).  Returns nonzero when an input is out of the safe
 * range. */
static int group_input(const fc_conv_shape *s, const wino_kernels *kn, const wino_phase *ph,
                       const wino_grid *g, const wino_group *gr, const float *x, int64_t nc,
                       float *v, int64_t ldv, int64_t vplane, fc_wino_block *bk)
{
    const int64_t C = s->C, K = s->K;
    if (g->rt) {   /* (undilated: one phase, the image's own rows) */
        bk->tw = (int)g->tw;
        bk->rt = (int)g->rt;
        bk->col0 = -ph->pl;
        for (int r = 0; r < bk->rt; r++) {
            const int in = r < gr->nrun;
            const int64_t n = in ? gr->run[r].n : 0, tr = in ? gr->run[r].tr : 0;
            bk->img[r] = n * C * s->H * s->W;
            bk->row0[r] = in ? 2 * tr - ph->pt : s->H;   /* past the batch: zeros */
            bk->yoff[r] = n * K * s->P * s->Q + 2 * tr * s->Q;
            bk->yrows[r] = in ? (int)(gr->run[r].p1 - 2 * tr) : 0;
        }
        return kn->input_block(bk, x, nc, s->H, s->W, v, ldv, vplane);
    }
    fc_wino_plane pl;
    fc_wino_segment seg[FC_WINO_MAXSEG];
    pl.C = nc; pl.cstride = s->H * s->W;
    pl.rstride = s->dh * s->W; pl.nrows = ph->H;
    pl.W = s->W; pl.step = (int)s->dw;
    for (int r = 0; r < gr->nrun; r++) {   /* lane l0 holds tile tc */
        seg[r].row0 = 2 * gr->run[r].tr - ph->pt;
        seg[r].xcol0 = ph->xcol + s->dw * (2 * (gr->run[r].tc - gr->run[r].l0) - ph->pl);
        seg[r].lanes = ((1u << gr->run[r].len) - 1) << gr->run[r].l0;
    }
    return kn->input(&pl, x + gr->run[0].n * C * s->H * s->W + ph->xrow * s->W, seg,
                     gr->nrun, v, ldv, vplane);
}

/* One item: up to three groups of a phase, from input to y, for the
 * blocks b0 .. b1 - 1 of 8 output channels. */
static void run_item(const wino_call *cl, const wino_phase *ph, const wino_grid *g,
                     int64_t it, int64_t b0, int64_t b1, fc_direct_tile *t, float *v,
                     float *m)
{
    const fc_conv_shape *s = cl->s;
    const wino_kernels *kn = cl->kn;
    const int64_t C = s->C, K = s->K, g0 = it * FC_WINO_GROUPS;
    const int npoints = kn->T * kn->T;
    const int ng = (int)(g->ngroups - g0 < FC_WINO_GROUPS ? g->ngroups - g0 : FC_WINO_GROUPS);
    wino_group gr[FC_WINO_GROUPS];
    int bad = 0;
    fc_wino_block blk[FC_WINO_GROUPS];
    for (int j = 0; j < ng; j++) {
        gr[j] = group_at(ph, g, g0 + j);
        bad |= group_input(s, kn, ph, g, &gr[j], cl->x, C, v + j * FC_WINO_LANES,
                           FC_WINO_TB, cl->vplane, &blk[j]);
    }
    if (bad) {
        for (int j = 0; j < ng; j++)
            exact_group(s, ph, &gr[j], b0 * FC_WINO_KB,
                        b1 * FC_WINO_KB < K ? b1 * FC_WINO_KB : K, cl->x, cl->w,
                        cl->wscale, cl->bias, cl->relu, cl->y);
        return;
    }
    for (int j = ng; j < FC_WINO_GROUPS; j++)   /* lanes no group fills */
        for (int xi = 0; xi < npoints; xi++)
            for (int64_t c = 0; c < C; c++)
                memset(v + xi * cl->vplane + c * FC_WINO_TB + j * FC_WINO_LANES, 0,
                       FC_WINO_LANES * sizeof(float));
    /* each run's stores: y at the output of lane 0 (of the run's row, for
     * output channel 0), rows, and columns up to the phase's last */
    struct {
        int64_t y0;
        int nrows;
        uint32_t cols;
    } out[FC_WINO_GROUPS][FC_WINO_MAXSEG];
    for (int j = 0; j < ng && !g->rt; j++)
        for (int r = 0; r < gr[j].nrun; r++) {
            const int64_t p0 = 2 * gr[j].run[r].tr;
            const int64_t q0 = 2 * (gr[j].run[r].tc - gr[j].run[r].l0);
            const int c0 = 2 * gr[j].run[r].l0, c1 = (int)(gr[j].run[r].q1 - q0);
            out[j][r].y0 = gr[j].run[r].n * K * s->P * s->Q + ph->y0 + s->dh * p0 * s->Q +
                           s->dw * q0;
            out[j][r].nrows = (int)(gr[j].run[r].p1 - p0);
            out[j][r].cols = (c1 >= 32 ? 0xFFFFFFFFu : (1u << c1) - 1) & ~((1u << c0) - 1);
        }
    for (int64_t b = b0; b < b1; b++) {
        const int nk = (int)(K - b * FC_WINO_KB < FC_WINO_KB ? K - b * FC_WINO_KB : FC_WINO_KB);
        for (int xi = 0; xi < npoints; xi++)
            kn->gemm(t, v + xi * cl->vplane, cl->u + xi * cl->uplane + b * C * FC_WINO_KB,
                     NULL, m + xi * cl->mplane);
        for (int k = 0; k < nk; k++) {
            const int64_t kk = b * FC_WINO_KB + k;
            const float bk = cl->bias ? cl->bias[kk] : 0.0f;
            float *yk = cl->y + kk * s->P * s->Q;
            for (int j = 0; j < ng; j++) {
                const float *mj = m + k * FC_WINO_TB + j * FC_WINO_LANES;
                if (g->rt) {   /* every column of the block's rows */
                    const uint32_t cols = s->Q >= 16 ? 0xFFFFu : (1u << s->Q) - 1;
                    kn->output_block(mj, cl->mplane, bk, cl->relu, yk, s->Q, &blk[j], cols);
                    continue;
                }
                for (int r = 0; r < gr[j].nrun; r++)
                    kn->output(mj, cl->mplane, bk, cl->relu, yk + out[j][r].y0,
                               s->dh * s->Q, out[j][r].nrows, out[j][r].cols, (int)s->dw);
            }
        }
    }
}

/* Few tiles for many weights (ResNet-50's 512 channels at 7 x 7: 16 tiles
 * per image for 2.4 M weights; VGG's at 14 x 14, 49): transforming every
 * weight into U before the GEMMs writes and reads back 16 MB, and 16-49
 * tiles fill a fraction of the tile-lane GEMM's 48 lanes.  Here the lanes
 * hold output channels, as in the direct kernels' channels-last walk, whose
 * 6 x 64 kernel runs the GEMMs with the tiles broadcast (any number of
 * them, six at a time), and U is made block by block just before use:
 * an item is 64 output channels; for each block of FC_WINO_FEW_CB input
 * channels it transforms their weights, read as stored, into U (16 points
 * x the block x 64: in L2) and accumulates the 16 GEMMs into M (16 points
 * x tiles x 64); then the output transform, the batch norm's factor (it
 * multiplies the sums: folding it into the weights would need a pass of
 * its own), the bias and the ReLU write a channels-last buffer that is
 * transposed into y.  V, every tile's input transform, is made once,
 * before the items, by the tile-lane transforms (lane slot[t] of tile t).
 * Inputs, weights or factors out of the safe range send the call to the
 * direct algorithm, which overwrites y whole.
 *
 * Stride 2 (3x3 and 7x7 filters, conv_winograd.h) takes 9 points.  With
 * one block of output channels and of input channels (ResNet-50's stem:
 * 64 and 3, 3136 tiles) each thread makes U once, and the items are runs of
 * FC_WINO_S2_RUN tiles' rows, each making its own V (in L2) and taking
 * six tiles at a time through the GEMMs and the output transform (M in
 * L1).
 *
 * flipped: the input gradient of a stride-1 layer, s its convolution of
 * grad_output (x) with the forward weight w turned half a turn and
 * transposed (s->K = the forward's C): the transform reads w as it is,
 * where the direct path first writes the turned copy (a memory-bound pass
 * over the weights as long as the GEMMs).  Out-of-range values return
 * FC_WINO_DECLINED instead, having written gx or not. */
/* One call's layout (winograd_few_tiles), shared by its items. */
typedef struct {
    const fc_conv_shape *s;
    int s2, local, npoints;       /* stride 2; runs with their own V; points */
    int64_t th, tw, gpr;          /* tiles per image: rows, columns; groups of 16 per row */
    int64_t cbmax, rchunk;        /* input channels per block of U; rows of tiles per run */
    int64_t ldv, mplane;          /* floats per row of V; per point of M */
    int64_t voff[17], uoff[17];   /* points' planes in V and U; [npoints]: the sizes */
    const int64_t *slot;          /* each tile's lane in V */
    const float *scale, *bias;    /* per output channel, 64-padded (scale: or NULL) */
    int relu;
} few_call;

/* V of group `part` (16 tiles from tile 16 part) of row `row` (n th + tr)
 * of tiles, stride 2, channels c0 .. c0 + nc - 1, at v (its lane 0). */
static int s2_group_input(const few_call *f, const float *x, int64_t row, int64_t part,
                          int64_t c0, int64_t nc, float *v)
{
    const fc_conv_shape *s = f->s;
    const int64_t tc0 = part * FC_WINO_LANES, n = row / f->th, tr = row % f->th;
    return f32_winograd_input_s2_avx512(
        s->R, x + n * s->C * s->H * s->W, c0, nc, s->H, s->W, 4 * tr - s->pt, 4 * tc0 - s->pl,
        (int)(f->tw - tc0 < FC_WINO_LANES ? f->tw - tc0 : FC_WINO_LANES), v, f->voff, f->ldv);
}

/* The outputs of tiles t0 .. t0 + nt - 1 from their points in M (tile t
 * at m + (t - mt0) KT) into the channels-last buffer ob (holding the
 * batch's outputs from pixel obase on), for the block's factors. */
static void few_outputs(const few_call *f, int64_t t0, int64_t nt, const float *m, int64_t mt0,
                        int64_t k0, float *ob, int64_t obase)
{
    const fc_conv_shape *s = f->s;
    for (int64_t t = t0; t < t0 + nt; t++) {
        const int64_t row = t / f->tw, tc = t % f->tw, n = row / f->th, tr = row % f->th;
        (f->s2 ? f32_winograd_output_s2_avx512 : f32_winograd_output_cl_3x3_avx512)(
            m + (t - mt0) * FC_WINO_FEW_KT, f->mplane, f->scale ? f->scale + k0 : NULL,
            f->bias + k0, f->relu,
            ob + (n * s->P * s->Q + 2 * tr * s->Q + 2 * tc - obase) * FC_WINO_FEW_KT, s->Q,
            s->P - 2 * tr < 2 ? 1 : 2, s->Q - 2 * tc < 2 ? 1 : 2);
    }
}

/* An item of a run (local): V of rows of tiles r0 .. r1 - 1 into vl, then
 * six tiles at a time through the 9 GEMMs (M in L1) and the output
 * transform.  Nonzero when an input is out of the safe range. */
static int few_run(const few_call *f, const float *x, int64_t r0, int64_t r1, const float *u,
                   float *vl, float *m, float *ob, int64_t obase, fc_nhwc_tile *t)
{
    const fc_conv_shape *s = f->s;
    const int64_t C = s->C, KT = FC_WINO_FEW_KT;
    int bad = 0;
    for (int64_t gi = 0; gi < (r1 - r0) * f->gpr; gi++)
        bad |= s2_group_input(f, x, r0 + gi / f->gpr, gi % f->gpr, 0, C, vl + gi * FC_WINO_LANES);
    for (int64_t t0 = r0 * f->tw; t0 < r1 * f->tw && !bad; t0 += FC_NHWC_NP) {
        t->pix = f->slot + t0;
        t->np = (int)(r1 * f->tw - t0 < FC_NHWC_NP ? r1 * f->tw - t0 : FC_NHWC_NP);
        for (int64_t c0 = 0; c0 < C; c0 += f->cbmax) {
            const int64_t cb = C - c0 < f->cbmax ? C - c0 : f->cbmax;
            t->accumulate = c0 > 0;
            for (int xi = 0; xi < f->npoints; xi++) {
                const int len = fc_wino_s2_len(s->R, xi);
                t->cb = cb * len;
                f32_conv_direct_nhwc_6x64_avx512(t, vl + f->voff[xi] + c0 * len * f->ldv,
                                                 u + f->uoff[xi] + c0 * len * KT, NULL,
                                                 m + xi * f->mplane);
            }
        }
        few_outputs(f, t0, t->np, m, t0, 0, ob, obase);
    }
    return bad;
}

/* An item of 64 output channels from k0 (nk of them real) over rows of
 * tiles r0 .. r1 - 1 (V made before the items): block by block of input
 * channels, U from the weights as stored, then the GEMMs into M (every
 * tile); then the output transform.  Nonzero when a weight is out of the
 * safe range. */
static int few_block(const few_call *f, const float *w, int flipped, const float *v,
                     int64_t k0, int64_t nk, int64_t r0, int64_t r1, float *u, float *m,
                     float *ob, fc_nhwc_tile *t)
{
    const fc_conv_shape *s = f->s;
    const int64_t C = s->C, K = s->K, R = s->R, KT = FC_WINO_FEW_KT, cbmax = f->cbmax;
    int bad = 0;
    for (int64_t c0 = 0; c0 < C && !bad; c0 += cbmax) {
        const int64_t cb = C - c0 < cbmax ? C - c0 : cbmax;
        t->accumulate = c0 > 0;
        for (int64_t k = 0; k < KT; k += 16) {   /* past K: zeros */
            const int rows = nk - k >= 16 ? 16 : nk > k ? (int)(nk - k) : 0;
            if (f->s2)
                bad |= f32_winograd_weight_s2_avx512(
                    R, w + (rows ? (k0 + k) * C + c0 : 0) * R * R, C * R * R, rows, cb, u + k,
                    f->uoff, KT);
            else if (flipped)   /* w[c][k]: input channel c, output channel k */
                bad |= f32_winograd_weight_flipped_3x3_avx512(
                    w + (rows ? c0 * K + k0 + k : 0) * 9, K * 9, rows, cb, u + k, KT,
                    f->uoff[1]);
            else
                bad |= f32_winograd_weight_rows_3x3_avx512(
                    w + (rows ? (k0 + k) * C + c0 : 0) * 9, C * 9, rows, cb, u + k, KT,
                    f->uoff[1]);
        }
        for (int xi = 0; xi < f->npoints && !bad; xi++) {
            /* the next block's weights, a few of its 64 rows a point: from
             * L3 while the GEMMs compute (read all at once by the
             * transform, they made it wait; spreading them over every GEMM
             * call ran no faster).  Rows: output channels (flipped: input
             * channels) */
            const int64_t c0n = c0 + cbmax, cbn = C - c0n < cbmax ? C - c0n : cbmax;
            const int64_t nrows = c0n >= C ? 0 : flipped ? cbn : nk;
            const int64_t per = (KT + f->npoints - 1) / f->npoints;
            const int len = f->s2 ? fc_wino_s2_len(R, xi) : 1;
            for (int64_t r = per * xi; r < per * (xi + 1) && r < nrows; r++) {
                const char *row = (const char *)(
                    flipped ? w + ((c0n + r) * K + k0) * R * R : w + ((k0 + r) * C + c0n) * R * R);
                const int64_t bytes = (flipped ? nk : cbn) * R * R * (int64_t)sizeof(float);
                for (int64_t off = 0; off < bytes; off += 64)
                    __builtin_prefetch(row + off, 0, 3);
            }
            t->cb = cb * len;
            for (int64_t t0 = r0 * f->tw; t0 < r1 * f->tw; t0 += FC_NHWC_NP) {
                t->pix = f->slot + t0;
                t->np = (int)(r1 * f->tw - t0 < FC_NHWC_NP ? r1 * f->tw - t0 : FC_NHWC_NP);
                f32_conv_direct_nhwc_6x64_avx512(t, v + f->voff[xi] + c0 * len * f->ldv,
                                                 u + f->uoff[xi], NULL,
                                                 m + xi * f->mplane + t0 * KT);
            }
        }
    }
    if (!bad)
        few_outputs(f, r0 * f->tw, (r1 - r0) * f->tw, m, 0, k0, ob, 0);
    return bad;
}

static int winograd_few_tiles(const fc_conv_shape *s, const wino_kernels *kn, const float *x,
                              const float *w, int flipped, const double *wscale,
                              const float *bias, int relu, float *y)
{
    const wino_phase ph = phase_of(s, 0, 0);
    const wino_grid g = grid_of(s, &ph);
    const int64_t C = s->C, K = s->K, R = s->R, PQ = s->P * s->Q, KT = FC_WINO_FEW_KT;
    const int nt = fc_get_num_threads();
    static const int64_t tap0 = 0;
    few_call f;
    f.s = s;
    f.s2 = s->sh == 2;
    f.npoints = f.s2 ? 9 : 16;
    f.th = (s->P + 1) / 2;
    f.tw = (s->Q + 1) / 2;
    f.gpr = (f.tw + FC_WINO_LANES - 1) / FC_WINO_LANES;
    const int64_t ntiles = s->N * f.th * f.tw, nkb = (K + KT - 1) / KT, trows = s->N * f.th;
    const int64_t cbfew = f.s2 ? FC_WINO_S2_CB : FC_WINO_FEW_CB;
    f.cbmax = C < cbfew ? C : cbfew;
    f.local = f.s2 && nkb == 1 && C <= cbfew;
    /* Items: blocks of output channels x runs of rchunk rows of tiles.
     * Fewer blocks than threads: each block's rows split too (each part
     * transforms the block's weights again). */
    const int64_t want = nkb < nt ? (nt + nkb - 1) / nkb : 1, parts = want < trows ? want : trows;
    f.rchunk = f.local ? (FC_WINO_S2_RUN / f.tw > 1 ? FC_WINO_S2_RUN / f.tw : 1)
                       : (trows + parts - 1) / parts;
    const int64_t nsplit = (trows + f.rchunk - 1) / f.rchunk;
    /* stride 2: groups of up to 16 tiles of one row of tiles (local: of a run) */
    const int64_t ngroups = f.local ? f.rchunk * f.gpr : f.s2 ? trows * f.gpr : g.ngroups;
    /* V: [xi][c len + q][slot]; M: every tile's points (local: six tiles') */
    f.ldv = ngroups * FC_WINO_LANES;
    f.mplane = (f.local ? FC_NHWC_NP : ntiles) * KT + 16;
    for (int xi = 0; xi <= f.npoints; xi++) {   /* (local: U of all C channels) */
        f.voff[xi] = few_offset(f.s2, R, xi, C, f.ldv);
        f.uoff[xi] = few_offset(f.s2, R, xi, f.local ? C : f.cbmax, KT);
    }
    f.relu = relu;
    const int64_t vsize = f.voff[f.npoints], usize = f.uoff[f.npoints];
    const int64_t cchunk = 64, nchunks = (C + cchunk - 1) / cchunk;
    int err = 0, unsafe = 0, wunsafe = 0, uunsafe = 0;
    float *v = f.local ? NULL : (float *)fc_scratch(FC_SLOT_INPUT, (size_t)vsize * sizeof(float));
    int64_t *slot = (int64_t *)fc_malloc(sizeof(int64_t) * (size_t)ntiles);
    /* the output transform reads 64 channels of factors and bias */
    float *sp = (float *)fc_calloc((size_t)(2 * nkb * KT), sizeof(float));
    float *bp = sp + nkb * KT;
    if ((v == NULL && !f.local) || slot == NULL || sp == NULL) {
        free(slot);
        free(sp);
        return FC_ENOMEM;
    }
    for (int64_t k = 0; k < K; k++) {
        sp[k] = wscale ? (float)wscale[k] : 1.0f;
        bp[k] = bias ? bias[k] : 0.0f;
        unsafe |= !isfinite(sp[k]);
    }
    f.scale = wscale ? sp : NULL;
    f.bias = bp;
    f.slot = slot;
    if (f.s2)   /* local: the row within its run */
        for (int64_t t = 0; t < ntiles; t++) {
            const int64_t tc = t % f.tw, row = f.local ? t / f.tw % f.rchunk : t / f.tw;
            slot[t] = (row * f.gpr + tc / FC_WINO_LANES) * FC_WINO_LANES + tc % FC_WINO_LANES;
        }
    else
        for (int64_t i = 0; i < g.ngroups; i++) {
            const wino_group gr = group_at(&ph, &g, i);
            for (int r = 0; r < gr.nrun; r++)
                for (int l = 0; l < gr.run[r].len; l++)
                    slot[(gr.run[r].n * g.th + gr.run[r].tr) * g.tw + gr.run[r].tc + l] =
                        i * FC_WINO_LANES + gr.run[r].l0 + l;
        }

#pragma omp parallel num_threads(nt)
    {
        float *u = (float *)fc_scratch(FC_SLOT_WEIGHT, (size_t)usize * sizeof(float));
        float *m = (float *)fc_scratch(FC_SLOT_OUTPUT, (size_t)(f.npoints * f.mplane) * sizeof(float));
        /* the outputs, channels-last (local: the run's rows only) */
        const int64_t obsize = f.local ? 2 * f.rchunk * s->Q * KT : s->N * PQ * KT;
        float *ob = (float *)fc_scratch(FC_SLOT_COL, (size_t)obsize * sizeof(float));
        float *vl = f.local ? (float *)fc_scratch(FC_SLOT_INPUT, (size_t)vsize * sizeof(float))
                            : NULL;
        fc_nhwc_tile t;
        int ubad = 0;
        if (u == NULL || m == NULL || ob == NULL || (f.local && vl == NULL)) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
        /* local: U of the one block, by every thread for itself (a few
         * microseconds): no barrier before the items, where a thread that
         * another process holds off its core would stall the others (a busy
         * process beside the stem: 1.27 ms for 0.53 with a shared U) */
        for (int64_t k = 0; f.local && u != NULL && k < KT; k += 16) {
            const int rows = K - k >= 16 ? 16 : K > k ? (int)(K - k) : 0;
            ubad |= f32_winograd_weight_s2_avx512(R, w + (rows ? k * C * R * R : 0), C * R * R,
                                                  rows, C, u + k, f.uoff, KT);
        }
        if (ubad) {
#pragma omp atomic write
            uunsafe = 1;
        }
        /* V, by group and chunk of channels (local: in the items) */
        if (!f.local) {
#pragma omp for schedule(dynamic) reduction(|:unsafe)
            for (int64_t i = 0; i < ngroups * nchunks; i++) {
                const int64_t c0 = i % nchunks * cchunk, nc = C - c0 < cchunk ? C - c0 : cchunk;
                const int64_t gi = i / nchunks;
                if (f.s2) {
                    unsafe |= s2_group_input(&f, x, gi / f.gpr, gi % f.gpr, c0, nc,
                                             v + gi * FC_WINO_LANES);
                } else {
                    const wino_group gr = group_at(&ph, &g, gi);
                    fc_wino_block bk;
                    unsafe |= group_input(s, kn, &ph, &g, &gr, x + c0 * s->H * s->W, nc,
                                          v + c0 * f.ldv + gi * FC_WINO_LANES, f.ldv, f.voff[1],
                                          &bk);
                }
            }
        }
        memset(&t, 0, sizeof t);
        t.taps = 1; t.tapoff = &tap0; t.cs = f.ldv; t.ws = KT; t.ldo = KT;
#pragma omp for schedule(dynamic) reduction(|:wunsafe)
        for (int64_t it = 0; it < nkb * nsplit; it++) {
            const int64_t b = it / nsplit, k0 = b * KT, nk = K - k0 < KT ? K - k0 : KT;
            const int64_t r0 = it % nsplit * f.rchunk;
            const int64_t r1 = r0 + f.rchunk < trows ? r0 + f.rchunk : trows;
            /* ob's first output: pixel n PQ + p Q of the batch (local: the run's) */
            const int64_t obase = f.local ? (r0 / f.th * s->P + 2 * (r0 % f.th)) * s->Q : 0;
            if (err || unsafe || ubad || r0 >= r1)
                continue;
            const int bad = f.local ? few_run(&f, x, r0, r1, u, vl, m, ob, obase, &t)
                                    : few_block(&f, w, flipped, v, k0, nk, r0, r1, u, m, ob, &t);
            wunsafe |= bad;
            if (bad)
                continue;
            for (int64_t n = r0 / f.th; n * f.th < r1; n++) {   /* the images' output rows */
                const int64_t lo = (r0 > n * f.th ? r0 - n * f.th : 0) * 2 * s->Q;
                const int64_t hi = r1 < (n + 1) * f.th ? (r1 - n * f.th) * 2 * s->Q : PQ;
                for (int64_t k = 0; k < nk; k += 16)
                    fc_planes_of_columns_f32(ob + (n * PQ + lo - obase) * KT + k, KT,
                                             nk - k < 16 ? nk - k : 16, PQ, 0, hi - lo,
                                             y + (n * K + k0 + k) * PQ + lo);
            }
        }
    }
    free(slot);
    free(sp);
    if (err)
        return err;
    if (unsafe || wunsafe || uunsafe)   /* flipped: the caller has the flipped weight made */
        return flipped ? FC_WINO_DECLINED : fc_conv2d_direct_f32(s, x, w, wscale, bias, relu, y);
    return 0;
}

int fc_conv2d_winograd_flipped_f32(const fc_conv_shape *s, const float *gy, const float *w,
                                   float *gx)
{
    wino_kernels kn;
    if (s->N == 0 || s->P == 0 || s->Q == 0 || s->K == 0 || !applies(s) ||
        !select_kernels(&kn, s->R) || s->R != 3 || !few_tiles(s))
        return FC_WINO_DECLINED;
    return winograd_few_tiles(s, &kn, gy, w, 1, NULL, NULL, 0, gx);
}

int fc_conv2d_winograd_f32(const fc_conv_shape *s, const float *x,
                           const float *w, const double *wscale,
                           const float *bias, int relu, float *y)
{
    wino_kernels kn;
    wino_call cl;
    if (s->N == 0 || s->P == 0 || s->Q == 0 || s->K == 0)
        return fc_conv2d_direct_f32(s, x, w, wscale, bias, relu, y);
    if (strided_few_tiles(s))   /* (its transforms are its own: no kn) */
        return winograd_few_tiles(s, NULL, x, w, 0, wscale, bias, relu, y);
    if (!applies(s) || !select_kernels(&kn, s->R))
        return fc_conv2d_direct_f32(s, x, w, wscale, bias, relu, y);
    if (few_tiles(s))
        return winograd_few_tiles(s, &kn, x, w, 0, wscale, bias, relu, y);

    const int64_t C = s->C, K = s->K, nkb = (K + FC_WINO_KB - 1) / FC_WINO_KB;
    const int64_t npoints = kn.T * kn.T;
    const int nt = fc_get_num_threads();
    int err = 0, unsafe = 0;
    cl.s = s; cl.kn = &kn; cl.x = x; cl.w = w; cl.wscale = wscale; cl.bias = bias;
    cl.y = y; cl.relu = relu; cl.nkb = nkb;
    cl.uplane = nkb * C * FC_WINO_KB;   /* floats per xi of U */
    /* V's planes one cache line more than their 48 floats a channel apart:
     * the input transform writes all T^2 at once, and planes a multiple of
     * 4 KB apart would share the L1's sets (16 or 36 > its 12 ways) */
    cl.vplane = C * FC_WINO_TB + 16;
    cl.mplane = FC_WINO_KB * FC_WINO_TB;
    float *u = (float *)fc_scratch(FC_SLOT_WEIGHT, (size_t)(npoints * cl.uplane) * sizeof(float));
    if (u == NULL)
        return FC_ENOMEM;
    cl.u = u;

#pragma omp parallel for num_threads(nt) schedule(static) reduction(|:unsafe)
    for (int64_t b = 0; b < nkb; b++) {
        const int nk = (int)(K - b * FC_WINO_KB < FC_WINO_KB ? K - b * FC_WINO_KB : FC_WINO_KB);
        unsafe |= kn.weight(w + b * FC_WINO_KB * C * s->R * s->S, C, nk,
                            wscale ? wscale + b * FC_WINO_KB : NULL,
                            u + b * C * FC_WINO_KB, cl.uplane);
    }
    if (unsafe)
        return fc_conv2d_direct_f32(s, x, w, wscale, bias, relu, y);

#pragma omp parallel num_threads(nt)
    {
        static const int64_t off[FC_WINO_GROUPS] = {0, FC_WINO_LANES, 2 * FC_WINO_LANES};
        static const uint32_t all[FC_WINO_GROUPS] = {0xFFFFu, 0xFFFFu, 0xFFFFu};
        float *v = (float *)fc_scratch(FC_SLOT_INPUT, (size_t)(npoints * cl.vplane) * sizeof(float));
        float *m = (float *)fc_scratch(FC_SLOT_OUTPUT, (size_t)(npoints * cl.mplane) * sizeof(float));
        fc_direct_tile t;
        /* the GEMM: 8 output channels x 48 tiles, one tap, all channels */
        memset(&t, 0, sizeof t);
        t.Cg = C; t.taps = 1; t.cblock = C; t.cstride = FC_WINO_TB; t.sw = 1;
        t.off = off; t.mask = all;
        t.ystride = FC_WINO_TB; t.yrow = FC_WINO_LANES;
        t.nk = FC_WINO_KB;   /* rows past K are zero weights */
        t.nrows = FC_WINO_GROUPS; t.store_mask = 0xFFFFu;
        if (v == NULL || m == NULL) {
#pragma omp atomic write
            err = FC_ENOMEM;
        }
        /* the column phases of a row phase read the same input rows and
         * write the same output rows (every other column): an item runs
         * in both while they are in cache */
        for (int64_t a = 0; a < s->dh; a++) {
            wino_phase ph[2];
            wino_grid g[2];
            int64_t items = 0;
            for (int64_t b = 0; b < s->dw; b++) {
                ph[b] = phase_of(s, a, b);
                g[b] = grid_of(s, &ph[b]);
                items = g[b].nitems > items ? g[b].nitems : items;
            }
            /* Too few items for the threads (one image of 28x28 has 17):
             * each also split by output channels, its input transformed
             * again by each part.  Every output is computed the same way
             * however the items split, so the bits do not change. */
            const int64_t want = items > 0 && items < 4 * nt ? (4 * nt + items - 1) / items : 1;
            const int64_t split = want < nkb ? want : nkb;
            const int64_t chunk = (nkb + split - 1) / split;
#pragma omp for schedule(dynamic)
            for (int64_t ik = 0; ik < items * split; ik++) {
                const int64_t it = ik / split, b0 = ik % split * chunk;
                const int64_t b1 = b0 + chunk < nkb ? b0 + chunk : nkb;
                for (int64_t b = 0; b < s->dw; b++)
                    if (v != NULL && m != NULL && it < g[b].nitems && b0 < b1)
                        run_item(&cl, &ph[b], &g[b], it, b0, b1, &t, v, m);
            }
        }
    }
    return err;
}

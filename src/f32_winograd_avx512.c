/* AVX-512 transforms of the Winograd convolutions F(2x2, 3x3) and
 * F(2x2, 5x5), float32 (conv_winograd.h): weights 8 output channels to a
 * vector (for few tiles, 16, and their outputs too: 3x3 only), inputs and
 * outputs 16 tiles to a vector: along one or two runs
 * of a row of tiles, or a block of tile rows of a narrow image (whole
 * loads and stores, and permutes).  A tile's patch is T x T inputs (T = 4
 * for 3x3 filters, 6 for 5x5); the helpers take T as a constant, so that
 * each size compiles to its own straight code.  The stride-2 transforms
 * (3x3 and 7x7 filters, additions alone) take R as one. */
#include "conv_winograd.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#include "f32_transpose_avx512.h"

/* channels ahead that the input transform prefetches */
#define FC_WINO_AHEAD 4
/* bytes ahead in each row that the weight transform of few tiles prefetches */
#define FC_WINO_WEIGHT_AHEAD 512

#define TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma")))
#define INLINE static inline __attribute__((always_inline))

/* Lanes that are not finite or exceed the safe magnitude (NaN included:
 * "not less or equal" is true for unordered operands). */
#define UNSAFE512(v) _mm512_cmp_ps_mask(_mm512_abs_ps(v), \
    _mm512_set1_ps(FC_WINO_SAFE), _CMP_NLE_UQ)
#define UNSAFE256(v) _mm256_cmp_ps_mask(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), (v)), \
    _mm256_set1_ps(FC_WINO_SAFE), _CMP_NLE_UQ)

/* The lanes of a 16-float load from column `first` that lie in a row of
 * W columns. */
static inline uint32_t lanes_inside(int64_t first, int64_t W)
{
    const int64_t lo = first < 0 ? -first : 0;
    const int64_t hi = W - first < 16 ? W - first : 16;
    return hi <= lo ? 0 : (uint32_t)(((uint64_t)1 << hi) - ((uint64_t)1 << lo));
}

/* The bits of the largest magnitude so far (NaN's are larger than inf's),
 * and whether they exceed the safe range. */
#define MAGNITUDE_MAX(most, v) _mm512_max_epu32((most), _mm512_and_si512( \
    _mm512_castps_si512(v), _mm512_set1_epi32(0x7FFFFFFF)))
#define PAST_SAFE(most) (_mm512_cmpgt_epu32_mask((most), \
    _mm512_castps_si512(_mm512_set1_ps(FC_WINO_SAFE))) != 0)

/* ------------------------------------------------------------------ */
/* weights */

/* How a weight transform reads nk (<= 8) filters of C channels and `taps`
 * taps: rows (their offsets), km (lanes past nk zero), their factors
 * (wscale NULL: none), and in `bad` the lanes that met values out of the
 * safe range. */
typedef struct {
    __m256i rows;
    __mmask8 km, bad;
    int scaled;
    __m512d scale;
} filter_gather;

TARGET INLINE filter_gather filters_of(int64_t C, int taps, int nk, const double *wscale)
{
    filter_gather f;
    f.km = (__mmask8)((1u << nk) - 1);
    f.rows = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                _mm256_set1_epi32((int)(C * taps)));
    f.scaled = wscale != NULL;
    f.scale = wscale ? _mm512_maskz_loadu_pd(f.km, wscale) : _mm512_set1_pd(1.0);
    f.bad = 0;
    return f;
}

/* Tap p of the filters, times their factors when scaled: the product in
 * double, rounded once, which is the direct kernels' folded weight. */
TARGET INLINE __m256 folded_tap(const float *p, filter_gather *f)
{
    const __m256 raw = _mm256_mmask_i32gather_ps(_mm256_setzero_ps(), f->km, f->rows, p, 4);
    const __m256 v = f->scaled ? _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_cvtps_pd(raw), f->scale))
                               : raw;
    f->bad |= UNSAFE256(v);
    return v;
}

/* G g G^T with G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], 8 filters
 * (output channels) in the lanes, for every input channel. */
TARGET int f32_winograd_weight_2x2_3x3_avx512(const float *w, int64_t C,
                                              int nk, const double *wscale,
                                              float *u, int64_t plane)
{
    const __m256 half = _mm256_set1_ps(0.5f);
    filter_gather f = filters_of(C, 9, nk, wscale);
    for (int64_t c = 0; c < C; c++) {
        __m256 g[9], r[4][3];
        for (int tap = 0; tap < 9; tap++)
            g[tap] = folded_tap(w + c * 9 + tap, &f);
        for (int j = 0; j < 3; j++) {   /* G g: columns of the filter */
            const __m256 a = g[j], b = g[3 + j], d = g[6 + j];
            r[0][j] = a;
            r[1][j] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(a, b), d));
            r[2][j] = _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(a, b), d));
            r[3][j] = d;
        }
        for (int i = 0; i < 4; i++) {   /* (G g) G^T: rows */
            const __m256 a = r[i][0], b = r[i][1], d = r[i][2];
            float *o = u + 4 * i * plane + c * FC_WINO_KB;
            _mm256_storeu_ps(o, a);
            _mm256_storeu_ps(o + plane, _mm256_mul_ps(half, _mm256_add_ps(_mm256_add_ps(a, b), d)));
            _mm256_storeu_ps(o + 2 * plane, _mm256_mul_ps(half, _mm256_add_ps(_mm256_sub_ps(a, b), d)));
            _mm256_storeu_ps(o + 3 * plane, d);
        }
    }
    return f.bad != 0;
}

/* For few tiles: G' g G'^T with G' = [1 0 0; 1 1 1; 1 -1 1; 0 0 1], G's
 * rows 1 and 2 doubled, so that it takes additions alone.  Point (i, j)
 * comes out d_i d_j times Lavin's (d = 1, 2, 2, 1); the output transform
 * of few tiles takes the factors out, exactly (powers of two). */
TARGET INLINE void weight_doubled_3x3(const __m512 g[9], float *o, int64_t plane)
{
    __m512 r[4][3];
    for (int j = 0; j < 3; j++) {   /* G' g: columns of the filter */
        const __m512 a = g[j], b = g[3 + j], d = g[6 + j], ad = _mm512_add_ps(a, d);
        r[0][j] = a;
        r[1][j] = _mm512_add_ps(ad, b);
        r[2][j] = _mm512_sub_ps(ad, b);
        r[3][j] = d;
    }
    for (int i = 0; i < 4; i++) {   /* (G' g) G'^T: rows */
        const __m512 a = r[i][0], b = r[i][1], d = r[i][2], ad = _mm512_add_ps(a, d);
        float *oi = o + 4 * i * plane;
        _mm512_storeu_ps(oi, a);
        _mm512_storeu_ps(oi + plane, _mm512_add_ps(ad, b));
        _mm512_storeu_ps(oi + 2 * plane, _mm512_sub_ps(ad, b));
        _mm512_storeu_ps(oi + 3 * plane, d);
    }
}

/* Sixteen filters' taps into the lanes: rows src + i ldw (the first nk of
 * 16; the rest give zeros), n values each (channels x taps), transposed 16
 * columns at a time into tmp[c][tap][k] (an L1 buffer). */
TARGET INLINE void filters_to_lanes(const float *src, int64_t ldw, int nk, int n, float *tmp)
{
    for (int j = 0; j < n; j += 16) {
        const int ncols = n - j < 16 ? n - j : 16;
        const __mmask16 m = (__mmask16)((1u << ncols) - 1);
        __m512 r[16], col[16];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++) {
            r[i] = i < nk ? _mm512_maskz_loadu_ps(m, src + i * ldw + j) : _mm512_setzero_ps();
            /* (past the row's end: only prefetched, never read) */
            __builtin_prefetch((const void *)((uintptr_t)(src + i * ldw + j) +
                                              FC_WINO_WEIGHT_AHEAD), 0, 3);
        }
        f32_transpose_16x16_avx512(r, col);
#pragma GCC unroll 16
        for (int q = 0; q < 16; q++)
            _mm512_store_ps(tmp + (j + q) * 16, col[q]);
    }
}

/* 16 filters in the lanes, read straight from the weight: rows w + i ldw
 * (the first nk of 16; the rest give zeros), input channels [0, cb).
 * Sixteen channels at a time, their 9 taps go through an L1 buffer that
 * the (doubled) transform then reads: u[xi plane + c ldu + k]. */
TARGET int f32_winograd_weight_rows_3x3_avx512(const float *w, int64_t ldw, int nk,
                                               int64_t cb, float *u, int64_t ldu,
                                               int64_t plane)
{
    float tmp[16 * 9 * 16] __attribute__((aligned(64)));   /* [c][tap][k] */
    __m512i most = _mm512_setzero_si512();
    for (int64_t c0 = 0; c0 < cb; c0 += 16) {
        const int nc = cb - c0 < 16 ? (int)(cb - c0) : 16;
        filters_to_lanes(w + c0 * 9, ldw, nk, 9 * nc, tmp);
        for (int c = 0; c < nc; c++) {
            __m512 g[9];
            for (int tap = 0; tap < 9; tap++) {
                g[tap] = _mm512_load_ps(tmp + (c * 9 + tap) * 16);
                most = MAGNITUDE_MAX(most, g[tap]);
            }
            weight_doubled_3x3(g, u + (c0 + c) * ldu, plane);
        }
    }
    return PAST_SAFE(most);
}

/* The same for the input gradient's convolution, straight from the
 * forward weight w[k][c][3][3]: its filter (output channel c, input
 * channel k) is w[k][c] turned half a turn.  Output channels c0 + i (i <
 * nc <= 16; the rest give zeros) in the lanes, input channels k < cb:
 * src = w[k0][c0], ldk floats from one k to the next; a k's 16 filters
 * (144 floats) are transposed at once. */
TARGET int f32_winograd_weight_flipped_3x3_avx512(const float *src, int64_t ldk, int nc,
                                                  int64_t cb, float *u, int64_t ldu,
                                                  int64_t plane)
{
    __m512i most = _mm512_setzero_si512();
    for (int64_t k = 0; k < cb; k++) {
        const float *sk = src + k * ldk;
        __m512 r[16], col[16], g[9];
#pragma GCC unroll 16
        for (int i = 0; i < 16; i++)
            r[i] = i < nc ? _mm512_maskz_loadu_ps(0x1FF, sk + 9 * i) : _mm512_setzero_ps();
        for (int line = 0; line < 9 * 16 * 4; line += 64)   /* the next k's filters */
            __builtin_prefetch((const void *)((uintptr_t)(sk + ldk) + line), 0, 3);
        f32_transpose_16x16_avx512(r, col);
        for (int tap = 0; tap < 9; tap++) {
            g[tap] = col[8 - tap];
            most = MAGNITUDE_MAX(most, g[tap]);
        }
        weight_doubled_3x3(g, u + k * ldu, plane);
    }
    return PAST_SAFE(most);
}

/* G applied to five values g0..g4 (a column or row of a 5x5 filter):
 * G = [1/4 0 0 0 0; 1/6 1/6 1/6 1/6 1/6; 1/6 -1/6 1/6 -1/6 1/6;
 *      1/24 1/12 1/6 1/3 2/3; 1/24 -1/12 1/6 -1/3 2/3; 0 0 0 0 1]
 * (Toom-Cook at 0, 1, -1, 2, -2 and infinity), in double. */
TARGET INLINE void weight_g5(const __m512d g[5], __m512d o[6])
{
    const __m512d even = _mm512_add_pd(_mm512_add_pd(g[0], g[2]), g[4]);
    const __m512d odd = _mm512_add_pd(g[1], g[3]);
    /* g0 + 4 g2 + 16 g4 and 2 g1 + 8 g3 */
    const __m512d even2 = _mm512_fmadd_pd(_mm512_set1_pd(16.0), g[4],
                                          _mm512_fmadd_pd(_mm512_set1_pd(4.0), g[2], g[0]));
    const __m512d odd2 = _mm512_fmadd_pd(_mm512_set1_pd(8.0), g[3],
                                         _mm512_add_pd(g[1], g[1]));
    const __m512d sixth = _mm512_set1_pd(1.0 / 6.0), twentyfourth = _mm512_set1_pd(1.0 / 24.0);
    o[0] = _mm512_mul_pd(_mm512_set1_pd(0.25), g[0]);
    o[1] = _mm512_mul_pd(sixth, _mm512_add_pd(even, odd));
    o[2] = _mm512_mul_pd(sixth, _mm512_sub_pd(even, odd));
    o[3] = _mm512_mul_pd(twentyfourth, _mm512_add_pd(even2, odd2));
    o[4] = _mm512_mul_pd(twentyfourth, _mm512_sub_pd(even2, odd2));
    o[5] = g[4];
}

/* G g G^T of 5x5 filters, 8 output channels in the lanes: computed in
 * double from the folded float weights and rounded once (G's sixths and
 * twenty-fourths would otherwise round at each step). */
TARGET int f32_winograd_weight_2x2_5x5_avx512(const float *w, int64_t C,
                                              int nk, const double *wscale,
                                              float *u, int64_t plane)
{
    filter_gather f = filters_of(C, 25, nk, wscale);
    for (int64_t c = 0; c < C; c++) {
        __m512d g[5][5], r[6][5];
        for (int tap = 0; tap < 25; tap++)
            g[tap / 5][tap % 5] = _mm512_cvtps_pd(folded_tap(w + c * 25 + tap, &f));
        for (int j = 0; j < 5; j++) {   /* G g: columns of the filter */
            const __m512d col[5] = {g[0][j], g[1][j], g[2][j], g[3][j], g[4][j]};
            __m512d o[6];
            weight_g5(col, o);
            for (int i = 0; i < 6; i++)
                r[i][j] = o[i];
        }
        for (int i = 0; i < 6; i++) {   /* (G g) G^T: rows */
            __m512d o[6];
            weight_g5(r[i], o);
            for (int j = 0; j < 6; j++)
                _mm256_storeu_ps(u + (6 * i + j) * plane + c * FC_WINO_KB, _mm512_cvtpd_ps(o[j]));
        }
    }
    return f.bad != 0;
}

/* ------------------------------------------------------------------ */
/* inputs */

/* B^T d B with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] of 16 patches
 * (d[row][column], a tile per lane), stored at o + xi * plane. */
TARGET INLINE void input_tile4(__m512 d[6][6], float *o, int64_t plane)
{
    __m512 t[4][4];
    for (int j = 0; j < 4; j++) {   /* B^T d */
        t[0][j] = _mm512_sub_ps(d[0][j], d[2][j]);
        t[1][j] = _mm512_add_ps(d[1][j], d[2][j]);
        t[2][j] = _mm512_sub_ps(d[2][j], d[1][j]);
        t[3][j] = _mm512_sub_ps(d[1][j], d[3][j]);
    }
    for (int i = 0; i < 4; i++) {   /* (B^T d) B */
        float *r = o + 4 * i * plane;
        _mm512_storeu_ps(r, _mm512_sub_ps(t[i][0], t[i][2]));
        _mm512_storeu_ps(r + plane, _mm512_add_ps(t[i][1], t[i][2]));
        _mm512_storeu_ps(r + 2 * plane, _mm512_sub_ps(t[i][2], t[i][1]));
        _mm512_storeu_ps(r + 3 * plane, _mm512_sub_ps(t[i][1], t[i][3]));
    }
}

/* B^T applied to six values: B^T = [4 0 -5 0 1 0; 0 4 4 -1 -1 0;
 * 0 -4 4 1 -1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]. */
TARGET INLINE void input_b6(__m512 d0, __m512 d1, __m512 d2, __m512 d3, __m512 d4,
                            __m512 d5, __m512 o[6])
{
    const __m512 four = _mm512_set1_ps(4.0f), five = _mm512_set1_ps(5.0f);
    const __m512 two = _mm512_set1_ps(2.0f);
    const __m512 s12 = _mm512_add_ps(d1, d2), s34 = _mm512_add_ps(d3, d4);
    const __m512 d21 = _mm512_sub_ps(d2, d1), d34 = _mm512_sub_ps(d3, d4);
    const __m512 d31 = _mm512_sub_ps(d3, d1), d42 = _mm512_sub_ps(d4, d2);
    o[0] = _mm512_fmadd_ps(four, d0, _mm512_fnmadd_ps(five, d2, d4));
    o[1] = _mm512_fmsub_ps(four, s12, s34);
    o[2] = _mm512_fmadd_ps(four, d21, d34);
    o[3] = _mm512_fmadd_ps(two, d31, d42);
    o[4] = _mm512_fnmadd_ps(two, d31, d42);
    o[5] = _mm512_fmadd_ps(four, d1, _mm512_fnmadd_ps(five, d3, d5));
}

/* B^T d B of 16 6x6 patches, stored at o + xi * plane. */
TARGET INLINE void input_tile6(__m512 d[6][6], float *o, int64_t plane)
{
    __m512 t[6][6];
    for (int j = 0; j < 6; j++) {   /* B^T d */
        __m512 c[6];
        input_b6(d[0][j], d[1][j], d[2][j], d[3][j], d[4][j], d[5][j], c);
        for (int i = 0; i < 6; i++)
            t[i][j] = c[i];
    }
    for (int i = 0; i < 6; i++) {   /* (B^T d) B */
        __m512 r[6];
        input_b6(t[i][0], t[i][1], t[i][2], t[i][3], t[i][4], t[i][5], r);
        for (int j = 0; j < 6; j++)
            _mm512_storeu_ps(o + (6 * i + j) * plane, r[j]);
    }
}

TARGET INLINE void input_tile(const int T, __m512 d[6][6], float *o, int64_t plane)
{
    if (T == 4)
        input_tile4(d, o, plane);
    else
        input_tile6(d, o, plane);
}

/* One patch row of 16 tiles from p (x columns from p, lane masks m): the
 * tiles' T columns 2 l + j are read as pairs of loads from columns 2 h
 * and 16 + 2 h (h < T / 2), split into even and odd columns, so that a
 * tile's columns come out in e[0 .. T - 1].  With step 2 (dilation 2,
 * 3x3 only: every other column of x) the four come from five loads' even
 * lanes, shifted by two lanes.  Values out of the safe range set bits of
 * *bad; prefetch: the same row FC_WINO_AHEAD channels on is in x. */
TARGET INLINE void patch_row(const int T, const fc_wino_plane *pl, const float *p,
                             const __mmask16 *m, int prefetch, __m512 e[6], __mmask16 *bad)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18,
                                           20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    /* the rows of a later channel, a plane apart: too many streams for the
     * hardware prefetcher (33% of the time went to these loads' misses on
     * vgg_64x224) */
    if (prefetch) {
        const char *q = (const char *)(p + FC_WINO_AHEAD * pl->cstride);
        const int span = pl->step * (30 + T);
        for (int l = 0; l < span; l += 16)
            _mm_prefetch(q + l * sizeof(float), _MM_HINT_T0);
        _mm_prefetch(q + (span - 1) * sizeof(float), _MM_HINT_T0);
    }
    if (pl->step == 1) {   /* masked-off lanes (the padding) read nothing */
        for (int h = 0; h < T / 2; h++) {
            const __m512 a = _mm512_maskz_loadu_ps(m[2 * h], p + 2 * h);
            const __m512 b = _mm512_maskz_loadu_ps(m[2 * h + 1], p + 16 + 2 * h);
            /* together the first pair and the last b cover every column */
            if (h == 0)
                *bad |= UNSAFE512(a) | UNSAFE512(b);
            else if (h == T / 2 - 1)
                *bad |= UNSAFE512(b);
            e[2 * h] = _mm512_permutex2var_ps(a, even, b);
            e[2 * h + 1] = _mm512_permutex2var_ps(a, odd, b);
        }
        return;
    }
    __m512 l[5];
    for (int h = 0; h < 5; h++)
        l[h] = _mm512_maskz_loadu_ps(m[h], p + 16 * h);
    const __m512 tail = _mm512_permutexvar_ps(even, l[4]);
    const __m512 a = _mm512_permutex2var_ps(l[0], even, l[1]);
    const __m512 b = _mm512_permutex2var_ps(l[2], even, l[3]);
    /* the columns of this phase (and a few past them) */
    *bad |= UNSAFE512(a) | UNSAFE512(b) | UNSAFE512(tail);
    const __m512 a2 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(b),
                                                               _mm512_castps_si512(a), 2));
    const __m512 b2 = _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(tail),
                                                              _mm512_castps_si512(b), 2));
    e[0] = _mm512_permutex2var_ps(a, even, b);
    e[1] = _mm512_permutex2var_ps(a, odd, b);
    e[2] = _mm512_permutex2var_ps(a2, even, b2);
    e[3] = _mm512_permutex2var_ps(a2, odd, b2);
}

/* The channels' patches of one or two runs (nseg a constant where this is
 * inlined, so that one run pays nothing for the second). */
TARGET INLINE __mmask16 input_runs(const int T, const fc_wino_plane *pl, const float *x,
                                   const fc_wino_segment *seg, const int nseg,
                                   __mmask16 m[FC_WINO_MAXSEG][6], float *v, int64_t ldv,
                                   int64_t plane)
{
    __mmask16 bad = 0;
    for (int64_t c = 0; c < pl->C; c++) {
        const float *xc = x + c * pl->cstride;
        const int ahead = c + FC_WINO_AHEAD < pl->C;
        __m512 d[6][6];
        for (int i = 0; i < T; i++) {
            const int64_t row = seg[0].row0 + i;
            if (row < 0 || row >= pl->nrows)   /* padding rows: zero */
                for (int j = 0; j < T; j++)
                    d[i][j] = _mm512_setzero_ps();
            else
                patch_row(T, pl, xc + row * pl->rstride + seg[0].xcol0, m[0], ahead, d[i], &bad);
            if (nseg > 1) {
                const __mmask16 lanes = (__mmask16)seg[1].lanes;
                const int64_t row1 = seg[1].row0 + i;
                __m512 e[6];
                for (int j = 0; j < T; j++)
                    e[j] = _mm512_setzero_ps();
                if (row1 >= 0 && row1 < pl->nrows)
                    patch_row(T, pl, xc + row1 * pl->rstride + seg[1].xcol0, m[1], ahead, e, &bad);
                for (int j = 0; j < T; j++)
                    d[i][j] = _mm512_mask_mov_ps(d[i][j], lanes, e[j]);
            }
        }
        input_tile(T, d, v + c * ldv, plane);
    }
    return bad;
}

/* V of 16 tiles of rows of tiles, in one or two runs: the first run's
 * patch rows fill every lane (those of no run are never stored), the
 * second's replace its own lanes. */
TARGET INLINE int input_rows(const int T, const fc_wino_plane *pl, const float *x,
                             const fc_wino_segment *seg, int nseg, float *v, int64_t ldv,
                             int64_t plane)
{
    const int nloads = pl->step == 1 ? T : 5;
    __mmask16 m[FC_WINO_MAXSEG][6];
    /* step 1: loads at columns 0, 16, 2, 18, 4, 20; step 2: at 0, 16, 32, 48, 64 */
    for (int k = 0; k < nseg; k++)
        for (int l = 0; l < nloads; l++)
            m[k][l] = (__mmask16)lanes_inside(
                seg[k].xcol0 + (pl->step == 1 ? (l & 1) * 16 + (l >> 1) * 2 : 16 * l), pl->W);
    return (nseg == 1 ? input_runs(T, pl, x, seg, 1, m, v, ldv, plane)
                      : input_runs(T, pl, x, seg, 2, m, v, ldv, plane)) != 0;
}

TARGET int f32_winograd_input_2x2_3x3_avx512(const fc_wino_plane *pl, const float *x,
                                             const fc_wino_segment *seg, int nseg,
                                             float *v, int64_t ldv, int64_t plane)
{
    return input_rows(4, pl, x, seg, nseg, v, ldv, plane);
}

/* (column step 1 only: 5x5 filters are not dilated) */
TARGET int f32_winograd_input_2x2_5x5_avx512(const fc_wino_plane *pl, const float *x,
                                             const fc_wino_segment *seg, int nseg,
                                             float *v, int64_t ldv, int64_t plane)
{
    return input_rows(6, pl, x, seg, nseg, v, ldv, plane);
}

/* Row `row` of channel plane xc from column col0 + 2 h (lanes in cols):
 * zero outside the plane's rows. */
TARGET INLINE __m512 block_row(const float *xc, int64_t H, int64_t W, int64_t row,
                               int64_t col0, int h, uint32_t cols)
{
    return row < 0 || row >= H ? _mm512_setzero_ps()
        : _mm512_maskz_loadu_ps((__mmask16)cols, xc + row * W + col0 + 2 * h);
}

/* input_block's patches and transforms, channel by channel, from the
 * pairs' permutes and lane masks. */
TARGET INLINE int block_channels(const int T, const int npairs, const fc_wino_block *bk,
                                 const float *x, int64_t C, int64_t H, int64_t W,
                                 const uint32_t cols[3], __m512i idx[4][2],
                                 const __mmask16 pair[4], const int next[4], float *v,
                                 int64_t ldv, int64_t plane)
{
    __mmask16 bad = 0;
    for (int64_t c = 0; c < C; c++) {
        __m512 d[6][6];
        for (int i = 0; i < T; i++)
            for (int p = 0; p < npairs; p++) {
                /* tile rows 2p and 2p + 1 (its `b` rows; the `a` rows
                 * again without one); every row is checked at least once:
                 * as an `a` row, or as a `b` row, all of them unless they
                 * follow the `a` rows in the same image (next[p]: then
                 * those past the `a` rows) */
                const int has_b = 2 * p + 1 < bk->rt;
                const float *xa = x + bk->img[2 * p] + c * H * W;
                const float *xb = has_b ? x + bk->img[2 * p + 1] + c * H * W : xa;
                const int64_t ra = bk->row0[2 * p] + i;
                const int64_t rb = has_b ? bk->row0[2 * p + 1] + i : ra;
                for (int h = 0; h < T / 2; h++) {
                    const __m512 a = block_row(xa, H, W, ra, bk->col0, h, cols[h]);
                    const __m512 b = has_b ? block_row(xb, H, W, rb, bk->col0, h, cols[h]) : a;
                    bad |= UNSAFE512(a);
                    if (has_b && (!next[p] || i >= T - 2))
                        bad |= UNSAFE512(b);
                    for (int j = 2 * h; j < 2 * h + 2; j++) {
                        const __m512 e = _mm512_permutex2var_ps(a, idx[p][j % 2], b);
                        d[i][j] = p == 0 ? _mm512_maskz_mov_ps(pair[0], e)
                                         : _mm512_mask_mov_ps(d[i][j], pair[p], e);
                    }
                }
            }
        input_tile(T, d, v + c * ldv, plane);
    }
    return bad != 0;
}

/* V of a block of tile rows (fc_wino_block).  Each tile row's T input
 * rows are read as T / 2 masked loads each, of columns 2 h .. 2 h + 15
 * (2 tw + T - 2 <= 20); a patch element's vector is put together from the
 * rows of two tile rows at a time by a two-source permute, and the pairs
 * merged by lane masks.  Rows are loaded where they are used (a staging
 * array of them, and a zeroed patch, cost more than the loads: both went
 * to memory). */
TARGET INLINE int input_block(const int T, const fc_wino_block *bk, const float *x, int64_t C,
                              int64_t H, int64_t W, float *v, int64_t ldv, int64_t plane)
{
    const int rt = bk->rt, tw = bk->tw, npairs = (rt + 1) / 2;
    __m512i idx[4][2];
    __mmask16 pair[4];
    int next[4];
    uint32_t cols[3];
    for (int h = 0; h < T / 2; h++)
        cols[h] = lanes_inside(bk->col0 + 2 * h, W);
    for (int p = 0; p < npairs; p++) {
        int32_t e[2][16] = {{0}};
        uint32_t lanes = 0;
        for (int r = 2 * p; r < 2 * p + 2 && r < rt; r++)
            for (int tc = 0; tc < tw; tc++) {
                lanes |= 1u << (r * tw + tc);
                for (int j = 0; j < 2; j++)   /* the second row: source b */
                    e[j][r * tw + tc] = (r - 2 * p) * 16 + 2 * tc + j;
            }
        for (int j = 0; j < 2; j++)
            idx[p][j] = _mm512_loadu_si512(e[j]);
        pair[p] = (__mmask16)lanes;
        next[p] = 2 * p + 1 < rt && bk->img[2 * p + 1] == bk->img[2 * p] &&
                  bk->row0[2 * p + 1] == bk->row0[2 * p] + 2;
    }
    /* one pair (tile rows of 6 tiles or more: LeNet's 14 x 14 images) and
     * two (4-5 tiles: CIFAR's 8 x 8) compiled apart: with the count known,
     * the patch stays in registers */
    if (npairs == 1)
        return block_channels(T, 1, bk, x, C, H, W, cols, idx, pair, next, v, ldv, plane);
    if (npairs == 2)
        return block_channels(T, 2, bk, x, C, H, W, cols, idx, pair, next, v, ldv, plane);
    return block_channels(T, npairs, bk, x, C, H, W, cols, idx, pair, next, v, ldv, plane);
}

TARGET int f32_winograd_input_block_3x3_avx512(const fc_wino_block *bk, const float *x,
                                               int64_t C, int64_t H, int64_t W, float *v,
                                               int64_t ldv, int64_t plane)
{
    return input_block(4, bk, x, C, H, W, v, ldv, plane);
}

TARGET int f32_winograd_input_block_5x5_avx512(const fc_wino_block *bk, const float *x,
                                               int64_t C, int64_t H, int64_t W, float *v,
                                               int64_t ldv, int64_t plane)
{
    return input_block(6, bk, x, C, H, W, v, ldv, plane);
}

/* ------------------------------------------------------------------ */
/* stride 2 (conv_winograd.h), R = 3 or 7: constants of each inlined body */

/* products per axis */
#define S2_N(R) ((R) == 7 ? 11 : 5)

/* Stores the products o[b] (a fixed) of channel c at v + off[xi] + row
 * ld (conv_winograd.h): with R, a and b constants the places fold. */
TARGET INLINE void store_s2(const int R, const int a, const __m512 *o, float *v,
                            const int64_t off[9], int64_t ld, int64_t c)
{
    const int *point = R == 7 ? FC_WINO_S2_POINT7 : FC_WINO_S2_POINT3;
    const int *product = R == 7 ? FC_WINO_S2_PRODUCT7 : FC_WINO_S2_PRODUCT3;
    for (int b = 0; b < S2_N(R); b++) {
        const int xi = 3 * point[a] + point[b];
        const int64_t row = c * fc_wino_s2_len(R, xi) +
                            product[a] * fc_wino_s2_axis(R, point[b]) + product[b];
        _mm512_storeu_ps(v + off[xi] + row * ld, o[b]);
    }
}

/* A row or column of R taps g -> its products' factors, in product order:
 * 3 taps: g0, g1 | g0 + g2 | g2, g1;
 * 7 taps: g0, g4, g1, g5 | g0 + g2, g4 + g6, g1 + g3 | g2, g6, g3, g5. */
TARGET INLINE void weight_s2_1d(const int R, const __m512 *g, __m512 *o)
{
    if (R == 3) {
        o[0] = g[0]; o[1] = g[1];
        o[2] = _mm512_add_ps(g[0], g[2]);
        o[3] = g[2]; o[4] = g[1];
    } else {
        o[0] = g[0]; o[1] = g[4]; o[2] = g[1]; o[3] = g[5];
        o[4] = _mm512_add_ps(g[0], g[2]);
        o[5] = _mm512_add_ps(g[4], g[6]);
        o[6] = _mm512_add_ps(g[1], g[3]);
        o[7] = g[2]; o[8] = g[6]; o[9] = g[3]; o[10] = g[5];
    }
}

/* A row or column of R + 2 patch values d -> the inputs of its products:
 * 3x3: d0 - d2, d1 | d2 | d4 - d2, d3;
 * 7x7: d0 - d2, d4 - d6, d1 - d3, d5 | d2, d6, d3 | d4 - d2, d8 - d6,
 *      d5 - d3, d7. */
TARGET INLINE void input_s2_1d(const int R, const __m512 *d, __m512 *o)
{
    if (R == 3) {
        o[0] = _mm512_sub_ps(d[0], d[2]); o[1] = d[1];
        o[2] = d[2];
        o[3] = _mm512_sub_ps(d[4], d[2]); o[4] = d[3];
    } else {
        o[0] = _mm512_sub_ps(d[0], d[2]); o[1] = _mm512_sub_ps(d[4], d[6]);
        o[2] = _mm512_sub_ps(d[1], d[3]); o[3] = d[5];
        o[4] = d[2]; o[5] = d[6]; o[6] = d[3];
        o[7] = _mm512_sub_ps(d[4], d[2]); o[8] = _mm512_sub_ps(d[8], d[6]);
        o[9] = _mm512_sub_ps(d[5], d[3]); o[10] = d[7];
    }
}

TARGET INLINE int weight_s2(const int R, const float *w, int64_t ldw, int nk, int64_t cb,
                            float *u, const int64_t off[9], int64_t ld)
{
    enum { CPB = 2 };   /* channels per transposition for 7x7 (16 for 3x3) */
    const int n = S2_N(R), taps = R * R, per = R == 3 ? 16 : CPB;
    float tmp[16 * 9 * 16] __attribute__((aligned(64)));   /* [c][tap][k] */
    __m512i most = _mm512_setzero_si512();
    for (int64_t c0 = 0; c0 < cb; c0 += per) {
        const int nc = cb - c0 < per ? (int)(cb - c0) : per;
        filters_to_lanes(w + c0 * taps, ldw, nk, taps * nc, tmp);
        for (int c = 0; c < nc; c++) {
            __m512 g[49], r[11][7], col[7], f[11], e[11];
            for (int tap = 0; tap < taps; tap++) {
                g[tap] = _mm512_load_ps(tmp + (c * taps + tap) * 16);
                most = MAGNITUDE_MAX(most, g[tap]);
            }
            for (int j = 0; j < R; j++) {   /* down each column of taps */
                for (int i = 0; i < R; i++)
                    col[i] = g[i * R + j];
                weight_s2_1d(R, col, f);
                for (int a = 0; a < n; a++)
                    r[a][j] = f[a];
            }
#pragma GCC unroll 11
            for (int a = 0; a < n; a++) {   /* then along each row */
                weight_s2_1d(R, r[a], e);
                store_s2(R, a, e, u, off, ld, c0 + c);
            }
        }
    }
    return PAST_SAFE(most);
}

TARGET int f32_winograd_weight_s2_avx512(int64_t R, const float *w, int64_t ldw, int nk,
                                         int64_t cb, float *u, const int64_t off[9], int64_t ld)
{
    return R == 7 ? weight_s2(7, w, ldw, nk, cb, u, off, ld)
                  : weight_s2(3, w, ldw, nk, cb, u, off, ld);
}

/* Columns col0 + 4 l + j (j < R + 2) of one input row for 16 tiles l, as
 * vectors d[j]: 64 + R - 2 columns in whole loads (mask[i]: the columns of
 * load i inside the image), dealt out by fours with permutes; columns 4 l
 * + 4 .. are the next tiles' 4 l ...  most: the loads' largest magnitude
 * so far. */
TARGET INLINE void row_s2(const int R, const float *row, const __mmask16 mask[5], __m512 *d,
                          __m512i *most)
{
    const __m512i by4 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    const __m512i next = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    const __m512i next2 = _mm512_setr_epi32(2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 20);
    __m512 q[5];
#pragma GCC unroll 5
    for (int i = 0; i < 5; i++) {
        q[i] = _mm512_maskz_loadu_ps(mask[i], row + 16 * i);
        *most = MAGNITUDE_MAX(*most, q[i]);
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++) {
        const __m512i idx = _mm512_add_epi32(by4, _mm512_set1_epi32(j));
        const __m512 lo = _mm512_permutex2var_ps(q[0], idx, q[1]);   /* tiles 0-7 */
        const __m512 up = _mm512_permutex2var_ps(q[2], idx, q[3]);   /* tiles 8-15 */
        d[j] = _mm512_shuffle_f32x4(lo, up, 0x44);
    }
    for (int j = 0; j < R - 2 && j < 4; j++)   /* tile 15's from column 64 + j */
        d[4 + j] = _mm512_permutex2var_ps(
            d[j], _mm512_mask_blend_epi32(0x8000, next, _mm512_set1_epi32(16 + j)), q[4]);
    if (R == 7)
        d[8] = _mm512_permutex2var_ps(d[0], next2, q[4]);
}

TARGET INLINE int input_s2(const int R, const float *x, int64_t c0, int64_t nc, int64_t H,
                           int64_t W, int64_t row0, int64_t col0, int len, float *v,
                           const int64_t off[9], int64_t ld)
{
    const int n = S2_N(R), pt = R + 2;
    /* columns that tiles past len would read: zeros */
    const int64_t last = col0 + 4 * (int64_t)(len - 1) + pt;
    const int64_t hi = W < last ? W : last;
    __m512i most = _mm512_setzero_si512();
    __mmask16 mask[5];
    for (int i = 0; i < 5; i++)
        mask[i] = (__mmask16)(lanes_inside(col0 + 16 * i, hi) &
                              (i < 4 ? 0xFFFFu : (1u << (pt - 4)) - 1));
    for (int64_t c = c0; c < c0 + nc; c++) {
        const float *xc = x + c * H * W + col0;
        __m512 t[9][11];   /* t[patch row][column product] */
#pragma GCC unroll 9
        for (int r = 0; r < pt; r++) {
            __m512 d[9];
            if (row0 + r >= 0 && row0 + r < H)
                row_s2(R, xc + (row0 + r) * W, mask, d, &most);
            else
                for (int j = 0; j < pt; j++)
                    d[j] = _mm512_setzero_ps();
            input_s2_1d(R, d, t[r]);
        }
        __m512 e[11][11];   /* e[a][b]: products along the rows' axis, then columns' */
#pragma GCC unroll 11
        for (int b = 0; b < n; b++) {   /* down each column */
            __m512 col[9], o[11];
            for (int r = 0; r < pt; r++)
                col[r] = t[r][b];
            input_s2_1d(R, col, o);
            for (int a = 0; a < n; a++)
                e[a][b] = o[a];
        }
#pragma GCC unroll 11
        for (int a = 0; a < n; a++)
            store_s2(R, a, e[a], v, off, ld, c);
    }
    return PAST_SAFE(most);
}

TARGET int f32_winograd_input_s2_avx512(int64_t R, const float *x, int64_t c0, int64_t nc,
                                        int64_t H, int64_t W, int64_t row0, int64_t col0,
                                        int len, float *v, const int64_t off[9], int64_t ld)
{
    return R == 7 ? input_s2(7, x, c0, nc, H, W, row0, col0, len, v, off, ld)
                  : input_s2(3, x, c0, nc, H, W, row0, col0, len, v, off, ld);
}

/* ------------------------------------------------------------------ */
/* outputs */

/* + bias, and ReLU when relu (max(0, v) with v second: keeps a NaN). */
TARGET INLINE __m512 bias_relu(__m512 v, __m512 b, int relu)
{
    v = _mm512_add_ps(v, b);
    return relu ? _mm512_max_ps(_mm512_setzero_ps(), v) : v;
}

/* A^T M A with A^T = [1 1 1 0; 0 1 -1 -1] of 16 tiles (m[xi * plane]),
 * + bias, ReLU when relu: y[row][column] of the 2 x 2 tiles. */
TARGET INLINE void output_tile4(const float *m, int64_t plane, float bias, int relu,
                                __m512 y[2][2])
{
    const __m512 b = _mm512_set1_ps(bias);
    __m512 t[2][4];
    for (int j = 0; j < 4; j++) {   /* A^T M */
        const __m512 m0 = _mm512_loadu_ps(m + j * plane);
        const __m512 m1 = _mm512_loadu_ps(m + (4 + j) * plane);
        const __m512 m2 = _mm512_loadu_ps(m + (8 + j) * plane);
        const __m512 m3 = _mm512_loadu_ps(m + (12 + j) * plane);
        t[0][j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
        t[1][j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
    }
    for (int i = 0; i < 2; i++) {   /* (A^T M) A */
        y[i][0] = bias_relu(_mm512_add_ps(_mm512_add_ps(t[i][0], t[i][1]), t[i][2]), b, relu);
        y[i][1] = bias_relu(_mm512_sub_ps(_mm512_sub_ps(t[i][1], t[i][2]), t[i][3]), b, relu);
    }
}

/* A^T applied to six values: A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1]. */
TARGET INLINE void output_a6(const __m512 m[6], __m512 *o0, __m512 *o1)
{
    const __m512 s12 = _mm512_add_ps(m[1], m[2]), s34 = _mm512_add_ps(m[3], m[4]);
    const __m512 d12 = _mm512_sub_ps(m[1], m[2]), d34 = _mm512_sub_ps(m[3], m[4]);
    *o0 = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
    *o1 = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(2.0f), d34, d12), m[5]);
}

/* A^T M A of 16 6x6 tiles, + bias, ReLU when relu. */
TARGET INLINE void output_tile6(const float *m, int64_t plane, float bias, int relu,
                                __m512 y[2][2])
{
    const __m512 b = _mm512_set1_ps(bias);
    __m512 t[2][6];
    for (int j = 0; j < 6; j++) {   /* A^T M */
        __m512 col[6];
        for (int i = 0; i < 6; i++)
            col[i] = _mm512_loadu_ps(m + (6 * i + j) * plane);
        output_a6(col, &t[0][j], &t[1][j]);
    }
    for (int i = 0; i < 2; i++) {   /* (A^T M) A */
        __m512 o0, o1;
        output_a6(t[i], &o0, &o1);
        y[i][0] = bias_relu(o0, b, relu);
        y[i][1] = bias_relu(o1, b, relu);
    }
}

TARGET INLINE void output_tile(const int T, const float *m, int64_t plane, float bias,
                               int relu, __m512 y[2][2])
{
    if (T == 4)
        output_tile4(m, plane, bias, relu, y);
    else
        output_tile6(m, plane, bias, relu, y);
}

/* Outputs of 16 tiles along a row of tiles: each tile's two columns
 * interleaved back into the output row (with step 2, into every other
 * column: the two halves' values spread to even lanes), the columns in
 * `cols` stored. */
TARGET INLINE void output_rows(const int T, const float *m, int64_t plane, float bias,
                               int relu, float *y, int64_t ldy, int nrows, uint32_t cols,
                               int step)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20,
                                         5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    /* step 2: eight columns at a time into the even lanes of 16 */
    const __m512i spread = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    __mmask16 even[4] = {0, 0, 0, 0};
    __m512 t[2][2];
    if (step == 2)
        for (int k = 0; k < 4; k++)
            for (int j = 0; j < 8; j++)
                even[k] |= (__mmask16)((cols >> (8 * k + j) & 1u) << (2 * j));
    output_tile(T, m, plane, bias, relu, t);
    for (int i = 0; i < nrows; i++) {
        const __m512 row[2] = {_mm512_permutex2var_ps(t[i][0], lo, t[i][1]),
                               _mm512_permutex2var_ps(t[i][0], hi, t[i][1])};
        float *yr = y + i * ldy;
        if (step == 1) {
            _mm512_mask_storeu_ps(yr, (__mmask16)cols, row[0]);
            _mm512_mask_storeu_ps(yr + 16, (__mmask16)(cols >> 16), row[1]);
            continue;
        }
        for (int k = 0; k < 4; k++)
            _mm512_mask_storeu_ps(yr + 16 * k, even[k], _mm512_permutexvar_ps(
                _mm512_add_epi32(spread, _mm512_set1_epi32(8 * (k & 1))), row[k >> 1]));
    }
}

/* A^T M A of the doubled weights' M (weight_doubled_3x3): A^T D^-1 =
 * [1 1/2 1/2 0; 0 1/2 -1/2 -1] on both sides. */
TARGET INLINE void output_halved(__m512 m0, __m512 m1, __m512 m2, __m512 m3, __m512 *o0,
                                 __m512 *o1)
{
    const __m512 half = _mm512_set1_ps(0.5f);
    *o0 = _mm512_fmadd_ps(half, _mm512_add_ps(m1, m2), m0);
    *o1 = _mm512_fmsub_ps(half, _mm512_sub_ps(m1, m2), m3);
}

/* Vector v (channels 16 v ..) of a tile's 2 x 2 outputs y, times scale
 * then + bias (64 values each, or NULL), ReLU when relu, stored
 * channels-last at o[(i ldr + j) 64 + 16 v] for rows i < nrows, columns
 * j < ncols. */
TARGET INLINE void store_tile_cl(__m512 y[2][2], int v, const float *scale, const float *bias,
                                 int relu, float *o, int64_t ldr, int nrows, int ncols)
{
    const __m512 f = scale ? _mm512_loadu_ps(scale + 16 * v) : _mm512_set1_ps(1.0f);
    const __m512 b = bias ? _mm512_loadu_ps(bias + 16 * v) : _mm512_setzero_ps();
    for (int i = 0; i < nrows; i++)
        for (int j = 0; j < ncols; j++)
            _mm512_storeu_ps(o + (i * ldr + j) * 64 + 16 * v,
                             bias_relu(_mm512_mul_ps(y[i][j], f), b, relu));
}

/* One tile's 2 x 2 outputs of 64 output channels (four vectors) from the
 * doubled weights' M: m[xi plane + k] -> A^T M A, times scale[k] then +
 * bias[k] (each 64 values, or NULL), ReLU when relu, stored channels-last
 * at o[(i ldr + j) 64 + k] for rows i < nrows, columns j < ncols. */
TARGET void f32_winograd_output_cl_3x3_avx512(const float *m, int64_t plane,
                                              const float *scale, const float *bias,
                                              int relu, float *o, int64_t ldr, int nrows,
                                              int ncols)
{
    for (int v = 0; v < 4; v++) {
        const float *mv = m + 16 * v;
        __m512 t[2][4], y[2][2];
        for (int j = 0; j < 4; j++)   /* A^T M */
            output_halved(_mm512_loadu_ps(mv + j * plane), _mm512_loadu_ps(mv + (4 + j) * plane),
                          _mm512_loadu_ps(mv + (8 + j) * plane),
                          _mm512_loadu_ps(mv + (12 + j) * plane), &t[0][j], &t[1][j]);
        for (int i = 0; i < 2; i++)   /* (A^T M) A */
            output_halved(t[i][0], t[i][1], t[i][2], t[i][3], &y[i][0], &y[i][1]);
        store_tile_cl(y, v, scale, bias, relu, o, ldr, nrows, ncols);
    }
}

/* Stride 2: point (i, j) sums into outputs (0 or 1, 0 or 1) where i and
 * j are each 0 or 1 for output 0, 1 or 2 for output 1. */
TARGET void f32_winograd_output_s2_avx512(const float *m, int64_t plane,
                                          const float *scale, const float *bias, int relu,
                                          float *o, int64_t ldr, int nrows, int ncols)
{
    for (int v = 0; v < 4; v++) {
        const float *mv = m + 16 * v;
        __m512 t[2][3], y[2][2];
        for (int j = 0; j < 3; j++) {
            const __m512 mid = _mm512_loadu_ps(mv + (3 + j) * plane);
            t[0][j] = _mm512_add_ps(_mm512_loadu_ps(mv + j * plane), mid);
            t[1][j] = _mm512_add_ps(mid, _mm512_loadu_ps(mv + (6 + j) * plane));
        }
        for (int i = 0; i < 2; i++) {
            y[i][0] = _mm512_add_ps(t[i][0], t[i][1]);
            y[i][1] = _mm512_add_ps(t[i][1], t[i][2]);
        }
        store_tile_cl(y, v, scale, bias, relu, o, ldr, nrows, ncols);
    }
}

TARGET void f32_winograd_output_2x2_3x3_avx512(const float *m, int64_t plane,
                                               float bias, int relu, float *y,
                                               int64_t ldy, int nrows, uint32_t cols,
                                               int step)
{
    output_rows(4, m, plane, bias, relu, y, ldy, nrows, cols, step);
}

TARGET void f32_winograd_output_2x2_5x5_avx512(const float *m, int64_t plane,
                                               float bias, int relu, float *y,
                                               int64_t ldy, int nrows, uint32_t cols,
                                               int step)
{
    output_rows(6, m, plane, bias, relu, y, ldy, nrows, cols, step);
}

/* Outputs of a block of tile rows: each output row's 2 tw values
 * interleaved from its tile row's lanes (r tw ..) of the two column
 * vectors; tile row r's yrows[r] rows stored at y + yoff[r], ldy apart,
 * the columns in cols. */
TARGET INLINE void output_block(const int T, const float *m, int64_t plane, float bias,
                                int relu, float *y, int64_t ldy, const fc_wino_block *bk,
                                uint32_t cols)
{
    /* tile row 0: column 2 tc from lane tc, 2 tc + 1 from lane 16 + tc */
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20,
                                            5, 21, 6, 22, 7, 23);
    __m512 t[2][2];
    output_tile(T, m, plane, bias, relu, t);
    for (int r = 0; r < bk->rt; r++) {
        const __m512i idx = _mm512_add_epi32(first, _mm512_set1_epi32(r * bk->tw));
        for (int i = 0; i < bk->yrows[r]; i++)
            _mm512_mask_storeu_ps(y + bk->yoff[r] + i * ldy, (__mmask16)cols,
                                  _mm512_permutex2var_ps(t[i][0], idx, t[i][1]));
    }
}

TARGET void f32_winograd_output_block_3x3_avx512(const float *m, int64_t plane, float bias,
                                                 int relu, float *y, int64_t ldy,
                                                 const fc_wino_block *bk, uint32_t cols)
{
    output_block(4, m, plane, bias, relu, y, ldy, bk, cols);
}

TARGET void f32_winograd_output_block_5x5_avx512(const float *m, int64_t plane, float bias,
                                                 int relu, float *y, int64_t ldy,
                                                 const fc_wino_block *bk, uint32_t cols)
{
    output_block(6, m, plane, bias, relu, y, ldy, bk, cols);
}

#else
/* Not x86: the dispatcher never selects these. */
#define UNUSED_WEIGHT (void)w; (void)C; (void)nk; (void)wscale; (void)u; (void)plane; return 1;
#define UNUSED_INPUT (void)pl; (void)x; (void)seg; (void)nseg; (void)v; (void)ldv; \
    (void)plane; return 1;
#define UNUSED_OUTPUT (void)m; (void)plane; (void)bias; (void)relu; (void)y; (void)ldy; \
    (void)nrows; (void)cols; (void)step;
#define UNUSED_INPUT_BLOCK (void)bk; (void)x; (void)C; (void)H; (void)W; (void)v; (void)ldv; \
    (void)plane; return 1;
#define UNUSED_OUTPUT_BLOCK (void)m; (void)plane; (void)bias; (void)relu; (void)y; (void)ldy; \
    (void)bk; (void)cols;
int f32_winograd_weight_2x2_3x3_avx512(const float *w, int64_t C, int nk,
                                       const double *wscale, float *u, int64_t plane)
{ UNUSED_WEIGHT }
int f32_winograd_weight_2x2_5x5_avx512(const float *w, int64_t C, int nk,
                                       const double *wscale, float *u, int64_t plane)
{ UNUSED_WEIGHT }
int f32_winograd_weight_rows_3x3_avx512(const float *w, int64_t ldw, int nk, int64_t cb,
                                        float *u, int64_t ldu, int64_t plane)
{ (void)w; (void)ldw; (void)nk; (void)cb; (void)u; (void)ldu; (void)plane; return 1; }
int f32_winograd_weight_flipped_3x3_avx512(const float *src, int64_t ldk, int nc, int64_t cb,
                                           float *u, int64_t ldu, int64_t plane)
{ (void)src; (void)ldk; (void)nc; (void)cb; (void)u; (void)ldu; (void)plane; return 1; }
int f32_winograd_weight_s2_avx512(int64_t R, const float *w, int64_t ldw, int nk, int64_t cb,
                                  float *u, const int64_t off[9], int64_t ld)
{ (void)R; (void)w; (void)ldw; (void)nk; (void)cb; (void)u; (void)off; (void)ld; return 1; }
int f32_winograd_input_s2_avx512(int64_t R, const float *x, int64_t c0, int64_t nc, int64_t H,
                                 int64_t W, int64_t row0, int64_t col0, int len, float *v,
                                 const int64_t off[9], int64_t ld)
{ (void)R; (void)x; (void)c0; (void)nc; (void)H; (void)W; (void)row0; (void)col0; (void)len;
  (void)v; (void)off; (void)ld; return 1; }
void f32_winograd_output_s2_avx512(const float *m, int64_t plane, const float *scale,
                                       const float *bias, int relu, float *o, int64_t ldr,
                                       int nrows, int ncols)
{ (void)m; (void)plane; (void)scale; (void)bias; (void)relu; (void)o; (void)ldr; (void)nrows;
  (void)ncols; }
void f32_winograd_output_cl_3x3_avx512(const float *m, int64_t plane, const float *scale,
                                       const float *bias, int relu, float *o, int64_t ldr,
                                       int nrows, int ncols)
{ (void)m; (void)plane; (void)scale; (void)bias; (void)relu; (void)o; (void)ldr; (void)nrows;
  (void)ncols; }
int f32_winograd_input_2x2_3x3_avx512(const fc_wino_plane *pl, const float *x,
                                      const fc_wino_segment *seg, int nseg, float *v,
                                      int64_t ldv, int64_t plane)
{ UNUSED_INPUT }
int f32_winograd_input_2x2_5x5_avx512(const fc_wino_plane *pl, const float *x,
                                      const fc_wino_segment *seg, int nseg, float *v,
                                      int64_t ldv, int64_t plane)
{ UNUSED_INPUT }
void f32_winograd_output_2x2_3x3_avx512(const float *m, int64_t plane, float bias,
                                        int relu, float *y, int64_t ldy, int nrows,
                                        uint32_t cols, int step)
{ UNUSED_OUTPUT }
void f32_winograd_output_2x2_5x5_avx512(const float *m, int64_t plane, float bias,
                                        int relu, float *y, int64_t ldy, int nrows,
                                        uint32_t cols, int step)
{ UNUSED_OUTPUT }
int f32_winograd_input_block_3x3_avx512(const fc_wino_block *bk, const float *x, int64_t C,
                                        int64_t H, int64_t W, float *v, int64_t ldv,
                                        int64_t plane)
{ UNUSED_INPUT_BLOCK }
int f32_winograd_input_block_5x5_avx512(const fc_wino_block *bk, const float *x, int64_t C,
                                        int64_t H, int64_t W, float *v, int64_t ldv,
                                        int64_t plane)
{ UNUSED_INPUT_BLOCK }
void f32_winograd_output_block_3x3_avx512(const float *m, int64_t plane, float bias,
                                          int relu, float *y, int64_t ldy,
                                          const fc_wino_block *bk, uint32_t cols)
{ UNUSED_OUTPUT_BLOCK }
void f32_winograd_output_block_5x5_avx512(const float *m, int64_t plane, float bias,
                                          int relu, float *y, int64_t ldy,
                                          const fc_wino_block *bk, uint32_t cols)
{ UNUSED_OUTPUT_BLOCK }
#endif

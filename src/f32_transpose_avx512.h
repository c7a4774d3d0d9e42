/* The 16 x 16 float32 transpose in registers (AVX-512), shared by the
 * direct kernels' weight packing and the Winograd weight transform of few
 * tiles: r[i] row i in, col[j] column j out.  Include after immintrin.h,
 * in a file compiled for x86-64 with GCC or Clang. */
#ifndef FC_F32_TRANSPOSE_AVX512_H
#define FC_F32_TRANSPOSE_AVX512_H

__attribute__((target("avx512f,avx512dq"), always_inline))
static inline void f32_transpose_16x16_avx512(const __m512 r[16], __m512 col[16])
{
    __m512 t[16], u[16];
    /* within 128-bit lanes: u[4g + q] holds rows 4g..4g+3 of columns
     * q, q + 4, q + 8, q + 12 (one column per lane) */
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int g = 0; g < 16; g += 4) {
        u[g] = _mm512_shuffle_ps(t[g], t[g + 2], 0x44);
        u[g + 1] = _mm512_shuffle_ps(t[g], t[g + 2], 0xEE);
        u[g + 2] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0x44);
        u[g + 3] = _mm512_shuffle_ps(t[g + 1], t[g + 3], 0xEE);
    }
    /* across lanes: gather the four row groups of each column */
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x88);
        const __m512 v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xDD);
        const __m512 w0 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x88);
        const __m512 w1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xDD);
        col[q] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        col[q + 8] = _mm512_shuffle_f32x4(v0, w0, 0xDD);
        col[q + 4] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        col[q + 12] = _mm512_shuffle_f32x4(v1, w1, 0xDD);
    }
}

#endif

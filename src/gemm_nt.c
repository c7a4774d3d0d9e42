/* C = A B^T or C += A B^T in float32 with the streamed convolution's
 * AVX-512 kernel: the weight gradient's GEMM in the im2col backward
 * (A: output channels x pixels, B: rows of the column matrix x pixels,
 * both row-major along the pixels).
 *
 * The OpenBLAS that SciPy ships picks its AVX2 kernels on this machine
 * and reaches about half the AVX-512 FMA peak; the weight gradients of
 * deep layers of few pixels (VGG's 512 channels at 14x14: 0.9 GFLOP) spent
 * most of their backward pass there.  Here B is transposed 48 rows at a
 * time into a panel ([pixel][48], by 16 x 16 register transposes), and
 * the 8 x 48 kernel runs every 8 rows of A over it while it sits in L1.
 * AVX-512 only; single-threaded (called from the caller's threads).
 * Returns 0, or FC_ENOMEM (nothing written). */
#include <stdint.h>

#include "conv_internal.h"
#include "conv_direct.h"
#include "conv_streamed.h"

int fc_sgemm_nt_f32(int64_t M, int64_t N, int64_t Kr, const float *A, int64_t lda,
                    const float *B, int64_t ldb, int add, float *C, int64_t ldc)
{
    const int64_t NR = FC_STREAM_NR;
    float *panel;
    if (M <= 0 || N <= 0)
        return 0;
    panel = (float *)fc_scratch(FC_SLOT_WEIGHT, (size_t)((Kr > 0 ? Kr : 1) * NR) * sizeof(float));
    if (panel == NULL)
        return FC_ENOMEM;
    for (int64_t j0 = 0; j0 < N; j0 += NR) {
        const int64_t nj = N - j0 < NR ? N - j0 : NR;
        for (int64_t g = 0; g < nj; g += 16) {   /* rows j0 + g .. of B, 16 lanes */
            const float *src = B + (j0 + g) * ldb;
            if (nj - g >= 16) {
                for (int64_t k0 = 0; k0 < Kr; k0 += 16) {
                    const int ncols = Kr - k0 < 16 ? (int)(Kr - k0) : 16;
                    float *d[16];
                    for (int i = 0; i < ncols; i++)
                        d[i] = panel + (k0 + i) * NR + g;
                    f32_pack_16x16_avx512(src + k0, ldb, ncols, NULL, 8, d);
                }
                continue;
            }
            for (int64_t k = 0; k < Kr; k++)   /* the last rows; lanes past them zero */
                for (int64_t i = 0; i < 16; i++)
                    panel[k * NR + g + i] = i < nj - g ? src[i * ldb + k] : 0.0f;
        }
        const int nv = (int)((nj + 15) / 16);
        const int64_t tail = nj - 16 * (nv - 1);
        const uint32_t last = tail == 16 ? 0xFFFFu : (1u << tail) - 1;
        for (int64_t i0 = 0; i0 < M; i0 += FC_STREAM_MR)
            f32_streamed_panel_8x48_avx512(Kr, A + i0 * lda, lda,
                                           (int)(M - i0 < FC_STREAM_MR ? M - i0 : FC_STREAM_MR),
                                           panel, nv, last, C + i0 * ldc + j0, ldc, add, NULL);
    }
    return 0;
}

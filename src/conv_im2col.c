/* im2col + BLAS convolution for float32 and float64 (conv_im2col_tmpl.h). */
#include <stdlib.h>
#include <string.h>
#ifdef FASTCONV_OPENMP
#include <omp.h>
#endif

#include "conv_internal.h"

/* float32: A B^T (the weight gradient) by the AVX-512 kernel where the
 * machine has it, twice the rate of the BLAS's AVX2 kernels; the rest, and
 * a failed allocation, by the BLAS. */
static void sgemm(int transa, int transb, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
                  float *C, int64_t ldc)
{
    if (!transa && transb && alpha == 1.0f && (beta == 0.0f || beta == 1.0f) &&
        fc_isa_active() == FC_ISA_AVX512 &&
        fc_sgemm_nt_f32(M, N, K, A, lda, B, ldb, beta == 1.0f, C, ldc) == 0)
        return;
    fc_sgemm_rm(transa, transb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

#define T float
#define FN(name) name##_f32
#define GEMM sgemm
#include "conv_im2col_tmpl.h"
#undef T
#undef FN
#undef GEMM

#define T double
#define FN(name) name##_f64
#define GEMM fc_dgemm_rm
#include "conv_im2col_tmpl.h"
#undef T
#undef FN
#undef GEMM

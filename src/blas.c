/* Row-major GEMM over the Fortran BLAS that SciPy ships.
 *
 * The shim hands us SciPy's sgemm/dgemm pointers once at import; C code then
 * calls them without the GIL.  Row-major C = A B is column-major C^T = B^T A^T,
 * so the operands swap and the transposition flags carry over unchanged. */
#include "fastconv.h"

static fc_sgemm_fn sgemm_ptr;
static fc_dgemm_fn dgemm_ptr;

void fc_set_blas(fc_sgemm_fn sgemm, fc_dgemm_fn dgemm)
{
    sgemm_ptr = sgemm;
    dgemm_ptr = dgemm;
}

void fc_sgemm_rm(int transa, int transb, int64_t M, int64_t N, int64_t K,
                 float alpha, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float beta, float *C, int64_t ldc)
{
    char ta = transb ? 'T' : 'N', tb = transa ? 'T' : 'N';
    int m = (int)N, n = (int)M, k = (int)K;
    int la = (int)ldb, lb = (int)lda, lc = (int)ldc;
    if (M == 0 || N == 0)
        return;
    sgemm_ptr(&ta, &tb, &m, &n, &k, &alpha, (float *)B, &la, (float *)A, &lb,
              &beta, C, &lc);
}

void fc_dgemm_rm(int transa, int transb, int64_t M, int64_t N, int64_t K,
                 double alpha, const double *A, int64_t lda, const double *B,
                 int64_t ldb, double beta, double *C, int64_t ldc)
{
    char ta = transb ? 'T' : 'N', tb = transa ? 'T' : 'N';
    int m = (int)N, n = (int)M, k = (int)K;
    int la = (int)ldb, lb = (int)lda, lc = (int)ldc;
    if (M == 0 || N == 0)
        return;
    dgemm_ptr(&ta, &tb, &m, &n, &k, &alpha, (double *)B, &la, (double *)A,
              &lb, &beta, C, &lc);
}

static fc_blas_threads_fn blas_threads_ptr;

void fc_set_blas_threads_fn(fc_blas_threads_fn fn) { blas_threads_ptr = fn; }

void fc_blas_threads(int n)
{
    if (blas_threads_ptr)
        blas_threads_ptr(n);
}

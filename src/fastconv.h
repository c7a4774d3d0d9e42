/* fastconv's C API: everything the Cython shim (fastconv/_kernels.pyx) calls.
 *
 * The C layer never sees a Python object.  Arrays arrive as raw pointers to
 * C-contiguous NCHW data that the Python layer has already validated, so the
 * kernels check nothing but their own preconditions.  Sizes and indices are
 * int64_t throughout: a 1 x 64 x 1536 x 1536 tensor already has 1.5e8
 * elements and products of extents overflow 32 bits long before that.
 */
#ifndef FASTCONV_H
#define FASTCONV_H

#include <stdint.h>
#include <stddef.h>

/* ---- instruction-set levels, chosen once at load time (dispatch.c) ---- */
enum fc_isa { FC_ISA_GENERIC = 0, FC_ISA_AVX2 = 1, FC_ISA_AVX512 = 2 };

/* Best level that both this CPU (and its OS) and this build support. */
int fc_isa_detect(void);
/* Activates min(requested, detected); returns the level in use. */
int fc_isa_select(int requested);
int fc_isa_active(void);
const char *fc_isa_name(int isa);

/* ---- threads (threads.c) ---- */
/* fastconv's own thread count, used as num_threads() of every parallel
 * region; kept globally rather than in OpenMP's per-thread ICV so that a
 * call from any Python thread sees the value set from any other. */
void fc_set_num_threads(int n);
int fc_get_num_threads(void);
int fc_max_threads(void);   /* threads OpenMP would use by default */
int fc_have_openmp(void);
/* Registers the fork handler: in a forked child every kernel runs on one
 * thread (GNU OpenMP's pool does not survive fork). */
void fc_threads_init(void);
int fc_is_forked_child(void);

/* ---- BLAS, supplied at load time by the shim from SciPy (blas.c) ----
 * Fortran calling convention, column-major, as scipy.linalg.cython_blas
 * exports them. */
typedef void (*fc_sgemm_fn)(char *transa, char *transb, int *m, int *n,
                            int *k, float *alpha, float *a, int *lda,
                            float *b, int *ldb, float *beta, float *c,
                            int *ldc);
typedef void (*fc_dgemm_fn)(char *transa, char *transb, int *m, int *n,
                            int *k, double *alpha, double *a, int *lda,
                            double *b, int *ldb, double *beta, double *c,
                            int *ldc);
void fc_set_blas(fc_sgemm_fn sgemm, fc_dgemm_fn dgemm);
/* The BLAS's own thread-count setter (OpenBLAS), or NULL when unknown.  Work
 * split over our OpenMP threads runs the BLAS on one thread meanwhile. */
typedef void (*fc_blas_threads_fn)(int n);
void fc_set_blas_threads_fn(fc_blas_threads_fn fn);
void fc_blas_threads(int n);

/* Row-major C = alpha * op(A) op(B) + beta * C, A is M x K (or K x M when
 * transposed), B is K x N (or N x K), all dimensions below 2^31. */
void fc_sgemm_rm(int transa, int transb, int64_t M, int64_t N, int64_t K,
                 float alpha, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float beta, float *C, int64_t ldc);
void fc_dgemm_rm(int transa, int transb, int64_t M, int64_t N, int64_t K,
                 double alpha, const double *A, int64_t lda, const double *B,
                 int64_t ldb, double beta, double *C, int64_t ldc);

/* ---- what the ops return besides 0 ---- */
#define FC_ENOMEM 1   /* a workspace could not be allocated */
#define FC_EINDEX 2   /* an index outside its plane (fc_max_pool2d_backward) */

/* ---- per-thread scratch (workspace.c) ----
 * A buffer of at least `bytes`, 64-byte aligned, owned by the calling
 * thread and kept for its next call; NULL when it cannot be allocated.
 * Slots let one thread hold several at once; a slot's previous contents
 * are lost when it grows.  Never free() the result. */
#define FC_SCRATCH_SLOTS 4
enum { FC_SLOT_COL = 0, FC_SLOT_INPUT = 1, FC_SLOT_OUTPUT = 2, FC_SLOT_WEIGHT = 3 };
void *fc_scratch(int slot, size_t bytes);

/* malloc and calloc for the kernels' own short-lived buffers (release with
 * free()).  Both, and fc_scratch, go through one gate so that the tests can
 * make the n-th request from now fail (fc_fail_allocation_after) and check
 * that every caller turns NULL into FC_ENOMEM and leaves no half-done work. */
void *fc_malloc(size_t bytes);
void *fc_calloc(size_t count, size_t size);
void fc_fail_allocation_after(long n);   /* n <= 0: never fail */
long fc_allocations_left(void);          /* countdown left; <= 0 when off */

/* ---- the cache of large output buffers (output_cache.c) ----
 * malloc/calloc/realloc/free for the NumPy arrays fastconv returns: large
 * buffers freed are kept (up to the limit, bytes; 0: none) and handed back
 * to the next allocation of about their size.  fc_output_cache_limit returns
 * the previous limit and frees what no longer fits. */
#define FC_CACHE_MIN ((size_t)4 << 20)   /* smaller buffers are not kept */
void *fc_output_malloc(size_t bytes);
void *fc_output_calloc(size_t count, size_t size);
void *fc_output_realloc(void *p, size_t bytes);
void fc_output_free(void *p, size_t bytes);
size_t fc_output_cache_limit(size_t bytes);
size_t fc_output_cache_bytes(void);

/* ---- op families: each header declares its own entry points ---- */
#include "fc_conv.h"
#include "fc_pool.h"
#include "fc_batchnorm.h"

#endif

/* im2col + BLAS convolution for float32 and float64 (conv_im2col_tmpl.h). */
#include <stdlib.h>
#include <string.h>
#ifdef FASTCONV_OPENMP
#include <omp.h>
#endif

#include "conv_internal.h"

#define T float
#define FN(name) name##_f32
#define GEMM fc_sgemm_rm
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

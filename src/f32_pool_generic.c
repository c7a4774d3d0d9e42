/* Plain-C pooling micro-kernels, float32: four output columns at a time,
 * indices in 64 bits (any plane size).  They run on any CPU, and they are
 * the fallback of the SIMD levels for planes of 2^31 elements or more. */
#include "pool_internal.h"

#define T float
#define POOL_DT f32
#define KSET_T fc_pool_f32_kernels
#define KSET_NAME fc_pool_f32_generic
#include "pool_generic_ops.h"

/* Plain-C pooling micro-kernels, float64: four output columns at a time,
 * indices in 64 bits.  They run on any CPU. */
#include "pool_internal.h"

#define T double
#define POOL_DT f64
#define KSET_T fc_pool_f64_kernels
#define KSET_NAME fc_pool_f64_generic
#include "pool_generic_ops.h"

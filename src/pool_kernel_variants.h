/* The forward micro-kernels of every variant (pool_internal.h): the body
 * pool_kernel_tmpl.h instantiated with the window width and stride compiled
 * in, or not.  Included by each f32_pool_*.c / f64_pool_*.c file after its
 * lane operations. */
#define POOL_KW 0
#define POOL_SW 0
#define POOL_TILE row
#include "pool_kernel_tmpl.h"
#undef POOL_KW
#undef POOL_SW
#undef POOL_TILE

#define POOL_KW 0
#define POOL_SW 1
#define POOL_TILE s1
#include "pool_kernel_tmpl.h"
#undef POOL_KW
#undef POOL_SW
#undef POOL_TILE

#define POOL_KW 2
#define POOL_SW 2
#define POOL_TILE k2s2
#include "pool_kernel_tmpl.h"
#undef POOL_KW
#undef POOL_SW
#undef POOL_TILE

#define POOL_KW 3
#define POOL_SW 2
#define POOL_TILE k3s2
#include "pool_kernel_tmpl.h"
#undef POOL_KW
#undef POOL_SW
#undef POOL_TILE

#define POOL_KW 3
#define POOL_SW 1
#define POOL_TILE k3s1
#include "pool_kernel_tmpl.h"
#undef POOL_KW
#undef POOL_SW
#undef POOL_TILE

/* The lane operations of pool_kernel_tmpl.h for plain C: one lane, so the
 * "vectors" are scalars and every mask is a truth value.  Included by
 * f32_pool_generic.c and f64_pool_generic.c with T, POOL_DT and KSET_*
 * defined; instantiates all the variants and the kernel set. */
#include <math.h>

#define VEC T
#define IVEC int64_t
#define MASK int
#define LANES 1
#define TARGET
#define POOL_ISA generic

static inline MASK tail(int64_t nl) { (void)nl; return 1; }
static inline VEC vload(MASK m, int64_t nl, const T *p) { (void)m; (void)nl; return *p; }
static inline VEC vload2(MASK m, int64_t nl, const T *p) { (void)m; (void)nl; return *p; }
static inline VEC vgather(MASK m, int64_t nl, const T *p, int64_t s)
{
    (void)m; (void)nl; (void)s;
    return *p;
}
static inline VEC vloaddup(MASK m, int64_t nl, const T *p) { (void)m; (void)nl; return *p; }
static inline void vstore(T *p, MASK m, int64_t nl, VEC v) { (void)m; (void)nl; *p = v; }
static inline void istore(int64_t *p, MASK m, int64_t nl, IVEC iv)
{
    (void)m; (void)nl;
    *p = iv;
}
static inline VEC vzero(void) { return 0; }
static inline VEC vset1(T a) { return a; }
static inline VEC vnan(void) { return (T)NAN; }
static inline VEC vadd(VEC a, VEC b) { return a + b; }
static inline VEC vdiv(VEC a, VEC b) { return a / b; }
static inline VEC vmax(VEC a, VEC b) { return a > b ? a : b; }
static inline T vhsum(VEC v) { return v; }
static inline MASK vtake(VEC v, VEC mx) { return v > mx || isnan(v); }
static inline MASK visnan(VEC v) { return isnan(v); }
static inline MASK mor(MASK a, MASK b) { return a | b; }
static inline VEC vblend(MASK m, VEC a, VEC b) { return m ? b : a; }
static inline IVEC iset1(int64_t a) { return a; }
static inline IVEC iiota(int64_t s) { (void)s; return 0; }
static inline IVEC iadd(IVEC a, IVEC b) { return a + b; }
static inline IVEC iblend(MASK m, IVEC a, IVEC b) { return m ? b : a; }

#include "pool_kernel_variants.h"

#define IDX32 0
#include "pool_kernel_misc_tmpl.h"

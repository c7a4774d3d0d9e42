/* The lane operations of pool_kernel_tmpl.h in plain C: a "vector" of four
 * lanes in a struct, every operation a loop over them.  Four independent
 * lanes give the CPU four dependency chains to overlap (a scalar max with
 * its index is a chain of compare-and-select, ~10 cycles a tap), and the
 * compiler room to use whatever SIMD the target has (SSE2, NEON).  Included
 * by f32_pool_generic.c and f64_pool_generic.c with T, POOL_DT and KSET_*
 * defined; instantiates all the variants and the kernel set. */
#include <math.h>

#define LANES 4
typedef struct { T v[LANES]; } pool_vec;
typedef struct { int64_t v[LANES]; } pool_ivec;
typedef struct { int v[LANES]; } pool_mask;
#define VEC pool_vec
#define IVEC pool_ivec
#define MASK pool_mask
#define TARGET
#define POOL_ISA generic

#define PG_LANES(l) for (int l = 0; l < LANES; l++)

static inline MASK tail(int64_t nl)
{
    MASK m;
    PG_LANES(l) m.v[l] = l < nl;
    return m;
}

/* Masked-off lanes read nothing and hold 0. */
static inline VEC vgather(MASK m, int64_t nl, const T *p, int64_t s)
{
    VEC r;
    (void)nl;
    PG_LANES(l) r.v[l] = m.v[l] ? p[l * s] : (T)0;
    return r;
}
static inline VEC vload(MASK m, int64_t nl, const T *p)
{
    if (nl == LANES) {
        VEC r;
        PG_LANES(l) r.v[l] = p[l];
        return r;
    }
    return vgather(m, nl, p, 1);
}
static inline VEC vload2(MASK m, int64_t nl, const T *p) { return vgather(m, nl, p, 2); }
static inline VEC vloaddup(MASK m, int64_t nl, const T *p)
{
    VEC r;
    (void)nl;
    PG_LANES(l) r.v[l] = m.v[l] ? p[l / 2] : (T)0;
    return r;
}
static inline void vstore(T *p, MASK m, int64_t nl, VEC v)
{
    (void)nl;
    PG_LANES(l) if (m.v[l]) p[l] = v.v[l];
}
static inline void istore(int64_t *p, MASK m, int64_t nl, IVEC iv)
{
    (void)nl;
    PG_LANES(l) if (m.v[l]) p[l] = iv.v[l];
}
static inline VEC vset1(T a)
{
    VEC r;
    PG_LANES(l) r.v[l] = a;
    return r;
}
static inline VEC vzero(void) { return vset1((T)0); }
static inline VEC vnan(void) { return vset1((T)NAN); }
static inline VEC vadd(VEC a, VEC b)
{
    PG_LANES(l) a.v[l] += b.v[l];
    return a;
}
static inline VEC vdiv(VEC a, VEC b)
{
    PG_LANES(l) a.v[l] /= b.v[l];
    return a;
}
static inline VEC vmax(VEC a, VEC b)
{
    PG_LANES(l) a.v[l] = a.v[l] > b.v[l] ? a.v[l] : b.v[l];
    return a;
}
static inline T vhsum(VEC v) { return (v.v[0] + v.v[1]) + (v.v[2] + v.v[3]); }
static inline MASK vtake(VEC v, VEC mx)
{
    MASK m;
    PG_LANES(l) m.v[l] = (v.v[l] > mx.v[l]) | (v.v[l] != v.v[l]);
    return m;
}
static inline MASK visnan(VEC v)
{
    MASK m;
    PG_LANES(l) m.v[l] = v.v[l] != v.v[l];
    return m;
}
static inline MASK mor(MASK a, MASK b)
{
    PG_LANES(l) a.v[l] |= b.v[l];
    return a;
}
static inline VEC vblend(MASK m, VEC a, VEC b)
{
    PG_LANES(l) a.v[l] = m.v[l] ? b.v[l] : a.v[l];
    return a;
}
static inline IVEC iset1(int64_t a)
{
    IVEC r;
    PG_LANES(l) r.v[l] = a;
    return r;
}
static inline IVEC iiota(int64_t s)
{
    IVEC r;
    PG_LANES(l) r.v[l] = l * s;
    return r;
}
static inline IVEC iadd(IVEC a, IVEC b)
{
    PG_LANES(l) a.v[l] += b.v[l];
    return a;
}
static inline IVEC iblend(MASK m, IVEC a, IVEC b)
{
    PG_LANES(l) a.v[l] = m.v[l] ? b.v[l] : a.v[l];
    return a;
}

#define POOL_PAIR 0
#include "pool_kernel_variants.h"

#define IDX32 0
#include "pool_kernel_misc_tmpl.h"

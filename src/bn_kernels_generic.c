/* Plain-C batch-norm micro-kernels (any CPU): the shared bodies over
 * 4-lane "vector" structs that the compiler may vectorise itself. */
#include "bn_kernels.h"

#define TARGET

#define GENERIC_VEC(E, V)                                                      \
    typedef struct { E v[4]; } V;                                              \
    static inline V V##_set1(E s) { V r; for (int l = 0; l < 4; l++) r.v[l] = s; return r; } \
    static inline V V##_add(V a, V b) { for (int l = 0; l < 4; l++) a.v[l] += b.v[l]; return a; } \
    static inline V V##_sub(V a, V b) { for (int l = 0; l < 4; l++) a.v[l] -= b.v[l]; return a; } \
    static inline V V##_mul(V a, V b) { for (int l = 0; l < 4; l++) a.v[l] *= b.v[l]; return a; } \
    static inline V V##_fma(V a, V b, V c)                                     \
    { for (int l = 0; l < 4; l++) c.v[l] += a.v[l] * b.v[l]; return c; }       \
    static inline void V##_store(E *p, V a) { for (int l = 0; l < 4; l++) p[l] = a.v[l]; }

GENERIC_VEC(float, vf32)
GENERIC_VEC(double, vf64)

static inline vf32 vf32_load(const float *p) { vf32 r; for (int l = 0; l < 4; l++) r.v[l] = p[l]; return r; }
static inline vf64 vf64_load(const double *p) { vf64 r; for (int l = 0; l < 4; l++) r.v[l] = p[l]; return r; }
static inline vf64 vf64_widen(const float *p) { vf64 r; for (int l = 0; l < 4; l++) r.v[l] = p[l]; return r; }
static inline void vf64_narrow(float *p, vf64 a) { for (int l = 0; l < 4; l++) p[l] = (float)a.v[l]; }
static inline double vf64_hsum(vf64 a) { return (a.v[0] + a.v[1]) + (a.v[2] + a.v[3]); }

#define DV vf64
#define DL 4
#define DZERO() vf64_set1(0.0)
#define DSET1(s) vf64_set1(s)
#define DADD(a, b) vf64_add((a), (b))
#define DSUB(a, b) vf64_sub((a), (b))
#define DFMA(a, b, c) vf64_fma((a), (b), (c))
#define DMUL(a, b) vf64_mul((a), (b))
#define DLOADD(p) vf64_load(p)
#define DSTORED(p, v) vf64_store((p), (v))
#define DHSUM(v) vf64_hsum(v)

/* ---- float32 ---- */
#define T float
#define TV vf32
#define TL 4
#define TLOAD(p) vf32_load(p)
#define TSTORE(p, v) vf32_store((p), (v))
#define TSET1(s) vf32_set1(s)
#define TSUB(a, b) vf32_sub((a), (b))
#define TMUL(a, b) vf32_mul((a), (b))
#define TFMA(a, b, c) vf32_fma((a), (b), (c))
#define DLOADT(p) vf64_widen(p)
#define DSTORET(p, v) vf64_narrow((p), (v))
#define NAME(op) f32_bn_##op##_generic
#define TABLE f32_bn_generic
#define TABLE_T f32_bn_kernels
#include "bn_kernel_tmpl.h"

/* ---- float64 ---- */
#define T double
#define TV vf64
#define TL 4
#define TLOAD(p) vf64_load(p)
#define TSTORE(p, v) vf64_store((p), (v))
#define TSET1(s) vf64_set1(s)
#define TSUB(a, b) vf64_sub((a), (b))
#define TMUL(a, b) vf64_mul((a), (b))
#define TFMA(a, b, c) vf64_fma((a), (b), (c))
#define DLOADT(p) vf64_load(p)
#define DSTORET(p, v) vf64_store((p), (v))
#define NAME(op) f64_bn_##op##_generic
#define TABLE f64_bn_generic
#define TABLE_T f64_bn_kernels
#include "bn_kernel_tmpl.h"

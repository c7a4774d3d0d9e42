/* Plain-C convolution micro-kernels (any CPU), direct forward and weight
 * gradient: the shared loop nests over an 8-lane "vector" struct that the
 * compiler may vectorise itself. */
#include "conv_direct.h"
#include "conv_wgrad.h"

#define TARGET
#define LANES 8

#define GENERIC_VEC(T, V)                                                     \
    typedef struct { T v[LANES]; } V;                                         \
    static inline V V##_zero(void) { V r; for (int l = 0; l < LANES; l++) r.v[l] = 0; return r; } \
    static inline V V##_gather(uint32_t m, const T *p, int64_t sw)            \
    { V r; for (int l = 0; l < LANES; l++) r.v[l] = (m >> l) & 1 ? p[l * sw] : (T)0; return r; } \
    static inline V V##_bcast(const T *p) { V r; for (int l = 0; l < LANES; l++) r.v[l] = *p; return r; } \
    static inline V V##_fma(V a, V b, V c)                                    \
    { for (int l = 0; l < LANES; l++) c.v[l] += a.v[l] * b.v[l]; return c; } \
    static inline V V##_add(V a, V b) { for (int l = 0; l < LANES; l++) a.v[l] += b.v[l]; return a; } \
    static inline V V##_relu(V a)                                             \
    { for (int l = 0; l < LANES; l++) a.v[l] = a.v[l] < 0 ? (T)0 : a.v[l]; return a; } \
    static inline void V##_store(T *p, uint32_t m, V a)                       \
    { for (int l = 0; l < LANES; l++) if ((m >> l) & 1) p[l] = a.v[l]; }     \
    static inline void V##_store_packed(T *p, uint32_t m, V a)                \
    { int i = 0; for (int l = 0; l < LANES; l++) if ((m >> l) & 1) p[i++] = a.v[l]; } \
    static inline V V##_loadu(const T *p)                                     \
    { V r; for (int l = 0; l < LANES; l++) r.v[l] = p[l]; return r; }         \
    static inline void V##_storeu(T *p, V a)                                  \
    { for (int l = 0; l < LANES; l++) p[l] = a.v[l]; }

GENERIC_VEC(float, vf32)
GENERIC_VEC(double, vf64)

#define T float
#define VEC vf32
#define VZERO() vf32_zero()
#define VLOAD(m, p) vf32_gather((m), (p), 1)
#define VGATHER(m, p, sw) vf32_gather((m), (p), (sw))
#define VBCAST(p) vf32_bcast(p)
#define VFMA(a, b, c) vf32_fma((a), (b), (c))
#define VADD(a, b) vf32_add((a), (b))
#define VRELU(v) vf32_relu(v)
#define VSTORE(p, m, v) vf32_store((p), (m), (v))
#define VSTORE_PACKED(p, m, v) vf32_store_packed((p), (m), (v))
#define VLOADU(p) vf32_loadu(p)
#define VSTOREU(p, v) vf32_storeu((p), (v))

#define KB 4
#define NV 2
#define KERNEL_NAME f32_conv_direct_4x2x8_generic
#include "conv_direct_kernel_tmpl.h"
#undef KB
#undef NV
#undef KERNEL_NAME
#define KB 1
#define NV 4
#define KERNEL_NAME f32_conv_direct_1x4x8_generic
#include "conv_direct_kernel_tmpl.h"
#undef KB
#undef NV
#undef KERNEL_NAME
#define CB 4
#define KV 1
#define WGRAD_NAME f32_conv_wgrad_4x8_generic
#include "conv_wgrad_kernel_tmpl.h"
#undef CB
#undef KV
#undef WGRAD_NAME

#undef T
#undef VEC
#undef VLOADU
#undef VSTOREU
#undef VZERO
#undef VLOAD
#undef VGATHER
#undef VBCAST
#undef VFMA
#undef VADD
#undef VRELU
#undef VSTORE
#undef VSTORE_PACKED

#define T double
#define VEC vf64
#define VZERO() vf64_zero()
#define VLOAD(m, p) vf64_gather((m), (p), 1)
#define VGATHER(m, p, sw) vf64_gather((m), (p), (sw))
#define VBCAST(p) vf64_bcast(p)
#define VFMA(a, b, c) vf64_fma((a), (b), (c))
#define VADD(a, b) vf64_add((a), (b))
#define VRELU(v) vf64_relu(v)
#define VSTORE(p, m, v) vf64_store((p), (m), (v))
#define VSTORE_PACKED(p, m, v) vf64_store_packed((p), (m), (v))
#define VLOADU(p) vf64_loadu(p)
#define VSTOREU(p, v) vf64_storeu((p), (v))

#define KB 4
#define NV 2
#define KERNEL_NAME f64_conv_direct_4x2x8_generic
#include "conv_direct_kernel_tmpl.h"
#undef KB
#undef NV
#undef KERNEL_NAME
#define KB 1
#define NV 4
#define KERNEL_NAME f64_conv_direct_1x4x8_generic
#include "conv_direct_kernel_tmpl.h"
#undef KB
#undef NV
#undef KERNEL_NAME
#define CB 4
#define KV 1
#define WGRAD_NAME f64_conv_wgrad_4x8_generic
#include "conv_wgrad_kernel_tmpl.h"

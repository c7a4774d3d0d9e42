/* Direct convolution for float32 and float64 (conv_direct_tmpl.h), with the
 * micro-kernel picked from the instruction-set level active at call time. */
#include <stdlib.h>
#include <string.h>
#ifdef FASTCONV_OPENMP
#include <omp.h>
#endif

#include "conv_internal.h"
#include "conv_direct.h"
#include "conv_wgrad.h"
#include "conv_dw.h"

static fc_direct_f32_kernel select_kernel_f32(int depthwise)
{
    static const fc_direct_f32_kernel dense[] = {
        {8, 4, 2, f32_conv_direct_4x2x8_generic},
        {8, 4, 3, f32_conv_direct_4x3x8_avx2},
        {16, 8, 3, f32_conv_direct_8x3x16_avx512},
    };
    static const fc_direct_f32_kernel dw[] = {
        {8, 1, 4, f32_conv_direct_1x4x8_generic},
        {8, 1, 6, f32_conv_direct_1x6x8_avx2},
        {16, 1, 8, f32_conv_direct_1x8x16_avx512},
    };
    return depthwise ? dw[fc_isa_active()] : dense[fc_isa_active()];
}

static fc_direct_f64_kernel select_kernel_f64(int depthwise)
{
    static const fc_direct_f64_kernel generic = {8, 4, 2, f64_conv_direct_4x2x8_generic};
    static const fc_direct_f64_kernel generic_dw = {8, 1, 4, f64_conv_direct_1x4x8_generic};
    static const fc_direct_f64_kernel avx512 = {8, 8, 3, f64_conv_direct_8x3x8_avx512};
    if (depthwise)
        return generic_dw;
    return fc_isa_active() == FC_ISA_AVX512 ? avx512 : generic;
}

/* The weight-gradient kernel whose tile, rounded up over the layer's
 * channels, computes the fewest zeros. */
static double wgrad_fill(int64_t Cg, int64_t Kg, int cb, int kt)
{
    return (double)(Cg * Kg) /
           (double)((Cg + cb - 1) / cb * cb * ((Kg + kt - 1) / kt * kt));
}

static fc_wgrad_f32_kernel select_wgrad_f32(int64_t Cg, int64_t Kg)
{
    static const fc_wgrad_f32_kernel generic = {4, 8, f32_conv_wgrad_4x8_generic};
    static const fc_wgrad_f32_kernel avx2 = {6, 16, f32_conv_wgrad_6x16_avx2};
    static const fc_wgrad_f32_kernel wide = {12, 32, f32_conv_wgrad_12x32_avx512};
    static const fc_wgrad_f32_kernel narrow = {16, 16, f32_conv_wgrad_16x16_avx512};
    switch (fc_isa_active()) {
    case FC_ISA_AVX512:
        /* the 16 x 16 tile loads 17 values per 16 FMAs against the wide
         * tile's 14 per 24, so it runs at about 3/4 of the wide one's rate */
        return 0.75 * wgrad_fill(Cg, Kg, 16, 16) > wgrad_fill(Cg, Kg, 12, 32) ? narrow : wide;
    case FC_ISA_AVX2:
        return avx2;
    default:
        return generic;
    }
}

static fc_wgrad_f64_kernel select_wgrad_f64(int64_t Cg, int64_t Kg)
{
    (void)Cg;
    (void)Kg;
    static const fc_wgrad_f64_kernel generic = {4, 8, f64_conv_wgrad_4x8_generic};
    static const fc_wgrad_f64_kernel avx512 = {12, 16, f64_conv_wgrad_12x16_avx512};
    return fc_isa_active() == FC_ISA_AVX512 ? avx512 : generic;
}

/* The channels-last small-image kernel exists for float32 AVX-512 only. */
static fc_nhwc_f32_fn select_nhwc_f32(void)
{
    return fc_isa_active() == FC_ISA_AVX512 ? f32_conv_direct_nhwc_6x64_avx512 : NULL;
}

static fc_nhwc_f64_fn select_nhwc_f64(void) { return NULL; }

/* So does the packing transpose. */
static fc_pack16_f32_fn select_pack16_f32(void)
{
    return fc_isa_active() == FC_ISA_AVX512 ? f32_pack_16x16_avx512 : NULL;
}

static fc_pack16_f64_fn select_pack16_f64(void) { return NULL; }

/* So do the depthwise 3x3 plane kernels. */
static fc_dw3x3_f32_fn select_dw3x3_f32(void)
{
    return fc_isa_active() == FC_ISA_AVX512 ? f32_dwconv_3x3_avx512 : NULL;
}

static fc_dw3x3_wgrad_f32_fn select_dw3x3_wgrad_f32(void)
{
    return fc_isa_active() == FC_ISA_AVX512 ? f32_dwconv_wgrad_3x3_avx512 : NULL;
}

static fc_dw3x3_f64_fn select_dw3x3_f64(void) { return NULL; }
static fc_dw3x3_wgrad_f64_fn select_dw3x3_wgrad_f64(void) { return NULL; }

/* The input gradient's convolution by the algorithm asked for (float32:
 * Winograd and the streamed GEMM fall back on the direct algorithm where
 * they do not apply; float64 has only the direct one). */
static int input_conv_f32(int algo, const fc_conv_shape *s, const float *x, const float *w,
                          float *y)
{
    if (algo == FC_CONV_WINOGRAD)
        return fc_conv2d_winograd_f32(s, x, w, NULL, NULL, 0, y);
    if (algo == FC_CONV_STREAMED)
        return fc_conv2d_streamed_f32(s, x, w, NULL, NULL, 0, y);
    return fc_conv2d_direct_f32(s, x, w, NULL, NULL, 0, y);
}

static int input_conv_f64(int algo, const fc_conv_shape *s, const double *x,
                          const double *w, double *y)
{
    (void)algo;
    return fc_conv2d_direct_f64(s, x, w, NULL, NULL, 0, y);
}

/* The same from the forward weight as stored (the whole filter turned):
 * float32 Winograd of few tiles, under the algorithms that would run
 * Winograd or the streamed GEMM; FC_WINO_DECLINED where it does not apply. */
static int input_conv_turned_f32(int algo, const fc_conv_shape *s, const float *x,
                                 const float *w, float *y)
{
    if (algo != FC_CONV_WINOGRAD && algo != FC_CONV_STREAMED)
        return FC_WINO_DECLINED;
    return fc_conv2d_winograd_flipped_f32(s, x, w, y);
}

static int input_conv_turned_f64(int algo, const fc_conv_shape *s, const double *x,
                                 const double *w, double *y)
{
    (void)algo; (void)s; (void)x; (void)w; (void)y;
    return FC_WINO_DECLINED;
}

#define T float
#define FN(name) name##_f32
#define KERNEL_T fc_direct_f32_kernel
#define WGRAD_T fc_wgrad_f32_kernel
#define NHWC_T fc_nhwc_f32_fn
#define PACK16_T fc_pack16_f32_fn
#define DW_T fc_dw3x3_f32_fn
#define DW_WGRAD_T fc_dw3x3_wgrad_f32_fn
#include "conv_direct_tmpl.h"
#undef T
#undef FN
#undef KERNEL_T
#undef WGRAD_T
#undef NHWC_T
#undef PACK16_T
#undef DW_T
#undef DW_WGRAD_T

#define T double
#define FN(name) name##_f64
#define KERNEL_T fc_direct_f64_kernel
#define WGRAD_T fc_wgrad_f64_kernel
#define NHWC_T fc_nhwc_f64_fn
#define PACK16_T fc_pack16_f64_fn
#define DW_T fc_dw3x3_f64_fn
#define DW_WGRAD_T fc_dw3x3_wgrad_f64_fn
#include "conv_direct_tmpl.h"

/* The channels-last walk's output transposition, for the Winograd
 * convolution of few tiles (conv_winograd.c). */
void fc_planes_of_columns_f32(const float *src, int64_t ldo, int64_t nk, int64_t PQ,
                              int64_t o_lo, int64_t o_hi, float *dst)
{
    planes_of_columns_f32(src, ldo, nk, PQ, o_lo, o_hi, dst);
}

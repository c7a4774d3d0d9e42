/* Body of a direct-convolution micro-kernel, written once for every ISA.
 *
 * Included by each micro-kernel file after it defines, for its ISA:
 *   T, VEC (the vector type), LANES, KB, NV, KERNEL_NAME, TARGET (an
 *   attribute list or nothing), and the operations
 *   VZERO(), VLOAD(mask, ptr), VGATHER(mask, ptr, sw), VBCAST(ptr),
 *   VFMA(a, b, acc), VADD(a, b), VRELU(v), VSTORE(ptr, mask, v) and
 *   VSTORE_PACKED(ptr, mask, v) (the lanes in mask, side by side).
 * Only these lines know the instruction set; the loop nest is shared.
 *
 * Taps run outside, input channels inside: within a tap the lane masks stay
 * in registers and every address advances by a constant, so the innermost
 * loop is loads, broadcasts and KB x NV fused multiply-adds.  Channels come
 * in blocks of t->cblock so that the rows one block reads under all taps
 * stay in L1 until the last tap has used them. */

#define FC_DIRECT_CHANNEL_LOOP(LOAD)                                         \
    for (int64_t c = c0; c < c1; c++) {                                      \
        VEC xv[NV];                                                          \
        _Pragma("GCC unroll 16")                                             \
        for (int j = 0; j < NV; j++)                                         \
            xv[j] = LOAD;                                                    \
        _Pragma("GCC unroll 16")                                             \
        for (int k = 0; k < KB; k++) {                                       \
            const VEC wk = VBCAST(w + c * KB + k);                           \
            _Pragma("GCC unroll 16")                                         \
            for (int j = 0; j < NV; j++)                                     \
                acc[k][j] = VFMA(wk, xv[j], acc[k][j]);                      \
        }                                                                    \
    }

TARGET void KERNEL_NAME(const fc_direct_tile *t, const T *x, const T *wp,
                        const T *bias, T *y)
{
    VEC acc[KB][NV];
    const int64_t cs = t->cstride;
#pragma GCC unroll 16
    for (int k = 0; k < KB; k++)
#pragma GCC unroll 16
        for (int j = 0; j < NV; j++)
            acc[k][j] = VZERO();

    for (int64_t c0 = 0; c0 < t->Cg; c0 += t->cblock) {
        const int64_t c1 = c0 + t->cblock < t->Cg ? c0 + t->cblock : t->Cg;
        for (int64_t tap = 0; tap < t->taps; tap++) {
            const T *w = wp + tap * t->Cg * KB;
            const T *px[NV];
            uint32_t m[NV];
#pragma GCC unroll 16
            for (int j = 0; j < NV; j++) {
                px[j] = x + t->off[tap * NV + j];
                m[j] = t->mask[tap * NV + j];
            }
            if (t->sw == 1) {
                FC_DIRECT_CHANNEL_LOOP(VLOAD(m[j], px[j] + c * cs))
            } else {
                FC_DIRECT_CHANNEL_LOOP(VGATHER(m[j], px[j] + c * cs, t->sw))
            }
        }
    }

#pragma GCC unroll 16
    for (int k = 0; k < KB; k++) {
        if (k >= t->nk)
            break;
        const VEC b = bias ? VBCAST(bias + k) : VZERO();
#pragma GCC unroll 16
        for (int j = 0; j < NV; j++) {
            if (j >= t->nrows)
                break;
            VEC v = VADD(acc[k][j], b);
            if (t->relu)
                v = VRELU(v);
            if (t->yoff) {
                VSTORE_PACKED(y + k * t->ystride + t->yoff[j], t->ylanes[j], v);
                continue;
            }
            VSTORE(y + k * t->ystride + j * t->yrow, t->store_mask, v);
        }
    }
}

#undef FC_DIRECT_CHANNEL_LOOP

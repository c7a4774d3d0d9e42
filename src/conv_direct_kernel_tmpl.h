/* Body of a direct-convolution micro-kernel, written once for every ISA.
 *
 * Included by each micro-kernel file after it defines, for its ISA:
 *   T, VEC (the vector type), LANES, KB, NV, KERNEL_NAME, TARGET (an
 *   attribute list or nothing), and the operations
 *   VZERO(), VLOAD(mask, ptr), VGATHER(mask, ptr, sw), VBCAST(ptr),
 *   VFMA(a, b, acc), VADD(a, b), VRELU(v), VSTORE(ptr, mask, v).
 * Only these lines know the instruction set; the loop nest is shared. */

TARGET void KERNEL_NAME(const fc_direct_tile *t, const T *x, const T *wp,
                        const T *bias, T *y)
{
    VEC acc[KB][NV];
    const int64_t R = t->R, S = t->S, taps = R * S;
#pragma GCC unroll 16
    for (int k = 0; k < KB; k++)
#pragma GCC unroll 16
        for (int j = 0; j < NV; j++)
            acc[k][j] = VZERO();

    for (int64_t c = 0; c < t->Cg; c++) {
        const T *xc = x + c * t->cstride;
        const T *wc = wp + c * taps * KB;
        for (int64_t r = 0; r < R; r++) {
            for (int64_t s = 0; s < S; s++) {
                const T *w = wc + (r * S + s) * KB;
                VEC xv[NV];
#pragma GCC unroll 16
                for (int j = 0; j < NV; j++) {
                    const uint32_t m = t->mask[(j * R + r) * S + s];
                    const T *p = xc + t->row_off[j * R + r] + t->col_off[s];
                    xv[j] = t->sw == 1 ? VLOAD(m, p) : VGATHER(m, p, t->sw);
                }
#pragma GCC unroll 16
                for (int k = 0; k < KB; k++) {
                    const VEC wk = VBCAST(w + k);
#pragma GCC unroll 16
                    for (int j = 0; j < NV; j++)
                        acc[k][j] = VFMA(wk, xv[j], acc[k][j]);
                }
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
            VSTORE(y + k * t->ystride + j * t->yrow, t->store_mask, v);
        }
    }
}

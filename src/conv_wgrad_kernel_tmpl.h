/* Body of a weight-gradient micro-kernel, written once for every ISA.
 *
 * Included by a micro-kernel file after it defines T, VEC, LANES, TARGET,
 * VZERO(), VLOADU(ptr), VSTOREU(ptr, v), VBCAST(ptr), VFMA(a, b, acc),
 * VADD(a, b), and CB, KV and WGRAD_NAME. */

TARGET void WGRAD_NAME(const fc_wgrad_tile *t, const T *x, const T *gy, T *gw)
{
    VEC acc[CB][KV];
    const T *xt = x + t->tapoff * t->xs;
#pragma GCC unroll 16
    for (int c = 0; c < CB; c++)
#pragma GCC unroll 16
        for (int v = 0; v < KV; v++)
            acc[c][v] = VZERO();

    for (int64_t i = 0; i < t->npix; i++) {
        const T *xrow = xt + t->pix[i] * t->xs;
        const T *grow = gy + i * t->gs;
        VEC g[KV];
#pragma GCC unroll 16
        for (int v = 0; v < KV; v++)
            g[v] = VLOADU(grow + v * LANES);
#pragma GCC unroll 16
        for (int c = 0; c < CB; c++) {
            const VEC b = VBCAST(xrow + c);
#pragma GCC unroll 16
            for (int v = 0; v < KV; v++)
                acc[c][v] = VFMA(b, g[v], acc[c][v]);
        }
    }

#pragma GCC unroll 16
    for (int c = 0; c < CB; c++)
#pragma GCC unroll 16
        for (int v = 0; v < KV; v++) {
            T *dst = gw + c * t->ldw + v * LANES;
            VSTOREU(dst, VADD(VLOADU(dst), acc[c][v]));
        }
}

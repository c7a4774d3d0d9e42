/* Instruction-set selection.
 *
 * Every level's micro-kernels are compiled into the one binary with GCC/Clang
 * target attributes; this file decides once, at load time, which of them run.
 * Op families read fc_isa_active() when they set up their kernel tables. */
#include "fastconv.h"

static int active_isa = FC_ISA_GENERIC;

int fc_isa_detect(void)
{
#if (defined(__x86_64__) || defined(__i386__)) && \
    (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    /* libgcc's checks include the OS's XSAVE support for the wider state. */
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("fma"))
        return FC_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return FC_ISA_AVX2;
#endif
    return FC_ISA_GENERIC;
}

int fc_isa_select(int requested)
{
    int best = fc_isa_detect();
    if (requested < FC_ISA_GENERIC)
        requested = FC_ISA_GENERIC;
    active_isa = requested < best ? requested : best;
    return active_isa;
}

int fc_isa_active(void) { return active_isa; }

const char *fc_isa_name(int isa)
{
    switch (isa) {
    case FC_ISA_AVX512: return "avx512";
    case FC_ISA_AVX2: return "avx2";
    default: return "generic";
    }
}

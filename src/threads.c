/* fastconv's thread count.  See fc_set_num_threads in fastconv.h. */
#include "fastconv.h"

#ifdef FASTCONV_OPENMP
#include <omp.h>
#endif

static int num_threads = 0;   /* 0: not set yet, use OpenMP's default */

int fc_max_threads(void)
{
#ifdef FASTCONV_OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void fc_set_num_threads(int n) { num_threads = n > 0 ? n : 1; }

int fc_get_num_threads(void)
{
    return num_threads > 0 ? num_threads : fc_max_threads();
}

int fc_have_openmp(void)
{
#ifdef FASTCONV_OPENMP
    return 1;
#else
    return 0;
#endif
}

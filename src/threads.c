/* fastconv's thread count.  See fc_set_num_threads in fastconv.h.
 *
 * GNU OpenMP's thread pool does not survive fork(): a child forked after the
 * parent ran a parallel region waits forever for the parent's workers at its
 * first one.  A child of a process that may have started the pool therefore
 * runs every kernel on its own thread (a team of one never touches the
 * pool); pthread_atfork marks it. */
#include <pthread.h>

#include "fastconv.h"

#ifdef FASTCONV_OPENMP
#include <omp.h>
#endif

static int num_threads = 0;   /* 0: not set yet, use OpenMP's default */
static int forked_child = 0;

static void mark_forked_child(void) { forked_child = 1; }

void fc_threads_init(void)
{
    static int registered = 0;
    if (!registered) {
        pthread_atfork(NULL, NULL, mark_forked_child);
        registered = 1;
    }
}

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
    if (forked_child)
        return 1;
    return num_threads > 0 ? num_threads : fc_max_threads();
}

int fc_is_forked_child(void) { return forked_child; }

int fc_have_openmp(void)
{
#ifdef FASTCONV_OPENMP
    return 1;
#else
    return 0;
#endif
}

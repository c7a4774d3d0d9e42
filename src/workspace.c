/* Per-thread scratch buffers that outlive a call.
 *
 * Workspaces of a few MB freshly malloc'ed on every call come back as new
 * mmap'ed pages, and the page faults of touching them cost as much as a
 * small convolution.  Each thread (the caller's and OpenMP's workers) keeps
 * its buffers, grown on demand, for the next call; nothing is shared, so no
 * locking.  They are released when the thread exits (pthread key). */
#include <stdlib.h>
#include <pthread.h>

#include "fastconv.h"

typedef struct {
    void *ptr[FC_SCRATCH_SLOTS];
    size_t size[FC_SCRATCH_SLOTS];
} scratch_set;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_release(void *p)
{
    scratch_set *set = (scratch_set *)p;
    for (int i = 0; i < FC_SCRATCH_SLOTS; i++)
        free(set->ptr[i]);
    free(set);
}

/* Countdown of the allocation-failure injection: the request that brings it
 * from 1 to 0 fails; at 0 or below nothing fails.  Atomic because OpenMP
 * workers allocate concurrently. */
static long fail_countdown = 0;

void fc_fail_allocation_after(long n)
{
    __atomic_store_n(&fail_countdown, n > 0 ? n : 0, __ATOMIC_SEQ_CST);
}

long fc_allocations_left(void)
{
    return __atomic_load_n(&fail_countdown, __ATOMIC_SEQ_CST);
}

static int injected_failure(void)
{
    if (__atomic_load_n(&fail_countdown, __ATOMIC_RELAXED) <= 0)
        return 0;
    return __atomic_sub_fetch(&fail_countdown, 1, __ATOMIC_SEQ_CST) == 0;
}

void *fc_malloc(size_t bytes)
{
    return injected_failure() ? NULL : malloc(bytes ? bytes : 1);
}

void *fc_calloc(size_t count, size_t size)
{
    return injected_failure() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

static void scratch_init(void) { pthread_key_create(&scratch_key, scratch_release); }

void *fc_scratch(int slot, size_t bytes)
{
    scratch_set *set;
    /* An injected failure counts every request, grown or not, so that the
     * tests reach the callers' error paths even with warm buffers. */
    if (injected_failure())
        return NULL;
    pthread_once(&scratch_once, scratch_init);
    set = (scratch_set *)pthread_getspecific(scratch_key);
    if (set == NULL) {
        set = (scratch_set *)calloc(1, sizeof(scratch_set));
        if (set == NULL || pthread_setspecific(scratch_key, set) != 0) {
            free(set);
            return NULL;
        }
    }
    if (bytes == 0)
        bytes = 1;
#if defined(__SANITIZE_ADDRESS__)
    /* Under AddressSanitizer every request gets a buffer of exactly its size,
     * so an overrun past what the caller asked for is reported rather than
     * landing in the slack of a larger buffer kept from an earlier call. */
    if (set->size[slot] != bytes) {
#else
    if (set->size[slot] < bytes) {
#endif
        void *p = NULL;
        free(set->ptr[slot]);
        set->ptr[slot] = NULL;
        set->size[slot] = 0;
        if (posix_memalign(&p, 64, bytes) != 0)
            return NULL;
        set->ptr[slot] = p;
        set->size[slot] = bytes;
    }
    return set->ptr[slot];
}

/* A small cache of large freed output buffers, for NumPy arrays that
 * fastconv allocates (fastconv/_outputs.pxi installs it as their NumPy
 * memory handler).
 *
 * A large output freshly allocated is fresh pages: the kernel zeroes each
 * one on first touch, which costs as much as writing the output again.  In
 * the loops people run (the same layer every iteration), the previous
 * iteration's output has just been freed: keeping a few such buffers and
 * handing them back makes the next output's pages warm.  Small buffers go
 * straight to malloc; the cache holds at most FC_CACHE_SLOTS buffers and
 * fc_output_cache_limit bytes (0 turns it off). */
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fastconv.h"

#define FC_CACHE_SLOTS 8

static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static void *cached_ptr[FC_CACHE_SLOTS];
static size_t cached_size[FC_CACHE_SLOTS];
static size_t cached_total = 0;
static size_t cache_limit = (size_t)512 << 20;

/* Ask for transparent huge pages on a large buffer, as NumPy's own
 * allocator does (fewer faults, fewer TLB misses). */
static void advise_huge(void *p, size_t bytes)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)p + page - 1) & ~(page - 1);
    const uintptr_t hi = ((uintptr_t)p + bytes) & ~(page - 1);
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
#else
    (void)p; (void)bytes;
#endif
}

/* The smallest cached buffer of at least `bytes` and at most a quarter
 * more (a much larger one would pin memory the caller does not use), taken
 * out of the cache; NULL when none fits. */
static void *take_cached(size_t bytes)
{
    int best = -1;
    void *p = NULL;
    pthread_mutex_lock(&cache_lock);
    for (int i = 0; i < FC_CACHE_SLOTS; i++)
        if (cached_ptr[i] != NULL && cached_size[i] >= bytes &&
            cached_size[i] - bytes <= bytes / 4 &&
            (best < 0 || cached_size[i] < cached_size[best]))
            best = i;
    if (best >= 0) {
        p = cached_ptr[best];
        cached_total -= cached_size[best];
        cached_ptr[best] = NULL;
        cached_size[best] = 0;
    }
    pthread_mutex_unlock(&cache_lock);
    return p;
}

void *fc_output_malloc(size_t bytes)
{
    void *p;
    if (bytes < FC_CACHE_MIN)
        return malloc(bytes ? bytes : 1);
    p = take_cached(bytes);
    if (p == NULL && (p = malloc(bytes)) != NULL)
        advise_huge(p, bytes);
    return p;
}

void *fc_output_calloc(size_t count, size_t size)
{
    /* NumPy's zeros; fastconv asks only for empty arrays, so not cached */
    return calloc(count ? count : 1, size ? size : 1);
}

void *fc_output_realloc(void *p, size_t bytes)
{
    /* every buffer, cached or not, came from malloc */
    return realloc(p, bytes ? bytes : 1);
}

/* `bytes` is the size the buffer was allocated with (NumPy passes it). */
void fc_output_free(void *p, size_t bytes)
{
    int kept = 0;
    if (p == NULL)
        return;
    if (bytes >= FC_CACHE_MIN) {
        pthread_mutex_lock(&cache_lock);
        if (cached_total + bytes <= cache_limit)
            for (int i = 0; i < FC_CACHE_SLOTS && !kept; i++)
                if (cached_ptr[i] == NULL) {
                    cached_ptr[i] = p;
                    cached_size[i] = bytes;
                    cached_total += bytes;
                    kept = 1;
                }
        pthread_mutex_unlock(&cache_lock);
    }
    if (!kept)
        free(p);
}

size_t fc_output_cache_limit(size_t bytes)
{
    size_t previous;
    pthread_mutex_lock(&cache_lock);
    previous = cache_limit;
    cache_limit = bytes;
    for (int i = 0; i < FC_CACHE_SLOTS && cached_total > cache_limit; i++)
        if (cached_ptr[i] != NULL) {
            free(cached_ptr[i]);
            cached_total -= cached_size[i];
            cached_ptr[i] = NULL;
            cached_size[i] = 0;
        }
    pthread_mutex_unlock(&cache_lock);
    return previous;
}

size_t fc_output_cache_bytes(void)
{
    size_t total;
    pthread_mutex_lock(&cache_lock);
    total = cached_total;
    pthread_mutex_unlock(&cache_lock);
    return total;
}

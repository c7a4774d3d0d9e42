/* Pooling entry points (pool.c).  Filled in by the pooling issue. */
#ifndef FC_POOL_H
#define FC_POOL_H
#endif

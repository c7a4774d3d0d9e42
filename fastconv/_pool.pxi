# Shim wrappers of the pool kernels (src/fc_pool.h).

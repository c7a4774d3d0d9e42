# Shim wrappers of the batchnorm kernels (src/fc_batchnorm.h).

# Shim wrappers of the conv kernels (src/fc_conv.h).

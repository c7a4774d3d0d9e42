/* Convolution entry points (conv_*.c).  Filled in by the conv2d issue. */
#ifndef FC_CONV_H
#define FC_CONV_H
#endif

"""fastconv: fast 2-D convolution, pooling and batch norm on NumPy arrays.

    >>> import numpy as np, fastconv as fc
    >>> x = np.random.rand(8, 3, 32, 32).astype(np.float32)
    >>> w = np.random.rand(16, 3, 3, 3).astype(np.float32)
    >>> fc.conv2d(x, w, padding=1).shape
    (8, 16, 32, 32)

The functional ops follow torch.nn.functional; fastconv.reference holds a
naive NumPy version of each, fastconv.shapes the shape arithmetic and
fastconv.nn layer objects for hand-written networks.
"""
__version__ = "0.1.0"

from ._config import get_num_threads, set_num_threads, set_output_cache_limit, show_config
from .batchnorm import batch_norm, batch_norm_backward
from .conv import conv2d, conv2d_backward, conv2d_bn, fuse_conv_bn
from .pool import (avg_pool2d, avg_pool2d_backward, max_pool2d,
                   max_pool2d_backward)
from . import reference, shapes
from . import nn

__all__ = [
    "conv2d", "conv2d_backward", "max_pool2d", "max_pool2d_backward",
    "avg_pool2d", "avg_pool2d_backward", "batch_norm", "batch_norm_backward",
    "fuse_conv_bn", "conv2d_bn", "set_num_threads", "get_num_threads",
    "set_output_cache_limit", "show_config", "reference", "shapes", "nn",
]

"""No convolution kernel reads past the end of its input or weight: each
array is placed so that it ends exactly where an inaccessible page begins,
and any read past it faults.  The calls run in a child process, so that a
fault is reported as this test's failure (with the case that was running)
instead of ending the whole test run.

The case that motivated it: the flat walk reads an unpadded image in place
(no padded copy), and its last tile has lanes past the output whose inputs
would lie past the end of x; their loads must be masked off."""
import subprocess
import sys
import textwrap

import pytest

from _helpers import isa_levels

_CHILD = textwrap.dedent("""
    import ctypes, mmap, sys
    import numpy as np
    import fastconv as fc
    from fastconv import _kernels, reference

    PAGE = mmap.PAGESIZE
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    keep = []

    def guarded(a):
        # a copy of `a` whose last byte is the last before a PROT_NONE page
        pages = (a.nbytes + PAGE - 1) // PAGE
        mm = mmap.mmap(-1, (pages + 1) * PAGE)
        base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
        if libc.mprotect(base + pages * PAGE, PAGE, 0) != 0:
            raise OSError(ctypes.get_errno(), "mprotect")
        keep.append(mm)
        out = np.frombuffer(mm, a.dtype, a.size, pages * PAGE - a.nbytes)
        out = out.reshape(a.shape)
        out[...] = a
        return out

    level = sys.argv[1]
    assert _kernels.isa_select(level) == level
    rng = np.random.default_rng(3)
    # (N, C, H, W, K, R, S, stride, padding, dilation, groups)
    cases = [
        (1, 8, 5, 5, 16, 1, 1, 1, 0, 1, 1),      # 1x1, a partial last tile
        (1, 256, 7, 7, 64, 1, 1, 1, 0, 1, 1),
        (2, 3, 7, 9, 4, 3, 3, 1, 0, 1, 1),       # 3x3 'valid': lanes past the
        (1, 5, 9, 30, 7, 3, 5, 1, 0, (2, 1), 1), #  plane under the last taps
        (1, 4, 6, 40, 16, 1, 3, 1, 0, 1, 1),
        (3, 16, 9, 13, 24, 3, 3, 1, 0, 1, 1),
        (1, 12, 5, 70, 10, 4, 4, 1, 0, 1, 1),
        (2, 6, 11, 11, 8, 3, 3, 1, 1, 1, 2),     # padded, grouped
        (1, 3, 15, 15, 8, 7, 7, 2, 3, 1, 1),     # strided (row walk)
        (1, 64, 7, 7, 128, 3, 3, 1, 1, 1, 1),    # channels-last walk
        (1, 8, 12, 12, 8, 3, 3, 1, 1, 1, 8),     # depthwise
        (1, 32, 32, 32, 16, 3, 3, 1, 1, 1, 1),   # Winograd (auto, float32
        (1, 32, 34, 34, 16, 3, 3, 1, 0, 1, 1),   #  AVX-512), padded and not,
        (16, 32, 8, 8, 16, 3, 3, 1, 1, 1, 1),    #  blocks of tile rows,
        (1, 32, 64, 64, 16, 3, 3, 1, 2, 2, 1),   #  dilated (phases)
    ]
    for dtype in (np.float32, np.float64):
        for i, (N, C, H, W, K, R, S, st, pad, dil, G) in enumerate(cases):
            x = rng.standard_normal((N, C, H, W)).astype(dtype)
            w = rng.standard_normal((K, C // G, R, S)).astype(dtype)
            b = rng.standard_normal(K).astype(dtype)
            kw = dict(stride=st, padding=pad, dilation=dil, groups=G)
            expected = reference.conv2d(x, w, b, **kw)
            gx, gw = guarded(x), guarded(w)
            for algorithm in ("direct", "im2col", "auto"):
                print(f"case {i} {np.dtype(dtype).name} {algorithm}", flush=True)
                y = fc.conv2d(gx, gw, b, algorithm=algorithm, **kw)
                tol = (2e-5 if dtype == np.float32 else 1e-11) * max(1, abs(expected).max())
                assert abs(y - expected).max() <= tol, (i, algorithm)
    print("ok")
""")


@pytest.mark.parametrize("level", isa_levels())
def test_no_read_past_the_arrays(level, tmp_path):
    # cwd: not the source tree, whose fastconv/ has no built extension
    proc = subprocess.run([sys.executable, "-c", _CHILD, level], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    last = (proc.stdout.strip().splitlines() or ["(no output)"])[-1]
    assert proc.returncode == 0 and last == "ok", (
        f"isa {level}: exit {proc.returncode} after {last!r}\n{proc.stderr[-2000:]}")

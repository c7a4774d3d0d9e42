"""Build of fastconv's one compiled extension, fastconv._kernels.

The extension is the Cython shim (fastconv/_kernels.pyx) plus every C99 file
in src/.  All instruction-set levels are compiled into the one binary (GCC/Clang
``target`` attributes on the micro-kernels) and chosen at load time, so the
build itself uses no -march flag and runs on any x86-64.  OpenMP is used when
the compiler accepts it; without it the kernels run on one thread.
"""
import glob
import os
import shutil
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _compiler_accepts(compiler, flags, source):
    """Whether `compiler` compiles and links `source` with `flags`."""
    tmp = tempfile.mkdtemp(prefix="fastconv-probe-")
    try:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(source)
        objs = compiler.compile([path], output_dir=tmp, extra_postargs=flags)
        compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                 extra_postargs=flags)
        return True
    except Exception:
        return False
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


OPENMP_PROBE = """
#include <omp.h>
int main(void) { int n = 0;
#pragma omp parallel reduction(+:n)
  n += 1;
  return n > 0 ? 0 : 1; }
"""


class BuildExt(build_ext):
    """Adds OpenMP flags when the compiler supports them."""

    def build_extensions(self):
        if self.compiler.compiler_type == "msvc":
            omp = ["/openmp"]
            base = ["/O2"]
            link = []
        else:
            omp = ["-fopenmp"]
            base = ["-O3", "-fno-math-errno", "-Wall", "-Wno-unused-function"]
            link = []
        use_omp = os.environ.get("FASTCONV_NO_OPENMP", "") == "" and \
            _compiler_accepts(self.compiler, omp, OPENMP_PROBE)
        if not use_omp:
            print("fastconv: building WITHOUT OpenMP (compiler rejected it)",
                  file=sys.stderr)
        extra = os.environ.get("FASTCONV_EXTRA_CFLAGS", "").split()
        extra_link = os.environ.get("FASTCONV_EXTRA_LDFLAGS", "").split()
        if extra or extra_link:
            # The up-to-date check compares file times, not flags: objects
            # left in build/ by a plain build would be linked as they are.
            self.force = True
        for ext in self.extensions:
            ext.extra_compile_args = base + (omp if use_omp else []) + extra
            ext.extra_link_args = link + (omp if use_omp else []) + extra_link
            if use_omp:
                ext.define_macros.append(("FASTCONV_OPENMP", "1"))
        super().build_extensions()


sources = sorted(glob.glob(os.path.join("src", "*.c")))
extensions = [
    Extension(
        "fastconv._kernels",
        sources=[os.path.join("fastconv", "_kernels.pyx")] + sources,
        include_dirs=["src", numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        depends=sorted(glob.glob(os.path.join("src", "*.h"))),
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        include_path=["fastconv"],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)

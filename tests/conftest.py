"""Shared fixtures of fastconv's test suite.

- a check, before anything is collected, that the compiled extension
  fastconv._kernels imports (with a message saying how to build it if not);
- hypothesis profiles: "ci" (the default, the whole suite in a few minutes on
  two slow cores) and "dev" (more examples); pick one with
  HYPOTHESIS_PROFILE=dev;
- `torch`: PyTorch, the oracle (the one skip this suite allows: CI always
  installs torch);
- `isa`: every instruction-set level this machine supports, each activated
  for the test and the previous level restored after it.

The helpers shared by the test files live in tests/_helpers.py; pytest runs
with --import-mode=importlib, so this directory is put on sys.path here for
the test files to `from _helpers import ...`.
"""
import os
import sys

import pytest
from hypothesis import HealthCheck, settings

_TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from _helpers import isa_level, isa_levels  # noqa: E402

# ---------------------------------------------------------------------------
# the compiled extension

_BUILD_HELP = (
    "fastconv's compiled extension fastconv._kernels could not be imported.\n"
    "Build it (from the repository root) with\n"
    "    pip install --no-build-isolation -e .\n"
    "(needs Cython, NumPy, SciPy and a C compiler; rebuild after changing\n"
    "any .pyx/.pxi/.c/.h file), then run pytest again.")

try:
    import fastconv._kernels as _kernels
    _KERNELS_ERROR = None
except Exception as exc:  # reported cleanly by pytest_configure below
    # ImportError: not built; AttributeError and the like: a stale build that
    # no longer matches the Python sources.  Both are fixed by (re)building.
    _kernels = None
    _KERNELS_ERROR = f"{_BUILD_HELP}\n\nThe import failed with: {exc!r}"


def pytest_configure(config):
    if _KERNELS_ERROR is not None:
        raise pytest.UsageError(_KERNELS_ERROR)


# ---------------------------------------------------------------------------
# hypothesis

_COMMON = dict(
    deadline=None,
    derandomize=False,
    print_blob=True,
    # the `isa` fixture is function-scoped on purpose: it selects the level
    # once for all examples of a test, which is what we want.
    suppress_health_check=[HealthCheck.function_scoped_fixture,
                           HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=15, **_COMMON)
settings.register_profile("dev", max_examples=60, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# ---------------------------------------------------------------------------
# fixtures

def supported_isa_levels():
    """The levels from "generic" up to the best one this CPU supports."""
    return ["generic"] if _kernels is None else list(isa_levels())


@pytest.fixture(scope="session")
def torch():
    """PyTorch, the oracle.  The only optional dependency of the suite."""
    if os.environ.get("FASTCONV_REQUIRE_TORCH"):
        # CI: a missing oracle is a broken set-up, not a reason to skip.
        try:
            import torch
        except ImportError as exc:
            pytest.fail(f"FASTCONV_REQUIRE_TORCH is set but torch cannot be imported: {exc}")
        return torch
    torch = pytest.importorskip("torch")
    return torch


@pytest.fixture(params=supported_isa_levels())
def isa(request):
    """Run the test with the fast kernels of one instruction-set level."""
    with isa_level(request.param) as level:
        yield level


@pytest.fixture(params=["reference"] + [f"fast-{lvl}" for lvl in supported_isa_levels()])
def api(request):
    """For ops without algorithm=: the module whose ops the test calls,
    fastconv.reference or fastconv itself with one ISA level active (so the
    reference runs once, not once per level)."""
    import fastconv
    if request.param == "reference":
        yield fastconv.reference
    else:
        with isa_level(request.param.split("-", 1)[1]):
            yield fastconv


@pytest.fixture
def restore_threads():
    """The thread count as it was before the test."""
    import fastconv
    n = fastconv.get_num_threads()
    yield
    fastconv.set_num_threads(n)
    assert fastconv.get_num_threads() == n

"""Run .ci/memcheck_smoke.py under valgrind's memcheck and fail on any report
that involves fastconv's own code.

    python .ci/memcheck.py            # the python of the environment to test

The interpreter, NumPy and the dynamic loader have reports of their own under
valgrind (CPython was not built for it; glibc's strcmp reads whole words past
a string's end): they are counted and printed, not judged.  What fails the
run is any error -- invalid read or write, use of uninitialised memory, bad
free -- with a frame in fastconv's extension module, and any definite or
indirect leak allocated from a fastconv frame, or a "possibly lost" block that
fastconv itself allocated.
"""
import collections
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
OURS = "fastconv/_kernels"
ALLOCATORS = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc",
              "memalign"}


def frames(error):
    stack = error.find("stack")
    return [] if stack is None else [
        (f.findtext("fn", ""), f.findtext("obj", ""), f.findtext("file", ""),
         f.findtext("line", "")) for f in stack.findall("frame")]


def is_ours(frame):
    return OURS in frame[1]


def judge(error):
    """Whether this valgrind <error> is fastconv's fault."""
    kind = error.findtext("kind", "")
    stack = frames(error)
    if kind in ("Leak_DefinitelyLost", "Leak_IndirectlyLost"):
        return any(is_ours(f) for f in stack)
    if kind == "Leak_PossiblyLost":
        # Thread stacks created under an OpenMP region started by fastconv are
        # "possibly lost" by design; only a block fastconv allocated counts.
        callers = [f for f in stack if f[0] not in ALLOCATORS]
        return bool(callers) and is_ours(callers[0])
    if kind.startswith("Leak_"):
        return False
    return any(is_ours(f) for f in stack)


def describe(error):
    what = error.findtext("what") or error.findtext("xwhat/text") or ""
    lines = [f"{error.findtext('kind')}: {what}"]
    for fn, obj, file, line in frames(error)[:12]:
        where = f"{file}:{line}" if file else obj
        lines.append(f"    {fn} ({where})")
    return "\n".join(lines)


def main():
    smoke = os.path.join(HERE, "memcheck_smoke.py")
    with tempfile.TemporaryDirectory() as tmp:
        xml_path = os.path.join(tmp, "memcheck.xml")
        env = dict(os.environ, PYTHONMALLOC="malloc")
        cmd = ["valgrind", "--tool=memcheck", "--xml=yes", f"--xml-file={xml_path}",
               "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
               "--num-callers=40", sys.executable, smoke]
        run = subprocess.run(cmd, env=env)
        if run.returncode != 0:
            sys.exit(f"memcheck: the smoke script failed under valgrind "
                     f"(exit status {run.returncode})")
        root = ET.parse(xml_path).getroot()
    errors = root.findall("error")
    counts = collections.Counter(e.findtext("kind") for e in errors)
    ours = [e for e in errors if judge(e)]
    print("memcheck: all reports, by kind: " +
          (", ".join(f"{k} {n}" for k, n in sorted(counts.items())) or "none"))
    if ours:
        for e in ours:
            print(describe(e))
        sys.exit(f"memcheck: {len(ours)} report(s) in fastconv's code")
    print("memcheck: no invalid access, uninitialised use or leak in fastconv's code")


if __name__ == "__main__":
    main()

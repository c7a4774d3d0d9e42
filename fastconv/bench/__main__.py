"""``python -m fastconv.bench``: fastconv against the naive reference, NumPy
im2col and PyTorch on the layers of suite.json, in one interleaved run.

    python -m fastconv.bench                    quick run (a representative subset)
    python -m fastconv.bench --full             every layer of suite.json
    python -m fastconv.bench --backward         backward passes too
    python -m fastconv.bench --threads 1 --json out.json --plot out.png
    python -m fastconv.bench --ops pool2d --layers r50_b32_max3s2
    python -m fastconv.bench --list             the layers, and which the quick run uses
    GOMP_SPINCOUNT=3000 python -m fastconv.bench    torch's threads spin as briefly as fastconv's

Per layer: each implementation's median time, its GFLOP/s (conv) or GB/s
(pooling, batch norm), that rate as a fraction of this machine's SGEMM rate
or copy bandwidth measured in the same run, and its speedup over the
reference and over PyTorch; then geometric means of the speedups over
PyTorch per task.  See fastconv/bench/report.py for every column and
fastconv/bench/timing.py for how the time is measured.

On a machine shared with other work, OpenMP threads that spin while waiting
lose their CPU and then stall each parallel call by a scheduler time slice,
and threads that sleep at once pay a wake-up per parallel region.
fastconv's own threads spin briefly, then sleep, unless told otherwise (see
fastconv/_config.py); GOMP_SPINCOUNT (or OMP_WAIT_POLICY) set before Python
starts applies to torch's runtime too (the OpenMP runtimes read it when
they load).  The header prints the settings.

OpenBLAS's threads (NumPy's and SciPy's: the reference, NumPy im2col,
fastconv's im2col, the SGEMM ceiling) spin for 2^28 cycles, about 0.1 s,
after each call, and took the cores from whatever was timed next: every
implementation measured after one of them ran at about half its speed
(lenet_c2: fastconv 305 GFLOP/s, torch 218; 708 and 469 otherwise).  So the
command runs itself again with OPENBLAS_THREAD_TIMEOUT=20 (2^20 cycles,
about 0.3 ms: enough to keep them awake between the GEMMs of one call)
unless that variable is already set; OpenBLAS reads it when it loads.
"""
import argparse
import os
import sys

from . import report
from . import suite as S
from .ceilings import Ceilings
from .timing import choose_size, interleaved


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m fastconv.bench",
        description="Benchmark fastconv against its reference, NumPy im2col and "
                    "PyTorch (when installed) on the layers of suite.json.")
    p.add_argument("--full", action="store_true",
                   help="every layer of suite.json (default: a quick subset)")
    p.add_argument("--backward", action="store_true",
                   help="also time the backward ops (conv2d_backward, pooling and "
                        "batch-norm backward; torch: autograd)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads for fastconv (and SciPy's BLAS), torch and NumPy's "
                        "BLAS (default: fastconv's current setting)")
    p.add_argument("--ops", metavar="LIST",
                   help="comma-separated op families: conv2d,pool2d,batch_norm")
    p.add_argument("--layers", metavar="LIST",
                   help="comma-separated layer names of suite.json (from the whole "
                        "suite, not only the quick subset)")
    p.add_argument("--json", metavar="PATH", help="write every number to a JSON file")
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart of the speedups")
    p.add_argument("--markdown", metavar="PATH",
                   help="write the results as markdown tables (for benchmarks/RESULTS.md)")
    p.add_argument("--call-budget", type=float, default=1.0, metavar="S",
                   help="an implementation whose single call would take longer than "
                        "this runs on a scaled-down copy of the layer (default 1.0 s)")
    p.add_argument("--layer-budget", type=float, metavar="S",
                   help="timing rounds per layer fill about this many seconds "
                        "(default 3 quick, 6 --full)")
    p.add_argument("--min-rounds", type=int, default=3, metavar="N")
    p.add_argument("--max-rounds", type=int, metavar="N",
                   help="(default 15 quick, 25 --full)")
    p.add_argument("--ceiling-repeats", type=int, default=4, metavar="N",
                   help="SGEMM and copy calls before and after the layers (default 4)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--list", action="store_true", help="list the layers and exit")
    args = p.parse_args(argv)
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads: expected a positive int, got {args.threads}")
    if args.call_budget <= 0:
        p.error("--call-budget: expected a positive number of seconds")
    if args.layer_budget is None:
        args.layer_budget = 6.0 if args.full else 3.0
    if args.max_rounds is None:
        args.max_rounds = 25 if args.full else 15
    args.max_rounds = max(args.max_rounds, args.min_rounds)
    return args


def _split(text):
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


class Progress:
    """tqdm on stderr when installed, else a plain counter line per step."""

    def __init__(self, total, enabled=True):
        self.total, self.count, self.bar = total, 0, None
        self.enabled = enabled
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, file=sys.stderr, unit="layer",
                                dynamic_ncols=True, leave=False)
            except ImportError:
                self.bar = None

    def start(self, label):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_description(label)
        else:
            print(f"[{self.count + 1}/{self.total}] {label}", file=sys.stderr, flush=True)

    def step(self):
        self.count += 1
        if self.bar is not None:
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def run_layer(task, family, layer, impl_list, args):
    """Size, then time, every implementation on one layer; the result dict."""
    from .impls import make_inputs
    rungs = S.ladder(family, layer)
    inputs = {}

    def get_inputs(i):
        if i not in inputs:
            inputs[i] = make_inputs(task, rungs[i])
        return inputs[i]

    def work(i):
        return S.work(task, rungs[i])[0]

    chosen, rows = [], []
    for impl in impl_list:
        row = {"impl": impl.key, "label": impl.label, "role": impl.role}
        try:
            choice = choose_size(len(rungs), lambda i: impl.build(task, rungs[i], get_inputs(i)),
                                 work, args.call_budget)
        except Exception as exc:          # a kernel that is not there yet, say
            row["error"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            continue
        run = rungs[choice.index]
        row.update({
            "scaled": S.is_scaled(run),
            "size": ("scaled: " + S.scale_note(run)) if S.is_scaled(run) else "full",
            "layer_run": {k: v for k, v in run.items() if k not in ("name", "scaled")},
            "work": S.work(task, run)[0],
            "first_call_s": choice.first_s,
            "sizing_calls": [{"size": S.scale_note(rungs[i]) or "full", "seconds": t}
                             for i, t in choice.probes],
        })
        rows.append(row)
        chosen.append((row, choice))
    # free the inputs of sizes nobody runs
    used = {c.index for _, c in chosen}
    for i in list(inputs):
        if i not in used:
            del inputs[i]

    if chosen:
        timings = interleaved([c.fn for _, c in chosen], [c.first_s for _, c in chosen],
                              args.layer_budget, args.min_rounds, args.max_rounds)
        for (row, _), samples, reps, med in zip(chosen, timings.samples, timings.repeats,
                                                timings.medians):
            row.update({"time_s": med, "times_s": samples, "calls_per_sample": reps,
                        "rounds": timings.rounds, "rate": row["work"] / med})
    amount, unit = S.work(task, layer)
    return {"task": task, "family": family, "layer": dict(layer),
            "geometry": S.describe(family, layer), "work_full": amount, "unit": unit,
            "rows": rows}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    suite = S.load_suite()
    if args.list:
        for fam in S.FAMILIES:
            print(fam)
            for layer in suite[fam]:
                quick = "quick" if layer["name"] in S.QUICK[fam] else ""
                print(f"  {layer['name']:18s}{quick:7s}{S.describe(fam, layer)}")
        return 0
    try:
        selection = S.select(suite, full=args.full, families=_split(args.ops),
                             names=_split(args.layers))
    except ValueError as exc:
        print(f"python -m fastconv.bench: {exc}", file=sys.stderr)
        return 2
    if not selection:
        print("python -m fastconv.bench: no layer selected", file=sys.stderr)
        return 2

    import fastconv
    from . import impls
    if args.no_torch:
        impls._TORCH = None
    have_torch = impls.torch_module() is not None
    threads = args.threads if args.threads is not None else fastconv.get_num_threads()
    impls.set_threads(threads)
    impls.warm_up_torch()

    jobs = [(task, fam, layer) for fam, layer in selection
            for task in S.TASKS[fam][:2 if args.backward else 1]]
    counts = {fam: sum(1 for f, _ in selection if f == fam) for fam in S.FAMILIES}
    what = ", ".join(f"{n} {fam}" for fam, n in counts.items() if n)
    kind = ("selected layers" if args.layers else "full suite" if args.full
            else "quick run; --full for the whole suite")
    settings = {
        "selection": f"{kind}: {what} layer(s)"
                     + (", forward and backward" if args.backward else ", forward"),
        "full": args.full, "backward": args.backward,
        "call_budget_s": args.call_budget, "layer_budget_s": args.layer_budget,
        "min_rounds": args.min_rounds, "max_rounds": args.max_rounds,
        "argv": sys.argv[1:] if argv is None else list(argv),
    }
    info = report.header_info(threads, impls.thread_counts(), settings)
    print(report.format_header(info), flush=True)
    print("measuring the SGEMM and copy ceilings, then "
          f"{len(jobs)} layer(s) ...", file=sys.stderr, flush=True)

    ceilings = Ceilings()
    ceilings.measure("before", args.ceiling_repeats)
    progress = Progress(len(jobs), enabled=not args.no_progress)
    results, interrupted = [], False
    try:
        for task, fam, layer in jobs:
            progress.start(f"{task} {layer['name']}")
            results.append(run_layer(task, fam, layer,
                                     impls.impls_for(task, include_torch=have_torch), args))
            progress.step()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        progress.close()
    ceilings.measure("after", args.ceiling_repeats)
    info["machine"]["load_average_at_end"] = report.load_average()

    report.derive(results, ceilings)
    text = report.format_report(info, ceilings, results, interrupted)
    # the header was printed at the start; print the rest
    print(text[len(report.format_header(info)) + 1:])
    if args.json:
        report.write_json(args.json, info, ceilings, results, interrupted)
        print(f"wrote {args.json}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report.format_markdown(info, ceilings, results))
        print(f"wrote {args.markdown}")
    if args.plot:
        message = report.plot(args.plot, info, results)
        if message:
            print(message, file=sys.stderr)
        else:
            print(f"wrote {args.plot}")
    return 130 if interrupted else 0


OPENBLAS_TIMEOUT = "20"


def _exec_with_short_blas_spin():
    """Run this command again with OPENBLAS_THREAD_TIMEOUT set (see the
    module's docstring); returns only when it is set already."""
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ:
        return
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = OPENBLAS_TIMEOUT
    sys.stdout.flush()
    os.execv(sys.executable, [sys.executable, "-m", "fastconv.bench", *sys.argv[1:]])


if __name__ == "__main__":
    _exec_with_short_blas_spin()
    sys.exit(main())

"""What ``python -m fastconv.bench`` prints and writes: the header, a table
per layer, the geometric means, the JSON record and the bar chart.

Results are plain dicts (JSON-ready).  One row per implementation:

    impl, label, role          which implementation
    size, scaled, layer_run    "full", or the scaled copy it ran on
    work, unit                 FLOPs or least bytes of one call at that size
    time_s, times_s            median seconds per call, and every round's
    rate                       work / time_s (FLOP/s or B/s)
    fraction_of_ceiling        rate / this run's SGEMM rate or copy bandwidth
    vs_reference, vs_torch     rate / the other's rate: the speedup.  When
                               both ran the same size this is the ratio of
                               times; when one was scaled it is the ratio of
                               GFLOP/s (GB/s) and *_rate_ratio is true
"""
import contextlib
import datetime
import io
import json
import math
import os
import platform


UNITS = {"FLOP": ("GFLOP/s", "SGEMM"), "B": ("GB/s", "copy")}


# --------------------------------------------------------------------------
# header

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fastconv_config():
    """show_config()'s lines as a dict (the public face, parsed)."""
    import fastconv
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        fastconv.show_config()
    config = {}
    for line in buf.getvalue().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            config[key.strip()] = value.strip()
    return config


def load_average():
    """The 1-minute load average (other work on this machine), or None."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def header_info(threads, thread_counts, settings):
    import numpy
    import scipy
    from .impls import torch_module
    torch = torch_module()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
        "machine": {"cpu": cpu_model(), "logical_cpus": os.cpu_count(),
                    "usable_cpus": usable, "platform": platform.platform(),
                    "load_average_at_start": load_average()},
        "threads": threads,
        "thread_counts": thread_counts,
        "environment": {k: os.environ.get(k) for k in
                        ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS",
                         "FASTCONV_ISA", "OPENBLAS_THREAD_TIMEOUT")},
        "fastconv_config": fastconv_config(),
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__,
                     "scipy": scipy.__version__,
                     "torch": torch.__version__ if torch is not None else None},
        "settings": settings,
    }


def format_header(info):
    m, cfg, v, st = info["machine"], info["fastconv_config"], info["versions"], info["settings"]
    counts = ", ".join(f"{k} {c}" for k, c in info["thread_counts"].items())
    lines = [
        f"fastconv.bench  {info['date']}  ({st['selection']})",
        f"machine:  {m['cpu']}, {m['logical_cpus']} cores ({m['usable_cpus']} usable), "
        f"{m['platform']}, load average {m['load_average_at_start']} at start",
        f"threads:  {info['threads']} ({counts}); OMP_WAIT_POLICY="
        f"{info.get('environment', {}).get('OMP_WAIT_POLICY') or 'unset'}, GOMP_SPINCOUNT="
        f"{info.get('environment', {}).get('GOMP_SPINCOUNT') or 'unset'} (fastconv's "
        f"threads: {cfg.get('omp_wait_policy', '?')}; torch's spin long unless set); "
        f"OPENBLAS_THREAD_TIMEOUT="
        f"{info.get('environment', {}).get('OPENBLAS_THREAD_TIMEOUT') or 'unset'}",
        f"fastconv: {cfg.get('fastconv', '?')}, isa {cfg.get('isa', '?')} (available "
        f"{cfg.get('isa_available', '?')}), openmp {cfg.get('openmp', '?')}, "
        f"blas {cfg.get('blas', '?')}",
        f"versions: python {v['python']}, numpy {v['numpy']}, scipy {v['scipy']}, torch "
        + (v["torch"] or "not installed (torch columns left out)"),
        f"timing:   interleaved rounds (A B C A B C ...) after a warm-up round, median "
        f"per implementation; {st['layer_budget_s']:g} s per layer, "
        f"{st['min_rounds']}-{st['max_rounds']} rounds",
        f"sizes:    per-call budget {st['call_budget_s']:g} s, decided from measured first "
        f"calls: an implementation whose call would take longer runs on a scaled-down",
        "          copy of the layer (N, then H/W, then channels halved; 'size' column), "
        "and is compared with the others by rate, not time",
    ]
    return "\n".join(lines)


def format_ceilings(ceilings):
    c = ceilings.as_dict()
    s, b = c["sgemm"], c["copy"]

    def spread(d):
        parts = [f"{when} {d['median_' + when]:.1f}" for when in ("before", "after")
                 if "median_" + when in d]
        return ", ".join(parts)

    return "\n".join([
        f"ceilings (this run): SGEMM {s['n']}^3 float32 {s['median']:.1f} GFLOP/s "
        f"(median of {len(s['samples_before']) + len(s['samples_after'])}: {spread(s)})",
        f"                     np.copyto {b['bytes_per_array'] // 2**20} MB float32 "
        f"{b['median']:.1f} GB/s read+write, one thread (median of "
        f"{len(b['samples_before']) + len(b['samples_after'])}: {spread(b)})",
    ])


# --------------------------------------------------------------------------
# derived numbers

def derive(results, ceilings):
    """Fill in fraction_of_ceiling and the speedups of every row."""
    for res in results:
        ceiling = ceilings.for_unit(res["unit"])
        rows = [r for r in res["rows"] if r.get("rate")]
        by_role = {r["role"]: r for r in rows if r["role"] in ("reference", "torch")}
        for r in res["rows"]:
            if not r.get("rate"):
                continue
            r["fraction_of_ceiling"] = r["rate"] / ceiling
            for name, base in (("reference", by_role.get("reference")),
                               ("torch", by_role.get("torch"))):
                if base is None:
                    continue
                r[f"vs_{name}"] = r["rate"] / base["rate"]
                r[f"vs_{name}_rate_ratio"] = r["layer_run"] != base["layer_run"]
    return results


def geomeans(results, baseline="torch"):
    """{task: {label: {"geomean", "layers", "rate_ratios"}}} of vs_<baseline>."""
    out = {}
    for res in results:
        for r in res["rows"]:
            if r["role"] == baseline or f"vs_{baseline}" not in r:
                continue
            entry = out.setdefault(res["task"], {}).setdefault(
                r["label"], {"logs": [], "rate_ratios": 0})
            entry["logs"].append(math.log(r[f"vs_{baseline}"]))
            entry["rate_ratios"] += bool(r[f"vs_{baseline}_rate_ratio"])
    for task in out:
        for label, e in out[task].items():
            logs = e.pop("logs")
            e["geomean"] = math.exp(sum(logs) / len(logs))
            e["layers"] = len(logs)
    return out


# --------------------------------------------------------------------------
# text

def fmt_time(s):
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"


def fmt_fraction(frac):
    if frac is None:
        return "-"
    return f"{frac:.0%}" if frac >= 0.1 else f"{frac:.1%}"


def fmt_ratio(v):
    """A speedup with three significant digits or so: 0.123x, 1.23x, 12.3x, 123x."""
    if v >= 100:
        return f"{v:.0f}x"
    if v >= 10:
        return f"{v:.1f}x"
    return f"{v:.2f}x" if v >= 0.01 else f"{v:.1e}x"


def _fmt_speedup(r, key):
    if key not in r:
        return "-"
    return fmt_ratio(r[key]) + ("*" if r[f"{key}_rate_ratio"] else "")


def format_layer(res):
    unit_rate, ceiling_name = UNITS[res["unit"]]
    amount = res["work_full"]
    amount_txt = (f"{amount / 1e9:.3f} GFLOP" if res["unit"] == "FLOP"
                  else f"{amount / 1e6:.1f} MB")
    lines = [f"{res['task']}  {res['layer']['name']}  {res['geometry']}   "
             f"({amount_txt} per call)"]
    head = (f"  {'implementation':16s}{'time':>11s}{unit_rate:>10s}{'of ' + ceiling_name:>10s}"
            f"{'vs ref':>9s}{'vs torch':>10s}  size")
    lines.append(head)
    for r in res["rows"]:
        if r.get("error"):
            lines.append(f"  {r['label']:16s}  failed: {r['error']}")
            continue
        rate = r["rate"] / 1e9
        frac = r.get("fraction_of_ceiling")
        lines.append(
            f"  {r['label']:16s}{fmt_time(r['time_s']):>11s}{rate:>10.2f}"
            f"{fmt_fraction(frac):>10s}"
            f" {_fmt_speedup(r, 'vs_reference'):>8s} {_fmt_speedup(r, 'vs_torch'):>9s}"
            f"  {r['size']}")
    return "\n".join(lines)


def format_geomeans(gm, baseline="torch"):
    if not gm:
        return ""
    lines = [f"geometric mean of the speedup vs {baseline} per task (>1: faster than "
             f"{baseline}; * = some layers compared by rate because one side was scaled)",
             f"  {'task':22s}{'implementation':18s}{'geomean':>9s}{'layers':>8s}"]
    for task, per in gm.items():
        for label, e in per.items():
            star = "*" if e["rate_ratios"] else ""
            lines.append(f"  {task:22s}{label:18s}{fmt_ratio(e['geomean']):>9s}{star:1s}"
                         f"{e['layers']:>7d}")
    return "\n".join(lines)


FOOTNOTE = ("time: median seconds per call at the size shown ('full' or the scaled "
            "copy); GFLOP/s = 2*N*K*P*Q*(C/groups)*R*S / time (backward: twice the "
            "forward's FLOPs); GB/s = least bytes (inputs read once + outputs written "
            "once, + int64 indices for max-pool backward) / time; 'of SGEMM' / 'of copy' "
            "= that rate / this run's ceiling; vs ref, vs torch = speedup (rate ratio; "
            "equal to the time ratio when both ran the same size, marked * when they did "
            "not).")


def format_report(info, ceilings, results, interrupted=False):
    parts = [format_header(info), format_ceilings(ceilings)]
    end_load = info["machine"].get("load_average_at_end")
    if end_load is not None:
        parts.append(f"load average at the end: {end_load} (on {info['machine']['logical_cpus']} "
                     f"cores: anything above ~0 is other work sharing the machine)")
    parts.append("")
    for res in results:
        parts.append(format_layer(res))
        parts.append("")
    baseline = "torch" if info["versions"]["torch"] else "reference"
    gm = geomeans(results, baseline)
    if gm:
        parts.append(format_geomeans(gm, baseline))
        parts.append("")
    parts.append(_wrap(FOOTNOTE))
    if interrupted:
        parts.append("INTERRUPTED: the layers above are the ones that finished.")
    return "\n".join(parts)


def _wrap(text, width=100):
    import textwrap
    return "\n".join(textwrap.wrap(text, width))


# --------------------------------------------------------------------------
# markdown (benchmarks/RESULTS.md)

def format_markdown(info, ceilings, results):
    """Tables for benchmarks/RESULTS.md: per task, one row per layer, one
    column per implementation holding its rate and, in brackets, its speedup
    over the baseline (torch, else the reference); scaled runs are marked and
    listed under the table."""
    baseline = "torch" if info["versions"]["torch"] else "reference"
    m, c = info["machine"], ceilings.as_dict()
    lines = [
        f"Run {info['date']}: {m['cpu']}, {m['logical_cpus']} cores, {info['threads']} "
        f"thread(s) ({', '.join(f'{k} {v}' for k, v in info['thread_counts'].items())}); "
        f"fastconv {info['fastconv_config'].get('fastconv', '?')} isa "
        f"{info['fastconv_config'].get('isa', '?')}; numpy {info['versions']['numpy']}, "
        f"scipy {info['versions']['scipy']}, torch {info['versions']['torch'] or 'not installed'}; "
        f"load average {m.get('load_average_at_start')} at start, "
        f"{m.get('load_average_at_end')} at the end.",
        "",
        f"Ceilings measured in the same run: SGEMM {c['sgemm']['median']:.1f} GFLOP/s "
        f"(2048^3 float32, scipy.linalg.blas.sgemm, median of "
        f"{len(c['sgemm']['samples_before']) + len(c['sgemm']['samples_after'])}), "
        f"np.copyto {c['copy']['median']:.1f} GB/s (256 MB float32, read+write, one thread).",
        "",
    ]
    tasks = []
    for res in results:
        if res["task"] not in tasks:
            tasks.append(res["task"])
    for task in tasks:
        layers = [res for res in results if res["task"] == task]
        unit_rate, ceiling_name = UNITS[layers[0]["unit"]]
        labels = []
        for res in layers:
            for r in res["rows"]:
                if r["label"] not in labels:
                    labels.append(r["label"])
        lines.append(f"#### {task}: {unit_rate} (speedup vs {baseline})")
        lines.append("")
        first = labels[0]
        lines.append("| layer | " + " | ".join(labels) + f" | {first} of {ceiling_name} |")
        lines.append("|---|" + "---:|" * (len(labels) + 1))
        notes = []
        for res in layers:
            cells = []
            for label in labels:
                r = next((r for r in res["rows"] if r["label"] == label), None)
                if r is None or r.get("error") or "rate" not in r:
                    cells.append("failed" if r is not None and r.get("error") else "-")
                    continue
                mark = ""
                if r.get("scaled"):
                    notes.append(f"{res['layer']['name']} {label}: {r['size']}")
                    mark = "&dagger;"
                sp = r.get(f"vs_{baseline}")
                sp_txt = f" ({fmt_ratio(sp)}{'*' if r.get(f'vs_{baseline}_rate_ratio') else ''})" \
                    if sp is not None and r["role"] != baseline else ""
                cells.append(f"{r['rate'] / 1e9:.2f}{mark}{sp_txt}")
            r0 = next((r for r in res["rows"] if r["label"] == first), {})
            frac = r0.get("fraction_of_ceiling")
            cells.append(fmt_fraction(frac))
            lines.append(f"| {res['layer']['name']} | " + " | ".join(cells) + " |")
        lines.append("")
        if notes:
            lines.append("&dagger; ran on a scaled-down copy (compared by rate, * on the "
                         "speedup): " + "; ".join(notes) + ".")
            lines.append("")
    gm = geomeans(results, baseline)
    if gm:
        lines.append(f"#### Geometric mean of the speedup vs {baseline}")
        lines.append("")
        lines.append("| task | implementation | geomean | layers |")
        lines.append("|---|---|---:|---:|")
        for task, per in gm.items():
            for label, e in per.items():
                star = "*" if e["rate_ratios"] else ""
                lines.append(f"| {task} | {label} | {fmt_ratio(e['geomean'])}{star} | {e['layers']} |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# files

def write_json(path, info, ceilings, results, interrupted=False):
    baseline = "torch" if info["versions"]["torch"] else "reference"
    record = dict(info)
    record.update({
        "tool": "fastconv.bench", "format": 1, "interrupted": interrupted,
        "ceilings": ceilings.as_dict(), "results": results,
        f"geomean_vs_{baseline}": geomeans(results, baseline),
    })
    with open(path, "w") as f:
        json.dump(record, f, indent=1, default=_jsonable)
        f.write("\n")


def _jsonable(obj):
    if isinstance(obj, tuple):
        return list(obj)
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# one colour per implementation in every panel
_COLOURS = {"fastconv auto": "#1f77b4", "fastconv": "#1f77b4", "fastconv direct": "#ff7f0e",
            "fastconv im2col": "#2ca02c", "reference": "#d62728", "numpy im2col": "#9467bd",
            "torch": "#7f7f7f"}


def plot(path, info, results):
    """A PNG bar chart of the speedups: one panel per task, one group of bars
    per layer, one bar per implementation, drawn from 1 (log scale: up is
    faster than the baseline, down slower), hatched when compared by rate
    with a scaled-down run.  Returns None, or a message saying why no chart
    was written (matplotlib missing)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError:
        return ("--plot: matplotlib is not installed (pip install matplotlib); "
                "no chart written")
    baseline = "torch" if info["versions"]["torch"] else "reference"
    key = f"vs_{baseline}"
    tasks = []
    for res in results:
        if res["task"] not in tasks:
            tasks.append(res["task"])
    if not tasks:
        return "--plot: no results to plot"
    per_task = {t: [res for res in results if res["task"] == t] for t in tasks}
    widest = max(len(v) for v in per_task.values())
    fig, axes = plt.subplots(len(tasks), 1, squeeze=False, layout="constrained",
                             figsize=(max(8.0, 1.5 + 0.85 * widest), 3.2 * len(tasks) + 0.9))
    for ax, task in zip(axes[:, 0], tasks):
        layers = per_task[task]
        labels = []
        for res in layers:
            for r in res["rows"]:
                if r["role"] != baseline and key in r and r["label"] not in labels:
                    labels.append(r["label"])
        width = 0.8 / max(1, len(labels))
        values = []
        annotate = len(layers) * len(labels) <= 60
        for j, label in enumerate(labels):
            colour = _COLOURS.get(label, None)
            for i, res in enumerate(layers):
                r = next((r for r in res["rows"] if r["label"] == label and key in r), None)
                if r is None:
                    continue
                v = r[key]
                values.append(v)
                scaled = r[f"{key}_rate_ratio"]
                x = i - 0.4 + width * (j + 0.5)
                ax.bar(x, v - 1.0, width, bottom=1.0, color=colour,
                       hatch="///" if scaled else None,
                       edgecolor="white" if scaled else colour, linewidth=0.5)
                if annotate:
                    ax.annotate(f"{v:.2g}", (x, v), xytext=(0, 2 if v >= 1 else -2),
                                textcoords="offset points", ha="center",
                                va="bottom" if v >= 1 else "top", fontsize=6, rotation=90)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        lo, hi = min(values + [1.0]), max(values + [1.0])
        ax.set_ylim(lo / 2.2, hi * 2.2)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels([res["layer"]["name"] for res in layers], rotation=20,
                           ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(layers) - 0.4)
        ax.set_ylabel(f"speedup vs {baseline}")
        ax.set_title(task, fontsize=10)
        ax.grid(axis="y", which="major", alpha=0.3)
        handles = [Patch(facecolor=_COLOURS.get(label), label=label) for label in labels]
        handles.append(Patch(facecolor="#bbbbbb", edgecolor="white", hatch="///",
                             label="scaled run:\nby rate"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  frameon=False)
    m = info["machine"]
    fig.suptitle(f"fastconv.bench {info['date']}: {m['cpu']}, {info['threads']} threads\n"
                 f"speedup vs {baseline}, bars drawn from 1 (up: faster, down: slower); "
                 f"hatched: compared by rate with a scaled-down run", fontsize=8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None

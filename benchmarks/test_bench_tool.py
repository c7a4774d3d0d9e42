"""Checks of the benchmark tool itself (fastconv/bench), not benchmarks:
scaled copies of the suite's layers, the pytest-benchmark case ids, the size
search of timing.choose_size, and one small end-to-end run of
``python -m fastconv.bench``.  They run under plain ``pytest benchmarks/``;
``--benchmark-only`` skips them.
"""
import json
import time

import pytest

from fastconv.bench import cases as C
from fastconv.bench import suite as S
from fastconv.bench import timing as T
from fastconv.bench.__main__ import main

SUITE = S.load_suite()


@pytest.mark.parametrize("family,layer",
                         [(f, l) for f in S.FAMILIES for l in SUITE[f]],
                         ids=lambda v: v if isinstance(v, str) else v["name"])
def test_ladder_copies_are_valid_and_smaller(family, layer):
    rungs = S.ladder(family, layer)
    assert rungs[0] == layer and not S.is_scaled(rungs[0])
    for task in S.TASKS[family]:
        works = [S.work(task, r)[0] for r in rungs]
        assert all(a > b for a, b in zip(works, works[1:])), works
    for r in rungs[1:]:
        assert S.is_scaled(r) and S.scale_note(r) and S.scale_tag(r).startswith("scaled-")
        S.output_shape(family, r)             # raises if the copy is not a valid layer
        for key in ("stride", "padding", "dilation", "R", "S", "kernel", "op", "ceil_mode"):
            assert r.get(key) == layer.get(key)
        if family == "conv2d":
            assert r["C"] // r["groups"] * r["groups"] == r["C"]
            assert r["K"] % r["groups"] == 0


def test_benchmark_case_ids_are_unique_and_labelled():
    for task in ("conv2d", "conv2d_backward", "pool2d", "pool2d_backward",
                 "batch_norm", "batch_norm_backward"):
        all_cases = C.cases(task, SUITE)
        ids = [c.id for c in all_cases]
        assert len(ids) == len(set(ids)), task
        family = S.family_of(task)
        assert len({c.layer["name"] for c in all_cases}) == len(SUITE[family])
        for c in all_cases:
            assert ("-scaled-" in c.id) == c.scaled
            if c.impl.role != "reference":
                assert not c.scaled, c.id       # only the reference is ever scaled


def test_suite_json_is_the_shared_one():
    """The packaged suite.json is the one the benchmarks read, and it holds
    every family with uniquely named layers."""
    names = [l["name"] for f in S.FAMILIES for l in SUITE[f]]
    assert len(names) == len(set(names))
    assert all(SUITE[f] for f in S.FAMILIES)
    assert S.SUITE_PATH.endswith("fastconv/bench/suite.json")


def test_quick_selection_names_exist():
    for family, names in S.QUICK.items():
        known = {l["name"] for l in SUITE[family]}
        assert names and set(names) <= known, family
    chosen = S.select(SUITE)
    assert {f for f, _ in chosen} == set(S.FAMILIES)
    assert len(S.select(SUITE, full=True)) == sum(len(SUITE[f]) for f in S.FAMILIES)
    assert [l["name"] for _, l in S.select(SUITE, names=["vgg_bn256x14"])] == ["vgg_bn256x14"]
    with pytest.raises(ValueError, match="unknown layer"):
        S.select(SUITE, names=["no_such_layer"])


def _fake_ladder(seconds_per_work, fixed=0.0, n=12):
    works = [2.0 ** -i for i in range(n)]
    calls = []

    def build(i):
        def fn():
            calls.append(i)
            time.sleep(fixed + seconds_per_work * works[i])
        return fn
    return works, calls, build


def test_choose_size_keeps_a_fast_call_full():
    works, calls, build = _fake_ladder(0.02)
    choice = T.choose_size(len(works), build, lambda i: works[i], budget_s=0.2)
    assert choice.index == 0


def test_choose_size_scales_a_slow_call_without_running_it_full():
    works, calls, build = _fake_ladder(1.6)         # the full call would take 1.6 s
    choice = T.choose_size(len(works), build, lambda i: works[i], budget_s=0.2)
    assert choice.index in (3, 4)                    # 0.2 s or 0.1 s a call
    assert min(calls) >= 3                           # 1.6, 0.8, 0.4 s never called


def test_choose_size_climbs_through_size_independent_costs():
    # 0.06 s whatever the size (a stall, a fixed overhead): the linear
    # prediction from small copies must not stop the climb short of full size
    works, calls, build = _fake_ladder(0.0, fixed=0.06)
    choice = T.choose_size(len(works), build, lambda i: works[i], budget_s=0.2)
    assert choice.index == 0


def test_interleaved_rounds_and_medians():
    order = []
    fns = [lambda: order.append("a"), lambda: order.append("b")]
    timings = T.interleaved(fns, [1e-6, 1e-6], budget_s=0.0, min_rounds=3, max_rounds=5)
    assert timings.rounds == 3
    assert len(timings.samples[0]) == len(timings.samples[1]) == 3
    assert all(m > 0 for m in timings.medians)
    # interleaved: the calls alternate in blocks of one sample each
    reps = timings.repeats[0]
    assert order[:2 * reps] == ["a"] * reps + ["b"] * reps


def test_cli_small_run(tmp_path, capsys):
    out_json = tmp_path / "b.json"
    out_md = tmp_path / "b.md"
    rc = main(["--layers", "r50_3x3_512x7,vgg_max2_512,vgg_bn256x14", "--backward",
               "--layer-budget", "0.1", "--ceiling-repeats", "1", "--no-progress",
               "--json", str(out_json), "--markdown", str(out_md)])
    assert rc == 0
    text = capsys.readouterr().out
    for word in ("SGEMM", "np.copyto", "r50_3x3_512x7", "conv2d_backward", "vgg_max2_512",
                 "batch_norm_backward", "geometric mean", "numpy im2col"):
        assert word in text
    record = json.loads(out_json.read_text())
    assert record["ceilings"]["sgemm"]["median"] > 0
    assert {r["task"] for r in record["results"]} == {
        "conv2d", "conv2d_backward", "pool2d", "pool2d_backward", "batch_norm",
        "batch_norm_backward"}
    for res in record["results"]:
        for row in res["rows"]:
            assert "error" not in row, row
            assert row["rate"] > 0 and row["time_s"] > 0
            assert row["size"] == "full" or row["size"].startswith("scaled: ")
            if row["role"] != "reference":
                assert row["vs_reference"] > 0
    assert "| layer |" in out_md.read_text()


@pytest.mark.parametrize("preset", [None, "7"])
def test_command_sets_a_short_openblas_spin(preset):
    """`python -m fastconv.bench` runs itself again with
    OPENBLAS_THREAD_TIMEOUT=20 unless the variable is set, and says so in
    its header (OpenBLAS reads it only when it loads)."""
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if preset is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    run = subprocess.run(
        [sys.executable, "-m", "fastconv.bench", "--layers", "vgg_bn256x14", "--no-torch",
         "--layer-budget", "0.05", "--ceiling-repeats", "1", "--no-progress"],
        env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    want = preset if preset is not None else "20"
    assert f"OPENBLAS_THREAD_TIMEOUT={want}" in run.stdout.splitlines()[2]

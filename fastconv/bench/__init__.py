"""`python -m fastconv.bench`: fastconv against its reference, NumPy im2col
and PyTorch on the layers of suite.json (see __main__.py for the options).

    suite.json       the benchmark layers (the one copy in the repository)
    suite.py         loading and selecting layers, work counts, scaled copies
    impls.py         the implementations compared, their inputs, threads
    numpy_im2col.py  the plain-NumPy im2col baseline
    timing.py        interleaved timing and size selection from measured calls
    ceilings.py      this machine's SGEMM rate and copy bandwidth
    report.py        the printed tables, JSON, markdown and the bar chart
    cases.py         the fixed-size cases of the pytest-benchmark suites
                     (benchmarks/test_bench_*.py)
"""

"""Timing on a small, shared, noisy machine (DESIGN.md section 4).

- :func:`choose_size`: which copy of a layer an implementation runs, from
  measured first calls, so that one call stays within a time budget.
- :func:`interleaved`: the implementations of one layer called in turn,
  A B C A B C ..., a warm-up round first, as many rounds as the layer's
  time budget allows (within [min_rounds, max_rounds]), each implementation's
  median over the rounds.  Interleaving spreads the machine's drift over all
  of them alike, so their ratios hold even when absolute times wander.
"""
import gc
import math
import time
from dataclasses import dataclass, field

MIN_SAMPLE_S = 0.005     # a sample shorter than this repeats the call
MAX_REPEATS = 1000
OVERSHOOT = 1.5          # a measured first call may exceed the budget by this factor
MAX_GROWTH = 8.0         # choose_size grows the work by at most this per step
RETRY_BELOW = 4.0        # a first call over budget but under this factor is repeated once
CHEAP = 0.25             # a sizing call under CHEAP * budget is repeated once


def _median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])


median = _median


def time_call(fn, repeats=1):
    """Seconds per call of fn(), over `repeats` back-to-back calls, GC off."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - t0) / repeats
    finally:
        if enabled:
            gc.enable()


@dataclass
class Choice:
    """What choose_size settled on for one implementation."""
    index: int              # into the ladder; 0 is the full layer
    fn: object              # the callable at that size
    first_s: float          # its first (cold) call, seconds
    probes: list = field(default_factory=list)   # [(ladder index, seconds)]


def choose_size(n_rungs, build, work, budget_s):
    """Largest copy of a layer (ladder indices 0 .. n_rungs-1: full size
    first, each smaller than the one before) whose call takes at most about
    `budget_s`.

    Measured, never assumed.  The smallest copy is called first (twice:
    first calls are cold -- torch's first autograd call alone can take half
    a second).  Then, repeatedly, the largest copy that is predicted to fit
    the budget (time ~ work, from the latest call) and has at most
    MAX_GROWTH times the work of the best copy so far is called; when no
    copy is predicted to fit but the best call so far took under half the
    budget, the next larger copy is tried anyway (on a busy machine a call
    can be dominated by costs that do not grow with the work, which the
    linear prediction would take for a slow kernel).  A call is accepted
    when it takes at most OVERSHOOT * budget; a call predicted to fit that
    overshoots by less than RETRY_BELOW, and every call under CHEAP * budget,
    is made once more and the faster of the two counts.  The search stops at
    the full layer, or when nothing larger is predicted to fit and the best
    call took half the budget or more.  So no call is made on a copy
    predicted to take longer than about twice the budget, and a layer that
    would take minutes costs a few budgets to size.

    build(i) -> callable; work(i) -> a positive number."""
    probes = []

    def measure(j, fn_j, retry_slow):
        t_j = time_call(fn_j)
        probes.append((j, t_j))
        slow = budget_s * OVERSHOOT < t_j <= budget_s * RETRY_BELOW
        if t_j < budget_s * CHEAP or (retry_slow and slow):
            t_again = time_call(fn_j)
            probes.append((j, t_again))
            t_j = min(t_j, t_again)
        return t_j

    i = n_rungs - 1
    fn = build(i)
    time_call(fn)                           # the cold call, not counted
    t = measure(i, fn, True)
    best = Choice(i, fn, t, probes)
    lo = 0                      # copies with a smaller index are known too slow
    ref_work, ref_t = work(i), t
    while best.index > lo:
        rate = ref_work / max(ref_t, 1e-9)
        limit = MAX_GROWTH * work(best.index)
        target, predicted = None, True
        for j in range(lo, best.index):
            if work(j) <= limit and work(j) / rate <= budget_s:
                target = j
                break
        if target is None and best.first_s < budget_s / 2:
            target, predicted = best.index - 1, False
        if target is None:
            break
        fn_j = build(target)
        t_j = measure(target, fn_j, predicted)
        ref_work, ref_t = work(target), t_j
        if t_j <= budget_s * OVERSHOOT:
            best = Choice(target, fn_j, t_j, probes)
        else:
            lo = target + 1
            del fn_j
    return best


def repeats_for(seconds):
    """Calls per sample so that a sample lasts at least MIN_SAMPLE_S."""
    if seconds <= 0:
        return MAX_REPEATS
    return max(1, min(MAX_REPEATS, math.ceil(MIN_SAMPLE_S / seconds)))


@dataclass
class Timings:
    samples: list       # per implementation: seconds per call, one per round
    repeats: list       # per implementation: calls per sample
    rounds: int

    @property
    def medians(self):
        return [_median(s) for s in self.samples]


def interleaved(fns, first_s, budget_s, min_rounds=3, max_rounds=25):
    """Time fns interleaved: one warm-up round, then rounds A B C ...,
    B C A ..., as many as fit in budget_s (at least min_rounds, at most
    max_rounds).

    first_s: a first-call estimate per fn, to size the warm-up round."""
    repeats = [repeats_for(t) for t in first_s]
    warm = [time_call(fn, r) for fn, r in zip(fns, repeats)]
    repeats = [repeats_for(t) for t in warm]
    round_s = sum(t * (r + 1) for t, r in zip(warm, repeats))   # + the untimed call
    rounds = int(budget_s / round_s) if round_s > 0 else max_rounds
    rounds = max(min_rounds, min(max_rounds, rounds))
    samples = [[] for _ in fns]
    for k in range(rounds):
        # Each round starts at a different implementation, and each sample
        # follows one untimed call of its own: an OpenMP runtime whose
        # threads still spin after the previous implementation's call
        # (PyTorch's do) would otherwise always slow down the same
        # neighbour.
        for j in range(len(fns)):
            i = (j + k) % len(fns)
            fns[i]()
            samples[i].append(time_call(fns[i], repeats[i]))
    return Timings(samples, repeats, rounds)

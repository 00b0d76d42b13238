"""Side-by-side: fastprop's rare-event tails vs plain Monte Carlo at the same relative error.

    python benchmarks/compare_rare.py [--repeat 3] [--quick]

The job: P(‖x_L‖ > t) or P(‖x_L‖ < t) with a 95 % interval of ±10 % (``rel_error=0.1``), for the
issue's cases: linear Gaussian width 10 depth 100 near 1e-12; width 4
depth 1000 above 10 (≈ 5e-30); ReLU at depth 1 near 1e-100; tanh (σ_w = 1.5, σ_b = 0.3) width 10
depth 100, both tails near 1e-8…1e-9.

* fastprop ``rare_tail`` (tilting or splitting, chosen by "auto"), target "parallel", warm JIT:
  wall time (median of --repeat seeds), networks evaluated, the estimate and its interval, and
  the exact value where the exact law applies.
* Plain Monte Carlo, the careful baseline: fastprop's own ``simulate_chains`` (the fastest plain
  sampler we have, invariant, target "parallel"), which stops at the number of chains that gives
  the same relative error, n = (1 − p)/(p · (0.1/1.96)²). That many chains cannot be run at these
  probabilities (up to 10¹⁰²), so its time is n divided by its measured rate on the same network
  (2·10⁵ chains timed here), and the work ratio is n over fastprop's networks. At p ≈ 1e-4 the
  plain run is short enough to do for real (``--check``), and it is timed to the same error.

Prints one row per case: time, work and the ratios.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import fastprop as fp

REL = 0.1
TANH = dict(activation="tanh", sigma_w=1.5, sigma_b=0.3)
CASES = [
    ("linear d=10 L=100, ~1e-12", dict(width=10, depth=100), "upper", 37571.5),
    ("linear d=4 L=1000, t=10", dict(width=4, depth=1000), "upper", 10.0),
    ("relu d=10 L=1, ~1e-100", dict(width=10, depth=1, activation="relu", sigma_w=2**0.5), "upper", 9.9),
    ("tanh d=10 L=100 upper", dict(width=10, depth=100, **TANH), "upper", 3.05),
    ("tanh d=10 L=100 lower", dict(width=10, depth=100, **TANH), "lower", 0.3),
]


def plain_rate(net):
    """Plain chains per second on this network (simulate_chains, invariant sampler, parallel)."""
    fp.simulate_chains(n_chains=1000, target="parallel", **net)
    n = 200_000
    t0 = time.perf_counter()
    fp.simulate_chains(n_chains=n, target="parallel", seed=1, **net)
    return n / (time.perf_counter() - t0)


def exact_value(net, side, t):
    if net.get("activation", "linear") not in ("linear", "relu") or net.get("sigma_b", 0.0):
        return None
    law = fp.exact.chain_norm(net["width"], net["depth"], net.get("activation", "linear"), net.get("sigma_w", 1.0))
    return float(law.logsf(t) if side == "upper" else law.logcdf(t)) / math.log(10)


def run_case(net, side, t, repeat):
    fp.rare_tail(threshold=t, side=side, rel_error=0.5, max_chains=20000, target="parallel", **net)  # warm
    times, runs = [], []
    for seed in range(repeat):
        t0 = time.perf_counter()
        e = fp.rare_tail(threshold=t, side=side, rel_error=REL, seed=seed, target="parallel", **net)
        times.append(time.perf_counter() - t0)
        runs.append(e)
    return statistics.median(times), runs


def check_plain(repeat):
    """At p ≈ 1e-4 plain Monte Carlo can run to the same error: both for real."""
    net = dict(width=10, depth=100)
    t = 20.0
    p = float(fp.exact.chain_norm(10, 100).sf(t))
    n = math.ceil((1 - p) / (p * (REL / 1.96) ** 2))
    t0 = time.perf_counter()
    r = fp.simulate_chains(n_chains=n, thresholds=(t,), target="parallel", **net)
    plain = time.perf_counter() - t0
    est = r.tail_probability(t)
    fast, runs = run_case(net, "upper", t, repeat)
    print(f"\ncheck at p = {p:.3e}: plain Monte Carlo {n:,} chains in {plain:.2f} s (p̂ = {est.p:.3e}, rel. error "
          f"{est.rel_error:.3f}); rare_tail {fast:.3f} s (p̂ = {runs[0].p:.3e}, rel. error {runs[0].rel_error:.3f}, "
          f"{runs[0].n:,} networks): {plain / fast:.0f}x faster")  # fmt: skip


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="the tilted cases only")
    ap.add_argument("--check", action="store_true", help="also run plain Monte Carlo for real at p ≈ 1e-4")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs, fastprop {fp.__version__}, 95 % interval within ±{REL:.0%}")
    head = (f"{'case':<28}{'method':>10}{'p':>12}{'exact':>11}{'half-width':>11}{'networks':>12}{'time s':>9}"
            f"{'plain MC s':>12}{'work ratio':>12}{'time ratio':>12}")  # fmt: skip
    print(head)
    for name, net, side, t in CASES[:3] if args.quick else CASES:
        med, runs = run_case(net, side, t, args.repeat)
        e = runs[0]
        rate = plain_rate(net)
        n_mc = (1.0 - min(e.p, 1.0)) * 10.0 ** (-e.log10_p) / e.rel_std_error**2
        plain = n_mc / rate
        ex = exact_value(net, side, t)
        exs = "" if ex is None else f"1e{ex:.2f}"
        half = e.rel_error
        print(f"{name:<28}{e.method:>10}{f'1e{e.log10_p:.2f}':>12}{exs:>11}{f'±{half:.1%}':>11}"
              f"{statistics.median(r.n for r in runs):>12,.0f}{med:>9.2f}{plain:>12.3g}{n_mc / e.n:>12.3g}"
              f"{plain / med:>12.3g}")  # fmt: skip
    if args.check:
        check_plain(args.repeat)


if __name__ == "__main__":
    main()

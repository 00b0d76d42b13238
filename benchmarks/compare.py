"""Side-by-side: fastprop vs the obvious alternatives, timed in one run on one machine.

    python benchmarks/compare.py [--n 300] [--quad-points 20] [--activation tanh]

* fastprop: ``meanfield_grid`` on an n × n grid over σ_w ∈ [0.1, 5], σ_b ∈ [0, 3],
  all six quantities (q*, χ_1, c*, χ_c, ξ_q, ξ_c), target "parallel" (warm JIT).
* NumPy: vectorised 64-node Gauss–Hermite, fixed-point iteration for q* (200
  sweeps) and χ_1 — only those two quantities — over the same grid.
* SciPy: ``scipy.integrate.quad`` for the Gaussian integrals with
  ``scipy.optimize.fixed_point`` for q* and χ_1, on a random sample of points;
  and the same script extended to all six quantities (c* by ``brentq`` on the
  correlation map as a nested ``quad``, χ_c by a nested ``quad``) on a smaller
  sample, so that the job compared is the same as fastprop's.

Prints microseconds per point and the ratios, plus NumPy's error at a large-q point.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import numpy as np
from scipy import integrate, optimize

import fastprop as fp


def numpy_gh(sw, sb, n=64, sweeps=200):
    """q* by fixed-point iteration and χ_1, with a fixed Gauss–Hermite rule (tanh)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / w.sum()
    S = sw[:, None] ** 2
    B = sb[None, :] ** 2
    q = np.ones((sw.size, sb.size))
    for _ in range(sweeps):
        q = S * (np.tanh(np.sqrt(q)[..., None] * x) ** 2 @ w) + B
    chi1 = S * ((1 - np.tanh(np.sqrt(q)[..., None] * x) ** 2) ** 2 @ w)
    return q, chi1


def scipy_point(sw, sb):
    """q* (scipy.optimize.fixed_point) and χ_1 with scipy.integrate.quad (tanh)."""
    rho = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731

    def V(q):
        s = math.sqrt(max(q, 0.0))
        return sw**2 * integrate.quad(lambda z: math.tanh(s * z) ** 2 * rho(z), -10, 10, points=[0.0])[0] + sb**2

    q = optimize.fixed_point(V, 1.0, xtol=1e-10, maxiter=2000) if sb > 0 or sw > 1 else 0.0
    s = math.sqrt(q)
    chi1 = sw**2 * integrate.quad(lambda z: (1 - math.tanh(s * z) ** 2) ** 2 * rho(z), -10, 10, points=[0.0])[0]
    return q, chi1


def scipy_point_all(sw, sb):
    """All six quantities with scipy: q*, χ_1 as above, c* and χ_c by nested quad (tanh)."""
    rho = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731
    dphi = lambda h: 1 - math.tanh(h) ** 2  # noqa: E731
    q, chi1 = scipy_point(sw, sb)
    sq = math.sqrt(q)

    def pair(c, f):
        s2 = sq * math.sqrt(max(0.0, 1 - c * c))
        inner = lambda z1: integrate.quad(lambda z2: f(sq * c * z1 + s2 * z2) * rho(z2), -10, 10)[0]  # noqa: E731
        return integrate.quad(lambda z1: f(sq * z1) * inner(z1) * rho(z1), -10, 10)[0]

    def C(c):
        return (sw**2 * pair(c, math.tanh) + sb**2) / q - c

    if chi1 > 1 and q > 0:
        c = optimize.brentq(C, 0.0, 1 - 1e-9, xtol=1e-12) if C(0.0) > 0 else 0.0
        chic = sw**2 * pair(c, dphi)
    else:
        c, chic = 1.0, chi1
    chiq = (
        sw**2
        * integrate.quad(lambda z: (dphi(sq * z) ** 2 - 2 * math.tanh(sq * z) ** 2 * dphi(sq * z)) * rho(z), -10, 10)[0]
    )
    return q, chi1, c, chic, -1 / math.log(chiq), -1 / math.log(chic) if chic != 1 else math.inf


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300, help="grid is n × n (default 300)")
    ap.add_argument("--quad-points", type=int, default=20, help="sample size for scipy.quad (default 20)")
    ap.add_argument("--quad-full-points", type=int, default=6, help="sample for scipy, all six (default 6)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--also", nargs="*", default=["hard_tanh", "relu", "erf", "gelu"], help="more activations to time")
    args = ap.parse_args()

    sw = np.linspace(0.1, 5.0, args.n)
    sb = np.linspace(0.0, 3.0, args.n)
    npts = sw.size * sb.size
    print(f"machine: {os.cpu_count()} cores; grid {args.n} x {args.n} over sigma_w in [0.1, 5], sigma_b in [0, 3]")

    t0 = time.perf_counter()
    fp.meanfield_grid("tanh", sw[:3], sb[:3], target="parallel")
    print(f"fastprop first call (compile) {time.perf_counter() - t0:.2f} s")
    t_fp, g = timed(lambda: fp.meanfield_grid("tanh", sw, sb, target="parallel"), args.repeat)
    chaotic = np.count_nonzero(g.chi_1 > 1) / npts
    t_np, (q_np, chi_np) = timed(lambda: numpy_gh(sw, sb), args.repeat)

    rng = np.random.default_rng(0)
    idx = rng.choice(npts, size=args.quad_points, replace=False)
    pts = [(sw[i // args.n], sb[i % args.n]) for i in idx]
    t = time.perf_counter()
    for p in pts:
        scipy_point(*p)
    t_sp = (time.perf_counter() - t) / len(pts)
    t = time.perf_counter()
    for p in pts[: args.quad_full_points]:
        scipy_point_all(*p)
    t_full = (time.perf_counter() - t) / len(pts[: args.quad_full_points])

    us = lambda t: t * 1e6  # noqa: E731
    print(f"fastprop  tanh, all six quantities: {us(t_fp / npts):9.2f} us/point  ({chaotic:.0%} of points chaotic)")
    print(f"NumPy GH-64, q* and chi_1 only:     {us(t_np / npts):9.2f} us/point")
    print(f"scipy quad + fixed_point, q*, chi_1:{us(t_sp):9.2f} us/point  (sample of {len(pts)})")
    nfull = len(pts[: args.quad_full_points])
    print(f"scipy quad, all six quantities:     {us(t_full):9.0f} us/point  (sample of {nfull})")
    print(f"ratio NumPy / fastprop: {t_np / t_fp:.2f}x   scipy / fastprop: {t_sp / (t_fp / npts):.0f}x (q*, chi_1)")
    print(f"ratio scipy all six / fastprop all six: {t_full / (t_fp / npts):.0f}x")
    pos = g.q_star > 0
    err_q = np.max(np.abs(q_np - g.q_star)[pos] / g.q_star[pos])
    err_c = np.nanmax(np.abs(chi_np - g.chi_1) / g.chi_1)
    i, j = np.argmin(abs(sw - 4.0)), np.argmin(abs(sb - 2.0))
    print(f"NumPy GH-64 worst relative error over the grid: q* {err_q:.1e}, chi_1 {err_c:.1e}")
    print(
        f"  at sigma_w={sw[i]:.2f}, sigma_b={sb[j]:.2f}: chi_1 NumPy {chi_np[i, j]:.6f} vs fastprop {g.chi_1[i, j]:.6f}"
    )
    for name in args.also:
        fp.meanfield_grid(name, sw[:3], sb[:3], target="parallel")
        t, g2 = timed(lambda name=name: fp.meanfield_grid(name, sw, sb, target="parallel"), args.repeat)
        frac = np.count_nonzero(g2.chi_1 > 1) / npts
        print(f"fastprop  {name:9s} all six quantities: {us(t / npts):9.2f} us/point  ({frac:.0%} chaotic)")
    from fastprop.run.targets import resolve_target

    if resolve_target("auto") == "cuda":  # a real GPU, not the simulator
        for n in (args.n, 1000):
            w, b = np.linspace(0.1, 5.0, n), np.linspace(0.0, 3.0, n)
            t0 = time.perf_counter()
            fp.meanfield_grid("tanh", w[:3], b[:3], target="cuda")
            compile_s = time.perf_counter() - t0
            t, gc = timed(lambda w=w, b=b: fp.meanfield_grid("tanh", w, b, target="cuda"), args.repeat)
            ref = g if n == args.n else None
            dev = (
                ""
                if ref is None
                else f", max rel. diff vs CPU {np.nanmax(np.abs(gc.chi_c - ref.chi_c) / ref.chi_c):.1e}"
            )
            print(
                f"fastprop cuda tanh {n} x {n}: {t:.3f} s ({us(t / n**2):.3f} us/point; first call {compile_s:.1f} s"
                f"{dev}); {t_fp / npts * n**2 / t:.0f}x the CPU run above"
            )
    else:
        print("(no usable GPU: the cuda target was not timed)")


if __name__ == "__main__":
    main()

"""Side-by-side: fastprop vs the obvious alternatives, timed in one run on one machine.

    python benchmarks/compare.py [--n 300] [--quad-points 20] [--activation tanh]

* fastprop: ``meanfield_grid`` on an n × n grid over σ_w ∈ [0.1, 5], σ_b ∈ [0, 3],
  all six quantities (q*, χ_1, c*, χ_c, ξ_q, ξ_c), target "parallel" (warm JIT).
* NumPy, as a careful user writes it: vectorised 64-node Gauss–Hermite,
  fixed-point iteration for q* with an *active set* (a point leaves once its
  step is below 1e-10 relative, or q < 1e-30 where q* = 0), then χ_1 — over the
  same grid (:func:`numpy_gh`), all points at once and, as a user who minds memory
  writes it, in chunks of ``CHUNK`` points (faster on large grids). Extended to all six quantities
  (:func:`numpy_gh_all`): c* by fixed-point iteration of C(c) with the 64 × 64
  tensor-product rule, again with an active set and the same stopping rule
  (c* = 1, χ_c = χ_1 where χ_1 ≤ 1), χ_c, χ_q and both depth scales; timed on a
  random sample of grid points (the tensor rule costs 4096 φ evaluations a point
  and sweep).
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

RTOL = 1e-10
"""The baselines' stopping rule: a step below this, relative to the iterate."""
MAX_SWEEPS = 100_000
CHUNK = 20_000
"""Points per chunk of the cache-friendly NumPy baseline (20 000 × 64 float64 = 10 MB)."""


def _gh(n):
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / w.sum()


def _q_star(w2, b2, x, w):
    """q* for flat arrays of σ_w², σ_b² by fixed-point iteration with an active set."""
    q = np.ones_like(w2)
    active = np.arange(q.size)
    for _ in range(MAX_SWEEPS):
        qa = q[active]
        new = w2[active] * (np.tanh(np.sqrt(qa)[:, None] * x) ** 2 @ w) + b2[active]
        q[active] = new
        done = (np.abs(new - qa) <= RTOL * new) | (new < 1e-30)
        active = active[~done]
        if active.size == 0:
            break
    return q


def numpy_gh(sw, sb, n=64, chunk=None):
    """q* and χ_1 over the grid with a fixed Gauss–Hermite rule (tanh), stopping at convergence;
    ``chunk`` points at a time (the (points × n) temporaries then stay in cache), or all at once."""
    x, w = _gh(n)
    w2 = np.repeat(sw**2, sb.size)
    b2 = np.tile(sb**2, sw.size)
    q = np.empty_like(w2)
    chi1 = np.empty_like(w2)
    step = chunk or w2.size
    for lo in range(0, w2.size, step):
        part = slice(lo, lo + step)
        q[part] = _q_star(w2[part], b2[part], x, w)
        chi1[part] = w2[part] * ((1 - np.tanh(np.sqrt(q[part])[:, None] * x) ** 2) ** 2 @ w)
    return q.reshape(sw.size, sb.size), chi1.reshape(sw.size, sb.size)


def numpy_gh_all(w2, b2, n=64, block=256):
    """All six quantities at flat arrays of points (tanh), Gauss–Hermite throughout:
    q*, χ_1, χ_q as above; c* by fixed-point iteration of C(c) on the n × n tensor
    rule with an active set, χ_c there, and the depth scales."""
    x, w = _gh(n)
    q = _q_star(w2, b2, x, w)
    sq = np.sqrt(q)
    t = np.tanh(sq[:, None] * x)
    d = 1 - t**2
    chi1 = w2 * (d**2 @ w)
    chiq = w2 * ((d**2 - 2 * t**2 * d) @ w)  # V'(q*) = σ_w² E[φ'² + φφ''], φφ'' = −2 tanh² sech²
    c = np.ones_like(q)
    chic = chi1.copy()
    ww = (w[:, None] * w[None, :]).ravel()
    x1, x2 = np.repeat(x, n), np.tile(x, n)
    for lo in range(0, q.size, block):  # the tensor rule needs block × n² values at a time
        idx = np.arange(lo, min(lo + block, q.size))
        idx = idx[(chi1[idx] > 1) & (q[idx] > 0)]
        cb = np.zeros(idx.size)
        active = np.arange(idx.size)
        for _ in range(MAX_SWEEPS):
            s, cc = sq[idx[active], None], cb[active, None]
            u1, u2 = s * x1, s * (cc * x1 + np.sqrt(1 - cc**2) * x2)
            new = (w2[idx[active]] * (np.tanh(u1) * np.tanh(u2) @ ww) + b2[idx[active]]) / q[idx[active]]
            step = np.abs(new - cb[active])
            cb[active] = new
            active = active[~(step <= RTOL * np.maximum(new, 1e-300))]
            if active.size == 0:
                break
        s, cc = sq[idx, None], cb[:, None]
        u1, u2 = s * x1, s * (cc * x1 + np.sqrt(1 - cc**2) * x2)
        c[idx] = cb
        chic[idx] = w2[idx] * ((1 - np.tanh(u1) ** 2) * (1 - np.tanh(u2) ** 2) @ ww)
    with np.errstate(divide="ignore", invalid="ignore"):
        xiq, xic = -1 / np.log(chiq), -1 / np.log(chic)
    return q, chi1, c, chic, xiq, xic


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
    ap.add_argument("--gh-all-points", type=int, default=2000, help="sample for NumPy GH, all six (default 2000)")
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
    t_chunk, _ = timed(lambda: numpy_gh(sw, sb, chunk=CHUNK), args.repeat)
    rng = np.random.default_rng(1)
    sample = rng.choice(npts, size=min(args.gh_all_points, npts), replace=False)
    iw, ib = sample // args.n, sample % args.n
    t_all, six = timed(lambda: numpy_gh_all(sw[iw] ** 2, sb[ib] ** 2), args.repeat)
    t_all /= sample.size

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
    print(f"NumPy GH-64, q* and chi_1 only:     {us(t_np / npts):9.2f} us/point  (active set, stop at 1e-10)")
    print(f"  the same in chunks of {CHUNK} points: {us(t_chunk / npts):7.2f} us/point  (temporaries fit the cache)")
    print(f"NumPy GH-64, all six quantities:    {us(t_all):9.2f} us/point  (tensor rule for c*; {sample.size} points)")
    print(f"scipy quad + fixed_point, q*, chi_1:{us(t_sp):9.2f} us/point  (sample of {len(pts)})")
    nfull = len(pts[: args.quad_full_points])
    print(f"scipy quad, all six quantities:     {us(t_full):9.0f} us/point  (sample of {nfull})")
    print(f"ratio NumPy chunked (q*, chi_1) / fastprop (all six): {t_chunk / t_fp:.2f}x")
    print(f"ratio NumPy (q*, chi_1) / fastprop (all six): {t_np / t_fp:.2f}x   NumPy all six / fastprop all six: "
          f"{t_all / (t_fp / npts):.1f}x   scipy / fastprop: {t_sp / (t_fp / npts):.0f}x (q*, chi_1)")  # fmt: skip
    print(f"ratio scipy all six / fastprop all six: {t_full / (t_fp / npts):.0f}x")
    pos = g.q_star > 0
    err_q = np.max(np.abs(q_np - g.q_star)[pos] / g.q_star[pos])
    err_c = np.nanmax(np.abs(chi_np - g.chi_1) / g.chi_1)
    i, j = np.argmin(abs(sw - 4.0)), np.argmin(abs(sb - 2.0))
    print(f"NumPy GH-64 worst relative error over the grid: q* {err_q:.1e}, chi_1 {err_c:.1e}")
    ref = [getattr(g, k)[iw, ib] for k in ("q_star", "chi_1", "c_star", "chi_c", "xi_q", "xi_c")]
    errs = []
    names = ("q*", "chi_1", "c*", "chi_c", "1/xi_q", "1/xi_c")
    for k, (name, mine, exact) in enumerate(zip(names, six, ref, strict=True)):
        if k >= 4:  # depth scales: 1/ξ = −ln χ, absolute (it is 0 at criticality)
            mine, exact = 1 / mine, 1 / exact
        ok = np.isfinite(exact) & (exact != 0 if k in (0, 1, 3) else np.isfinite(exact))
        scale = np.abs(exact[ok]) if k in (0, 1, 3) else 1.0  # relative for q*, χ_1, χ_c; absolute for c*, 1/ξ
        errs.append(f"{name} {np.nanmax(np.abs(mine[ok] - exact[ok]) / scale):.1e}")
    print("NumPy GH-64 all six, worst error on its sample (relative q*, chi_1, chi_c; absolute c*, 1/xi): "
          + ", ".join(errs))  # fmt: skip
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

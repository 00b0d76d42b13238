"""Side-by-side: the spectral density of J Jᵀ, fastprop against the published approach.

    python benchmarks/compare_spectra.py [--depth 100] [--n 1000] [--repeat 3]

The only public alternative (Pennington, Schoenholz & Ganguli 2017, §2.4 and their
supplementary code) covers relu and hard_tanh with Gaussian weights, where φ'(h)² is a
Bernoulli(p) variable (p = ½ for relu, p = P(|h| < 1) = erf(1/√(2q*)) for hard_tanh). Then
S_{JJᵀ}(z) = (σ_w²(p + z))^{−L} and the moment generating function M = M_{JJᵀ}(λ) solves the
polynomial equation of degree L + 1

    λ M = (1 + M) (σ_w² (p + M))^L ,

one polynomial per λ; ρ(λ) = −Im M(λ + i0)/(πλ) = |Im M|/(πλ) on the physical root. The
baselines, as a careful user writes them:

* ``roots-loop``: ``numpy.roots`` per λ (companion-matrix eigenvalues), density from the
  physical root (:func:`_density`).
* ``roots-batched``: the same, all companion matrices in one ``numpy.linalg.eigvals`` call on a
  (n, L+1, L+1) stack — vectorised, no Python loop per λ.
* ``roots-expanded``: ``roots-batched`` on the polynomial expanded in M, as the equation is
  usually written; shown for its error only.

Both solve the equation scaled so that its coefficients are of order 1 (:func:`_poly`).

Neither has an iteration to stop: each λ costs one eigenvalue problem of size L + 1. The
truth at 12 λ is the same equation's root solved by Newton's method in ``mpmath`` at 60
digits, started from fastprop's M (so it checks that fastprop's M is a root, and how accurate). fastprop:
``jacobian_spectrum(…).density`` (construction included), which does not use the closed form.
Prints medians, ratios and each method's worst relative error against the truth.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import mpmath
import numpy as np

import fastprop as fp

CASES = [
    # (activation, sigma_w, sigma_b): relu at criticality; hard_tanh on the edge of chaos
    ("relu", math.sqrt(2.0), 0.0),
    ("hard_tanh", None, 0.05),
]


def _p(activation, q_star):
    return 0.5 if activation == "relu" else math.erf(1.0 / math.sqrt(2.0 * q_star))


def _poly(lam, p, w2, depth):
    """(coefficients, r): the equation in v = (p + M)/r with r = (λ/σ_w^{2L})^{1/L},

        r v^{L+1} + (1 − p) v^L − r v + p = 0,

    highest degree first, one row per λ; its coefficients are of order 1, so companion
    eigenvalues are accurate. Unscaled, in u = p + M, the roots lie where u^L ≈ λ/σ_w^{2L}
    (1e-35 at depth 100), far below the eigenvalue solver's backward error relative to the
    leading coefficient; expanded in M, (1+M)(σ_w²(p+M))^L − λM is worse still (an L-fold
    root at M = −p perturbed by λM). The ``roots-expanded`` row shows the error."""
    r = np.exp((np.log(lam) - depth * math.log(w2)) / depth)
    coef = np.zeros((lam.size, depth + 2))
    coef[:, 0], coef[:, 1], coef[:, -2], coef[:, -1] = r, 1.0 - p, -r, p
    return coef, r


def _poly_naive(lam, p, w2, depth):
    """(1+M)(σ_w²(p+M))^L − λ M expanded in M (highest degree first), one row per λ."""
    base = np.polynomial.polynomial.polypow([w2 * p, w2], depth)  # lowest first
    base = np.polynomial.polynomial.polymul([1.0, 1.0], base)
    coef = np.tile(base[::-1], (lam.size, 1))
    coef[:, -2] -= lam
    return coef


def _roots_m(lam, p, w2, depth, naive, batched):
    """The roots M of the equation at each λ, as rows."""
    if naive:
        coef, scale, shift = _poly_naive(lam, p, w2, depth), np.ones(lam.size), 0.0
    else:
        coef, scale = _poly(lam, p, w2, depth)
        shift = p
    if batched:
        n = coef.shape[1] - 1
        comp = np.zeros((lam.size, n, n))
        comp[:, 0, :] = -coef[:, 1:] / coef[:, :1]
        comp[:, np.arange(1, n), np.arange(n - 1)] = 1.0
        v = np.linalg.eigvals(comp)
    else:
        v = np.array([np.roots(c) for c in coef])
    return scale[:, None] * v - shift


def _density(lam, m):
    """|Im M|/(πλ) on the physical root: the non-real root nearest the real axis (|Im M| >
    1e-9; the equation has odd degree, so a real root always exists beside it, and the other
    roots lie on a ring around M = −p further from the axis; the root of largest real part
    is not it at depth 100, nor is the one of largest |Im M| at any depth)."""
    im = np.abs(m.imag)
    im = np.where(im > 1e-9, im, np.inf)
    return im.min(axis=1) / (math.pi * lam)


def roots_loop(lam, p, w2, depth):
    return _density(lam, _roots_m(lam, p, w2, depth, naive=False, batched=False))


def roots_batched(lam, p, w2, depth, naive=False):
    return _density(lam, _roots_m(lam, p, w2, depth, naive=naive, batched=True))


def truth(lam, p, w2, depth, near, dps=60):
    """ρ at each λ from the root of the polynomial nearest ``near`` (a starting M), refined
    by Newton at ``dps`` digits."""
    out = []
    with mpmath.workdps(dps):
        pw, w = mpmath.mpf(p) * w2, mpmath.mpf(w2)
        for lv, m0 in zip(lam, near, strict=True):
            lv = mpmath.mpf(lv)

            def f(m, lv=lv):
                return (1 + m) * (pw + w * m) ** depth - lv * m

            m = mpmath.findroot(f, mpmath.mpc(m0), solver="newton", tol=mpmath.mpf(10) ** (-dps + 10))
            out.append(float(abs(m.imag) / (mpmath.pi * lv)))
    return np.array(out)


def _median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--n", type=int, default=1000, help="λ points")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    L = args.depth
    for act, sw, sb in CASES:
        if sw is None:
            sw = float(fp.edge_of_chaos(act, sb))
        s = fp.jacobian_spectrum(act, sw, sb, L)  # warm the JIT and the caches
        lo, hi = s.support()
        lam = np.geomspace(max(lo, hi * 1e-8), hi, args.n + 2)[1:-1]
        p, w2 = _p(act, s.q_star), sw * sw

        t_fp, rho_fp = _median_time(lambda: fp.jacobian_spectrum(act, sw, sb, L).density(lam), args.repeat)  # noqa: B023
        t_loop, rho_loop = _median_time(lambda: roots_loop(lam, p, w2, L), 1)  # noqa: B023
        t_bat, rho_bat = _median_time(lambda: roots_batched(lam, p, w2, L), args.repeat)  # noqa: B023
        t_naive, rho_naive = _median_time(lambda: roots_batched(lam, p, w2, L, naive=True), 1)  # noqa: B023

        pick = np.linspace(0, lam.size - 1, 12).astype(int)
        m_fp, _ = s._solve(lam[pick])
        ref = truth(lam[pick], p, w2, L, m_fp)

        def worst(rho, pick=pick, ref=ref):
            return float(np.max(np.abs(rho[pick] - ref) / ref))

        print(f"\n{act}, σ_w = {sw:.6g}, σ_b = {sb:g}, depth {L}, {lam.size} λ in [{lam[0]:.3g}, {lam[-1]:.4g}]")
        print(f"  {'method':<16}{'median s':>12}{'× fastprop':>12}{'worst rel. error (12 λ)':>26}")
        for name, t, rho in (
            ("fastprop", t_fp, rho_fp),
            ("roots-batched", t_bat, rho_bat),
            ("roots-loop", t_loop, rho_loop),
            ("roots-expanded", t_naive, rho_naive),
        ):
            print(f"  {name:<16}{t:>12.4g}{t / t_fp:>12.1f}{worst(rho):>26.2e}")


if __name__ == "__main__":
    main()

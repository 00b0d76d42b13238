"""What every point of a map shares: μ_k(q) as a certified piecewise Chebyshev series in ln q.

A map evaluates μ_k at one q* per point, and q* ranges over a few decades. Instead
of a quadrature per point, :func:`mu_at` builds the series once over the map's own
range: panels of ln q of width ≤ 1, each a Chebyshev interpolant of degree
``DEGREE`` through the quadrature's values at Chebyshev points; each panel is
checked against the quadrature at ``CHECKS`` further points and halved until every
check agrees to ``TOL`` relatively. Points whose q is 0, +inf or NaN, and ranges
of fewer than ``MIN_POINTS`` points, use the quadrature directly.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

DEGREE = 24
CHECKS = 7
TOL = 1e-13
MIN_POINTS = 2000
MAX_PANELS = 4096


@njit(cache=True, parallel=True)
def evaluate(u, edges, coef, out):
    """``out[i]`` = the series of the panel of ``edges`` holding ``u[i]`` (Clenshaw)."""
    n = edges.size - 1
    deg = coef.shape[1]
    for i in prange(u.size):
        x = u[i]
        lo = 0
        hi = n
        while hi - lo > 1:  # the panel: edges[lo] ≤ x < edges[lo + 1]
            mid = (lo + hi) // 2
            if edges[mid] <= x:
                lo = mid
            else:
                hi = mid
        a = edges[lo]
        b = edges[lo + 1]
        y = (2.0 * x - a - b) / (b - a)
        b1 = 0.0
        b2 = 0.0
        for j in range(deg - 1, 0, -1):
            b1, b2 = 2.0 * y * b1 - b2 + coef[lo, j], b1
        out[i] = y * b1 - b2 + coef[lo, 0]


def _panel(mu, a, b):
    """Chebyshev coefficients on [a, b] of ln q ↦ μ(e^{ln q}), and whether they pass the checks."""
    j = np.arange(DEGREE + 1)
    y = np.cos(np.pi * (j + 0.5) / (DEGREE + 1))  # Chebyshev points of the first kind
    vals = mu(np.exp(0.5 * (a + b) + 0.5 * (b - a) * y))
    coef = np.polynomial.chebyshev.chebfit(y, vals, DEGREE)
    yc = np.cos(np.pi * (np.arange(CHECKS) + 0.37) / CHECKS)  # not on the fitting points
    exact = mu(np.exp(0.5 * (a + b) + 0.5 * (b - a) * yc))
    approx = np.polynomial.chebyshev.chebval(yc, coef)
    scale = max(np.max(np.abs(vals)), 1e-300)
    ok = bool(np.all(np.abs(approx - exact) <= TOL * np.maximum(np.abs(exact), 1e-300 * scale)))
    return coef, ok


def mu_at(q, mu):
    """μ(q) at every q (flat array) with ``mu`` the quadrature (a function of a q array):
    through a certified series over the range of q (module docstring)."""
    q = np.asarray(q, dtype=float)
    out = np.empty(q.size)
    finite = np.isfinite(q) & (q > 0.0)
    if np.count_nonzero(finite) < MIN_POINTS:
        return mu(q)
    if np.any(~finite):  # q = 0, +inf (one value each) or NaN
        special, inverse = np.unique(q[~finite], return_inverse=True)
        out[~finite] = mu(special)[inverse]
    u = np.log(q[finite])
    lo, hi = float(u.min()), float(u.max())
    if hi - lo < 1e-9:
        hi = lo + 1e-9
    n = max(1, math.ceil(hi - lo))
    todo = [(lo + (hi - lo) * i / n, lo + (hi - lo) * (i + 1) / n) for i in range(n)]
    done = []
    while todo:
        a, b = todo.pop()
        coef, ok = _panel(mu, a, b)
        if ok or len(done) + len(todo) >= MAX_PANELS or b - a < 1e-6:
            if not ok:  # no series: these points get the quadrature
                sel = (u >= a) & (u <= b)
                done.append((a, b, None, sel))
            else:
                done.append((a, b, coef, None))
        else:
            m = 0.5 * (a + b)
            todo += [(a, m), (m, b)]
    done.sort(key=lambda p: p[0])
    edges = np.array([p[0] for p in done] + [done[-1][1]])
    coef = np.array([p[2] if p[2] is not None else np.zeros(DEGREE + 1) for p in done])
    vals = np.empty(u.size)
    evaluate(u, edges, coef, vals)
    for p in done:
        if p[2] is None:
            vals[p[3]] = mu(np.exp(u[p[3]]))
    out[finite] = vals
    return out

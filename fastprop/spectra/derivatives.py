"""Gaussian moments and the discretised law of D² = φ'(√q z)², z ~ N(0, 1).

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.spectra.law.derivative_kernels`, which binds the names below; not
imported directly. The integration rule is the kink-split, graded Gauss–Legendre
rule of :mod:`fastprop.quadrature` (the one the mean-field moments use).
"""

import math

import numpy as np
from numba import njit, prange

from fastprop.quadrature import GL_W, GL_X, NGL, Q_TINY, ZMAX, gauss_weight
from fastprop.run.compile import bound
from fastprop.spectra.freeprob import upper_edge

ev, next_break, CACHE = bound(__name__, "ev", "next_break", "CACHE")

Q_HUGE = 1e300
"""q above this (q* = +inf included) is evaluated here: the limit q → ∞."""


@njit(cache=CACHE)
def mu(q, k):
    """μ_k(q) = ∫ φ'(√q z)^{2k} Dz (Pennington, Schoenholz & Ganguli 2017, Table 1);
    q = 0 is the limit q → 0⁺ (kinks keep their one-sided slopes), q = +inf the limit q → ∞."""
    sq = math.sqrt(min(max(q, Q_TINY), Q_HUGE))
    a = 1.0 / sq
    s = 0.0
    z = -ZMAX
    while z < ZMAX:
        b = next_break(z, a, 0.0, a, 0.0, 0.0)
        half = 0.5 * (b - z)
        mid = 0.5 * (b + z)
        for i in range(NGL):
            zi = mid + half * GL_X[i]
            d = ev(sq * zi)[1]
            s += half * GL_W[i] * gauss_weight(zi) * (d * d) ** k
        z = b
    return s


@njit(cache=CACHE, parallel=True)
def mu_many(q, k, out):
    """``out[i] = mu(q[i], k[i])`` over flat arrays, in parallel."""
    for i in prange(q.size):
        out[i] = mu(q[i], k[i]) if not math.isnan(q[i]) else math.nan


@njit(cache=CACHE, parallel=True)
def upper_edges(q, w2, depth, orth, nsub, out):
    """``out[i]`` = the upper edge λ₊ of the spectrum of J Jᵀ at q*[i], σ_w²[i]
    (:func:`fastprop.spectra.freeprob.upper_edge` on the law of D² refined ``nsub`` times)."""
    for i in prange(q.size):
        if math.isnan(q[i]) or w2[i] == 0.0:
            out[i] = math.nan if math.isnan(q[i]) else 0.0
            continue
        n = law_nodes(q[i], nsub, np.empty(0), np.empty(0))  # the count only
        t = np.empty(n)
        w = np.empty(n)
        law_nodes(q[i], nsub, t, w)
        keep = t > 0.0
        tp = t[keep]
        wp = w[keep]
        if tp.size == 0:
            out[i] = 0.0
            continue
        out[i] = upper_edge(depth, w2[i], orth, tp, wp, 1.0 - wp.sum(), tp.max())[0]


@njit(cache=CACHE)
def law_nodes(q, nsub, t, w):
    """Fill ``t``, ``w`` with the nodes φ'(√q z)² and weights of the graded rule with every
    panel cut into ``nsub`` equal parts: the law of D² as a discrete measure (before
    equal values are merged). Returns the number of nodes written."""
    sq = math.sqrt(min(max(q, Q_TINY), Q_HUGE))
    a = 1.0 / sq
    n = 0
    z = -ZMAX
    while z < ZMAX:
        b = next_break(z, a, 0.0, a, 0.0, 0.0)
        h = (b - z) / nsub
        for j in range(nsub):
            lo = z + j * h
            half = 0.5 * h
            mid = lo + half
            for i in range(NGL):
                zi = mid + half * GL_X[i]
                d = ev(sq * zi)[1]
                if n < t.size:
                    t[n] = d * d
                    w[n] = half * GL_W[i] * gauss_weight(zi)
                n += 1
        z = b
    return n

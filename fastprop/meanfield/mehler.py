"""The truncated Mehler (Hermite) model of the correlation map and its fixed point.

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.meanfield.kernels`, which binds the names below; not imported directly.
"""

import math

from numba import njit

from fastprop.meanfield.common import _HERM_A, _HERM_B, KMEHLER, MAXIT, _sum4
from fastprop.quadrature import GL_W, GL_X, NGL, Q_TINY, ZMAX, gauss_weight
from fastprop.run.compile import bound

ev, next_break, MAX_NODES, CACHE = bound(__name__, "ev", "next_break", "MAX_NODES", "CACHE")


@njit(cache=CACHE)
def hermite_coefficients(q, scr, coef):
    """Fill ``coef[0 … K]`` with the normalised Hermite coefficients of φ(√q z)
    (K = ``KMEHLER``), φ(√q z) = Σ a_n h_n(z), by the graded rule; ``scr``: work
    space of 3·``MAX_NODES`` values (not overlapping ``coef``)."""
    sq = math.sqrt(q if q > 0.0 else Q_TINY)
    a = 1.0 / sq
    # all nodes first (at most MAX_NODES), then the three-term recurrence runs
    # across them side by side, one degree at a time
    zs = scr[:MAX_NODES]
    h0 = scr[MAX_NODES : 2 * MAX_NODES]
    h1 = scr[2 * MAX_NODES : 3 * MAX_NODES]
    nn = 0
    z = -ZMAX
    while z < ZMAX:
        b = next_break(z, a, 0.0, a, 0.0, 0.0)
        half = 0.5 * (b - z)
        mid = 0.5 * (b + z)
        for k in range(NGL):
            zk = mid + half * GL_X[k]
            zs[nn] = zk
            h0[nn] = half * GL_W[k] * gauss_weight(zk) * ev(sq * zk)[0]  # w·φ·h₀
            h1[nn] = h0[nn] * zk  # w·φ·h₁
            nn += 1
        z = b
    coef[0] = _sum4(h0, nn)
    coef[1] = _sum4(h1, nn)
    for n in range(1, KMEHLER):
        an = _HERM_A[n]
        bn = _HERM_B[n]
        for i in range(nn):
            h2 = zs[i] * h1[i] * an - h0[i] * bn
            h0[i] = h1[i]
            h1[i] = h2
        coef[n + 1] = _sum4(h1, nn)


@njit(cache=CACHE)
def mehler_root(coef, e2, q, sw, sb, slack, start):
    """Fixed point of the truncated Mehler model of the correlation map.

    With h_n the normalised Hermite polynomials, φ(√q z) = Σ a_n h_n(z) and
    E φ(u₁)φ(u₂) = Σ a_n² cⁿ (Mehler's formula). The first ``KMEHLER + 1``
    terms (``coef``) are a lower bound on [0, 1], so the model's root c_M lies
    at or below c*. The neglected terms are at most R·c^{K+1} (and their
    derivative at most (K+1)·R·c^K) with R = E φ² − Σ_{n≤K} a_n² (``e2`` is
    E φ²; ``slack``·E φ² is added to R for the error of the a_n and of e2).
    Newton on the model starts at ``start`` ∈ [0, 1) (an estimate of c*; from the
    right of c_M it steps down once, the model being convex) or at 0 where the
    model's slope there is not below 1.
    Returns (c, slope, exact): where ``exact``, c is c* and the slope χ_c.
    Otherwise c ≤ c* is a safe start for Newton on the exact map: the largest c
    at which the bounds are below rounding, c_R, when the model is still above
    the diagonal there (then c* > c_R and the model's own root is not needed),
    else the model's root.
    """
    rest = e2
    for n in range(KMEHLER + 1):
        rest -= coef[n] * coef[n]
    rest = max(rest, 0.0) + slack * e2  # R, with room for the errors in the difference
    w2 = sw * sw
    b2 = sb * sb
    scale = max(w2 * rest / q, 1e-300)
    c_r = min((1e-16 / scale) ** (1.0 / (KMEHLER + 1)), (1e-15 / (scale * (KMEHLER + 1))) ** (1.0 / KMEHLER))
    if c_r < 1.0:
        p = 0.0
        for n in range(KMEHLER, -1, -1):
            p = p * c_r + coef[n] * coef[n]
        if (w2 * p + b2) / q > c_r:  # C(c_R) ≥ model(c_R) > c_R: c* > c_R
            return c_r, math.nan, False
    c = start
    dp = 0.0
    for _ in range(MAXIT):
        p = 0.0
        dp = 0.0
        for n in range(KMEHLER, 0, -1):
            p = p * c + coef[n] * coef[n]
            dp = dp * c + n * coef[n] * coef[n]
        p = p * c + coef[0] * coef[0]
        g = (w2 * p + b2) / q - c
        dg = w2 * dp / q - 1.0
        if not dg < 0.0:
            if c == start and c > 0.0:  # the start is past the model's minimum
                c = 0.0
                continue
            break
        step = -g / dg
        c += step
        if c < 0.0:  # a first step down from a start right of c_M may pass 0: go on from 0
            c = 0.0
            continue
        if abs(step) <= 1e-15 or not c < 1.0:
            break
    c = min(max(c, 0.0), 1.0 - 1e-12)
    ck = c**KMEHLER
    exact = w2 * rest * ck * c <= 1e-16 * q and w2 * rest * (KMEHLER + 1) * ck <= 1e-15 * q
    return c, w2 * dp / q, exact


@njit(cache=CACHE)
def mehler(q, sw, sb, e2, scr):
    """:func:`mehler_root` with the Hermite coefficients computed at q by quadrature
    (``scr``: the point's work space, at least ``SCRATCH_SIZE`` values)."""
    coef = scr[3 * MAX_NODES : 3 * MAX_NODES + KMEHLER + 1]
    hermite_coefficients(q, scr, coef)
    return mehler_root(coef, e2, q, sw, sb, 1e-15, 0.0)

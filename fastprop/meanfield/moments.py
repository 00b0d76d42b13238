"""One-dimensional Gaussian moments of φ(√q z) and the length map V(q).

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.meanfield.kernels`, which binds the names below; not imported directly.
"""

import math

from numba import njit

from fastprop.meanfield.interpolants import length_table, moments_table
from fastprop.quadrature import GL_W, GL_X, NGL, Q_TINY, ZMAX, gauss_weight
from fastprop.run.compile import bound

ev, next_break, KINKS, JUMPS, NKINKS, CACHE = bound(__name__, "ev", "next_break", "KINKS", "JUMPS", "NKINKS", "CACHE")


@njit(cache=CACHE)
def moments(q):
    """(E φ, E φ', E φ², E φ'², dE φ²/dq) at h = √q z, z ~ N(0, 1) (q = 0: the limit q → 0⁺).

    The last is E φ'² + E φφ'' (Stein's lemma, Dirac masses at kinks
    included), unless its two terms cancel to less than half their size
    (erf at q ~ 1e200, where they are huge and nearly opposite): then it is
    E[φ φ' z]/√q, the q-derivative taken under the integral, which has no
    such cancellation (but loses accuracy at tiny q when φ(0) ≠ 0, where
    Stein's form is used).
    """
    sq = math.sqrt(q if q > 0.0 else Q_TINY)
    a = 1.0 / sq
    e0 = e1 = e2 = e3 = e4 = e5 = 0.0
    z = -ZMAX
    while z < ZMAX:
        b = next_break(z, a, 0.0, a, 0.0, 0.0)
        half = 0.5 * (b - z)
        mid = 0.5 * (b + z)
        for k in range(NGL):
            zk = mid + half * GL_X[k]
            w = half * GL_W[k] * gauss_weight(zk)
            p, dp, d2p = ev(sq * zk)
            e0 += w * p
            e1 += w * dp
            e2 += w * p * p
            e3 += w * dp * dp
            e4 += w * p * d2p
            e5 += w * p * dp * zk
        z = b
    for i in range(NKINKS):
        pk = ev(KINKS[i])[0]
        if pk != 0.0:
            e4 += pk * JUMPS[i] * gauss_weight(KINKS[i] / sq) / sq
    stein = e3 + e4
    if abs(stein) < 0.5 * max(e3, abs(e4)):
        return e0, e1, e2, e3, e5 * a
    return e0, e1, e2, e3, stein


@njit(cache=CACHE)
def moments_at(q, tab, exact):
    """(ok, :func:`moments` at q): from the tables ``tab`` (:mod:`fastprop.meanfield.interpolants`)
    where they cover q, else by quadrature when ``exact`` (else ok is False)."""
    ok, m = moments_table(q, tab[0], tab[1])
    if ok or not exact:
        return ok, m
    return True, moments(q)


@njit(cache=CACHE)
def length_moments_at(q, tab, exact):
    """(ok, E φ², dE φ²/dq) at q: the two moments Newton on q* needs, from the
    tables where they cover q (two series instead of five), else as :func:`moments_at`."""
    ok, e2, de2 = length_table(q, tab[0], tab[1])
    if ok or not exact:
        return ok, e2, de2
    m = moments(q)
    return True, m[2], m[4]


@njit(cache=CACHE)
def length_map(q, sw, sb, tab):
    """V(q) = σ_w² E φ(√q z)² + σ_b² (Poole et al. 2016, eq. 3); V(0) = σ_w² φ(0)² + σ_b² exactly."""
    if q == 0.0:
        p0 = ev(0.0)[0]
        return sw * sw * p0 * p0 + sb * sb
    return sw * sw * moments_at(q, tab, True)[1][2] + sb * sb

"""The edge of chaos: σ_w with χ_1(σ_w, σ_b) = 1 at one σ_b.

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.meanfield.kernels`, which binds the names below; not imported directly.
"""

import math

from numba import njit

from fastprop.meanfield.common import _NEED_EXACT, _NO_EDGE, MAXIT, Q_MAX
from fastprop.run.compile import bound

ev, moments_at, q_star, CACHE = bound(__name__, "ev", "moments_at", "q_star", "CACHE")

TRANSITION_STEP = 1e-6
"""Relative step above the q* = 0 transition at which the sign of χ_1 − 1 is read."""


@njit(cache=CACHE)
def chi1_at(sw, sb, tab, exact):
    """(χ_1 − 1 at (σ_w, σ_b), the status of q*); NaN with ``_NEED_EXACT`` where the
    tables ``tab`` do not cover it and ``exact`` is False."""
    q, status = q_star(sw, sb, tab, exact)
    if status & _NEED_EXACT:
        return math.nan, status
    if q >= Q_MAX:
        return sw * sw * tab[4][2] - 1.0, status
    if q == 0.0:
        return sw * sw * tab[4][1] - 1.0, status
    ok, m = moments_at(q, tab, exact)
    if not ok:
        return math.nan, _NEED_EXACT
    return sw * sw * m[3] - 1.0, status


@njit(cache=CACHE)
def edge(sb, lo, hi, nscan, tab, exact):
    """σ_w in [lo, hi] with χ_1(σ_w, σ_b) = 1: first upward crossing on a log scan, then Illinois.

    At σ_b = 0 with φ(0) = 0, q* leaves 0 where σ_w² dEφ²/dq(0⁺) = 1, i.e. at
    σ_t = 1/√(E φ'²(0⁺)) (there E φφ'' → 0), where χ_1 = 1 too. χ_1 − 1 may
    then touch 0 with zero slope from above (erf: it grows like (σ_w − σ_t)²),
    so no root finder can place the crossing better than √ε from values of
    χ_1 alone; σ_t is returned exactly when the bracket holds it and χ_1 ≥ 1
    just above it (a step of ``TRANSITION_STEP``).
    """
    r = (hi / lo) ** (1.0 / (nscan - 1))
    a = lo
    fa, st = chi1_at(a, sb, tab, exact)
    if st & _NEED_EXACT:
        return math.nan, _NEED_EXACT
    if fa >= 0.0:
        return math.nan, _NO_EDGE
    b = a
    fb = fa
    found = False
    for i in range(1, nscan):
        b = lo * r**i if i < nscan - 1 else hi
        fb, st = chi1_at(b, sb, tab, exact)
        if st & _NEED_EXACT:
            return math.nan, _NEED_EXACT
        if fb >= 0.0:
            found = True
            break
        a = b
        fa = fb
    if not found:
        return math.nan, _NO_EDGE
    if sb == 0.0 and ev(0.0)[0] == 0.0 and tab[4][0] > 0.0:
        t = 1.0 / math.sqrt(tab[4][0])
        if a < t <= b and abs(t * t * tab[4][1] - 1.0) <= 1e-12:
            ft, st = chi1_at(t * (1.0 + TRANSITION_STEP), sb, tab, exact)
            if st & _NEED_EXACT:
                return math.nan, _NEED_EXACT
            if ft >= 0.0:
                return t, chi1_at(t, sb, tab, exact)[1]
            if t * (1.0 + TRANSITION_STEP) < b:
                a, fa = t * (1.0 + TRANSITION_STEP), ft
    side = 0
    for _ in range(MAXIT):
        x = b - fb * (b - a) / (fb - fa)
        if not (a < x < b):
            x = 0.5 * (a + b)
        fx, st = chi1_at(x, sb, tab, exact)
        if st & _NEED_EXACT:
            return math.nan, _NEED_EXACT
        if fx >= 0.0:
            b, fb = x, fx
            if side == -1:
                fa *= 0.5
            side = -1
        else:
            a, fa = x, fx
            if side == 1:
                fb *= 0.5
            side = 1
        if b - a <= 1e-15 * b or fx == 0.0:
            break
    return b, chi1_at(b, sb, tab, exact)[1]

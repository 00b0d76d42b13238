"""The edge of chaos: σ_w with χ_1(σ_w, σ_b) = 1 at one σ_b.

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.meanfield.kernels`, which binds the names below; not imported directly.
"""

import math

from numba import njit

from fastprop.meanfield.common import _NO_EDGE, MAXIT, Q_MAX
from fastprop.run.compile import bound

moments, q_star, CACHE = bound(__name__, "moments", "q_star", "CACHE")


@njit(cache=CACHE)
def chi1_at(sw, sb):
    q, status = q_star(sw, sb)
    return sw * sw * moments(min(q, Q_MAX))[3], status


@njit(cache=CACHE)
def edge(sb, lo, hi, nscan):
    """σ_w in [lo, hi] with χ_1(σ_w, σ_b) = 1: first upward crossing on a log scan, then Illinois."""
    r = (hi / lo) ** (1.0 / (nscan - 1))
    a = lo
    fa = chi1_at(a, sb)[0] - 1.0
    if fa >= 0.0:
        return math.nan, _NO_EDGE
    b = a
    fb = fa
    found = False
    for i in range(1, nscan):
        b = lo * r**i if i < nscan - 1 else hi
        fb = chi1_at(b, sb)[0] - 1.0
        if fb >= 0.0:
            found = True
            break
        a = b
        fa = fb
    if not found:
        return math.nan, _NO_EDGE
    side = 0
    for _ in range(MAXIT):
        x = b - fb * (b - a) / (fb - fa)
        if not (a < x < b):
            x = 0.5 * (a + b)
        fx, _ = chi1_at(x, sb)
        fx -= 1.0
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
    return b, chi1_at(b, sb)[1]

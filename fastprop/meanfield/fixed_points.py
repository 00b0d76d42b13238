"""The fixed points q* and c*, and every quantity of one grid point.

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.meanfield.kernels`, which binds the names below; not imported directly.
"""

import math

from numba import njit

from fastprop.meanfield.common import (
    _CRITICAL,
    _NOT_CONVERGED,
    _Q_INFINITE,
    _Q_ZERO,
    C_ACCEPT,
    C_TOL,
    CRIT_TOL,
    MAXIT,
    Q_MAX,
    Q_RTOL,
    depth_scale,
)
from fastprop.quadrature import Q_TINY
from fastprop.run.compile import bound

ev, moments, mehler, pair, CACHE = bound(__name__, "ev", "moments", "mehler", "pair", "CACHE")


@njit(cache=CACHE)
def q_star_moments(sw, sb):
    """(q*, status, moments) — the stable fixed point of V, its status bits (see
    module docstring) and :func:`moments` at q* (within 1e-15 relative) when
    Newton ended there, else NaNs."""
    none = (math.nan, math.nan, math.nan, math.nan, math.nan)
    w2 = sw * sw
    b2 = sb * sb
    p0 = ev(0.0)[0]
    v0 = w2 * p0 * p0 + b2
    if v0 == 0.0:
        m = moments(Q_TINY)
        if w2 * m[4] <= 1.0 + CRIT_TOL:  # V'(0⁺) ≤ 1: 0 is stable
            return 0.0, _Q_ZERO, none
        x = 1.0
    else:
        x = v0
    lo = 0.0
    hi = math.inf
    grow = 4.0
    for _ in range(MAXIT):
        m = moments(x)
        g = w2 * m[2] + b2 - x
        dg = w2 * m[4] - 1.0
        if g == 0.0:
            return x, 0, m
        if g > 0.0:
            lo = x
        else:
            hi = x
        xn = x - g / dg if dg != 0.0 else math.nan
        if hi == math.inf:
            if not xn > x:
                # V' ≥ 1 here, so Newton points the wrong way: take the larger of
                # the fixed-point step V(x) (≤ q* when V increases) and a
                # geometric step (squared each time, to detect q* = ∞ fast)
                xn = max(x + g, x * grow)
                grow *= grow
            if xn > Q_MAX:
                if x * 2.0 > Q_MAX:
                    return math.inf, _Q_INFINITE, none
                xn = Q_MAX
        else:
            if not (lo < xn < hi):
                if lo > 0.0 and hi > 4.0 * lo:
                    xn = math.sqrt(lo * hi)
                else:
                    xn = 0.5 * (lo + hi)
            if abs(xn - x) <= Q_RTOL * x or hi - lo <= Q_RTOL * hi:
                return xn, 0, m
        x = xn
    return x, _NOT_CONVERGED, none


@njit(cache=CACHE)
def q_star(sw, sb):
    """Stable fixed point of V and its status bits (see module docstring)."""
    q, status, _ = q_star_moments(sw, sb)
    return q, status


@njit(cache=CACHE)
def c_star(q, sw, sb, e_phi, e_dphi, e_phi2, chi1, scr):
    """(c*, χ_c, status) at q* > 0 (see module docstring); ``scr``: work space."""
    w2 = sw * sw
    b2 = sb * sb
    if chi1 <= 1.0:
        return 1.0, chi1, 0
    if w2 * e_phi * e_phi + b2 <= 0.0:  # C(0) = 0: odd φ without bias
        return 0.0, w2 * e_dphi * e_dphi, 0
    lo = 0.0  # C(lo) > lo
    hi = 1.0  # C(hi) ≤ hi
    c, slope, exact = mehler(q, sw, sb, e_phi2, scr)
    if exact:
        return c, slope, 0
    for _ in range(MAXIT):
        n, mm, ll = pair(q, c, scr)
        g = (w2 * n + b2) / q - c
        slope = w2 * mm
        curv = w2 * q * ll  # C''(c), NaN unless the lattice rule ran
        if g > 0.0:
            lo = c
        else:
            hi = c
        step = -g / (slope - 1.0) if slope < 1.0 else math.nan
        if abs(step) <= C_TOL:
            # quadratic convergence: c + step is exact to ~step²; χ_c at c differs
            # from χ_c at c* by C''·step, which is large where C'' is (kinked φ
            # near c = 1): with C'' known it is added, otherwise χ_c is C' at c*
            cn = min(max(c + step, lo), hi)
            if curv >= 0.0:
                return cn, slope + curv * (cn - c), 0
            return cn, w2 * pair(q, cn, scr)[1], 0
        if curv >= 0.0 and slope < 1.0:
            # Halley: with C'' the second-order step δ = s + C''s²/(2(1 − C'));
            # once s is small, c + δ and C'(c) + C''δ err by O(s³) and O(s²)
            step += 0.5 * curv * step * step / (1.0 - slope)
            if abs(step) <= C_ACCEPT and curv * abs(step) <= 1e-3 * (1.0 - slope):
                cn = c + step
                if lo <= cn <= hi:
                    return cn, slope + curv * step, 0
        cn = c + step
        if not (lo < cn < hi):
            cn = 0.5 * (lo + hi)
        if hi - lo <= 1e-16:
            return cn, slope, 0
        c = cn
    return c, slope, _NOT_CONVERGED


@njit(cache=CACHE)
def point(sw, sb, scr):
    """(q*, χ_1, c*, χ_c, χ_q, ξ_q, ξ_c, status) at one (σ_w, σ_b); ``scr`` is a
    work space of ``SCRATCH_SIZE`` float64 values (its contents are not used)."""
    q, status, m = q_star_moments(sw, sb)
    w2 = sw * sw
    if q == math.inf:
        m = moments(Q_MAX)
        return q, w2 * m[3], math.nan, math.nan, math.nan, math.nan, math.nan, status
    if math.isnan(m[0]):
        m = moments(q)
    chi1 = w2 * m[3]
    chiq = w2 * m[4]
    if q == 0.0:
        c, chic = 1.0, chi1
    else:
        c, chic, st = c_star(q, sw, sb, m[0], m[1], m[2], chi1, scr)
        status |= st
    xiq = depth_scale(chiq)
    xic = depth_scale(chic)
    if xiq == math.inf or xic == math.inf:
        status |= _CRITICAL
    return q, chi1, c, chic, chiq, xiq, xic, status

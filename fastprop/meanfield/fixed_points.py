"""The fixed points q* and c*, and every quantity of one grid point.

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.meanfield.kernels`, which binds the names below; not imported directly.
"""

import math

from numba import njit

from fastprop.meanfield.common import (
    _CRITICAL,
    _NEED_EXACT,
    _NOT_CONVERGED,
    _PENDING,
    _Q_INFINITE,
    _Q_ZERO,
    C_ACCEPT,
    C_TOL,
    CRIT_TOL,
    KMEHLER,
    MAXIT,
    Q_MAX,
    Q_RTOL,
    depth_scale,
)
from fastprop.meanfield.interpolants import (
    C_HI,
    C_LO,
    DEG_T,
    NQ,
    TOL,
    WORK_SIZE,
    cheb_theta,
    collapse,
    cstar_table,
    hermite_table,
    q_panel,
    q_start,
    start_table,
    t_panel,
    theta_box,
)
from fastprop.run.compile import bound

# ``point`` and the functions it calls on every grid point are inlined into their callers
# (``inline="always"``, Numba IR): a call that is not inlined passes the tables ``tab``
# (twelve arrays, about 130 machine words) flattened into its arguments, which cost a third
# of a grid point's time. The exact fallbacks stay calls.
ev, moments_at, length_moments_at, mehler, mehler_root, pair, HAS_KERNEL, CACHE = bound(
    __name__, "ev", "moments_at", "length_moments_at", "mehler", "mehler_root", "pair", "HAS_KERNEL", "CACHE"
)


@njit(cache=CACHE, inline="always")
def q_star_moments(sw, sb, tab, exact):
    """(q*, status, moments) — the stable fixed point of V, its status bits (see
    module docstring) and the moments at q* (within 1e-15 relative) when
    Newton ended there, else NaNs. The moments come from the tables ``tab``
    (:mod:`fastprop.meanfield.interpolants`) where they cover q, else from the
    quadrature when ``exact``; otherwise the status is ``_NEED_EXACT``.

    Newton starts at the q* start table's estimate where it has one (else at
    V(0)); it needs only E φ² and its q-derivative; all five moments are evaluated
    once the step is small (``_FULL_STEP``), so that the last iterate carries them.
    """
    none = (math.nan, math.nan, math.nan, math.nan, math.nan)
    w2 = sw * sw
    b2 = sb * sb
    p0 = ev(0.0)[0]
    v0 = w2 * p0 * p0 + b2
    if v0 == 0.0:
        if w2 * tab[4][0] <= 1.0 + CRIT_TOL:  # V'(0⁺) ≤ 1: 0 is stable
            return 0.0, _Q_ZERO, none
        x = 1.0
    else:
        x = v0
    start = q_start(w2, b2, tab[9], tab[10])
    if start > 0.0 and start < Q_MAX:
        x = start
    lo = 0.0
    hi = math.inf
    grow = 4.0
    full = False
    m = none
    for _ in range(MAXIT):
        if full:
            ok, m = moments_at(x, tab, exact)
            e2, de2 = m[2], m[4]
        else:
            ok, e2, de2 = length_moments_at(x, tab, exact)
        if not ok:
            return x, _NEED_EXACT, none
        g = w2 * e2 + b2 - x
        dg = w2 * de2 - 1.0
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
        full = abs(xn - x) <= _FULL_STEP * x
        m = none
        x = xn
    return x, _NOT_CONVERGED, none


_FULL_STEP = 1e-6
"""A Newton step on q* this small (relative) is followed by the last one (the error is
then ~step² ≪ ``Q_RTOL``): that iterate evaluates all five moments."""


@njit(cache=CACHE)
def q_star(sw, sb, tab, exact):
    """Stable fixed point of V and its status bits (see module docstring)."""
    q, status, _ = q_star_moments(sw, sb, tab, exact)
    return q, status


@njit(cache=CACHE, inline="always")
def c_star(q, sw, sb, e_phi, e_dphi, e_phi2, chi1, scr, tab, exact):
    """(c*, χ_c, status) at q* > 0 (see module docstring); ``scr``: work space.

    Where the c* table covers the point (:func:`c_star_tabulated`), c* and χ_c are
    read from it. Elsewhere, where the start table (:func:`c_star_start`) puts c* in the pair table, Newton
    on the pair table starts there, below c* by the start table's error.
    Otherwise the truncated Mehler model (Hermite coefficients from the table, or by
    quadrature) gives c* when its remainder is below rounding; otherwise its
    root c_M ≤ c* starts Newton on the tabulated pair integrals, which
    converges monotonically from the left (C is convex and increasing on
    [0, 1]); where the table does not cover the iterates, Newton continues on
    the exact pair integrals (``exact``), or the status says what is missing
    (``_PENDING``: a table box not built yet; ``_NEED_EXACT``).
    """
    w2 = sw * sw
    b2 = sb * sb
    if chi1 <= 1.0:
        return 1.0, chi1, 0
    if w2 * e_phi * e_phi + b2 <= 0.0:  # C(0) = 0: odd φ without bias
        return 0.0, w2 * e_dphi * e_dphi, 0
    t = (chi1 - 1.0) / (q * chi1 / (w2 * e_phi2) - 1.0)
    state, c, slope = c_star_tabulated(q, t, tab, scr)
    if state == 1:
        return c, slope, 0
    if state == 0:
        return math.nan, math.nan, _PENDING
    tk = scr[WORK_SIZE - DEG_T : WORK_SIZE]
    work = scr[KMEHLER + 1 : WORK_SIZE - DEG_T]
    state, c, err = c_star_start(q, t, tab)
    if state == 0:
        return math.nan, math.nan, _PENDING
    start = min(max(c - err, 0.0), C_HI) if state == 1 else 0.0
    if start >= C_LO:
        c, slope, state = c_star_table(q, sw, sb, start, tab, work, tk)
        if state == 1:
            return c, slope, 0
        # rare (an iterate left the table, or the start was not below c* after all):
        # the path below
    coef = scr[: KMEHLER + 1]
    if hermite_table(q, tab[0], tab[1], coef, tk):
        c, slope, done = mehler_root(coef, e_phi2, q, sw, sb, HERMITE_SLACK, start)
    elif exact:
        c, slope, done = mehler(q, sw, sb, e_phi2, scr)
    else:
        return math.nan, math.nan, _NEED_EXACT
    if done:
        return c, slope, 0
    c, slope, state = c_star_table(q, sw, sb, c, tab, work, tk)
    if state == 1:
        return c, slope, 0
    if state == 0:
        return math.nan, math.nan, _PENDING
    if not exact and not HAS_KERNEL:  # a closed-form pair integral needs no work space
        return math.nan, math.nan, _NEED_EXACT
    return c_star_exact(q, sw, sb, c, scr)


@njit(cache=CACHE, inline="always")
def c_star_tabulated(q, t, tab, scr):
    """(state, c*, χ_c) from the certified c* table at q* = q and t = (χ_1 − 1)/(χ̂ − 1),
    χ̂ = q E φ'²/E φ² = q χ_1/(σ_w² E φ²) (layout in :mod:`fastprop.meanfield.interpolants`);
    state 1: the values, 0: the panel is not built yet, −1: not covered. ``scr``: work space."""
    i, x = q_panel(q, NQ)
    p, y = t_panel(t)
    if i < 0 or p < 0:
        return -1, math.nan, math.nan
    st = tab[8][i, p]
    if st != 1:
        return st, math.nan, math.nan
    c, slope = cstar_table(tab[7], tab[11], i, x, p, y, scr)
    return 1, c, slope


@njit(cache=CACHE)
def c_star_start(q, t, tab):
    """(state, c, err): the start table's estimate of c* at q* = q and t (as in
    :func:`c_star_tabulated`), and its error bound; state 1: available,
    0: the panel's start table is not built yet, −1: none."""
    i, x = q_panel(q, NQ)
    if i < 0:
        return -1, math.nan, math.nan
    err = tab[6][i]
    if err <= 0.0:
        return (0 if err == 0.0 else -1), math.nan, math.nan
    return 1, start_table(tab[5], i, x, min(max(t, 0.0), 1.0)), err


HERMITE_SLACK = (1.0 + 2.0 * math.sqrt(KMEHLER + 1.0)) * TOL
"""Error of R = E φ² − Σ a_n² from tabulated a_n (each within TOL·√E φ²), relative to E φ²."""
@njit(cache=CACHE)
def c_star_table(q, sw, sb, c, tab, work, tk):
    """Newton on the tabulated pair integrals from c ≤ c* (monotone from the left).
    Returns (c*, χ_c, 1), or (c, NaN, state) with the table's state (0: box not
    built, −1: not covered) where an iterate leaves it; c is then still ≤ c*.
    The box in use is collapsed to a θ series at q once (``work``: 2·DEG_T values;
    ``tk``: DEG_T values)."""
    w2 = sw * sw
    b2 = sb * sb
    box = -1
    c0 = c
    start = c < C_LO  # first check that C_LO is still left of c* (C(C_LO) > C_LO)
    if start:
        c = C_LO
    i, x = q_panel(q, NQ)
    if i < 0:
        return c0, math.nan, -1
    moved_up = False
    for _ in range(MAXIT):
        j, y = theta_box(c)
        if j < 0:
            return c if not start else c0, math.nan, -1
        if j != box:
            st = tab[3][i, j]
            if st != 1:
                return c if not start else c0, math.nan, st
            collapse(tab[2], i, j, x, work, tk)
            box = j
        n = cheb_theta(work, 0, y)
        slope = w2 * cheb_theta(work, 1, y)
        g = (w2 * n + b2) / q - c
        if start:
            if not g > 0.0:
                return c0, math.nan, -1
            start = False
        if not slope < 1.0:
            return c, math.nan, -1
        step = -g / (slope - 1.0)
        if abs(step) <= 4e-16 or (step < 0.0 and moved_up and -step <= 1e-10):
            # converged; a small step back after steps up is rounding, not a crossing
            return c + step, slope, 1
        # from a start above c* (the tables' own error) the first step is down, to
        # at most c* (C is convex); from there the iterates rise monotonically
        moved_up = step > 0.0
        c += step
    return c, math.nan, -1


@njit(cache=CACHE)
def c_star_exact(q, sw, sb, c, scr):
    """Safeguarded Newton (Halley where C'' is known) on the exact pair integrals from c ≤ c*."""
    w2 = sw * sw
    b2 = sb * sb
    lo = 0.0  # C(lo) > lo
    hi = 1.0  # C(hi) ≤ hi
    slope = math.nan
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
        # C is known to a few ulps, so next to the edge (C' → 1) c* itself is only
        # determined to ~4e-16/(1 − C'): a step at that level is converged
        if slope < 1.0 and abs(step) <= max(C_TOL, 4e-16 / (1.0 - slope)):
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


@njit(cache=CACHE, inline="always")
def point(sw, sb, scr, tab, exact):
    """(q*, χ_1, c*, χ_c, χ_q, ξ_q, ξ_c, status) at one (σ_w, σ_b); ``scr`` is a
    work space of ``SCRATCH_SIZE`` float64 values (its contents are not used);
    ``tab``, ``exact``: as in :func:`q_star_moments` (a status with ``_PENDING``
    or ``_NEED_EXACT`` means the point is to be computed again)."""
    nan = math.nan
    q, status, m = q_star_moments(sw, sb, tab, exact)
    w2 = sw * sw
    if status & _NEED_EXACT:
        return nan, nan, nan, nan, nan, nan, nan, status
    if q == math.inf:
        return q, w2 * tab[4][2], nan, nan, nan, nan, nan, status
    if math.isnan(m[0]):
        ok, m = moments_at(q, tab, exact)
        if not ok:
            return nan, nan, nan, nan, nan, nan, nan, _NEED_EXACT
    chi1 = w2 * m[3]
    chiq = w2 * m[4]
    if q == 0.0:
        c, chic = 1.0, chi1
    else:
        c, chic, st = c_star(q, sw, sb, m[0], m[1], m[2], chi1, scr, tab, exact)
        status |= st
        if st & (_PENDING | _NEED_EXACT):
            return q, chi1, nan, nan, nan, nan, nan, status
        # c* ≤ 1 by definition; just above the edge of chaos, where 1 − c* is of
        # order χ_1 − 1, rounding (about 1e-16/(χ_1 − 1) in c*) can push it past
        c = min(c, 1.0)
    xiq = depth_scale(chiq)
    xic = depth_scale(chic)
    if xiq == math.inf or xic == math.inf:
        status |= _CRITICAL
    return q, chi1, c, chic, chiq, xiq, xic, status

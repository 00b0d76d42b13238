r"""Evaluation of the mean-field tables: piecewise Chebyshev interpolants in log q and θ.

Every point of a grid shares the activation, so the functions of q (and c) that
its fixed points need are tabulated once per activation
(:mod:`fastprop.meanfield.tables` builds and certifies them) and each point only
evaluates them. This module holds the layout and the compiled evaluation; it has
no activation in it, so the same code runs for every activation and target.

Layout
------
* ``x = ln q`` from ``LNQ_LO`` (q = 3.8e-11) in panels of unit width: ``NQ1`` of them
  for the one-dimensional table (to q = 1.1e200, past ``Q_MAX``, so that the search
  for a diverging q* stays in the table) and ``NQ`` for the pair integrals (to
  q = 1.8e8). On each panel a function is the Chebyshev series
  Σ_{k<DEG} a_k T_k(2(x − x_i) − 1).
* One-dimensional table ``T1[i, f, k]`` for f = 0 … ``NF1`` − 1: the moments
  E φ, E φ', E φ², E φ'², dE φ²/dq of :func:`moments` and the normalised Hermite
  (Mehler) coefficients a_0 … a_K of φ(√q z) (K = ``KMEHLER``); ``OK1[i, 0] = 1``
  where the moments of panel i are certified, ``OK1[i, 1] = 1`` where its Hermite
  coefficients are (for kinked φ the high a_n can fail where the moments pass).
* Two-dimensional table ``T2[i, j, f, k, l]`` (k < ``DEG`` in ln q, l < ``DEG_T`` in θ), f = 0: N(q, c) = E φ(u₁)φ(u₂),
  f = 1: M(q, c) = E φ'(u₁)φ'(u₂) (Var u = q, Corr = c), in ``θ = arccos c`` on
  ``J`` boxes graded geometrically towards θ = 0: box j is
  [Θ·2^{−j−1}, Θ·2^{−j}] with Θ = arccos ``C_LO``; so c ∈ [``C_LO``, cos(Θ/2^J)]
  = [0.25, 1 − 5.2e-8]. Graded boxes follow the q → ∞ limit of a saturating φ,
  N → (2/π) arcsin c = 1 − 2θ/π, whose finite-q rounding near θ = 0 has width
  ~1/√q. Twelve boxes reach that far towards c = 1 because c* leaves 1 slowly at
  the edge of chaos (1 − c* ∝ χ_1 − 1 for smooth φ, ∝ (χ_1 − 1)² for kinked φ):
  with seven (c ≤ 0.99995) a few tenths of a percent of a kinked φ's chaotic grid
  points solved c* by exact quadrature, most of its grid time. ``OK2[i, j]``: 1
  certified, 0 not built yet, −1 failed certification (the exact path is used
  there; for kinked φ at large q the finest boxes can fail).
* ``K0`` holds limits: K0[0] = dE φ²/dq and K0[1] = E φ'² at q → 0⁺.
* Start table ``S[i, k, l]`` (k < ``SQ`` in ln q, l < ``ST`` in t) on each pair panel:
  c* as a Chebyshev series in (ln q, t) with t = (χ_1 − 1)/(χ̂ − 1) ∈ (0, 1],
  where χ̂(q) = q E φ'²/E φ² is the largest χ_1 a fixed point q* = q can have
  (σ_b = 0). At given q* the point's σ_b²/q* = 1 − χ_1/χ̂ and its c* depend on t
  alone (c* is a fixed point of c ↦ s + (1 − s) N(q, c)/E φ², s = σ_b²/q); the
  chaotic phase is t > 0, where c* leaves 1 smoothly (linearly for smooth φ,
  quadratically for kinked φ). Not certified: it gives Newton on the pair table a
  start within ``SD[i]`` of c* (its error at fresh points, doubled), so that a
  point needs one collapsed box and two or three Newton steps. ``SD[i]`` = 0:
  not built yet; < 0: none (no pair table, or χ̂ too close to 1 on the panel).
* c* table ``CS[i, p, f, l, k]`` (l < ``CT`` in t, k < ``CQ`` in ln q) on each pair
  panel i and t panel p: f = 0: c*, f = 1: χ_c, as functions of (ln q*, t) (both
  depend on q* and t alone, as above). The t panels (:func:`t_panel`) are graded
  towards the edge of chaos t = 0, where c* → 1: twelve with ratio √2 from ``T_LO`` =
  2^{−7} to 1/2, and eight of width 1/16 above 1/2 (c* bends most towards t = 1,
  σ_b = 0). ``OKC[i, p]``: 1 certified (a chaotic point there is two small Chebyshev
  sums, no Newton), 0 not built yet, −1 failed or not built (the point solves c* by
  Newton on the pair table, from the start table). ``LC[i, p]`` = (terms in t, terms
  in ln q) a certified panel keeps: the rest are negligible (below a quarter of its
  tolerance in all), so a point sums only those.
* q* start table ``QS[a, b, k, l]`` (k < ``QA``, l < ``QB``): ln q* as a Chebyshev
  series in (ln σ_w², ln σ_b²) on unit panels, a < ``NA`` from ln σ_w² = ``A_LO``,
  b < ``NB`` from ln σ_b² = ``B_LO`` (σ_w ∈ [0.0067, 148], σ_b ∈ [4.5e-5, 2.2e4]);
  b = ``NB`` holds σ_b = 0 (a series in ln σ_w² alone, l = 0). ``OKQ[a, b]`` = 1
  where it was within ``Q_START_TOL`` of q* (relative) at fresh points. Not
  certified: it only starts Newton on q*, which then needs two or three steps instead
  of five or six (the answer is Newton's, to ``Q_RTOL``).

A point outside the table (q beyond its range, c outside [C_LO, C_HI], a panel
that failed) is computed by the exact per-point quadrature instead.
"""

import math

from numba import njit

from fastprop.meanfield.common import KMEHLER

LNQ_LO = -24.0
NQ = 43
"""ln q panels of the pair table."""
NQ1 = 485
"""ln q panels of the one-dimensional table."""
DEG = 16
"""Chebyshev terms per panel in ln q."""
DEG_T = 24
"""Chebyshev terms per box in θ (the pair integrals bend faster in θ than in ln q)."""
NF1 = 5 + KMEHLER + 1
HERM0 = 5
"""Index of a_0 among the one-dimensional functions."""
C_LO = 0.25
THETA_HI = math.acos(C_LO)
J = 12
THETA_LO = THETA_HI / 2.0**J
C_HI = math.cos(THETA_LO)
SQ = 8
"""Chebyshev terms of the start table in ln q."""
ST = 24
"""Chebyshev terms of the start table in t."""
CQ = 16
"""Chebyshev terms of the c* table in ln q (at most; a multiple of 4: :func:`cstar_table`)."""
CT = 16
"""Chebyshev terms of the c* table in t (at most)."""
NT = 20
"""t panels of the c* table (:func:`t_panel`)."""
T_LO = 2.0**-7
_SQRT2 = math.sqrt(2.0)
"""Smallest t the c* table covers."""
QA = 8
"""Chebyshev terms of the q* start table in ln σ_w²."""
QB = 8
"""Chebyshev terms of the q* start table in ln σ_b²."""
A_LO = -10.0
NA = 20
B_LO = -20.0
NB = 40
Q_START_TOL = 1e-3
"""A panel of the q* start table is used where it is this close to q* (relative) at fresh points."""
WORK_SIZE = max(KMEHLER + 1 + 3 * DEG_T, CQ)
"""Work space of the table path of a point (float64 values): the Hermite coefficients,
one collapsed pair box and the Chebyshev polynomials at one point; or the c* table's sums."""
TOL = 1e-13
"""Certified error of every table entry, relative to its scale (:mod:`fastprop.meanfield.tables`)."""


@njit(cache=True)
def q_panel(q, n):
    """(i, x): the ln q panel of q among the first ``n`` and the Chebyshev variable
    x ∈ [−1, 1] on it; i = −1 outside."""
    if not q > 0.0:
        return -1, 0.0
    t = math.log(q) - LNQ_LO
    if not 0.0 <= t <= n:
        return -1, 0.0
    i = min(int(t), n - 1)
    return i, 2.0 * (t - i) - 1.0


@njit(cache=True)
def cheb1(T1, i, f, x):
    """Σ_k T1[i, f, k] T_k(x) by Clenshaw's recurrence."""
    b1 = 0.0
    b2 = 0.0
    x2 = 2.0 * x
    for k in range(DEG - 1, 0, -1):
        b1, b2 = x2 * b1 - b2 + T1[i, f, k], b1
    return x * b1 - b2 + T1[i, f, 0]


@njit(cache=True)
def moments_table(q, T1, OK1):
    """(ok, (E φ, E φ', E φ², E φ'², dE φ²/dq)) at q from the table; ok is False
    where q is outside it or its panel is not certified. The five Clenshaw
    recurrences run side by side (independent chains, not one long one)."""
    i, x = q_panel(q, NQ1)
    if i < 0 or OK1[i, 0] != 1:
        return False, (math.nan, math.nan, math.nan, math.nan, math.nan)
    x2 = 2.0 * x
    a0 = a1 = a2 = a3 = a4 = 0.0
    b0 = b1 = b2 = b3 = b4 = 0.0
    for k in range(DEG - 1, 0, -1):
        a0, b0 = x2 * a0 - b0 + T1[i, 0, k], a0
        a1, b1 = x2 * a1 - b1 + T1[i, 1, k], a1
        a2, b2 = x2 * a2 - b2 + T1[i, 2, k], a2
        a3, b3 = x2 * a3 - b3 + T1[i, 3, k], a3
        a4, b4 = x2 * a4 - b4 + T1[i, 4, k], a4
    return True, (
        x * a0 - b0 + T1[i, 0, 0], x * a1 - b1 + T1[i, 1, 0], x * a2 - b2 + T1[i, 2, 0],
        x * a3 - b3 + T1[i, 3, 0], x * a4 - b4 + T1[i, 4, 0],
    )  # fmt: skip


@njit(cache=True)
def length_table(q, T1, OK1):
    """(ok, E φ², dE φ²/dq) at q from the table (what Newton on q* needs; two
    Clenshaw recurrences side by side); ok as in :func:`moments_table`."""
    i, x = q_panel(q, NQ1)
    if i < 0 or OK1[i, 0] != 1:
        return False, math.nan, math.nan
    x2 = 2.0 * x
    a2 = a4 = b2 = b4 = 0.0
    for k in range(DEG - 1, 0, -1):
        a2, b2 = x2 * a2 - b2 + T1[i, 2, k], a2
        a4, b4 = x2 * a4 - b4 + T1[i, 4, k], a4
    return True, x * a2 - b2 + T1[i, 2, 0], x * a4 - b4 + T1[i, 4, 0]


@njit(cache=True)
def chebyshev_values(x, tk):
    """tk[k] = T_k(x) for k < ``DEG_T`` (three-term recurrence)."""
    tk[0] = 1.0
    tk[1] = x
    for k in range(2, DEG_T):
        tk[k] = 2.0 * x * tk[k - 1] - tk[k - 2]


@njit(cache=True)
def hermite_table(q, T1, OK1, coef, tk):
    """Fill ``coef[0 … K]`` with the Hermite coefficients a_n(q) from the table; False
    outside it. ``tk``: work space of ``DEG_T`` values (the T_k(x), shared by all n)."""
    i, x = q_panel(q, NQ1)
    if i < 0 or OK1[i, 1] != 1:
        return False
    chebyshev_values(x, tk)
    for n in range(KMEHLER + 1):
        s = 0.0
        for k in range(DEG):
            s += T1[i, HERM0 + n, k] * tk[k]
        coef[n] = s
    return True


@njit(cache=True)
def theta_box(c):
    """(j, y): the θ box of c and the Chebyshev variable y ∈ [−1, 1] on it; j = −1 outside."""
    if not C_LO <= c <= C_HI:
        return -1, 0.0
    th = math.acos(c)
    j = 0
    hi = THETA_HI
    while j < J - 1 and th < 0.5 * hi:
        hi *= 0.5
        j += 1
    lo = 0.5 * hi
    return j, min(max((2.0 * th - (hi + lo)) / (hi - lo), -1.0), 1.0)


@njit(cache=True)
def pair_table(q, c, T2, OK2):
    """(state, N, M): the pair integrals at (q, c) from the table; state 1: certified
    values, 0: the box is not built yet, −1: outside the table or not certified."""
    i, x = q_panel(q, NQ)
    j, y = theta_box(c)
    if i < 0 or j < 0:
        return -1, math.nan, math.nan
    s = OK2[i, j]
    if s != 1:
        return s, math.nan, math.nan
    return 1, _cheb2(T2, i, j, 0, x, y), _cheb2(T2, i, j, 1, x, y)


@njit(cache=True)
def _cheb2(T2, i, j, f, x, y):
    """Σ_{m,k} T2[i, j, f, m, k] T_m(x) T_k(y): an outer Clenshaw recurrence in y whose
    coefficients are inner Clenshaw sums in x."""
    x2 = 2.0 * x
    y2 = 2.0 * y
    d1 = 0.0
    d2 = 0.0
    for k in range(DEG_T - 1, 0, -1):
        d1, d2 = y2 * d1 - d2 + _column(T2, i, j, f, k, x, x2), d1
    return y * d1 - d2 + _column(T2, i, j, f, 0, x, x2)


@njit(cache=True)
def _column(T2, i, j, f, k, x, x2):
    b1 = 0.0
    b2 = 0.0
    for m in range(DEG - 1, 0, -1):
        b1, b2 = x2 * b1 - b2 + T2[i, j, f, m, k], b1
    return x * b1 - b2 + T2[i, j, f, 0, k]


@njit(cache=True)
def pair_box(q, c):
    """(i, j, x, y): the pair-table box of (q, c) and the Chebyshev variables in it (i or j = −1: outside)."""
    i, x = q_panel(q, NQ)
    j, y = theta_box(c)
    return i, j, x, y


@njit(cache=True)
def collapse(T2, i, j, x, out, tk):
    """out[f·DEG_T + k] = Σ_m T2[i, j, f, m, k] T_m(x): the θ series of box (i, j) at one q,
    so that each further value at that q costs ``DEG_T`` terms (:func:`cheb_theta`).
    ``tk``: work space of ``DEG_T`` values."""
    chebyshev_values(x, tk)
    for f in range(2):
        for k in range(DEG_T):
            out[f * DEG_T + k] = 0.0
        for m in range(DEG):
            t = tk[m]
            for k in range(DEG_T):
                out[f * DEG_T + k] += T2[i, j, f, m, k] * t


@njit(cache=True)
def cheb_theta(col, f, y):
    """Σ_k col[f·DEG_T + k] T_k(y) (Clenshaw) for a series from :func:`collapse`."""
    y2 = 2.0 * y
    d1 = 0.0
    d2 = 0.0
    for k in range(DEG_T - 1, 0, -1):
        d1, d2 = y2 * d1 - d2 + col[f * DEG_T + k], d1
    return y * d1 - d2 + col[f * DEG_T]


@njit(cache=True)
def start_table(S, i, x, t):
    """The start table's c* on pair panel i at the Chebyshev variable x (ln q) and
    t ∈ [0, 1] (layout above)."""
    return cheb2_box(S[i], x, 2.0 * t - 1.0)


@njit(cache=True)
def cheb2_box(C, x, y):
    """Σ_{m,k} C[m, k] T_m(x) T_k(y): Clenshaw in y over Clenshaw sums in x, as :func:`_cheb2`."""
    x2 = 2.0 * x
    y2 = 2.0 * y
    d1 = 0.0
    d2 = 0.0
    for k in range(C.shape[1] - 1, -1, -1):
        b1 = 0.0
        b2 = 0.0
        for m in range(C.shape[0] - 1, 0, -1):
            b1, b2 = x2 * b1 - b2 + C[m, k], b1
        col = x * b1 - b2 + C[0, k]
        if k == 0:
            return y * d1 - d2 + col
        d1, d2 = y2 * d1 - d2 + col, d1
    return math.nan


@njit(cache=True)
def t_panel(t):
    """(p, y): the t panel of the c* table holding t and the Chebyshev variable y ∈ [−1, 1]
    on it; p = −1 outside [``T_LO``, 1]. Panels 0 … 11 are [2^{(p−14)/2}, 2^{(p−13)/2}],
    panels 12 … 19 are [1/2 + (p − 12)/16, 1/2 + (p − 11)/16]."""
    if t >= 0.5:
        if not t <= 1.0:
            return -1, 0.0
        p = min(int((t - 0.5) * 16.0), 7)
        return 12 + p, min(32.0 * (t - 0.5 - 0.0625 * p) - 1.0, 1.0)
    if not t >= T_LO:
        return -1, 0.0
    m, e = math.frexp(t)  # t = m 2^e, m ∈ [1/2, 1): t ∈ [2^{e−1}, 2^e)
    r = 2.0 * m  # t / 2^{e−1} ∈ [1, 2)
    if r < _SQRT2:
        return 2 * (e + 6), max(2.0 * (r - 1.0) / (_SQRT2 - 1.0) - 1.0, -1.0)
    return 2 * (e + 6) + 1, min(2.0 * (r / _SQRT2 - 1.0) / (_SQRT2 - 1.0) - 1.0, 1.0)



def t_panel_edges(p):
    """(lo, hi) of t panel p (:func:`t_panel`)."""
    if p < 12:
        lo = 2.0 ** (p // 2 - 7) * (_SQRT2 if p % 2 else 1.0)
        return lo, (2.0 ** (p // 2 - 6) if p % 2 else lo * _SQRT2)
    return 0.5 + 0.0625 * (p - 12), 0.5 + 0.0625 * (p - 11)


@njit(cache=True)
def cstar_table(CS, LC, i, x, p, y, w):
    """(c*, χ_c) from the c* table on pair panel i, t panel p at the Chebyshev variables
    x (ln q) and y (t), summing the terms ``LC[i, p]`` keeps; ``w``: work space of ``CQ``
    values. With the T_m(x) from their recurrence, each t coefficient is a sum over m of
    its own: the sums are independent (they overlap in the processor), where Clenshaw's
    steps would wait on each other."""
    nt = LC[i, p, 0]
    nq = LC[i, p, 1]
    chebyshev_values_n(x, w, 0, nq)
    y2 = 2.0 * y
    t0 = 1.0
    t1 = y
    c = 0.0
    chic = 0.0
    for k in range(nt):
        a0 = a1 = a2 = a3 = b0 = b1 = b2 = b3 = 0.0
        for m in range(0, nq, 4):  # four partial sums each: short chains of dependent steps
            a0 += CS[i, p, 0, k, m] * w[m]
            a1 += CS[i, p, 0, k, m + 1] * w[m + 1]
            a2 += CS[i, p, 0, k, m + 2] * w[m + 2]
            a3 += CS[i, p, 0, k, m + 3] * w[m + 3]
            b0 += CS[i, p, 1, k, m] * w[m]
            b1 += CS[i, p, 1, k, m + 1] * w[m + 1]
            b2 += CS[i, p, 1, k, m + 2] * w[m + 2]
            b3 += CS[i, p, 1, k, m + 3] * w[m + 3]
        c += ((a0 + a1) + (a2 + a3)) * t0
        chic += ((b0 + b1) + (b2 + b3)) * t0
        t0, t1 = t1, y2 * t1 - t0
    return c, chic


@njit(cache=True)
def chebyshev_values_n(x, w, at, n):
    """w[at + k] = T_k(x) for k < max(n, 2) (three-term recurrence)."""
    w[at] = 1.0
    w[at + 1] = x
    x2 = 2.0 * x
    for k in range(2, n):
        w[at + k] = x2 * w[at + k - 1] - w[at + k - 2]


@njit(cache=True)
def q_start(w2, b2, QS, OKQ):
    """The q* start table's estimate of q* at σ_w² = ``w2``, σ_b² = ``b2`` (layout above);
    NaN where it has none."""
    if not w2 > 0.0:
        return math.nan
    a = math.log(w2) - A_LO
    if not 0.0 <= a <= NA:
        return math.nan
    ia = min(int(a), NA - 1)
    x = 2.0 * (a - ia) - 1.0
    if b2 == 0.0:
        ib = NB
        y = 0.0
    else:
        b = math.log(b2) - B_LO
        if not 0.0 <= b <= NB:
            return math.nan
        ib = min(int(b), NB - 1)
        y = 2.0 * (b - ib) - 1.0
    if OKQ[ia, ib] != 1:
        return math.nan
    return math.exp(cheb2_8(QS, ia, ib, x, y))


@njit(cache=True)
def cheb2_8(C, a, b, x, y):
    """Σ_{m,k<8} C[a, b, m, k] T_m(x) T_k(y) (``QA`` = ``QB`` = 8): the eight T_k(y) are
    held in registers and each row is an independent sum of eight products, where
    Clenshaw's steps (:func:`cheb2_box`) wait on each other (they were a sixth of a
    grid point's time)."""
    y2 = 2.0 * y
    t2 = y2 * y - 1.0
    t3 = y2 * t2 - y
    t4 = y2 * t3 - t2
    t5 = y2 * t4 - t3
    t6 = y2 * t5 - t4
    t7 = y2 * t6 - t5
    x2 = 2.0 * x
    u0 = 1.0
    u1 = x
    s = 0.0
    for m in range(8):
        r = ((C[a, b, m, 0] + C[a, b, m, 1] * y) + (C[a, b, m, 2] * t2 + C[a, b, m, 3] * t3)) + (
            (C[a, b, m, 4] * t4 + C[a, b, m, 5] * t5) + (C[a, b, m, 6] * t6 + C[a, b, m, 7] * t7)
        )
        s += r * u0
        u0, u1 = u1, x2 * u1 - u0
    return s


@njit(cache=True)
def mark_panels(q, n, need):
    """need[i] = True for the ln q panel i (of ``n``) of every q (:func:`q_panel`'s rule)."""
    for v in q:
        i, _ = q_panel(v, n)
        if i >= 0:
            need[i] = True

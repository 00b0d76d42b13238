r"""Building and certifying the mean-field tables of one activation.

What every point of a grid shares is a function of q (and c) alone: the
moments E φ(√q z), E φ', E φ², E φ'², dE φ²/dq, the Hermite (Mehler)
coefficients a_n(q), and the pair integrals N(q, c) = E φ(u₁)φ(u₂),
M(q, c) = E φ'(u₁)φ'(u₂). They are tabulated once per activation as piecewise
Chebyshev interpolants (layout in :mod:`fastprop.meanfield.interpolants`) from
the exact per-point quadrature, which stays the reference and the fallback.

Construction and certificate
----------------------------
On each panel (one unit of ln q; for the pair integrals, one unit of ln q times
one θ box) the exact values at the ``DEG`` (× ``DEG_T``) first-kind Chebyshev
nodes give the coefficients by the discrete cosine transform. A panel is
*certified* when

1. its last two coefficients (in each direction) are below ``TOL``/2 times
   the function's scale on the panel (the series has converged), and
2. the interpolant agrees with the exact quadrature to ``TOL`` times that scale
   at fresh points that are not nodes (3 per one-dimensional panel, 4 per
   box), computed by the same exact code.

The scale is the largest value on the panel for E φ², E φ'², dE φ²/dq and for
N and M (each relative to its own largest absolute value on the box), and
√(max E φ²) (resp. √(max E φ'²)) for E φ and the a_n (resp. E φ'), the natural
size of a first moment; for dE φ²/dq = E φ'² + E φφ'' the larger of its largest
value and of E φ'² (the size of its terms, which cancel for erf at large q).
The moments and the Hermite coefficients of a panel are certified separately.
So the documented bound is: every table value is within ``TOL`` = 1e-13 of
the exact quadrature, relative to that scale, which itself meets 1e-13
against 30-digit references (``tests/test_quadrature.py``).
A panel that fails is marked and its points use the exact path: a point's
result never depends on whether a table exists, only on the activation.

Cost and caching
----------------
The one-dimensional table (485 panels of 16 nodes) is built when an
activation is first used (about 0.3 s); the q* start table (820 panels of 8 × 8 nodes
in (ln σ_w², ln σ_b²), q* by Newton from V(0) on the 1-D table; about 0.15 s) when a
grid or an edge first needs it (:meth:`Tables.ensure_q_start`). It is not certified: it
only starts Newton (``Q_START_TOL``), and maps and the nodes of the other tables never use
it, so no value depends on whether it was built yet. The pair boxes are built on
demand, the seven θ boxes of a ln q panel at once, when a grid or a map first
needs that panel (the lattice rule makes this 20–500 µs per node, so a panel
of 7 × 16 × 24 nodes takes 0.05–1 s on one core; nodes run in parallel). With them
comes the panel's start table for c* (layout in :mod:`fastprop.meanfield.interpolants`):
c* solved at 8 × 24 (ln q, t) nodes by the path that does not use it, and its
error at the fresh points ``CHECK_S``, doubled, which every start subtracts; it is
not certified (Newton on the certified tables makes the answer), only measured,
and dropped (``SD`` = −1) where that error exceeds ``START_MAX_ERR``. Then the panel's
c* table: c* and χ_c on 12 × 16 (ln q, t) nodes of each of its twenty t panels, solved by
Newton on the pair table from the start table, and certified like the pair boxes
(last two coefficients each way, six fresh points, each within 1/``SAFETY_C`` of the
bound) to ``TOL_C`` + ``NOISE_C``/(1 − χ_c)
(at most ``MAX_TOL_C``): c* absolute, χ_c relative, against that Newton. The second
term is Newton's own limit: c* solves c = C(c) with C known to a few 1e-15, so it is
determined only to that over 1 − C'(c*) = 1 − χ_c; the contract (1e-8 relative for
c* and χ_c, 1e-9 for 1/ξ_c) is far above either. A t panel is certified or marked
failed (its points use Newton); one where the start table puts c* above ``C_HI`` is
not built (its nodes would need the exact quadrature). All are
kept per process and written to the kernel cache directory
(:mod:`fastprop.run.compile`), so a later process loads them.
Activations with a closed-form kernel (relu, erf, linear) use it instead of
pair tables.
"""

from __future__ import annotations

import math
import threading

import numpy as np
from numba import njit

from ..activations import activation as _activation
from ..run import compile as _compile
from ..run.targets import n_chunks
from .common import KMEHLER, Q_MAX, grid_positions
from .compiled import kernels
from .interpolants import (
    A_LO,
    B_LO,
    C_HI,
    CQ,
    CT,
    DEG,
    DEG_T,
    HERM0,
    LNQ_LO,
    NA,
    NB,
    NF1,
    NQ,
    NQ1,
    NT,
    Q_START_TOL,
    QA,
    QB,
    SQ,
    ST,
    T_LO,
    THETA_HI,
    TOL,
    J,
    mark_panels,
    q_start,
    start_table,
    t_panel_edges,
)

__all__ = ["Tables", "tables", "exact_tables"]

CHECK_1D = (-0.77, 0.13, 0.61)
"""Fresh points (Chebyshev variable) at which every one-dimensional panel is checked."""
CHECK_2D = ((-0.63, -0.41), (0.22, 0.71), (0.83, -0.88), (-0.17, 0.35))
"""Fresh points (x, y) at which every pair box is checked."""
CHECK_S = ((-0.91, 0.02), (-0.52, 0.37), (-0.05, 0.81), (0.33, 0.12), (0.58, 0.96), (0.87, 0.55), (0.1, 0.005))
"""Fresh points (x, t) at which the start table of a pair panel is measured."""
START_MAX_ERR = 0.05
"""A start table whose error at the fresh points exceeds this is not used."""
CHECK_C = ((-0.71, -0.58), (-0.23, 0.87), (0.39, -0.12), (0.94, 0.46), (0.05, -0.93), (0.66, 0.97))
"""Fresh points (x, y) at which every panel of the c* table is checked."""
TOL_C = 1e-12
"""Certified error of the c* table: c* (absolute) and χ_c (relative) within
TOL_C + ``NOISE_C``/(1 − χ_c) of Newton's c* and χ_c, at most ``MAX_TOL_C``."""
NOISE_C = 1e-14
"""c* from Newton is known to about δC/(1 − χ_c) (δC: the error of C, a few 1e-15
from the certified pair table), which the c* table cannot undercut."""
MAX_TOL_C = 1e-10
SAFETY_C = 4.0
"""The c* table's fresh points and tails must meet its tolerance with this factor to spare
(its error between them is the certified bound)."""

TAIL = 0.5
"""The last two Chebyshev coefficients of a certified panel are below ``TAIL``·TOL·scale."""
_NODES = np.cos(np.pi * (np.arange(DEG) + 0.5) / DEG)
_NODES_T = np.cos(np.pi * (np.arange(DEG_T) + 0.5) / DEG_T)
_NODES_SQ = np.cos(np.pi * (np.arange(SQ) + 0.5) / SQ)
_NODES_ST = np.cos(np.pi * (np.arange(ST) + 0.5) / ST)
_NODES_CQ = np.cos(np.pi * (np.arange(CQ) + 0.5) / CQ)
_NODES_CT = np.cos(np.pi * (np.arange(CT) + 0.5) / CT)
_NODES_QA = np.cos(np.pi * (np.arange(QA) + 0.5) / QA)
_NODES_QB = np.cos(np.pi * (np.arange(QB) + 0.5) / QB)
CHECK_Q = ((-0.55, 0.3), (0.45, -0.7), (0.9, 0.85))
"""Fresh points (x, y) at which every panel of the q* start table is measured."""
_LOCK = threading.RLock()
_CACHE: dict = {}
FORMAT = 3


class Tables:
    """The tables of one activation (arrays of :mod:`fastprop.meanfield.interpolants`).

    ``arrays`` is the tuple ``(T1, OK1, T2, OK2, K0, S, SD, CS, OKC, QS, OKQ, LC)`` the compiled code takes;
    :meth:`ensure_pairs` builds the pair boxes (and start and c* tables) of the ln q panels
    of given q values. ``exact=True`` makes empty tables (every point takes the exact path):
    the reference the tables are tested against.
    """

    def __init__(self, act, exact=False):
        self.activation = act
        self.exact = exact
        self.T1 = np.zeros((NQ1, NF1, DEG))
        self.OK1 = np.full((NQ1, 2), -1 if exact else 0, dtype=np.int8)
        self.T2 = np.zeros((NQ, J, 2, DEG, DEG_T))
        no_pairs = exact or act.kernel is not None
        self.OK2 = np.full((NQ, J), -1 if no_pairs else 0, dtype=np.int8)
        self.K0 = np.zeros(4)
        self.S = np.zeros((NQ, SQ, ST))
        self.SD = np.full(NQ, -1.0 if exact else 0.0)
        self.CS = np.zeros((NQ, NT, 2, CT, CQ))
        self.OKC = np.full((NQ, NT), -1 if exact else 0, dtype=np.int8)
        self.LC = np.zeros((NQ, NT, 2), dtype=np.int8)
        self.QS = np.zeros((NA, NB + 1, QA, QB))
        self.OKQ = np.full((NA, NB + 1), -1 if exact else 0, dtype=np.int8)
        self._no_q_start = np.full((NA, NB + 1), -1, dtype=np.int8)
        self.build_seconds = 0.0
        self._path = None if exact else _table_path(act)
        if exact or not self._load():
            self._limits()
            if not exact:
                self._build_1d()
                self._save()

    @property
    def arrays_without_q_start(self):
        """:attr:`arrays` with the q* start table marked absent: what maps and the nodes of
        the other tables use, so that their values never depend on whether a grid has
        built the start table yet (it changes q* by rounding only, but then not at all)."""
        a = self.arrays
        return (*a[:10], self._no_q_start, a[11])

    def ensure_q_start(self):
        """Build the q* start table if it is not built yet (grids and edges call this first)."""
        with _LOCK:
            if self.exact or np.any(self.OKQ != 0):
                return
            self._build_q_start()
            self._save()

    @property
    def arrays(self):
        return (self.T1, self.OK1, self.T2, self.OK2, self.K0, self.S, self.SD, self.CS, self.OKC, self.QS, self.OKQ,
            self.LC,
        )  # fmt: skip

    # -------------------------------------------------------------- building
    def _limits(self):
        k = kernels(self.activation, "cpu")
        m0 = k.moments(0.0)  # the limit q → 0⁺ (quadrature.Q_TINY)
        self.K0[:] = (m0[4], m0[3], k.moments(Q_MAX)[3], 0.0)

    def _build_1d(self):
        import time

        t0 = time.perf_counter()
        k = kernels(self.activation, "parallel")
        x = np.concatenate([_NODES, CHECK_1D])
        lnq = LNQ_LO + np.arange(NQ1)[:, None] + 0.5 * (x[None, :] + 1.0)
        vals = np.empty((lnq.size, NF1))
        k.moment_nodes(np.exp(lnq).reshape(-1), vals)
        vals = vals.reshape(NQ1, x.size, NF1).transpose(0, 2, 1)  # [panel, function, node]
        if self.activation.odd:  # E φ and the even a_n vanish exactly
            vals[:, [0] + [HERM0 + n for n in range(0, KMEHLER + 1, 2)], :] = 0.0
        node, check = vals[:, :, :DEG], vals[:, :, DEG:]
        self.T1[:] = _dct1(np.ascontiguousarray(node))
        scale = _scales_1d(node)
        good = np.isfinite(self.T1).all(axis=2) & (np.abs(self.T1[:, :, -2:]).max(axis=2) <= TAIL * TOL * scale)
        for i, xc in enumerate(CHECK_1D):
            good &= np.abs(_eval1(self.T1, xc) - check[:, :, i]) <= TOL * scale
        self.OK1[:, 0] = np.where(good[:, :HERM0].all(axis=1), 1, -1)
        self.OK1[:, 1] = np.where(good.all(axis=1), 1, -1)
        self.build_seconds += time.perf_counter() - t0

    def _build_q_start(self):
        """The q* start table (layout in :mod:`fastprop.meanfield.interpolants`): q* at the
        nodes of every panel by Newton from V(0), ln q* interpolated, and each panel used
        where it is within ``Q_START_TOL`` of q* at ``CHECK_Q`` and every node is a finite q* > 0."""
        import time

        t0 = time.perf_counter()
        k = kernels(self.activation, "cpu")
        gx = np.concatenate([np.repeat(_NODES_QA, QB), [c[0] for c in CHECK_Q]])
        gy = np.concatenate([np.tile(_NODES_QB, QA), [c[1] for c in CHECK_Q]])
        ia, ib = np.meshgrid(np.arange(NA), np.arange(NB), indexing="ij")
        lnw = A_LO + ia[..., None] + 0.5 * (gx + 1.0)  # [a, b, node]
        lnb = B_LO + ib[..., None] + 0.5 * (gy + 1.0)
        # σ_b = 0: the QA nodes in ln σ_w² and the checks' x
        zx = np.concatenate([_NODES_QA, [c[0] for c in CHECK_Q]])
        lnw0 = A_LO + np.arange(NA)[:, None] + 0.5 * (zx + 1.0)
        sw = np.exp(0.5 * np.concatenate([lnw.ravel(), lnw0.ravel()]))
        sb = np.concatenate([np.exp(0.5 * lnb.ravel()), np.zeros(lnw0.size)])
        q = np.empty(sw.size)
        none = self.arrays_without_q_start
        k.q_star_nodes(sw, sb, none, q)
        n2 = lnw.size
        q2 = q[:n2].reshape(NA, NB, gx.size)
        q0 = q[n2:].reshape(NA, zx.size)
        with np.errstate(divide="ignore", invalid="ignore"):
            good2 = np.all(np.isfinite(np.log(q2)), axis=2)
            good0 = np.all(np.isfinite(np.log(q0)), axis=1)
            l2 = np.where(np.isfinite(np.log(q2)), np.log(q2), 0.0)
            l0 = np.where(np.isfinite(np.log(q0)), np.log(q0), 0.0)
        nodes = l2[:, :, : QA * QB].reshape(NA * NB, QA, QB)
        self.QS[:, :NB] = _dct2(np.ascontiguousarray(nodes)).reshape(NA, NB, QA, QB)
        self.QS[:, NB, :, 0] = _dct1(np.ascontiguousarray(l0[:, None, :QA]))[:, 0]
        self.OKQ[:, :NB] = np.where(good2, 1, -1)
        self.OKQ[:, NB] = np.where(good0, 1, -1)
        for a in range(NA):
            for b in range(NB + 1):
                if self.OKQ[a, b] != 1:
                    continue
                for m, (xc, yc) in enumerate(CHECK_Q):
                    w2 = math.exp(A_LO + a + 0.5 * (xc + 1.0))
                    b2 = 0.0 if b == NB else math.exp(B_LO + b + 0.5 * (yc + 1.0))
                    exact = q0[a, QA + m] if b == NB else q2[a, b, QA * QB + m]
                    est = q_start(w2, b2, self.QS, self.OKQ)
                    if not abs(est - exact) <= Q_START_TOL * exact:
                        self.OKQ[a, b] = -1
                        break
        self.build_seconds += time.perf_counter() - t0

    def ensure_pairs(self, q):
        """Build (and certify) the pair boxes of the ln q panels holding the values ``q``."""
        need = np.zeros(NQ, dtype=np.bool_)
        mark_panels(np.ascontiguousarray(q, dtype=np.float64).reshape(-1), NQ, need)
        self.build_panels(np.nonzero(need)[0])

    def build_panels(self, panels, target="parallel"):
        """Build the pair boxes, start and c* tables of the ln q panels ``panels`` that are not
        built yet; the nodes of the start and c* tables are solved by the grid driver of the
        CPU ``target`` (the one the caller's grid already compiled)."""
        import time

        with _LOCK:
            todo = [int(i) for i in panels if self._unbuilt(int(i))]
            if not todo:
                return
            t0 = time.perf_counter()
            for i in todo:
                if np.any(self.OK2[i] == 0):
                    self._build_panel(i)
                if self.SD[i] == 0.0:
                    self._build_start(i, target)
                if np.any(self.OKC[i] == 0):
                    self._build_cstar(i, target)
            self.build_seconds += time.perf_counter() - t0
            self._save()

    def _unbuilt(self, i):
        """Whether anything of pair panel i (boxes, start table, c* table) is still to be built."""
        return bool(np.any(self.OK2[i] == 0) or self.SD[i] == 0.0 or np.any(self.OKC[i] == 0))

    def _build_panel(self, i):
        k = kernels(self.activation, "parallel")
        xs = np.concatenate([np.repeat(_NODES, DEG_T), [p[0] for p in CHECK_2D]])
        ys = np.concatenate([np.tile(_NODES_T, DEG), [p[1] for p in CHECK_2D]])
        q, c = [], []
        for j in range(J):
            hi = THETA_HI * 0.5**j
            lo = 0.5 * hi
            q.append(np.exp(LNQ_LO + i + 0.5 * (xs + 1.0)))
            c.append(np.cos(lo + 0.5 * (ys + 1.0) * (hi - lo)))
        vals = np.empty((J * xs.size, 2))
        k.pair_nodes(np.concatenate(q), np.concatenate(c), vals)
        vals = vals.reshape(J, xs.size, 2)
        for j in range(J):
            node = vals[j, : DEG * DEG_T].reshape(DEG, DEG_T, 2).transpose(2, 0, 1)  # [f, x, y]
            coef = _dct2(np.ascontiguousarray(node))
            scale = np.abs(node).max(axis=(1, 2))
            ok = bool(np.all(np.isfinite(coef)))
            for t, (xc, yc) in enumerate(CHECK_2D):
                err = np.abs(_eval2(coef, xc, yc) - vals[j, DEG * DEG_T + t])
                ok &= bool(np.all(err <= TOL * scale))
            tail = np.maximum(np.abs(coef[:, -2:, :]).max(axis=(1, 2)), np.abs(coef[:, :, -2:]).max(axis=(1, 2)))
            ok &= bool(np.all(tail <= TAIL * TOL * scale))
            self.T2[i, j] = coef
            self.OK2[i, j] = 1 if ok else -1

    def _solve_nodes(self, i, x, t, target, tab):
        """(c*, χ_c, ok) at the (ln q, t) nodes (x: Chebyshev variable on pair panel i) by
        the grid's own compiled code, with the tables ``tab``.

        A node (q, t) is the point σ_b² = s q, σ_w² = q (1 − s)/E φ²(q) with
        s = 1 − χ_1/χ̂ and χ_1 = 1 + t (χ̂ − 1), χ̂ = q E φ'²/E φ²; ok is False where
        χ̂ ≤ 1 + 1e-9 at a node (no chaotic phase to tabulate), or a node is not a
        regular chaotic point with q* = q (another stable fixed point)."""
        from .common import _CRITICAL

        k = kernels(self.activation, target)
        xu, inv = np.unique(x, return_inverse=True)
        qu = np.exp(LNQ_LO + i + 0.5 * (xu + 1.0))
        m = np.array([k.moments(v) for v in qu])
        hat = qu * m[:, 3] / m[:, 2]
        if not np.all(hat > 1.0 + 1e-9):
            return None, None, False
        q, e2, hat = qu[inv], m[inv, 2], hat[inv]
        s = np.maximum(1.0 - (1.0 + t * (hat - 1.0)) / hat, 0.0)
        sw, sb = np.sqrt(q * (1.0 - s) / e2), np.sqrt(s * q)
        n = q.size
        out = [np.empty((n, 1)) for _ in range(7)] + [np.empty((n, 1), np.int8)]
        m = grid_positions(n)
        k.grid_driver(sw, sb, 0, m, 1, 0, n_chunks(m, target), tab, *out, True)
        ok = not np.any(out[7] & ~_CRITICAL) and np.all(np.abs(out[0][:, 0] - q) <= 1e-9 * q)
        return out[2][:, 0], out[3][:, 0], bool(ok)

    def _build_start(self, i, target):
        """The start table of pair panel i: c* at (ln q, t) nodes by the path that does
        not use it (:meth:`_solve_nodes`), its Chebyshev coefficients, and its error at
        ``CHECK_S`` (doubled)."""
        xs = np.concatenate([np.repeat(_NODES_SQ, ST), [p[0] for p in CHECK_S]])
        ts = np.concatenate([np.tile(0.5 * (_NODES_ST + 1.0), SQ), [p[1] for p in CHECK_S]])
        sd, okc = self.SD.copy(), np.full_like(self.OKC, -1)
        sd[i] = -1.0  # the nodes are solved without a start table (or a c* table)
        tab = (*self.arrays[:6], sd, self.CS, okc, *self.arrays_without_q_start[9:])
        vals, _, ok = self._solve_nodes(i, xs, ts, target, tab)
        if not ok:
            self.SD[i] = -1.0
            return
        coef = _dct2(np.ascontiguousarray(vals[: SQ * ST].reshape(1, SQ, ST)))[0]
        check = vals[SQ * ST :]
        err = max(abs(_eval2(coef[None], x, 2.0 * t - 1.0)[0] - v) for (x, t), v in zip(CHECK_S, check, strict=True))
        self.S[i] = coef
        self.SD[i] = 2.0 * err + 1e-15 if err <= START_MAX_ERR else -1.0

    def _build_cstar(self, i, target):
        """The c* table of pair panel i: c* and χ_c at the (ln q, t) nodes of each t panel,
        solved by Newton on the pair table from the start table (:meth:`_solve_nodes`),
        their Chebyshev coefficients, and the certificate (module notes). A t panel is
        not built where the start table puts c* beyond ``C_HI`` on it (those nodes would
        take the exact quadrature, and c* is the slow path's there anyway)."""
        self.OKC[i] = -1
        if not self.SD[i] > 0.0:
            return
        panels = []
        for p in range(NT):
            lo, hi = t_panel_edges(p)
            top = max(start_table(self.S, i, x, lo) for x in (-1.0, 0.0, 1.0))
            if top + self.SD[i] < C_HI:
                panels.append((p, lo, hi))
        if not panels:
            return
        grid_x = np.concatenate([np.repeat(_NODES_CQ, CT), [c[0] for c in CHECK_C]])
        grid_y = np.concatenate([np.tile(_NODES_CT, CQ), [c[1] for c in CHECK_C]])
        xs = np.tile(grid_x, len(panels))
        ts = np.concatenate([lo + 0.5 * (grid_y + 1.0) * (hi - lo) for _, lo, hi in panels])
        okc = np.full_like(self.OKC, -1)
        c, chic, ok = self._solve_nodes(i, xs, ts, target, (*self.arrays[:8], okc, *self.arrays_without_q_start[9:]))
        if not ok:
            return
        n = grid_x.size
        for r, (p, _, _) in enumerate(panels):
            cp, hp = c[r * n : (r + 1) * n], chic[r * n : (r + 1) * n]
            node = np.stack([cp[: CQ * CT], hp[: CQ * CT]]).reshape(2, CQ, CT)
            coef = _dct2(np.ascontiguousarray(node))
            if not (np.all(np.isfinite(coef)) and np.all(hp < 1.0)):
                continue
            tol = min(TOL_C + NOISE_C / (1.0 - hp.max()), MAX_TOL_C) / SAFETY_C
            scale = np.array([1.0, np.abs(hp).max()])
            tail = np.maximum(np.abs(coef[:, -2:, :]).max(axis=(1, 2)), np.abs(coef[:, :, -2:]).max(axis=(1, 2)))
            good = bool(np.all(tail <= TAIL * tol * scale))
            nq, nt = _kept_terms(coef, 0.25 * tol * scale)
            coef[:, nq:, :] = 0.0
            coef[:, :, nt:] = 0.0
            for m, (xc, yc) in enumerate(CHECK_C):  # the series as kept
                e = _eval2(coef, xc, yc)
                v = (cp[CQ * CT + m], hp[CQ * CT + m])
                good &= abs(e[0] - v[0]) <= tol and abs(e[1] - v[1]) <= tol * abs(v[1])
            self.CS[i, p] = coef.transpose(0, 2, 1)  # [f, t, ln q]: the sums over ln q are contiguous
            self.LC[i, p] = (nt, nq)
            self.OKC[i, p] = 1 if good else -1

    # -------------------------------------------------------------- disk cache
    def _load(self):
        if self._path is None or not self._path.exists():
            return False
        try:
            with np.load(self._path) as f:
                arrays = {k: f[k] for k in ("T1", "OK1", "T2", "OK2", "K0", "S", "SD", "CS", "OKC", "QS", "OKQ", "LC")}
        except Exception:  # unreadable (truncated, another format): build afresh and overwrite
            return False
        for name, a in arrays.items():
            if a.shape != getattr(self, name).shape or a.dtype != getattr(self, name).dtype:
                return False
            getattr(self, name)[...] = a
        return True

    def _save(self):
        if self._path is None:
            return
        import os
        import tempfile

        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=".tmp-", suffix=".npz")
            with os.fdopen(fd, "wb") as f:
                np.savez(
                    f, T1=self.T1, OK1=self.OK1, T2=self.T2, OK2=self.OK2, K0=self.K0, S=self.S, SD=self.SD, CS=self.CS,
                    OKC=self.OKC, QS=self.QS, OKQ=self.OKQ, LC=self.LC,
                )  # fmt: skip
            os.replace(tmp, self._path)  # atomic; a concurrent writer's panels are rebuilt when needed
        except OSError:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def report(self):
        """A short account: certified panels and boxes, failures, start tables, build time in this process."""
        return {
            "panels_1d": int(np.sum(self.OK1[:, 0] == 1)),
            "failed_1d": int(np.sum(self.OK1[:, 0] == -1)),
            "hermite_1d": int(np.sum(self.OK1[:, 1] == 1)),
            "boxes_2d": int(np.sum(self.OK2 == 1)),
            "failed_2d": int(np.sum(self.OK2 == -1)) if self.activation.kernel is None and not self.exact else 0,
            "start_tables": int(np.sum(self.SD > 0.0)),
            "cstar_panels": int(np.sum(self.OKC == 1)),
            "q_start_panels": int(np.sum(self.OKQ == 1)),
            "build_seconds": self.build_seconds,
        }


def _table_path(act):
    """Where the tables of ``act`` live in the kernel cache (None: not cached on disk)."""
    if not act.portable:
        return None
    layout = (
        f"{FORMAT} {LNQ_LO} {NQ} {NQ1} {DEG} {DEG_T} {J} {THETA_HI} {TOL} {KMEHLER} {CHECK_1D} {CHECK_2D} {SQ} {ST}"
        f" {CHECK_S} {START_MAX_ERR} {CQ} {CT} {NT} {T_LO} {CHECK_C} {TOL_C} {NOISE_C} {MAX_TOL_C} {SAFETY_C}"
        f" {QA} {QB} {A_LO} {NA} {B_LO} {NB} {Q_START_TOL} {CHECK_Q}"
    )
    return _compile.data_path(f"tables-{act.name}", f"{act.name}:{act.fingerprint}:{layout}", ".npz")


def tables(activation) -> Tables:
    """The tables of an activation, built or loaded once per process."""
    act = _activation(activation)
    with _LOCK:
        t = _CACHE.get(act.fingerprint)
        if t is None:
            t = _CACHE[act.fingerprint] = Tables(act)
    return t


def exact_tables(activation) -> Tables:
    """Empty tables: every value comes from the exact per-point quadrature."""
    act = _activation(activation)
    key = ("exact", act.fingerprint)
    with _LOCK:
        t = _CACHE.get(key)
        if t is None:
            t = _CACHE[key] = Tables(act, exact=True)
    return t


# ------------------------------------------------------------------ Chebyshev transforms
@njit(cache=True)
def _dct1(vals):
    """Coefficients of the interpolants through first-kind Chebyshev nodes, along the last axis."""
    n = vals.shape[-1]
    out = np.zeros_like(vals)
    for a in range(vals.shape[0]):
        for f in range(vals.shape[1]):
            for k in range(n):
                s = 0.0
                for i in range(n):
                    s += vals[a, f, i] * math.cos(math.pi * k * (i + 0.5) / n)
                out[a, f, k] = s * (1.0 if k == 0 else 2.0) / n
    return out


def _dct2(vals):
    """Two-dimensional version of :func:`_dct1` over the last two axes of vals[f, x, y]:
    the transform along y, then along x."""
    along_y = _dct1(vals)
    return _dct1(np.ascontiguousarray(along_y.transpose(0, 2, 1))).transpose(0, 2, 1)


def _eval1(T1, x):
    return np.polynomial.chebyshev.chebval(x, np.moveaxis(T1, -1, 0))


def _eval2(coef, x, y):
    return np.array([np.polynomial.chebyshev.chebval2d(x, y, coef[f]) for f in range(coef.shape[0])])


def _kept_terms(coef, budget):
    """(nq, nt): the fewest leading terms in ln q (a multiple of 4) and in t of the series
    coef[f, ln q, t] whose dropped coefficients add up to at most ``budget[f]`` for every f
    (each T_k is at most 1 in size, so that bounds what dropping them changes)."""
    a = np.abs(coef)
    best = (coef.shape[1], coef.shape[2])
    for nq in range(4, coef.shape[1] + 1, 4):
        for nt in range(1, coef.shape[2] + 1):
            dropped = a.sum(axis=(1, 2)) - a[:, :nq, :nt].sum(axis=(1, 2))
            if np.all(dropped <= budget) and nq * nt < best[0] * best[1]:
                best = (nq, nt)
    return best


def _scales_1d(node):
    """Per panel and function: the scale the certificate is relative to (module notes)."""
    big = np.abs(node).max(axis=2)
    scale = big.copy()
    scale[:, 0] = np.sqrt(big[:, 2])
    scale[:, 1] = np.sqrt(big[:, 3])
    scale[:, 4] = np.maximum(big[:, 4], big[:, 3])  # dEφ²/dq = E φ'² + E φφ'': the size of its terms
    scale[:, HERM0:] = np.sqrt(big[:, 2])[:, None]
    return scale

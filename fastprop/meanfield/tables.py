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
activation is first used (about 0.1 s). The pair boxes are built on
demand, the seven θ boxes of a ln q panel at once, when a grid or a map first
needs that panel (the lattice rule makes this 20–500 µs per node, so a panel
of 7 × 16 × 24 nodes takes 0.05–1 s on one core; nodes run in parallel). With them
comes the panel's start table for c* (layout in :mod:`fastprop.meanfield.interpolants`):
c* solved at 8 × 24 (ln q, t) nodes by the path that does not use it, and its
error at the fresh points ``CHECK_S``, doubled, which every start subtracts; it is
not certified (Newton on the certified tables makes the answer), only measured,
and dropped (``SD`` = −1) where that error exceeds ``START_MAX_ERR``. All are
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
from .common import KMEHLER, Q_MAX
from .compiled import kernels
from .interpolants import DEG, DEG_T, HERM0, LNQ_LO, NF1, NQ, NQ1, SQ, ST, THETA_HI, TOL, J, mark_panels

__all__ = ["Tables", "tables", "exact_tables"]

CHECK_1D = (-0.77, 0.13, 0.61)
"""Fresh points (Chebyshev variable) at which every one-dimensional panel is checked."""
CHECK_2D = ((-0.63, -0.41), (0.22, 0.71), (0.83, -0.88), (-0.17, 0.35))
"""Fresh points (x, y) at which every pair box is checked."""
CHECK_S = ((-0.91, 0.02), (-0.52, 0.37), (-0.05, 0.81), (0.33, 0.12), (0.58, 0.96), (0.87, 0.55), (0.1, 0.005))
"""Fresh points (x, t) at which the start table of a pair panel is measured."""
START_MAX_ERR = 0.05
"""A start table whose error at the fresh points exceeds this is not used."""

TAIL = 0.5
"""The last two Chebyshev coefficients of a certified panel are below ``TAIL``·TOL·scale."""
_NODES = np.cos(np.pi * (np.arange(DEG) + 0.5) / DEG)
_NODES_T = np.cos(np.pi * (np.arange(DEG_T) + 0.5) / DEG_T)
_NODES_SQ = np.cos(np.pi * (np.arange(SQ) + 0.5) / SQ)
_NODES_ST = np.cos(np.pi * (np.arange(ST) + 0.5) / ST)
_LOCK = threading.RLock()
_CACHE: dict = {}
FORMAT = 2


class Tables:
    """The tables of one activation (arrays of :mod:`fastprop.meanfield.interpolants`).

    ``arrays`` is the tuple ``(T1, OK1, T2, OK2, K0, S, SD)`` the compiled code takes;
    :meth:`ensure_pairs` builds the pair boxes (and start tables) of the ln q panels
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
        self.SD = np.full(NQ, -1.0 if no_pairs else 0.0)
        self.build_seconds = 0.0
        self._path = None if exact else _table_path(act)
        if exact or not self._load():
            self._limits()
            if not exact:
                self._build_1d()
                self._save()

    @property
    def arrays(self):
        return (self.T1, self.OK1, self.T2, self.OK2, self.K0, self.S, self.SD)

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

    def ensure_pairs(self, q):
        """Build (and certify) the pair boxes of the ln q panels holding the values ``q``."""
        need = np.zeros(NQ, dtype=np.bool_)
        mark_panels(np.ascontiguousarray(q, dtype=np.float64).reshape(-1), NQ, need)
        self.build_panels(np.nonzero(need)[0])

    def build_panels(self, panels, target="parallel"):
        """Build the pair boxes (and start tables) of the ln q panels ``panels`` that are not
        built yet; the start tables' nodes are solved by the grid driver of the CPU ``target``
        (the one the caller's grid already compiled)."""
        import time

        with _LOCK:
            todo = [int(i) for i in panels if np.any(self.OK2[int(i)] == 0) or self.SD[int(i)] == 0.0]
            if not todo:
                return
            t0 = time.perf_counter()
            for i in todo:
                if np.any(self.OK2[i] == 0):
                    self._build_panel(i)
                self._build_start(i, target)
            self.build_seconds += time.perf_counter() - t0
            self._save()

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

    def _build_start(self, i, target):
        """The start table of pair panel i: c* at (ln q, t) nodes by the path that does
        not use it, its Chebyshev coefficients, and its error at ``CHECK_S`` (doubled).

        A node (q, t) is the point σ_b² = s q, σ_w² = q (1 − s)/E φ²(q) with
        s = 1 − χ_1/χ̂ and χ_1 = 1 + t (χ̂ − 1), solved as a one-point grid (the
        grid's own compiled code); the panel gets no start table where χ̂ ≤ 1 + 1e-9
        at a node (no chaotic phase to tabulate) or a node's q* is not q (another
        stable fixed point)."""
        from .common import _CRITICAL

        k = kernels(self.activation, target)
        xs = np.concatenate([np.repeat(_NODES_SQ, ST), [p[0] for p in CHECK_S]])
        ts = np.concatenate([np.tile(0.5 * (_NODES_ST + 1.0), SQ), [p[1] for p in CHECK_S]])
        sd = self.SD.copy()
        sd[i] = -1.0  # the nodes are solved without a start table
        tab = (*self.arrays[:6], sd)
        out = [np.empty((1, 1)) for _ in range(7)] + [np.empty((1, 1), np.int8)]
        vals = np.empty(xs.size)
        for n, (x, t) in enumerate(zip(xs, ts, strict=True)):
            q = math.exp(LNQ_LO + i + 0.5 * (x + 1.0))
            m = k.moments(q)
            hat = q * m[3] / m[2]
            if not hat > 1.0 + 1e-9:
                self.SD[i] = -1.0
                return
            s = max(1.0 - (1.0 + t * (hat - 1.0)) / hat, 0.0)
            sw, sb = np.array([math.sqrt(q * (1.0 - s) / m[2])]), np.array([math.sqrt(s * q)])
            k.grid_driver(sw, sb, 0, 1, 1, 0, 1, tab, *out)
            if out[7][0, 0] & ~_CRITICAL or not abs(out[0][0, 0] - q) <= 1e-9 * q:
                self.SD[i] = -1.0
                return
            vals[n] = out[2][0, 0]
        coef = _dct2(np.ascontiguousarray(vals[: SQ * ST].reshape(1, SQ, ST)))[0]
        check = vals[SQ * ST :]
        err = max(abs(_eval2(coef[None], x, 2.0 * t - 1.0)[0] - v) for (x, t), v in zip(CHECK_S, check, strict=True))
        self.S[i] = coef
        self.SD[i] = 2.0 * err + 1e-15 if err <= START_MAX_ERR else -1.0

    # -------------------------------------------------------------- disk cache
    def _load(self):
        if self._path is None or not self._path.exists():
            return False
        try:
            with np.load(self._path) as f:
                arrays = {k: f[k] for k in ("T1", "OK1", "T2", "OK2", "K0", "S", "SD")}
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
                np.savez(f, T1=self.T1, OK1=self.OK1, T2=self.T2, OK2=self.OK2, K0=self.K0, S=self.S, SD=self.SD)
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
            "build_seconds": self.build_seconds,
        }


def _table_path(act):
    """Where the tables of ``act`` live in the kernel cache (None: not cached on disk)."""
    if not act.portable:
        return None
    layout = (
        f"{FORMAT} {LNQ_LO} {NQ} {NQ1} {DEG} {DEG_T} {J} {THETA_HI} {TOL} {KMEHLER} {CHECK_1D} {CHECK_2D} {SQ} {ST}"
        f" {CHECK_S} {START_MAX_ERR}"
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


def _scales_1d(node):
    """Per panel and function: the scale the certificate is relative to (module notes)."""
    big = np.abs(node).max(axis=2)
    scale = big.copy()
    scale[:, 0] = np.sqrt(big[:, 2])
    scale[:, 1] = np.sqrt(big[:, 3])
    scale[:, 4] = np.maximum(big[:, 4], big[:, 3])  # dEφ²/dq = E φ'² + E φφ'': the size of its terms
    scale[:, HERM0:] = np.sqrt(big[:, 2])[:, None]
    return scale

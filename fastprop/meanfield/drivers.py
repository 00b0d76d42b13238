"""The CPU drivers: grid points, edge values, map values and table nodes over arrays,
serial or with ``prange``.

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.meanfield.kernels`, which binds the names below; not imported directly.
"""

import math

import numpy as np
from numba import njit, prange

from fastprop.meanfield.common import BLOCK, store_point
from fastprop.meanfield.interpolants import HERM0, NQ, q_panel
from fastprop.run.borrow import borrowed
from fastprop.run.compile import bound

(point, edge, length_map, correlation_map, q_star, moments, hermite_coefficients, pair, KMEHLER, SCRATCH_SIZE,
 PARALLEL, CACHE) = bound(
    __name__, "point", "edge", "length_map", "correlation_map", "q_star", "moments", "hermite_coefficients", "pair",
    "KMEHLER", "SCRATCH_SIZE", "PARALLEL", "CACHE",
)  # fmt: skip


@njit(parallel=PARALLEL, cache=CACHE)
def grid_driver(sw, sb, start, stop, stride, redo, nchunks, tab, q_out, chi1_out, c_out, chic_out, chiq_out,
                xiq_out, xic_out, st_out, pointwise):  # fmt: skip
    """Positions p = start … stop − 1 (of ``common.grid_positions``) in the interleaved order:
    blocks of ``BLOCK`` neighbouring points, block b at position ⌊p/BLOCK⌋ with
    b = ⌊p/BLOCK⌋·stride mod (number of blocks). Neighbours stay together (their
    outputs share cache lines), while the expensive regions of a grid spread over
    the threads; no order array is needed. With ``redo`` ≠ 0 only the points whose
    status has one of the bits ``redo`` are computed (again). ``pointwise``: the
    points are (sw[i], sb[i]), written at [i, 0] (table nodes), not the grid sw × sb."""
    tab = borrowed(tab)  # no reference counts in the loop (fastprop.run.borrow)
    scratch = np.empty((nchunks, SCRATCH_SIZE))
    nb = 1 if pointwise else sb.size
    n = sw.size * nb
    nblocks = (n + BLOCK - 1) // BLOCK
    for t in prange(nchunks):
        scr = borrowed(scratch[t])
        for p in range(start + t * (stop - start) // nchunks, start + (t + 1) * (stop - start) // nchunks):
            idx = ((p // BLOCK) * stride) % nblocks * BLOCK + p % BLOCK
            if idx >= n:
                continue
            i = idx // nb
            j = idx - i * nb
            if redo != 0 and not st_out[i, j] & redo:
                continue
            r = point(sw[i], sb[i if pointwise else j], scr, tab, True)
            store_point(r, i, j, q_out, chi1_out, c_out, chic_out, chiq_out, xiq_out, xic_out, st_out)


@njit(cache=CACHE)
def pending_panels(q_out, st_out, flag, need):
    """Mark in ``need`` the ln q panels of the points whose status has ``flag``."""
    for i in range(q_out.shape[0]):
        for j in range(q_out.shape[1]):
            if st_out[i, j] & flag:
                k, _ = q_panel(q_out[i, j], NQ)
                if 0 <= k < NQ:
                    need[k] = True


@njit(parallel=PARALLEL, cache=CACHE)
def edge_driver(sb, lo, hi, nscan, tab, out, st_out):
    tab = borrowed(tab)
    for j in prange(sb.size):
        r = edge(sb[j], lo, hi, nscan, tab, True)
        out[j] = r[0]
        st_out[j] = r[1]


@njit(parallel=PARALLEL, cache=CACHE)
def map_driver(kind, x, q, sw, sb, tab, out):
    """out[i] = V(x[i]) (kind 0), C(x[i]) at q[i] or q* where q[i] < 0 (kind 1), q*(σ_w, σ_b) (kind 2)."""
    tab = borrowed(tab)
    scratch = np.empty(SCRATCH_SIZE)
    for i in range(x.size):
        scr = borrowed(scratch)  # in the loop, so that scratch lives to its end
        if kind == 0:
            out[i] = length_map(x[i], sw[i], sb[i], tab)
        elif kind == 2:
            out[i] = q_star(sw[i], sb[i], tab, True)[0]
        else:
            qi = q[i]
            if qi < 0.0:  # q not given: use q*
                qi = q_star(sw[i], sb[i], tab, True)[0]
            out[i] = correlation_map(x[i], qi, sw[i], sb[i], scr, tab) if 0.0 < qi < math.inf else math.nan


@njit(cache=CACHE)
def q_star_nodes(sw, sb, tab, out):
    """out[i] = q*(sw[i], sb[i]) (nodes of the q* start table; serial: q* alone compiles fast)."""
    tab = borrowed(tab)
    for i in range(sw.size):
        out[i] = q_star(sw[i], sb[i], tab, True)[0]


@njit(parallel=PARALLEL, cache=CACHE)
def moment_nodes(q, out):
    """out[t] = (E φ, E φ', E φ², E φ'², dEφ²/dq, a_0 … a_K) at q[t] by quadrature (table nodes)."""
    for t in prange(q.size):
        scr = np.empty(SCRATCH_SIZE)
        m = moments(q[t])
        for f in range(5):
            out[t, f] = m[f]
        hermite_coefficients(q[t], scr, out[t, HERM0 : HERM0 + KMEHLER + 1])


@njit(parallel=PARALLEL, cache=CACHE)
def pair_nodes(q, c, out):
    """out[t] = (E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂)) at (q[t], c[t]) by quadrature (table nodes)."""
    for t in prange(q.size):
        scr = np.empty(SCRATCH_SIZE)
        r = pair(q[t], c[t], scr)
        out[t, 0] = r[0]
        out[t, 1] = r[1]

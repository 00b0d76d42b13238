"""The CPU drivers: grid points, edge values and map values over arrays, serial or with ``prange``.

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.meanfield.kernels`, which binds the names below; not imported directly.
"""

import math

import numpy as np
from numba import njit, prange

from fastprop.meanfield.common import store_point
from fastprop.run.compile import bound

point, edge, length_map, correlation_map, q_star, SCRATCH_SIZE, PARALLEL, CACHE = bound(
    __name__, "point", "edge", "length_map", "correlation_map", "q_star", "SCRATCH_SIZE", "PARALLEL", "CACHE"
)


@njit(parallel=PARALLEL, cache=CACHE)
def grid_driver(sw, sb, order, nchunks, q_out, chi1_out, c_out, chic_out, chiq_out, xiq_out, xic_out, st_out):
    nb = sb.size
    for t in prange(nchunks):
        scr = np.empty(SCRATCH_SIZE)
        for p in range(t * order.size // nchunks, (t + 1) * order.size // nchunks):
            idx = order[p]
            i = idx // nb
            j = idx - i * nb
            r = point(sw[i], sb[j], scr)
            store_point(r, i, j, q_out, chi1_out, c_out, chic_out, chiq_out, xiq_out, xic_out, st_out)


@njit(parallel=PARALLEL, cache=CACHE)
def edge_driver(sb, lo, hi, nscan, out, st_out):
    for j in prange(sb.size):
        r = edge(sb[j], lo, hi, nscan)
        out[j] = r[0]
        st_out[j] = r[1]


@njit(parallel=PARALLEL, cache=CACHE)
def map_driver(kind, x, q, sw, sb, out):
    """out[i] = V(x[i]) (kind 0), C(x[i]) at q[i] or q* where q[i] < 0 (kind 1), q*(σ_w, σ_b) (kind 2)."""
    scr = np.empty(SCRATCH_SIZE)
    for i in range(x.size):
        if kind == 0:
            out[i] = length_map(x[i], sw[i], sb[i])
        elif kind == 2:
            out[i] = q_star(sw[i], sb[i])[0]
        else:
            qi = q[i]
            if qi < 0.0:  # q not given: use q*
                qi = q_star(sw[i], sb[i])[0]
            out[i] = correlation_map(x[i], qi, sw[i], sb[i], scr) if 0.0 < qi < math.inf else math.nan

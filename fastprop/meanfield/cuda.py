"""The mean-field drivers on the GPU (target ``"cuda"``, numba-cuda).

One GPU thread computes one grid point with the same compiled scalar maths as
the CPU targets (:func:`fastprop.meanfield.kernels`: ``point`` and ``edge``,
plain ``@njit`` functions that the CUDA target compiles as device functions),
evaluating the activation's certified tables (:mod:`fastprop.meanfield.tables`),
which live in global memory and are shared by every thread. A thread never runs
the exact quadrature (``exact=False``): its work space is the ``WORK`` values
the Mehler model needs, not the lattice rule's tables. Points the tables do
not cover are flagged; the host builds the pair boxes flagged ``_PENDING``
and launches those points again, and computes the few flagged ``_NEED_EXACT``
(q outside the tables, c* beyond them near the edge of chaos) on the CPU, with
the same code and the exact path: the values are those of a CPU run.
Points are launched in natural order (neighbours, which cost about the same,
share a warp) in slices, so that a progress bar can advance and no launch runs long.

Values agree with the CPU targets to rounding: the GPU's libdevice ``exp``,
``tanh`` … may differ from the CPU's in the last ulp, and the compilers may
contract ``a*b + c`` differently. Under the simulator (``NUMBA_ENABLE_CUDASIM=1``)
the scalar code runs on the CPU and the values are identical.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from ..run.gpu import as_array as _arr
from ..run.targets import n_chunks
from .common import _NEED_EXACT, _PENDING, grid_positions, store_point
from .compiled import kernels
from .cpu import finish_pending, interleave_stride
from .interpolants import NQ, WORK_SIZE, mark_panels

__all__ = ["run_grid", "run_edge"]

THREADS = 64
WORK = WORK_SIZE
"""Thread-local work space of a GPU point (``interpolants.WORK_SIZE`` float64 values)."""
_CACHE: dict = {}
SLICE = 1 << 18
"""Points per launch (a progress step; keeps every launch short)."""


def _kernels(act):
    key = (act.fingerprint, "cuda")
    k = _CACHE.get(key)
    if k is not None:
        return k
    base = kernels(act, "cpu")
    point, edge = base.point, base.edge

    @cuda.jit
    def grid(sw, sb, start, n, redo, T1, OK1, T2, OK2, K0, S, SD, CS, OKC, QS, OKQ, LC, q_out, chi1_out, c_out,
             chic_out, chiq_out, xiq_out, xic_out, st_out):  # fmt: skip
        p = start + cuda.grid(1)
        if p < n:
            nb = sb.shape[0]
            i = p // nb
            j = p - i * nb
            if redo != 0 and not st_out[i, j] & redo:
                return
            scr = cuda.local.array(WORK, float64)
            tab = (_arr(T1), _arr(OK1), _arr(T2), _arr(OK2), _arr(K0), _arr(S), _arr(SD), _arr(CS), _arr(OKC), _arr(QS),
                   _arr(OKQ), _arr(LC))
            r = point(sw[i], sb[j], scr, tab, False)
            store_point(
                r, i, j, _arr(q_out), _arr(chi1_out), _arr(c_out), _arr(chic_out), _arr(chiq_out), _arr(xiq_out),
                _arr(xic_out), _arr(st_out),
            )  # fmt: skip

    @cuda.jit
    def edge_kernel(sb, lo, hi, nscan, T1, OK1, T2, OK2, K0, S, SD, CS, OKC, QS, OKQ, LC, out, st_out):
        j = cuda.grid(1)
        if j < sb.shape[0]:
            tab = (_arr(T1), _arr(OK1), _arr(T2), _arr(OK2), _arr(K0), _arr(S), _arr(SD), _arr(CS), _arr(OKC), _arr(QS),
                   _arr(OKQ), _arr(LC))
            r = edge(sb[j], lo, hi, nscan, tab, False)
            out[j] = r[0]
            st_out[j] = r[1]

    k = _CACHE[key] = (grid, edge_kernel)
    return k


def _launch(grid, n, redo, d_sw, d_sb, d_tab, d_out, bar=None):
    for start in range(0, n, SLICE):
        m = min(SLICE, n - start)
        grid[(m + THREADS - 1) // THREADS, THREADS](d_sw, d_sb, start, n, redo, *d_tab, *d_out)
        cuda.synchronize()
        if bar is not None:
            bar.advance(m)


def run_grid(act, sw, sb, out, bar, tab):
    """Fill the eight output arrays of :func:`fastprop.meanfield_grid` on the GPU
    (the points the tables do not cover on the CPU, module notes)."""
    grid, _ = _kernels(act)
    n = sw.size * sb.size
    d_sw, d_sb = cuda.to_device(sw), cuda.to_device(sb)
    d_out = [cuda.device_array(a.shape, a.dtype) for a in out]
    _launch(grid, n, 0, d_sw, d_sb, [cuda.to_device(a) for a in tab.arrays], d_out, bar)
    st = d_out[7].copy_to_host()
    if np.any(st & _PENDING):
        q = d_out[0].copy_to_host()[(st & _PENDING) != 0]
        # the panels of these q, and their neighbours: the GPU's log may round a q on a
        # panel boundary the other way
        need = np.zeros(NQ, dtype=np.bool_)
        mark_panels(q, NQ, need)
        need[:-1] |= need[1:].copy()
        need[1:] |= need[:-1].copy()
        tab.build_panels(np.nonzero(need)[0])
        _launch(grid, n, _PENDING, d_sw, d_sb, [cuda.to_device(a) for a in tab.arrays], d_out)
    for d, a in zip(d_out, out, strict=True):
        d.copy_to_host(a)
    redo = _NEED_EXACT | _PENDING
    if np.any(out[7] & redo):  # on the CPU, with the exact path where the tables end
        k = kernels(act, "parallel")
        m = grid_positions(n)
        k.grid_driver(sw, sb, 0, m, interleave_stride(n), redo, n_chunks(m, "parallel"), tab.arrays, *out, False)
        finish_pending(k, tab, sw, sb, out, "parallel")


def run_edge(act, sb, lo, hi, nscan, tab):
    """(σ_w, status) of :func:`fastprop.edge_of_chaos` on the GPU, one thread per σ_b
    (those the tables do not cover on the CPU)."""
    _, edge_kernel = _kernels(act)
    d_out = cuda.device_array(sb.size)
    d_st = cuda.device_array(sb.size, np.int8)
    d_tab = [cuda.to_device(a) for a in tab.arrays]
    edge_kernel[(sb.size + THREADS - 1) // THREADS, THREADS](cuda.to_device(sb), lo, hi, nscan, *d_tab, d_out, d_st)
    out, st = d_out.copy_to_host(), d_st.copy_to_host()
    redo = (st & _NEED_EXACT) != 0
    if redo.any():
        part = np.ascontiguousarray(sb[redo])
        o, s = np.empty(part.size), np.empty(part.size, np.int8)
        kernels(act, "parallel").edge_driver(part, lo, hi, nscan, tab.arrays, o, s)
        out[redo], st[redo] = o, s
    return out, st

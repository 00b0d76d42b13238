"""The mean-field drivers on the GPU (target ``"cuda"``, numba-cuda).

One GPU thread computes one grid point with the same compiled scalar maths as
the CPU targets (:func:`fastprop.meanfield.kernels`: ``point`` and ``edge``,
plain ``@njit`` functions that the CUDA target compiles as device functions).
Each thread's work space (the lattice rule's tables, the Hermite recurrence) is
``scratch_size`` float64 values of thread-local memory, the bound the CPU
targets use too, so every target takes the same path at every point. Points
are launched in natural order (neighbours, which cost about the same, share a
warp) in slices, so that a progress bar can advance and no launch runs long.

Values agree with the CPU targets to rounding: the GPU's libdevice ``exp``,
``tanh`` … may differ from the CPU's in the last ulp, and the compilers may
contract ``a*b + c`` differently. Under the simulator (``NUMBA_ENABLE_CUDASIM=1``)
the scalar code runs on the CPU and the values are identical.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64

from ..run.gpu import as_array as _arr
from .common import store_point
from .compiled import kernels

__all__ = ["run_grid", "run_edge"]

THREADS = 64
_CACHE: dict = {}
SLICE = 1 << 18
"""Points per launch (a progress step; keeps every launch short)."""


def _kernels(act):
    key = (act.fingerprint, "cuda")
    k = _CACHE.get(key)
    if k is not None:
        return k
    base = kernels(act, "cpu")
    point, edge, size = base.point, base.edge, base.scratch_size

    @cuda.jit
    def grid(sw, sb, start, n, q_out, chi1_out, c_out, chic_out, chiq_out, xiq_out, xic_out, st_out):
        p = start + cuda.grid(1)
        if p < n:
            nb = sb.shape[0]
            i = p // nb
            j = p - i * nb
            scr = cuda.local.array(size, float64)
            r = point(sw[i], sb[j], scr)
            store_point(
                r, i, j, _arr(q_out), _arr(chi1_out), _arr(c_out), _arr(chic_out), _arr(chiq_out), _arr(xiq_out),
                _arr(xic_out), _arr(st_out),
            )  # fmt: skip

    @cuda.jit
    def edge_kernel(sb, lo, hi, nscan, out, st_out):
        j = cuda.grid(1)
        if j < sb.shape[0]:
            r = edge(sb[j], lo, hi, nscan)
            out[j] = r[0]
            st_out[j] = r[1]

    k = _CACHE[key] = (grid, edge_kernel)
    return k


def run_grid(act, sw, sb, out, bar):
    """Fill the eight output arrays of :func:`fastprop.meanfield_grid` on the GPU."""
    grid, _ = _kernels(act)
    n = sw.size * sb.size
    d_sw, d_sb = cuda.to_device(sw), cuda.to_device(sb)
    d_out = [cuda.device_array(a.shape, a.dtype) for a in out]
    for start in range(0, n, SLICE):
        m = min(SLICE, n - start)
        grid[(m + THREADS - 1) // THREADS, THREADS](d_sw, d_sb, start, n, *d_out)
        cuda.synchronize()
        bar.advance(m)
    for d, a in zip(d_out, out, strict=True):
        d.copy_to_host(a)


def run_edge(act, sb, lo, hi, nscan):
    """(σ_w, status) of :func:`fastprop.edge_of_chaos` on the GPU, one thread per σ_b."""
    _, edge_kernel = _kernels(act)
    d_out = cuda.device_array(sb.size)
    d_st = cuda.device_array(sb.size, np.int8)
    edge_kernel[(sb.size + THREADS - 1) // THREADS, THREADS](cuda.to_device(sb), lo, hi, nscan, d_out, d_st)
    return d_out.copy_to_host(), d_st.copy_to_host()

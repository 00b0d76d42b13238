"""NNGP and NTK kernels on the GPU (target ``"cuda"``, numba-cuda).

One GPU thread takes one pair (a, b) of the strict lower triangle through every layer, with the
same compiled scalar code as the CPU targets (:func:`fastprop.kernels.layers.pair_through_depth`,
an ``@njit`` function the CUDA target compiles as a device function), reading the per-input
Hermite coefficients and moments of every layer (computed on the host, a few numbers per input and
layer) from global memory. A thread evaluates Mehler's series only: a pair whose series is not
certified at some layer is marked, and the host computes those pairs through the depth on the CPU
with the exact pair integral where it is needed (:func:`fastprop.kernels.layers.pair_list`). Their
values are those of a CPU run; the others agree with it to rounding (the GPU's libdevice ``tanh``,
``exp`` … may differ in the last ulp), and are identical under the simulator. Pairs are launched
in slices, so that a progress bar can advance and no launch runs long.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64, int64

from ..run.gpu import as_array as _arr
from .triangle import pair_of, pairs_of

__all__ = ["run_pairs"]

THREADS = 128
SLICE = 1 << 22
"""Pairs per launch (a progress step)."""
_CACHE: dict = {}


def _kernel(mod):
    """The pair kernel of a compiled ``layers`` module."""
    k = _CACHE.get(mod.__name__)
    if k is not None:
        return k
    through = mod.pair_through_depth

    @cuda.jit
    def pairs_kernel(start, npairs, k0, qs, vals, sw2, sb2, ntk, rec, out_k, out_t, left):
        p = start + cuda.grid(1)
        if p < npairs:
            a, b = pair_of(p)
            scr = cuda.local.array(1, float64)  # the series needs none (the exact rule is not run here)
            count = cuda.local.array(1, int64)
            ok = through(_arr(k0)[a, b], _arr(qs), _arr(vals), sw2, sb2, ntk, _arr(rec), a, b, scr, False,
                         _arr(out_k), _arr(out_t), count)  # fmt: skip
            left[p] = 0 if ok else 1

    _CACHE[mod.__name__] = pairs_kernel
    return pairs_kernel


def run_pairs(mod_gpu, mod_cpu, k0, qs, vals, sw2, sb2, ntk, rec, out_k, out_t, bar):
    """Fill the off-diagonal entries of ``out_k`` (and ``out_t``) at the recorded layers (``rec``
    as slots) on the GPU, the pairs it leaves on the CPU (``mod_cpu``: the "parallel" module);
    returns the count of exact integrals per layer."""
    kernel = _kernel(mod_gpu)
    n = k0.shape[0]
    npairs = n * (n - 1) // 2
    d_k0, d_qs, d_vals, d_rec = (cuda.to_device(np.ascontiguousarray(a)) for a in (k0, qs, vals, rec))
    d_out_k, d_out_t = cuda.to_device(out_k), cuda.to_device(out_t)
    d_left = cuda.device_array(npairs, np.uint8)
    for start in range(0, npairs, SLICE):
        m = min(SLICE, npairs - start)
        kernel[(m + THREADS - 1) // THREADS, THREADS](start, npairs, d_k0, d_qs, d_vals, sw2, sb2, ntk, d_rec, d_out_k,
                                                      d_out_t, d_left)  # fmt: skip
        cuda.synchronize()
        bar.advance(m)
    d_out_k.copy_to_host(out_k)
    d_out_t.copy_to_host(out_t)
    left = np.flatnonzero(d_left.copy_to_host())
    exact = np.zeros(qs.shape[0], dtype=np.int64)
    if left.size:
        a, b = np.empty_like(left), np.empty_like(left)
        pairs_of(left, a, b)
        mod_cpu.pair_list(k0, qs, vals, sw2, sb2, ntk, rec, a, b, out_k, out_t, exact)
    return exact

"""The tilted chains on the GPU (target ``"cuda"``, numba-cuda).

One GPU thread runs one tilted chain with the same scalar code as the CPU targets
(:func:`fastprop.rare.tilt.tilted_weight`, compiled here as a device function); the
weights of a batch come back and are summed exactly on the host
(:func:`fastprop.rare.tilt.fold`). The integer streams are the CPU's bit for bit; log,
exp and lgamma come from the GPU's libdevice, so on a real GPU a weight can differ
from the CPU's in its last ulps (under the simulator the run is identical).
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64, uint64

from ..chains import rng
from ..chains.cuda import THREADS
from ..run.gpu import as_array as _arr
from .tilt import MAX_JUMP, TILT_STREAM, tilted_weight

__all__ = ["tilt_weights"]

_KERNEL: list = []


def _kernel():
    if not _KERNEL:
        nstate = rng.STREAM_SIZE
        eshape = (MAX_JUMP, MAX_JUMP + 1)  # a compile-time constant of the kernel

        @cuda.jit
        def run(out, first, nb, seed, L, tab, jumps, cum_pi, log_pi, s_y, log_ref, upper):
            i = cuda.grid(1)
            if i < nb:
                st = cuda.local.array(nstate, uint64)
                e = cuda.local.array(eshape, float64)
                rng.stream_init(st, seed, TILT_STREAM + uint64(first + i))
                tables = (_arr(tab), _arr(jumps), _arr(cum_pi), _arr(log_pi))
                out[i] = tilted_weight(st, L, *tables, s_y, log_ref, upper, e)

        _KERNEL.append(run)
    return _KERNEL[0]


def tilt_weights(plan, first, nb, seed):
    """The weights w of the tilted chains [first, first + nb) (see :mod:`fastprop.rare.tilt`)."""
    run = _kernel()
    d_out = cuda.device_array(nb)
    L, tab, jumps, cum_pi, log_pi, s_y, log_ref, upper = plan.args
    arrays = [cuda.to_device(np.ascontiguousarray(a)) for a in (tab, jumps, cum_pi, log_pi)]
    blocks = (nb + THREADS - 1) // THREADS
    run[blocks, THREADS](d_out, first, nb, np.uint64(seed), L, *arrays, s_y, log_ref, upper)
    return d_out.copy_to_host()

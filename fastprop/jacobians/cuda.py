"""The Jacobian engine on the GPU (target ``"cuda"``, numba-cuda).

One GPU thread runs one chain with the same scalar code as the CPU targets
(:func:`fastprop.jacobians.chain.jacobian_chain`, compiled here as a device function), its work
arrays in thread-local memory sized for the width at compile time (about 6d² + 20d doubles).
The recorded values of a batch stay on the device and are folded into the statistics there by the
chains' statistics kernels (:func:`fastprop.chains.cuda.stats_kernels`); only the statistics come
back. Integer streams are those of the CPU bit for bit; floating-point functions come from the
GPU's libdevice, so on a real GPU the values can differ from the CPU's in the last ulps (under the
simulator they are identical), as for the chains.
"""

from __future__ import annotations

import numpy as np
from numba import cuda, float64, int64, uint64

from ..chains import rng
from ..chains.cuda import THREADS, stats_kernels
from ..chains.result import COUNTS
from ..run.gpu import as_array as _arr
from .compiled import chain_module

__all__ = ["run_batches"]

_CACHE: dict = {}


def _kernel(act, d, ortho):
    key = (act.fingerprint, d, ortho)
    k = _CACHE.get(key)
    if k is not None:
        return k
    module = chain_module(act, "cpu")
    chain = module.jacobian_chain
    direction = module.DIRECTION
    n_mats, n_vecs, n_ints = module.N_MATS, module.N_VECS, module.N_INTS
    nstate = rng.STREAM_SIZE
    zsize = d * d + d
    qsize = d * d if ortho else 1

    @cuda.jit
    def run(out, rec, first, nb, seed, L, sw, sb, x0, method, ortho_, rms, homogeneous, u, v, v_random):
        i = cuda.grid(1)
        if i < nb:
            st = cuda.local.array(nstate, uint64)
            dst = cuda.local.array(nstate, uint64)
            z = cuda.local.array(zsize, float64)
            q = cuda.local.array(qsize, float64)
            x = cuda.local.array(d, float64)
            h = cuda.local.array(d, float64)
            a = cuda.local.array(d, float64)
            mats = cuda.local.array((n_mats, d, d), float64)
            vecs = cuda.local.array((n_vecs, d), float64)
            ints = cuda.local.array((n_ints, d), int64)
            rng.stream_init(st, seed, first + i)
            rng.stream_init(dst, seed, uint64(first + i) + direction)
            chain(st, dst, _arr(out), i, _arr(rec), L, d, sw, sb, _arr(x0), method, ortho_, rms, homogeneous, _arr(u),
                  _arr(v), v_random, z, q, x, h, a, mats, vecs, ints)  # fmt: skip

    _CACHE[key] = run
    return run


def run_batches(result, act, batch, first, n, tlog, keep, bar, rec, seed, d, L, sw, sb, x0, code, ortho, rms,
                homogeneous, u, v, v_random):  # fmt: skip
    """Chains [first, first + n) on the GPU in batches, folded into ``result``."""
    run = _kernel(act, d, ortho)
    update, normalize = stats_kernels()
    stats = result.stats
    ns = stats.hist.shape[0]
    d_out = cuda.device_array((ns, batch))
    d_rec, d_x0, d_u, d_v, d_tlog = (cuda.to_device(np.ascontiguousarray(a)) for a in (rec, x0, u, v, tlog))
    dev = {k: cuda.to_device(getattr(stats, k)) for k in COUNTS}
    done = 0
    while done < n:
        nb = min(batch, n - done)
        blocks = (nb + THREADS - 1) // THREADS
        run[blocks, THREADS](d_out, d_rec, first + done, nb, np.uint64(seed), L, sw, sb, d_x0, code, ortho, rms,
                             homogeneous, d_u, d_v, v_random)  # fmt: skip
        update[(blocks, ns), THREADS](d_out, nb, d_tlog, *(dev[k] for k in COUNTS))
        normalize[max(1, (3 * ns + 255) // 256), 256](dev["sums"])
        if keep:
            stats.norms[:, done : done + nb] = d_out.copy_to_host()[:, :nb]
        done += nb
        bar.advance(nb)
    for k in COUNTS:
        dev[k].copy_to_host(getattr(stats, k))

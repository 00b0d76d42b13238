"""The chain engine on the GPU (target ``"cuda"``, numba-cuda).

The same scalar code as the CPU targets: one GPU thread runs one chain with
:func:`fastprop.chains.rng.stream_init` and the chain function of
:func:`fastprop.chains.chain_function` (plain ``@njit`` functions, compiled here
as device functions), with its scratch vectors in thread-local memory sized for
the width at compile time. Chains run in batches; the recorded log-norms of a
batch stay on the device, where a second kernel folds them into the statistics
with atomic additions (histogram, threshold counts, and the exact integer sums
of :mod:`fastprop.chains.exactsum` via :func:`~fastprop.chains.exactsum.limbs`). Only the
statistics come back, so memory does not grow with the number of chains.

The integer random streams are those of the CPU targets bit for bit. Floating-point
functions (log, exp, sqrt) come from the GPU's libdevice and may differ from the
CPU's in the last ulp, so on a real GPU a count can differ only for a chain whose
norm lies within rounding of a threshold or bin edge, and the exact sums by
rounding-level amounts; under the simulator (``NUMBA_ENABLE_CUDASIM=1``) the
results are identical.
"""

from __future__ import annotations

import math

import numpy as np
from numba import cuda, float32, float64, uint64

from ..run.gpu import as_array as _arr
from . import exactsum, rng
from .common import DENSE, hist_bin
from .compiled import chain_function
from .result import COUNTS

__all__ = ["run_batches"]

THREADS = 128
_CACHE: dict = {}


def _chain_kernel(act, d, dense, ortho, dtype="float64"):
    key = ("cuda-run", act.fingerprint, d, dense, ortho, dtype)
    k = _CACHE.get(key)
    if k is not None:
        return k
    chain = chain_function(act, dtype)
    ftype = float32 if dtype == "float32" else float64
    zsize = d * d + d if dense else 2 * d
    qsize = d * d if (dense and ortho) else 1
    nstate = rng.STREAM_SIZE

    @cuda.jit
    def run(out, rec, first, nb, seed, L, sw, sb, x0, method, ortho_, tracked, rms, pos_sq, neg_sq):
        i = cuda.grid(1)
        if i < nb:
            st = cuda.local.array(nstate, uint64)
            z = cuda.local.array(zsize, ftype)
            q = cuda.local.array(qsize, ftype)
            x = cuda.local.array(d, ftype)
            h = cuda.local.array(d, ftype)
            rng.stream_init(st, seed, first + i)
            chain(
                st, _arr(out), i, _arr(rec), L, d, sw, sb, _arr(x0), method, ortho_, tracked, rms, pos_sq, neg_sq,
                z, q, x, h,
            )  # fmt: skip

    _CACHE[key] = run
    return run


def stats_kernels():
    """(update, normalize): fold a batch of recorded log-values (slots × chains) into the statistics
    with atomics, and normalise the exact sums; shared with :mod:`fastprop.jacobians.cuda`."""
    k = _CACHE.get("cuda-stats")
    if k is not None:
        return k

    @cuda.jit
    def update(logn, nb, tlog, hist, zeros, n_inf, n_nan, above, below, sums, sq_inf):
        i = cuda.grid(1)
        s = cuda.blockIdx.y
        if i >= nb:
            return
        v = logn[s, i]
        if v != v:
            cuda.atomic.add(n_nan, s, 1)
            return
        for k in range(tlog.shape[0]):
            if v > tlog[k]:
                cuda.atomic.add(above, (s, k), 1)
            elif v < tlog[k]:
                cuda.atomic.add(below, (s, k), 1)
        if v == -math.inf:
            cuda.atomic.add(zeros, s, 1)
            return
        if v == math.inf:
            cuda.atomic.add(n_inf, s, 1)
            return
        cuda.atomic.add(hist, (s, hist_bin(v)), 1)
        sq = math.exp(2.0 * v)
        for j in range(3):
            x = sq if j == 0 else (v if j == 1 else v * v)
            if x == math.inf:
                cuda.atomic.add(sq_inf, s, 1)
                continue
            k, a0, a1, a2 = exactsum.limbs(x)
            if a0 != 0:
                cuda.atomic.add(sums, (s, j, k), a0)
            if a1 != 0:
                cuda.atomic.add(sums, (s, j, k + 1), a1)
            if a2 != 0:
                cuda.atomic.add(sums, (s, j, k + 2), a2)

    @cuda.jit
    def normalize(sums):
        t = cuda.grid(1)
        if t < sums.shape[0] * 3:
            exactsum.normalize(_arr(sums)[t // 3, t % 3])

    _CACHE["cuda-stats"] = (update, normalize)
    return update, normalize


def run_batches(
    result, act, batch, rec, first, n, seed, d, L, sw, sb, x0, code, ortho, tracked, rms, pos_sq, neg_sq, tlog,
    keep_norms, bar, dtype,
):  # fmt: skip
    """Simulate chains [first, first + n) on the GPU in batches, folding into ``result``."""
    run = _chain_kernel(act, d, code == DENSE, ortho, dtype)
    update, normalize = stats_kernels()
    ns = result.layers.size
    d_out = cuda.device_array((ns, batch))
    d_rec, d_x0, d_tlog = (cuda.to_device(np.ascontiguousarray(a)) for a in (rec, x0, tlog))
    dev = {k: cuda.to_device(getattr(result, k)) for k in COUNTS}
    done = 0
    while done < n:
        nb = min(batch, n - done)
        blocks = (nb + THREADS - 1) // THREADS
        run[blocks, THREADS](
            d_out, d_rec, first + done, nb, np.uint64(seed), L, sw, sb, d_x0, code, ortho, tracked, rms, pos_sq, neg_sq
        )
        update[(blocks, ns), THREADS](d_out, nb, d_tlog, *(dev[k] for k in COUNTS))
        normalize[max(1, (3 * ns + 255) // 256), 256](dev["sums"])
        if keep_norms:
            result.norms[:, done : done + nb] = d_out.copy_to_host()[:, :nb]
        done += nb
        bar.advance(nb)
    for k in COUNTS:
        dev[k].copy_to_host(getattr(result, k))

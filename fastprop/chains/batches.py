"""The CPU batch kernel: chains [first, first + nb) of a batch, serial or with ``prange``.

A template (:mod:`fastprop.run.compile`): compiled per activation, working dtype
and target by :func:`fastprop.chains.compiled.chain_kernel`, which binds ``chain``
(:mod:`fastprop.chains.samplers`), ``dtype`` and ``PARALLEL``; not imported directly.
"""

import numpy as np
from numba import njit, prange

from fastprop.chains import rng
from fastprop.chains.common import DENSE
from fastprop.run.borrow import borrowed
from fastprop.run.compile import bound

chain, dtype, PARALLEL, CACHE = bound(__name__, "chain", "dtype", "PARALLEL", "CACHE")


@njit(parallel=PARALLEL, cache=CACHE)
def run(out, rec, first, nb, seed, d, L, sw, sb, x0, method, ortho, tracked, rms, pos_sq, neg_sq, nchunks):
    zsize = d * d + d if method == DENSE else 2 * d
    qsize = d * d if (method == DENSE and ortho) else 1
    for t in prange(nchunks):
        st = np.empty(rng.STREAM_SIZE, np.uint64)
        z = np.empty(zsize, dtype)
        q = np.empty(qsize, dtype)
        x = np.empty(d, dtype)
        h = np.empty(d, dtype)
        chunk(t * nb // nchunks, (t + 1) * nb // nchunks, st, z, q, x, h, out, rec, first, seed, d, L, sw, sb, x0,
              method, ortho, tracked, rms, pos_sq, neg_sq)  # fmt: skip


@njit(cache=CACHE)
def chunk(lo, hi, st, z, q, x, h, out, rec, first, seed, d, L, sw, sb, x0, method, ortho, tracked, rms, pos_sq,
          neg_sq):  # fmt: skip
    """Chains [first + lo, first + hi) with the work arrays st, z, q, x, h. The arrays are
    borrowed (:mod:`fastprop.run.borrow`): no reference counts in the chains' loops."""
    st, z, q, x, h, out, rec, x0 = borrowed((st, z, q, x, h, out, rec, x0))
    for i in range(lo, hi):
        rng.stream_init(st, seed, first + i)
        chain(st, out, i, rec, L, d, sw, sb, x0, method, ortho, tracked, rms, pos_sq, neg_sq, z, q, x, h)

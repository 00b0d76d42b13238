"""The statistics kernel: folds a batch of recorded log-norms into a result's
histogram, threshold counts and exact sums, serial or with ``prange`` over layers.

A template (:mod:`fastprop.run.compile`): compiled per target by
:func:`fastprop.chains.compiled.stats_kernel`, which binds ``PARALLEL``; not
imported directly.
"""

import math

from numba import njit, prange

from fastprop.chains import exactsum
from fastprop.chains.common import hist_bin
from fastprop.run.borrow import borrowed
from fastprop.run.compile import bound

PARALLEL, CACHE = bound(__name__, "PARALLEL", "CACHE")


@njit(parallel=PARALLEL, cache=CACHE)
def update(logn, nb, tlog, hist, zeros, n_inf, n_nan, above, below, sums, sq_inf):
    """Fold a batch of recorded log-norms (slots × nb) into the statistics."""
    sums = borrowed(sums)  # no reference counts for its rows (fastprop.run.borrow)
    n_slots = logn.shape[0]
    for s in prange(n_slots):
        for i in range(nb):
            v = logn[s, i]
            if v != v:
                n_nan[s] += 1
                continue
            for k in range(tlog.shape[0]):
                if v > tlog[k]:
                    above[s, k] += 1
                elif v < tlog[k]:
                    below[s, k] += 1
            if v == -math.inf:
                zeros[s] += 1
                continue
            if v == math.inf:
                n_inf[s] += 1
                continue
            hist[s, hist_bin(v)] += 1
            sq = math.exp(2.0 * v)
            if sq == math.inf:
                sq_inf[s] += 1
            else:
                exactsum.add(sums[s, 0], sq)
            exactsum.add(sums[s, 1], v)
            exactsum.add(sums[s, 2], v * v)
        for j in range(3):
            exactsum.normalize(sums[s, j])

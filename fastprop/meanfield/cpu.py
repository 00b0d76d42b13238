"""The CPU side of a grid: the interleaved visiting order, the tables a run uses, and
the pass that finishes the points left pending (shared by the CPU targets and the GPU's
host side, :mod:`fastprop.meanfield.cuda`)."""

from __future__ import annotations

import math

import numpy as np

from ..run.targets import n_chunks
from .common import _PENDING, BLOCK, grid_positions
from .compiled import kernels
from .interpolants import NQ
from .tables import exact_tables, tables

__all__ = ["interleave_stride", "table_set", "finish_pending", "run_grid_cpu"]


def interleave_stride(n):
    """A stride coprime to the number of blocks of n points: blocks are visited in
    the order b·stride mod (number of blocks) (``drivers.grid_driver``).

    Expensive points (the chaotic phase) cluster in the grid; prange splits its
    range into contiguous parts, so visiting blocks with a stride coprime to their
    number spreads neighbouring blocks across threads and balances them.
    """
    nblocks = -(-n // BLOCK)
    stride = 7919
    while math.gcd(stride, nblocks) != 1:
        stride += 2
    return stride % nblocks if nblocks > 1 else 1


def table_set(act, use_tables):
    """The :class:`~fastprop.meanfield.tables.Tables` a grid or an edge uses (exact: empty
    ones), with the q* start table built."""
    if not use_tables:
        return exact_tables(act)
    tab = tables(act)
    tab.ensure_q_start()
    return tab


def finish_pending(k, tab, sw, sb, out, tgt):
    """Build the pair boxes that points flagged ``_PENDING`` need, then compute those points again."""
    need = np.zeros(NQ, dtype=np.bool_)
    k.pending_panels(out[0], out[7], _PENDING, need)
    if need.any():
        tab.build_panels(np.nonzero(need)[0], tgt)
        n = sw.size * sb.size
        m = grid_positions(n)
        k.grid_driver(sw, sb, 0, m, interleave_stride(n), _PENDING, n_chunks(m, tgt), tab.arrays, *out, False)


def run_grid_cpu(act, sw, sb, tgt, out, bar, tab):
    """Every point of the grid on this machine's CPU target ``tgt``, in slices of the
    interleaved order (one slice unless a progress bar shows), then the pending points."""
    k = kernels(act, tgt)
    n = sw.size * sb.size
    m = grid_positions(n)
    stride = interleave_stride(n)
    step = max(4096, -(-m // 200)) if bar.enabled else m
    for start in range(0, m, step):
        stop = min(m, start + step)
        k.grid_driver(sw, sb, start, stop, stride, 0, n_chunks(stop - start, tgt), tab.arrays, *out, False)
        bar.advance(min(stop, n) - min(start, n))
    finish_pending(k, tab, sw, sb, out, tgt)

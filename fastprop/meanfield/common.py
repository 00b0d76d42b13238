"""What the mean-field templates share: status flags, tolerances, work-space
sizes and small compiled helpers (the maths itself is documented in
:mod:`fastprop.meanfield`)."""

from __future__ import annotations

import math
from enum import IntFlag

import numpy as np
from numba import njit

__all__ = ["Status", "depth_scale", "store_point"]

Q_MAX = 1e200
"""Largest finite q*: beyond it the length map is reported divergent."""

CRIT_TOL = 1e-12
"""χ this close to 1 is critical (the quadrature is exact to a few 1e-15)."""
C_TOL = 1e-11
"""Newton on c stops once its step is below this (the error is then ~step²)."""
C_ACCEPT = 1e-7
"""With C'' known (lattice rule), a Halley step below this is final (errors O(step³))."""
KMEHLER = 32
_HERM_A = np.array([1.0 / math.sqrt(n + 1.0) for n in range(KMEHLER)])
_HERM_B = np.array([math.sqrt(n / (n + 1.0)) for n in range(KMEHLER)])
"""h_{n+1}(z) = z·h_n(z)·A_n − h_{n−1}(z)·B_n for the normalised Hermite polynomials."""
LATTICE_C_MIN = 0.2
"""The lattice rule for the correlation integrals is used for |c| ≥ this (its inner
spacing shrinks like |c|)."""
LATTICE_M_MAX = 16
LATTICE_MAX_TERMS = 2_000_000
"""Beyond these sizes (s = √(q(1−c²)) tiny, or q huge) the Gauss–Legendre rule is cheaper."""
SCRATCH = 8192
"""Work space of one point on the exact path, in float64 values: the lattice rule is
used only when its tables fit (they do at every point of the default tanh grids;
the largest there need ≈ 7300), a decision that depends on the point alone. The
GPU never takes the exact path (:mod:`fastprop.meanfield.cuda`)."""
Q_RTOL = 1e-15
MAXIT = 200


BLOCK = 64
"""Neighbouring grid points computed together (``drivers.grid_driver``)."""


def grid_positions(n):
    """The positions ``drivers.grid_driver`` runs over for n points (whole blocks)."""
    return (n + BLOCK - 1) // BLOCK * BLOCK


class Status(IntFlag):
    """Per-point flags of a mean-field result (bit flags, 0 = regular point)."""

    OK = 0
    Q_ZERO = 1
    Q_INFINITE = 2
    CRITICAL = 4
    NOT_CONVERGED = 8
    NO_EDGE = 16


_Q_ZERO = int(Status.Q_ZERO)
_Q_INFINITE = int(Status.Q_INFINITE)
_CRITICAL = int(Status.CRITICAL)
_NOT_CONVERGED = int(Status.NOT_CONVERGED)
_NO_EDGE = int(Status.NO_EDGE)
_NEED_EXACT = 32
"""Internal flag (never in a result): the point needs the exact quadrature, which
the caller did not allow (the GPU leaves such points to the CPU)."""
_PENDING = 64
"""Internal flag (never in a result): a table box the point needs is not built yet."""


@njit(cache=True)
def depth_scale(chi):
    """ξ = −1/ln χ for 0 ≤ χ ≤ 1 (Schoenholz et al. 2017, eqs. 7, 10); +inf at χ = 1.

    At a stable fixed point χ ≤ 1 exactly; χ within ``CRIT_TOL`` of 1 (or above,
    which only rounding can produce) is criticality and gives +inf. This moves
    1/ξ by at most ``CRIT_TOL``.
    """
    if chi >= 1.0 - CRIT_TOL:
        return math.inf
    if chi <= 0.0:
        return 0.0
    return -1.0 / math.log(chi)


@njit(cache=True)
def _sum4(x, n):
    """x[0] + … + x[n−1] in four interleaved partial sums (a fixed order)."""
    s0 = s1 = s2 = s3 = 0.0
    m = n - n % 4
    for i in range(0, m, 4):
        s0 += x[i]
        s1 += x[i + 1]
        s2 += x[i + 2]
        s3 += x[i + 3]
    for i in range(m, n):
        s0 += x[i]
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def store_point(r, i, j, q_out, chi1_out, c_out, chic_out, chiq_out, xiq_out, xic_out, st_out):
    """Write one point's (q*, χ_1, c*, χ_c, χ_q, ξ_q, ξ_c, status) at [i, j] of the grid arrays."""
    q_out[i, j] = r[0]
    chi1_out[i, j] = r[1]
    c_out[i, j] = r[2]
    chic_out[i, j] = r[3]
    chiq_out[i, j] = r[4]
    xiq_out[i, j] = r[5]
    xic_out[i, j] = r[6]
    st_out[i, j] = r[7]


@njit(cache=True)
def _no_gauss_mean(m, s):
    return 0.0, 0.0


@njit(cache=True)
def _no_kernel(q, c):
    return 0.0, 0.0

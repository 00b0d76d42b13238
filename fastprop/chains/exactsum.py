"""Exact, order-independent sums of doubles (a small Kulisch-style accumulator).

A float sum depends on the order of its terms, so two runs that split the same
chains differently (threads, batches, Dask tasks, merged halves) would disagree
in the last bits. The chain statistics therefore sum into a fixed-point
integer accumulator that covers the whole double range: every finite double is
``m · 2^e`` with an integer ``|m| < 2⁵³`` and ``-1074 ≤ e + 52 ≤ 1023``, and is
added exactly as integer limbs of 32 bits stored in int64. Integer addition is
associative, so the sum is the same whatever the order or grouping, and it is
rounded to a double only once, correctly, when it is read (:func:`value`).

Layout: ``NLIMB`` limbs, limb ``k`` weighing ``2^(32k − OFFSET)``. Each add
changes a limb by less than 2³², so up to 2³¹ adds are safe between two
:func:`normalize` calls; the chain driver normalises after every batch
(≤ 2²⁰ chains).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

NLIMB = 72
OFFSET = 1152
_M32 = 0xFFFFFFFF


@njit(cache=True)
def limbs(x):
    """(k, a0, a1, a2): adding x means acc[k + j] += a_j (each |a_j| < 2³²), for a
    finite double x. Shared by :func:`add` and the GPU kernels, which add atomically."""
    if x == 0.0:
        return 0, np.int64(0), np.int64(0), np.int64(0)
    f, e = math.frexp(x)
    mant = np.int64(f * 9007199254740992.0)  # f · 2⁵³, an exact integer
    sign = np.int64(1)
    if mant < 0:
        mant = -mant
        sign = np.int64(-1)
    p = e - 53 + OFFSET
    k = p >> 5
    s = p & 31
    lo = (mant & _M32) << s
    hi = (mant >> 32) << s
    return k, sign * (lo & _M32), sign * ((lo >> 32) + (hi & _M32)), sign * (hi >> 32)


@njit(cache=True)
def add(acc, x):
    """acc += x exactly, for a finite double x (the caller filters inf/NaN)."""
    k, a0, a1, a2 = limbs(x)
    acc[k] += a0
    acc[k + 1] += a1
    acc[k + 2] += a2


@njit(cache=True)
def normalize(acc):
    """Propagate carries so that limbs 0..NLIMB-2 lie in [0, 2³²): the unique
    representation of the sum (the top limb carries the sign)."""
    for k in range(acc.shape[0] - 1):
        carry = acc[k] >> 32
        acc[k] -= carry << 32
        acc[k + 1] += carry


def to_int(acc) -> int:
    """The accumulator's exact value times 2^OFFSET, as a Python int."""
    total = 0
    for k in range(len(acc) - 1, -1, -1):
        total = (total << 32) + int(acc[k])
    return total


def value(acc) -> float:
    """The exact sum rounded once to the nearest double (±inf beyond the range)."""
    n = to_int(acc)
    try:
        return n / (1 << OFFSET)  # int / int is correctly rounded in Python
    except OverflowError:
        return math.inf if n > 0 else -math.inf

"""Pairs of a strictly lower triangle, numbered row by row: p = a(a−1)/2 + b for 0 ≤ b < a."""

import math

from numba import njit


@njit(cache=True)
def pair_of(p):
    """(a, b) of pair number p (the inverse of p = a(a−1)/2 + b, b < a); exact for p < 2⁵¹."""
    a = int((1.0 + math.sqrt(1.0 + 8.0 * p)) / 2.0)
    while a * (a - 1) // 2 > p:  # correct the float estimate by at most a step
        a -= 1
    while (a + 1) * a // 2 <= p:
        a += 1
    return a, p - a * (a - 1) // 2


@njit(cache=True)
def pairs_of(ps, a, b):
    """a[i], b[i] = :func:`pair_of` (ps[i]) for every i."""
    for i in range(ps.size):
        a[i], b[i] = pair_of(ps[i])

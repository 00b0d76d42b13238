"""What the chain templates and results share: sampler codes, the fixed histogram
of log10‖x‖, and small compiled helpers on one working vector."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

DENSE, INVARIANT = 0, 1
METHODS = ("auto", "dense", "invariant")
WEIGHTS = ("gaussian", "orthogonal")

# Fixed global histogram of log10‖x‖: bins of 1/BINS_PER_DECADE decade on
# [LOG10_MIN, LOG10_MAX), plus an underflow (index 0) and an overflow bin (last).
BINS_PER_DECADE = 50
LOG10_MIN = -330
LOG10_MAX = 330
NBINS = (LOG10_MAX - LOG10_MIN) * BINS_PER_DECADE
_LN10 = math.log(10.0)


def hist_edges():
    """The interior bin edges of log10‖x‖ (NBINS + 1 values)."""
    return LOG10_MIN + np.arange(NBINS + 1) / BINS_PER_DECADE


N2_MIN = 1e-290
N2_MAX = 1e300
"""Squared norms in (N2_MIN, N2_MAX) are summed and logged directly; outside, by scaling."""


@njit(cache=True)
def _max_and_scaled_square(x, d):
    """(m, t) with m = max |x_i| and t = Σ (x_i/m)² ∈ [1, d], so ‖x‖ = m √t with nothing out of
    range; t = 0 when m is 0, inf or NaN (then m says which)."""
    m = 0.0
    for i in range(d):
        a = abs(x[i])
        if a != a:
            return math.nan, 0.0
        m = max(m, a)
    if m == 0.0 or m == math.inf:
        return m, 0.0
    t = 0.0
    for i in range(d):
        t += (x[i] / m) ** 2
    return m, t


@njit(cache=True)
def _log_norm(x, d):
    """log‖x‖ without spurious overflow/underflow (−inf for 0, NaN if x has NaN)."""
    s = 0.0
    for i in range(d):
        s += x[i] * x[i]
    if N2_MIN < s < N2_MAX:
        return 0.5 * math.log(s)
    m, t = _max_and_scaled_square(x, d)
    if t == 0.0:
        return -math.inf if m == 0.0 else m  # (inf or NaN)
    return math.log(m) + 0.5 * math.log(t)


@njit(cache=True)
def _unit(h, x, d):
    """x ← h/‖h‖ (``x`` may be ``h``) and return log‖h‖, with no spurious overflow or underflow:
    −inf for h = 0 (x left as it is), NaN if h has a NaN. For ‖h‖² in (N2_MIN, N2_MAX) the
    arithmetic is r2 = Σ h_i², x_i = h_i · (1/√r2); outside, h is scaled by max |h_i| first."""
    r2 = 0.0
    for i in range(d):
        r2 += h[i] * h[i]
    if N2_MIN < r2 < N2_MAX:
        r = 1.0 / math.sqrt(r2)
        for i in range(d):
            x[i] = h[i] * r
        return 0.5 * math.log(r2)
    m, t = _max_and_scaled_square(h, d)
    if t == 0.0:
        return -math.inf if m == 0.0 else m
    r = 1.0 / math.sqrt(t)
    for i in range(d):
        x[i] = (h[i] / m) * r
    return math.log(m) + 0.5 * math.log(t)


@njit(cache=True)
def _half_log_gain(r2, sw, rest):
    """½ log r2 for a squared gain r2 = σ_w² · rest (rest ≥ 0 of moderate size), also where r2
    itself leaves the doubles (σ_w beyond about 1e±150): log σ_w + ½ log rest there."""
    if N2_MIN < r2 < N2_MAX:
        return 0.5 * math.log(r2)
    if rest == 0.0 or sw == 0.0:
        return -math.inf
    if rest > 0.0:
        return math.log(sw) + 0.5 * math.log(rest)
    return math.nan


@njit(cache=True)
def _haar_apply(z, q, x, y, d):
    """y = O x with O Haar-orthogonal: Gram–Schmidt (twice, for stability) of the
    columns of the Gaussian matrix whose column k is z[k·d:(k+1)·d]."""
    for k in range(d):
        for i in range(d):
            q[k * d + i] = z[k * d + i]
        for _ in range(2):
            for j in range(k):
                dot = 0.0
                for i in range(d):
                    dot += q[j * d + i] * q[k * d + i]
                for i in range(d):
                    q[k * d + i] -= dot * q[j * d + i]
        nrm = 0.0
        for i in range(d):
            nrm += q[k * d + i] ** 2
        nrm = 1.0 / math.sqrt(nrm)
        for i in range(d):
            q[k * d + i] *= nrm
    for i in range(d):
        y[i] = 0.0
    for k in range(d):
        for i in range(d):
            y[i] += x[k] * q[k * d + i]


@njit(cache=True)
def hist_bin(v):
    """Index into ``hist`` of a finite log-norm v (0: underflow, NBINS + 1: overflow)."""
    b = math.floor((v / _LN10 - LOG10_MIN) * BINS_PER_DECADE)
    if b < 0:
        return 0
    if b >= NBINS:
        return NBINS + 1
    return b + 1

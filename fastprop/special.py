"""Scalar special functions, written once and compiled with Numba.

Nothing here calls SciPy: these are the building blocks of the closed-form
Gaussian expectations in :mod:`fastprop.activations` and of the quadrature
kernels, and they must compile wherever those do.
"""

import math

from numba import njit

SQRT2 = math.sqrt(2.0)
SQRT2PI = math.sqrt(2.0 * math.pi)
INV_SQRT2PI = 1.0 / SQRT2PI
SQRTPI = math.sqrt(math.pi)


@njit(cache=True)
def norm_pdf(x):
    """Standard normal density ϕ(x) = exp(−x²/2)/√(2π)."""
    return math.exp(-0.5 * x * x) * INV_SQRT2PI


@njit(cache=True)
def norm_cdf(x):
    """Standard normal distribution function Φ(x) = erfc(−x/√2)/2, accurate in both tails."""
    return 0.5 * math.erfc(-x / SQRT2)


@njit(cache=True)
def erfcx(x):
    """Scaled complementary error function exp(x²)·erfc(x), for x ≥ 0.

    Below 25 the factor exp(x²) is formed from x² = hi² + (x−hi)(x+hi) with hi
    having 12 fractional bits, so hi² is exact and no rounding of x² is amplified
    by the exponential. From 25 on, the asymptotic series
    1/(x√π)·Σ_k (−1)^k (2k−1)!!/(2x²)^k is summed to 12 terms (error < 1e-30).
    """
    if x < 25.0:
        hi = math.floor(x * 4096.0) / 4096.0
        lo = x - hi
        return math.exp(hi * hi) * math.exp(lo * (x + hi)) * math.erfc(x)
    inv = 1.0 / (2.0 * x * x)
    term = 1.0
    total = 1.0
    for k in range(1, 13):
        term *= -(2.0 * k - 1.0) * inv
        total += term
    return total / (x * SQRTPI)


@njit(cache=True)
def mills(a):
    """Mills ratio Φ(−a)/ϕ(a), accurate for every a ≥ 0 (no underflow)."""
    return 0.5 * SQRT2PI * erfcx(a / SQRT2)


@njit(cache=True)
def exp_times_lower_tail(m, s):
    """E[exp(X) · 1{X < 0}] for X ~ N(m, s²), s > 0, without overflow.

    Equals exp(m + s²/2)·Φ(−m/s − s). With a = m/s + s ≥ 0 it is rewritten as
    ϕ(m/s)·Mills(a), which stays finite when exp(m + s²/2) alone would overflow.
    """
    a = m / s + s
    if a >= 0.0:
        return norm_pdf(m / s) * mills(a)
    return math.exp(m + 0.5 * s * s) * norm_cdf(-a)

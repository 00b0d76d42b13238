r"""The spectral density of J Jᵀ from the S-transform (free multiplicative convolution).

With M(z) = Σ_k m_k z^{-k} = ∫ λ/(z − λ) dρ(λ) the moment generating function of
a law ρ and S(m) = (1 + m)/(m M^{-1}(m)) its S-transform, freeness gives
S_{JJᵀ} = (S_{WWᵀ} S_{D²})^L (Pennington, Schoenholz & Ganguli 2017, eqs. 11–14),
S_{WWᵀ} = 1/(σ_w²(1 + m)) for Gaussian and 1/σ_w² for orthogonal weights. Writing
ζ = M_{D²}^{-1}(m), the value m = M_{JJᵀ}(z) solves

.. math:: z = \Bigl(1 + \frac1m\Bigr) u^L,\qquad u = \frac{σ_w^2\, m\, ζ}{g(m)},
          \qquad m = M_{D^2}(ζ),

with g = 1 (Gaussian) or 1 + m (orthogonal). For z = λ + i0 in the bulk, ζ lies
in the upper half-plane (it is the subordination point of D² in the product),
arg u ∈ (−π/L, 0], and the density is ρ(λ) = −Im m/(πλ). The functions here
solve for ζ by Newton's method on F(ζ) = log(1 + 1/m) + L log u − log λ with
principal logarithms (continuous on that range), marching down from above the
support (no polynomial root per point). M_{D²} is a sum over a discretised law
of D² (:mod:`fastprop.spectra.law`): nodes ``t`` (values of φ'²) and weights ``w``.
"""

import math

import numpy as np
from numba import njit

MAXIT = 200
STEP_TOL = 1e-14


@njit(cache=True)
def m_d(zeta, t, w, a0):
    """(M(ζ), M'(ζ), 1 + M(ζ)) of the law a0 δ_0 + Σ w_i δ_{t_i} (t_i > 0, a0 = 1 − Σ w):
    Σ w t/(ζ − t), −Σ w t/(ζ − t)², and a0 + ζ Σ w/(ζ − t) (no cancellation at M ≈ −1)."""
    m = 0j
    dm = 0j
    g = 0j
    for i in range(t.size):
        diff = zeta - t[i]
        if diff == 0.0:  # ζ on a node of the law (an atom): just above it
            diff = complex(0.0, 1e-300 + 1e-16 * t[i])
        r = 1.0 / diff
        a = w[i] * t[i] * r
        m += a
        dm -= a * r
        g += w[i] * r
    return m, dm, a0 + zeta * g


@njit(cache=True)
def residual(zeta, lam, depth, w2, orth, t, w, a0):
    """(F(ζ), F'(ζ), m) of the module docstring's equation at z = λ."""
    m, dm, m1 = m_d(zeta, t, w, a0)
    if m == 0.0 or m1 == 0.0 or zeta == 0.0:  # off the equation's domain: no step
        nan = complex(math.nan, math.nan)
        return nan, nan, m
    g = m1 if orth else 1.0 + 0j
    u = w2 * m * zeta / g
    f = np.log(m1 / m) + depth * np.log(u) - math.log(lam)
    df = dm * (1.0 / m1 - 1.0 / m) + depth * (dm / m + 1.0 / zeta)
    if orth:
        df -= depth * dm / m1
    return f, df, m


@njit(cache=True)
def newton(zeta, lam, depth, w2, orth, t, w, a0):
    """Newton from ``zeta`` (kept in the closed upper half-plane): (ζ, m, converged).
    Converged: a step below 1e-14 relatively, |F| at its rounding floor (about
    1e-16 (L + 2)(1 + |log λ|)), or steps below 1e-9 that stop shrinking (rounding)."""
    ftol = 1e-15 * (depth + 2.0) * (1.0 + abs(math.log(lam)))
    prev = math.inf
    for _ in range(MAXIT):
        f, df, m = residual(zeta, lam, depth, w2, orth, t, w, a0)
        if df == 0.0:
            break
        step = f / df
        if not (abs(step) < math.inf):
            break
        a = abs(step)
        cap = 0.5 * abs(zeta)
        if a > cap:
            step *= cap / a
        new = zeta - step
        if new.imag < 0.0:
            new = complex(new.real, 0.5 * zeta.imag)
        rel = abs(new - zeta) / abs(new)
        done = rel <= STEP_TOL or abs(f) <= ftol or (rel < 1e-9 and rel >= 0.5 * prev)
        prev = rel
        zeta = new
        if done:
            return zeta, m_d(zeta, t, w, a0)[0], True
    return zeta, m_d(zeta, t, w, a0)[0], False


@njit(cache=True)
def march(lam_desc, zeta_edge, hi, depth, w2, orth, t, w, a0, t_check, w_check, a0_check, zeta_out, m_out, err_out):
    """Solve at every λ of ``lam_desc`` (descending), each Newton run starting from the
    previous solution pushed into the upper half-plane (the first from the upper edge
    ``zeta_edge`` of the support, λ = ``hi``). ``err_out``: |M(ζ) − M_check(ζ)|, the
    discretisation error estimate of m from a coarser law (``t_check``, ``w_check``);
    NaN where Newton failed."""
    zeta = complex(zeta_edge, 0.0)
    prev = hi
    for i in range(lam_desc.size):
        lam = lam_desc[i]
        r = math.sqrt(min(abs(prev - lam) / prev, 1.0))  # near an edge ζ moves like √Δλ
        if lam > hi:  # above the support: ζ real, beyond ζ at the edge
            start = complex(max(zeta.real, zeta_edge * (1.0 + r)), 1e-3 * r * abs(zeta))
        else:
            start = complex(zeta.real, max(zeta.imag, r * abs(zeta), 1e-8 * abs(zeta)))
        zeta, m, ok = newton(start, lam, depth, w2, orth, t, w, a0)
        prev = lam
        zeta_out[i] = zeta
        m_out[i] = m
        err_out[i] = abs(m - m_d(zeta, t_check, w_check, a0_check)[0]) if ok else math.nan
    return 0


@njit(cache=True)
def log_z_real(zeta, depth, w2, orth, t, w, a0):
    """(log|z(ζ)|, d log|z|/dζ, sign z) for real ζ off the support of the law."""
    m, dm, m1 = m_d(complex(zeta, 0.0), t, w, a0)
    mr = m.real
    dmr = dm.real
    g = m1.real if orth else 1.0
    if mr == 0.0 or g == 0.0 or zeta == 0.0:
        return -math.inf, math.nan, -1.0
    u = w2 * mr * zeta / g
    a = m1.real / mr
    if a == 0.0:
        return -math.inf, math.nan, -1.0
    # the real solutions that belong to M_{JJᵀ}: for L > 1 the principal root needs
    # u > 0 and then z > 0 needs 1 + 1/m > 0; for L = 1 any sign with z > 0
    if depth > 1 and (u <= 0.0 or a <= 0.0):
        return -math.inf, math.nan, -1.0
    sign = (1.0 if a > 0 else -1.0) * (1.0 if (u > 0 or depth % 2 == 0) else -1.0)
    val = math.log(abs(a)) + depth * math.log(abs(u))
    der = dmr * (1.0 / m1.real - 1.0 / mr) + depth * (dmr / mr + 1.0 / zeta)
    if orth:
        der -= depth * dmr / m1.real
    return val, der, sign


@njit(cache=True)
def critical_point(lo, hi, depth, w2, orth, t, w, a0):
    """(z(ζ), ζ) at the critical point of z on the real axis between ``lo`` (d log z/dζ ≤ 0)
    and ``hi`` (> 0), by bisection to rounding."""
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if log_z_real(mid, depth, w2, orth, t, w, a0)[1] <= 0.0:
            lo = mid
        else:
            hi = mid
    zeta = 0.5 * (lo + hi)
    return math.exp(log_z_real(zeta, depth, w2, orth, t, w, a0)[0]), zeta


@njit(cache=True)
def upper_edge(depth, w2, orth, t, w, a0, t_max):
    """(λ₊, ζ at λ₊): the smallest value of z(ζ) on ζ > t_max reached from ζ = +∞ —
    the first critical point met coming down (z(ζ) increases beyond it), or the limit
    ζ → t_max⁺ where z has none."""
    s = 1e8
    prev_z = math.nan
    found = False
    lo = hi = 0.0
    while s > 1e-15:
        zeta = t_max * (1.0 + s)
        der = log_z_real(zeta, depth, w2, orth, t, w, a0)[1]
        if der <= 0.0:
            lo = zeta
            hi = t_max * (1.0 + 2.0 * s)
            found = True
            break
        prev_z = zeta
        s *= 0.5
    if not found:
        zeta = prev_z
        return math.exp(log_z_real(zeta, depth, w2, orth, t, w, a0)[0]), zeta
    return critical_point(lo, hi, depth, w2, orth, t, w, a0)


@njit(cache=True)
def edge_below_atom(depth, w2, orth, t, w, a0, t_top, t_below):
    """(λ₊, ζ at λ₊) of the continuous part below an atom of J Jᵀ at (σ_w² t_top)^L
    (orthogonal weights, an atom of D² at ``t_top`` of mass > 1 − 1/L). Below the atom
    m = M(λ) is real, runs up from −∞, and on the real ζ-axis z(ζ) comes down from the
    atom as ζ leaves ``t_top`` downwards (m → −∞ as ζ → t_top⁻); λ₊ is its first
    critical point on (``t_below``, ``t_top``), where the continuous part begins.
    (NaN, NaN) if there is none there."""
    gap = t_top - t_below
    prev = t_top
    s = 1e-9  # closer to the atom d log z/dζ cancels (m ~ 1/(ζ − t_top))
    while s > 0.0:
        # ζ from t_top down to t_below, geometrically graded towards both ends (ratio 1.25)
        zeta = t_top - s * gap if s <= 0.5 else t_below + (1.0 - s) * gap
        s = s * 1.25 if s < 0.5 else (1.0 - (1.0 - s) / 1.25 if 1.0 - s > 1e-15 else -1.0)
        val, der, sign = log_z_real(zeta, depth, w2, orth, t, w, a0)
        if not (val > -math.inf) or sign <= 0.0:
            break
        if der <= 0.0:
            return critical_point(zeta, prev, depth, w2, orth, t, w, a0)
        prev = zeta
    return math.nan, math.nan


@njit(cache=True)
def lower_edge(depth, w2, orth, t, w, a0, t_min):
    """λ₋ > 0 where the support has a gap above 0, else 0. Below the support m = M(λ)
    is real and runs from −P(D² > 0) (λ → 0⁺) down to −∞; on the real ζ-axis this is
    the branch of z(ζ) that starts at ζ = 0⁺ (:func:`log_z_real` valid there). λ₋ is its
    first maximum, found on a grid over (0, t_min) and refined by bisection on
    d log z/dζ; 0 when the branch does not exist (e.g. L > 1 with an atom at 0)."""
    n = 400
    best = 0.0
    j_best = -1
    for j in range(1, n):
        x = 0.5 * (1.0 - math.cos(math.pi * j / n))  # dense at both ends
        val, der, sign = log_z_real(t_min * x, depth, w2, orth, t, w, a0)
        if sign <= 0.0 or not (val > -math.inf):
            break
        if math.exp(val) <= best:
            break
        best = math.exp(val)
        j_best = j
    if j_best < 0:
        return 0.0
    lo = 0.5 * (1.0 - math.cos(math.pi * (j_best - 1) / n)) * t_min
    hi = 0.5 * (1.0 - math.cos(math.pi * (j_best + 1) / n)) * t_min
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        val, der, sign = log_z_real(mid, depth, w2, orth, t, w, a0)
        if sign > 0.0 and der > 0.0:
            lo = mid
        else:
            hi = mid
    val, der, sign = log_z_real(lo, depth, w2, orth, t, w, a0)
    return max(best, math.exp(val)) if sign > 0.0 else best

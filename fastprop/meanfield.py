r"""Mean-field maths for one activation: length map, correlation map, fixed points.

Every formula is a small scalar function, compiled per activation by
:func:`kernels` (the activation's φ, φ', φ'' are compiled into it). Drivers in
:mod:`fastprop.grid` only schedule these functions over points.

Conventions (DESIGN §1; Poole et al. 2016, Schoenholz et al. 2017)
--------------------------------------------------------------------
* Length map (Poole et al. 2016, eq. 3):
  :math:`V(q) = σ_w^2 \int φ(\sqrt q z)^2 Dz + σ_b^2`; q* its stable fixed point.
* Correlation map at q* (Poole et al. 2016, eq. 5):
  :math:`C(c) = (σ_w^2 \iint φ(u_1)φ(u_2) Dz_1 Dz_2 + σ_b^2)/q^*`,
  :math:`u_1 = \sqrt{q^*} z_1`, :math:`u_2 = \sqrt{q^*}(c z_1 + \sqrt{1-c^2} z_2)`.
* :math:`χ_1 = σ_w^2 \int φ'(\sqrt{q^*} z)^2 Dz = C'(1)` (Poole et al. eq. 7);
  :math:`χ_c = σ_w^2 \iint φ'(u_1)φ'(u_2) = C'(c^*)` (Schoenholz et al. eq. 9;
  the derivative follows from Price's theorem, dN/dc = q E φ'φ').
* :math:`χ_q = V'(q^*) = χ_1 + σ_w^2 \int φ''(\sqrt{q^*} z) φ(\sqrt{q^*} z) Dz`
  (Stein's lemma; kinks add Dirac masses); where its two terms cancel it is
  computed as :math:`σ_w^2 \int φ(\sqrt{q^*} z) φ'(\sqrt{q^*} z)\, z\, Dz / \sqrt{q^*}`,
  the q-derivative of V taken under the integral (:func:`moments`).
* Depth scales (Schoenholz et al. 2017, eqs. 7 and 10): ξ_q = −1/ln χ_q,
  ξ_c = −1/ln χ_c; +inf exactly at χ = 1.

Integration
-----------
One-dimensional moments use the graded, kink-split Gauss–Legendre rule of
:mod:`fastprop.quadrature`. The two-dimensional integrals are done by
conditioning on z₁: the inner expectation over z₂ is E φ(m + s z₂) with
m = √q c z₁, s = √q √(1−c²) — in closed form when the activation has one
(``gauss_mean``), otherwise by the same graded rule with its panels moved to
(b − m)/s — and the outer integral over z₁ has panels at b/√q and
b/(√q c). Near c = ±1 the conditional mean turns each corner k of φ (a kink,
or a jump of φ'') over a width w = √(1−c²)/|c| around k/(√q c), which
collapses; panels are then graded around it at ±w·2ʲ
(:func:`fastprop.quadrature.make_next_break`), which keeps the rule exact to
rounding for c within 1e-12 of ±1. Activations with a closed-form kernel (relu, erf, linear) skip the
quadrature for the two-dimensional integral altogether.

Activations analytic in a strip |Im h| < a without a closed form (tanh,
sigmoid, softplus, swish: ``Activation.strip``) use a lattice rule for the
two-dimensional integrals when |c| ≥ 0.2: u₁ = iΔ₁ and u₂ = jΔ₂ with
Δ₂ = |c|Δ₁/m, so that each conditional mean c·u₁ is itself a lattice point and
E[φ(u₂) | u₁] is a discrete convolution of φ's lattice samples with one table
of Gaussian weights. φ is evaluated once per lattice point (not once per pair
of nodes) and the convolution vectorises; the trapezoidal rule's error
2M/(e^{2πa/Δ} − 1) (Trefethen & Weideman 2014) sets Δ from a and the
Gaussian's width (:func:`fastprop.quadrature.lattice_step`, error < e^{−36}).
The same sums give E φ''φ'', so C''(c) is known at no extra evaluations. For
odd φ only half the lattice is summed. Where the lattice would be huge (|c|
small, √(q(1−c²)) tiny, q very large) the Gauss–Legendre rule is used.

Fixed points
------------
q*: safeguarded Newton on g(q) = V(q) − q with V'(q) from the same quadrature,
growing a bracket geometrically and bisecting (geometrically when the bracket
spans decades) whenever Newton leaves it.

c*: in the chaotic phase (χ_1 > 1) C is increasing and convex on [0, 1] with
C(1) = 1 (its Taylor coefficients at 0 are the squared Hermite coefficients
a_n² of φ(√q z), all ≥ 0: Mehler's formula), so c* is the unique fixed point in
[0, 1). The first 33 terms of that series are a lower bound whose error on
[0, c] is at most R·c³³ with R = E φ² − Σ a_n² (derivative: 33·R·c³²). Their
fixed point c_M ≤ c* is computed first; when the bound is below rounding, c_M
*is* c* (typically c* ≲ 0.35) and no two-dimensional integral is needed.
Otherwise Newton starts from c_M and increases monotonically to c*; with C''
from the lattice rule each step is a Halley step, and a step below 1e-7 is
final (c + δ and χ_c = C'(c) + C''δ then err by O(δ³) and O(δ²)). A bisection
guard catches rounding. In the ordered phase (χ_1 ≤ 1) c* = 1 and χ_c = χ_1.

Degenerate cases (one documented value each, flagged in ``status``)
------------------------------------------------------------------
* ``Q_ZERO``: σ_b = 0, φ(0) = 0 and V'(0⁺) ≤ 1 — q* = 0. Every other quantity is
  its limit q → 0⁺ (χ_1 = σ_w² E φ'(0^{sign z})², so relu gives σ_w²/2),
  c* = 1, χ_c = χ_1.
* ``Q_INFINITE``: V(q) > q for all q up to 1e200 — q* = +inf, χ_1 is its limit
  q → ∞, and c*, χ_c, ξ_q, ξ_c are NaN (no correlation map exists there).
* ``CRITICAL``: χ_c or χ_q equal to 1 within rounding — the depth scale is +inf.
* ``NOT_CONVERGED``: an iteration hit its cap; the last iterate is returned.
"""

from __future__ import annotations

import math
from enum import IntFlag
from types import SimpleNamespace

import numpy as np
from numba import njit, prange

from .activations import activation as _activation
from .quadrature import (
    BASE_BREAKS,
    GL_W,
    GL_X,
    LATTICE_Z,
    NGL,
    Q_TINY,
    ZMAX,
    gauss_weight,
    lattice_step,
    make_next_break,
)

__all__ = ["Status", "kernels"]

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
"""Work space of one point, in float64 values, on every target: the lattice rule is
used only when its tables fit (they do at every point of the default tanh grids;
the largest there need ≈ 7300), so every target takes the same path at every
point. On a GPU it is thread-local memory (64 KiB a thread)."""
Q_RTOL = 1e-15
MAXIT = 200


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


def _build(act):
    ev = act.eval3
    next_break = make_next_break(act.breaks, act.corners)
    kinks = act.kinks or (0.0,)
    jumps = act.slope_jumps or (0.0,)
    nkinks = len(act.kinks)
    has_gm = act.gauss_mean is not None
    gm = act.gauss_mean if has_gm else _no_gauss_mean
    has_kernel = act.kernel is not None
    ker = act.kernel if has_kernel else _no_kernel
    odd = act.odd
    max_nodes = NGL * (len(BASE_BREAKS) + 1 + 2 * len(act.breaks))  # panels of one graded rule
    scratch_size = max(SCRATCH, 3 * max_nodes + KMEHLER + 1)  # the lattice rule's tables, or mehler's
    strip = act.strip if (act.strip > 0.0 and not has_gm and not has_kernel and nkinks == 0) else 0.0

    @njit
    def moments(q):
        """(E φ, E φ', E φ², E φ'², dE φ²/dq) at h = √q z, z ~ N(0, 1) (q = 0: the limit q → 0⁺).

        The last is E φ'² + E φφ'' (Stein's lemma, Dirac masses at kinks
        included), unless its two terms cancel to less than half their size
        (erf at q ~ 1e200, where they are huge and nearly opposite): then it is
        E[φ φ' z]/√q, the q-derivative taken under the integral, which has no
        such cancellation (but loses accuracy at tiny q when φ(0) ≠ 0, where
        Stein's form is used).
        """
        sq = math.sqrt(q if q > 0.0 else Q_TINY)
        a = 1.0 / sq
        e0 = e1 = e2 = e3 = e4 = e5 = 0.0
        z = -ZMAX
        while z < ZMAX:
            b = next_break(z, a, 0.0, a, 0.0, 0.0)
            half = 0.5 * (b - z)
            mid = 0.5 * (b + z)
            for k in range(NGL):
                zk = mid + half * GL_X[k]
                w = half * GL_W[k] * gauss_weight(zk)
                p, dp, d2p = ev(sq * zk)
                e0 += w * p
                e1 += w * dp
                e2 += w * p * p
                e3 += w * dp * dp
                e4 += w * p * d2p
                e5 += w * p * dp * zk
            z = b
        for i in range(nkinks):
            pk = ev(kinks[i])[0]
            if pk != 0.0:
                e4 += pk * jumps[i] * gauss_weight(kinks[i] / sq) / sq
        stein = e3 + e4
        if abs(stein) < 0.5 * max(e3, abs(e4)):
            return e0, e1, e2, e3, e5 * a
        return e0, e1, e2, e3, stein

    @njit
    def mehler(q, sw, sb, e2, scr):
        """Fixed point of the truncated Mehler model of the correlation map.

        With h_n the normalised Hermite polynomials, φ(√q z) = Σ a_n h_n(z) and
        E φ(u₁)φ(u₂) = Σ a_n² cⁿ (Mehler's formula). The first ``KMEHLER + 1``
        terms are a lower bound on [0, 1], so the model's root c_M lies at or
        below c*. The neglected terms are at most R·c^{K+1} (and their
        derivative at most (K+1)·R·c^K) with R = E φ² − Σ_{n≤K} a_n² (``e2`` is
        E φ²). Returns (c_M, the model's slope C'(c_M), exact) where ``exact``
        says that these bounds are below rounding: then c_M is c* and the slope
        is χ_c. Otherwise c_M is a safe start for Newton on the exact map.
        ``scr`` is the point's work space (at least ``scratch_size`` values).
        """
        sq = math.sqrt(q if q > 0.0 else Q_TINY)
        a = 1.0 / sq
        # all nodes first (at most max_nodes), then the three-term recurrence runs
        # across them side by side, one degree at a time
        zs = scr[:max_nodes]
        h0 = scr[max_nodes : 2 * max_nodes]
        h1 = scr[2 * max_nodes : 3 * max_nodes]
        coef = scr[3 * max_nodes : 3 * max_nodes + KMEHLER + 1]
        nn = 0
        z = -ZMAX
        while z < ZMAX:
            b = next_break(z, a, 0.0, a, 0.0, 0.0)
            half = 0.5 * (b - z)
            mid = 0.5 * (b + z)
            for k in range(NGL):
                zk = mid + half * GL_X[k]
                zs[nn] = zk
                h0[nn] = half * GL_W[k] * gauss_weight(zk) * ev(sq * zk)[0]  # w·φ·h₀
                h1[nn] = h0[nn] * zk  # w·φ·h₁
                nn += 1
            z = b
        coef[0] = _sum4(h0, nn)
        coef[1] = _sum4(h1, nn)
        for n in range(1, KMEHLER):
            an = _HERM_A[n]
            bn = _HERM_B[n]
            for i in range(nn):
                h2 = zs[i] * h1[i] * an - h0[i] * bn
                h0[i] = h1[i]
                h1[i] = h2
            coef[n + 1] = _sum4(h1, nn)
        rest = e2
        for n in range(KMEHLER + 1):
            rest -= coef[n] * coef[n]
        rest = max(rest, 0.0) + 1e-15 * e2  # R, with room for the rounding in the difference
        w2 = sw * sw
        b2 = sb * sb
        c = 0.0
        dp = 0.0
        for _ in range(MAXIT):
            p = 0.0
            dp = 0.0
            for n in range(KMEHLER, 0, -1):
                p = p * c + coef[n] * coef[n]
                dp = dp * c + n * coef[n] * coef[n]
            p = p * c + coef[0] * coef[0]
            g = (w2 * p + b2) / q - c
            dg = w2 * dp / q - 1.0
            if not dg < 0.0:
                break
            step = -g / dg
            c += step
            if abs(step) <= 1e-15 or not 0.0 <= c < 1.0:
                break
        c = min(max(c, 0.0), 1.0 - 1e-12)
        ck = c**KMEHLER
        exact = w2 * rest * ck * c <= 1e-16 * q and w2 * rest * (KMEHLER + 1) * ck <= 1e-15 * q
        return c, w2 * dp / q, exact

    @njit
    def conditional_mean(m, s):
        """(E φ(m + sZ), E φ'(m + sZ)) for Z ~ N(0, 1), s ≥ 0."""
        if s <= 0.0:
            p, dp, _ = ev(m)
            return p, dp
        if has_gm:
            return gm(m, s)
        a = 1.0 / s
        b0 = -m / s
        e0 = e1 = 0.0
        z = -ZMAX
        while z < ZMAX:
            b = next_break(z, a, b0, a, b0, 0.0)
            half = 0.5 * (b - z)
            mid = 0.5 * (b + z)
            for k in range(NGL):
                zk = mid + half * GL_X[k]
                w = half * GL_W[k] * gauss_weight(zk)
                p, dp, _ = ev(m + s * zk)
                e0 += w * p
                e1 += w * dp
            z = b
        return e0, e1

    @njit
    def pair_lattice(sq, c, s, d1, m, n1, nk, scr):
        """The lattice rule for :func:`pair` (module notes): u₁ on the lattice
        i·Δ₁, u₂ on j·Δ₂ with Δ₂ = |c|Δ₁/m, so that every conditional mean
        c·u₁ is a lattice point of u₂ and E[φ(u₂) | u₁] is a discrete
        convolution of φ's samples with one table of Gaussian weights. The
        tables (3·nj + 3·ni + nw values, :func:`lattice_shape`) live in the
        work space ``scr``."""
        sign = 1.0 if c > 0.0 else -1.0
        d2 = abs(c) * d1 / m
        i0, ni, j0, nj, nw = lattice_shape(n1, nk, m)
        f2 = scr[:nj]
        g2 = scr[nj : 2 * nj]
        l2 = scr[2 * nj : 3 * nj]
        a0 = scr[3 * nj : 3 * nj + ni]
        a1 = scr[3 * nj + ni : 3 * nj + 2 * ni]
        a2 = scr[3 * nj + 2 * ni : 3 * nj + 3 * ni]
        gw = scr[3 * nj + 3 * ni : 3 * nj + 3 * ni + nw]
        for j in range(nj):
            f2[j], g2[j], l2[j] = ev(sign * ((j + j0) * d2))
        for i in range(ni):
            a0[i] = 0.0
            a1[i] = 0.0
            a2[i] = 0.0
        norm = d2 / (s * 2.5066282746310002)
        for k in range(nw):
            t = (k - nk) * d2 / s
            gw[k] = norm * math.exp(-0.5 * t * t)
        for k in range(nw):
            gk = gw[k]
            if m == 1:  # contiguous: vectorises
                for i in range(ni):
                    a0[i] += f2[i + k] * gk
                    a1[i] += g2[i + k] * gk
                    a2[i] += l2[i + k] * gk
            else:
                for i in range(ni):
                    j = i * m + k
                    a0[i] += f2[j] * gk
                    a1[i] += g2[j] * gk
                    a2[i] += l2[j] * gk
        w0 = d1 / (sq * 2.5066282746310002)
        n_acc = m_acc = l_acc = 0.0
        for i in range(ni):
            h = (i + i0) * d1
            t = h / sq
            w = w0 * math.exp(-0.5 * t * t)
            if odd and i > 0:
                w *= 2.0
            p, dp, d2p = ev(h)
            n_acc += w * p * a0[i]
            m_acc += w * dp * a1[i]
            l_acc += w * d2p * a2[i]
        return n_acc, m_acc, l_acc

    @njit
    def lattice_shape(n1, nk, m):
        """(i0, ni, j0, nj, nw): the lattice rule's outer nodes i0 … i0 + ni − 1, inner
        lattice indices j0 … j0 + nj − 1 and Gaussian table length nw."""
        # outer nodes i·Δ₁ for i in [−n1, n1]; for odd φ every integrand is even in
        # u₁, so i ≥ 0 suffices (i > 0 counted twice)
        i0 = 0 if odd else -n1
        ni = n1 - i0 + 1
        j0 = i0 * m - nk  # first inner lattice index used
        nj = (n1 * m + nk) - j0 + 1
        return i0, ni, j0, nj, 2 * nk + 1

    @njit
    def pair(q, c, scr):
        """(E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂), E φ''(u₁)φ''(u₂)), Var u_i = q,
        Corr(u₁, u₂) = c. The third is computed by the lattice rule only (NaN
        otherwise); it gives C''(c) = σ_w² q E φ''φ'' (Price's theorem). The
        lattice rule runs when its tables fit in :data:`SCRATCH` values of the
        work space ``scr``, the same decision on every target."""
        if has_kernel:
            kn, km = ker(q, c)
            return kn, km, math.nan
        sq = math.sqrt(q if q > 0.0 else Q_TINY)
        s = sq * math.sqrt(max(0.0, (1.0 - c) * (1.0 + c)))
        if strip > 0.0 and abs(c) >= LATTICE_C_MIN and s > 0.0:
            d1 = lattice_step(sq, strip)
            m = int(math.ceil(abs(c) * d1 / lattice_step(s, strip)))
            terms = (2.0 * LATTICE_Z * sq / d1 + 1.0) * (2.0 * LATTICE_Z * s * m / (abs(c) * d1) + 1.0)
            if m <= LATTICE_M_MAX and terms <= LATTICE_MAX_TERMS:
                n1 = int(math.ceil(LATTICE_Z * sq / d1))
                nk = int(math.ceil(LATTICE_Z * s / (abs(c) * d1 / m)))  # Δ₂ as in pair_lattice
                _, ni, _, nj, nw = lattice_shape(n1, nk, m)
                if 3 * nj + 3 * ni + nw <= SCRATCH:
                    return pair_lattice(sq, c, s, d1, m, n1, nk, scr)
        a1 = 1.0 / sq
        a2 = 1.0 / (sq * c) if sq * c != 0.0 else 0.0
        corner = s * abs(a2)  # width of the conditional mean's corners (quadrature.make_next_break)
        n_acc = m_acc = 0.0
        z = -ZMAX
        while z < ZMAX:
            b = next_break(z, a1, 0.0, a2, 0.0, corner)
            half = 0.5 * (b - z)
            mid = 0.5 * (b + z)
            for k in range(NGL):
                zk = mid + half * GL_X[k]
                w = half * GL_W[k] * gauss_weight(zk)
                p, dp, _ = ev(sq * zk)
                m0, m1 = conditional_mean(sq * c * zk, s)
                n_acc += w * p * m0
                m_acc += w * dp * m1
            z = b
        return n_acc, m_acc, math.nan

    @njit
    def length_map(q, sw, sb):
        """V(q) = σ_w² E φ(√q z)² + σ_b² (Poole et al. 2016, eq. 3); V(0) = σ_w² φ(0)² + σ_b² exactly."""
        if q == 0.0:
            p0 = ev(0.0)[0]
            return sw * sw * p0 * p0 + sb * sb
        return sw * sw * moments(q)[2] + sb * sb

    @njit
    def correlation_map(c, q, sw, sb, scr):
        """C(c) = (σ_w² E φ(u₁)φ(u₂) + σ_b²)/q (Poole et al. 2016, eq. 5); C(1) = V(q)/q."""
        return (sw * sw * pair(q, c, scr)[0] + sb * sb) / q

    @njit
    def q_star_moments(sw, sb):
        """(q*, status, moments) — the stable fixed point of V, its status bits (see
        module docstring) and :func:`moments` at q* (within 1e-15 relative) when
        Newton ended there, else NaNs."""
        none = (math.nan, math.nan, math.nan, math.nan, math.nan)
        w2 = sw * sw
        b2 = sb * sb
        p0 = ev(0.0)[0]
        v0 = w2 * p0 * p0 + b2
        if v0 == 0.0:
            m = moments(Q_TINY)
            if w2 * m[4] <= 1.0 + CRIT_TOL:  # V'(0⁺) ≤ 1: 0 is stable
                return 0.0, _Q_ZERO, none
            x = 1.0
        else:
            x = v0
        lo = 0.0
        hi = math.inf
        grow = 4.0
        for _ in range(MAXIT):
            m = moments(x)
            g = w2 * m[2] + b2 - x
            dg = w2 * m[4] - 1.0
            if g == 0.0:
                return x, 0, m
            if g > 0.0:
                lo = x
            else:
                hi = x
            xn = x - g / dg if dg != 0.0 else math.nan
            if hi == math.inf:
                if not xn > x:
                    # V' ≥ 1 here, so Newton points the wrong way: take the larger of
                    # the fixed-point step V(x) (≤ q* when V increases) and a
                    # geometric step (squared each time, to detect q* = ∞ fast)
                    xn = max(x + g, x * grow)
                    grow *= grow
                if xn > Q_MAX:
                    if x * 2.0 > Q_MAX:
                        return math.inf, _Q_INFINITE, none
                    xn = Q_MAX
            else:
                if not (lo < xn < hi):
                    if lo > 0.0 and hi > 4.0 * lo:
                        xn = math.sqrt(lo * hi)
                    else:
                        xn = 0.5 * (lo + hi)
                if abs(xn - x) <= Q_RTOL * x or hi - lo <= Q_RTOL * hi:
                    return xn, 0, m
            x = xn
        return x, _NOT_CONVERGED, none

    @njit
    def q_star(sw, sb):
        """Stable fixed point of V and its status bits (see module docstring)."""
        q, status, _ = q_star_moments(sw, sb)
        return q, status

    @njit
    def c_star(q, sw, sb, e_phi, e_dphi, e_phi2, chi1, scr):
        """(c*, χ_c, status) at q* > 0 (see module docstring); ``scr``: work space."""
        w2 = sw * sw
        b2 = sb * sb
        if chi1 <= 1.0:
            return 1.0, chi1, 0
        if w2 * e_phi * e_phi + b2 <= 0.0:  # C(0) = 0: odd φ without bias
            return 0.0, w2 * e_dphi * e_dphi, 0
        lo = 0.0  # C(lo) > lo
        hi = 1.0  # C(hi) ≤ hi
        c, slope, exact = mehler(q, sw, sb, e_phi2, scr)
        if exact:
            return c, slope, 0
        for _ in range(MAXIT):
            n, mm, ll = pair(q, c, scr)
            g = (w2 * n + b2) / q - c
            slope = w2 * mm
            curv = w2 * q * ll  # C''(c), NaN unless the lattice rule ran
            if g > 0.0:
                lo = c
            else:
                hi = c
            step = -g / (slope - 1.0) if slope < 1.0 else math.nan
            if abs(step) <= C_TOL:
                # quadratic convergence: c + step is exact to ~step²; χ_c at c differs
                # from χ_c at c* by C''·step, which is large where C'' is (kinked φ
                # near c = 1): with C'' known it is added, otherwise χ_c is C' at c*
                cn = min(max(c + step, lo), hi)
                if curv >= 0.0:
                    return cn, slope + curv * (cn - c), 0
                return cn, w2 * pair(q, cn, scr)[1], 0
            if curv >= 0.0 and slope < 1.0:
                # Halley: with C'' the second-order step δ = s + C''s²/(2(1 − C'));
                # once s is small, c + δ and C'(c) + C''δ err by O(s³) and O(s²)
                step += 0.5 * curv * step * step / (1.0 - slope)
                if abs(step) <= C_ACCEPT and curv * abs(step) <= 1e-3 * (1.0 - slope):
                    cn = c + step
                    if lo <= cn <= hi:
                        return cn, slope + curv * step, 0
            cn = c + step
            if not (lo < cn < hi):
                cn = 0.5 * (lo + hi)
            if hi - lo <= 1e-16:
                return cn, slope, 0
            c = cn
        return c, slope, _NOT_CONVERGED

    @njit
    def point(sw, sb, scr):
        """(q*, χ_1, c*, χ_c, χ_q, ξ_q, ξ_c, status) at one (σ_w, σ_b); ``scr`` is a
        work space of ``scratch_size`` float64 values (its contents are not used)."""
        q, status, m = q_star_moments(sw, sb)
        w2 = sw * sw
        if q == math.inf:
            m = moments(Q_MAX)
            return q, w2 * m[3], math.nan, math.nan, math.nan, math.nan, math.nan, status
        if math.isnan(m[0]):
            m = moments(q)
        chi1 = w2 * m[3]
        chiq = w2 * m[4]
        if q == 0.0:
            c, chic = 1.0, chi1
        else:
            c, chic, st = c_star(q, sw, sb, m[0], m[1], m[2], chi1, scr)
            status |= st
        xiq = depth_scale(chiq)
        xic = depth_scale(chic)
        if xiq == math.inf or xic == math.inf:
            status |= _CRITICAL
        return q, chi1, c, chic, chiq, xiq, xic, status

    @njit
    def chi1_at(sw, sb):
        q, status = q_star(sw, sb)
        return sw * sw * moments(min(q, Q_MAX))[3], status

    @njit
    def edge(sb, lo, hi, nscan):
        """σ_w in [lo, hi] with χ_1(σ_w, σ_b) = 1: first upward crossing on a log scan, then Illinois."""
        r = (hi / lo) ** (1.0 / (nscan - 1))
        a = lo
        fa = chi1_at(a, sb)[0] - 1.0
        if fa >= 0.0:
            return math.nan, _NO_EDGE
        b = a
        fb = fa
        found = False
        for i in range(1, nscan):
            b = lo * r**i if i < nscan - 1 else hi
            fb = chi1_at(b, sb)[0] - 1.0
            if fb >= 0.0:
                found = True
                break
            a = b
            fa = fb
        if not found:
            return math.nan, _NO_EDGE
        side = 0
        for _ in range(MAXIT):
            x = b - fb * (b - a) / (fb - fa)
            if not (a < x < b):
                x = 0.5 * (a + b)
            fx, _ = chi1_at(x, sb)
            fx -= 1.0
            if fx >= 0.0:
                b, fb = x, fx
                if side == -1:
                    fa *= 0.5
                side = -1
            else:
                a, fa = x, fx
                if side == 1:
                    fb *= 0.5
                side = 1
            if b - a <= 1e-15 * b or fx == 0.0:
                break
        return b, chi1_at(b, sb)[1]

    def grid_driver(sw, sb, order, nchunks, q_out, chi1_out, c_out, chic_out, chiq_out, xiq_out, xic_out, st_out):
        nb = sb.size
        for t in prange(nchunks):
            scr = np.empty(scratch_size)
            for p in range(t * order.size // nchunks, (t + 1) * order.size // nchunks):
                idx = order[p]
                i = idx // nb
                j = idx - i * nb
                r = point(sw[i], sb[j], scr)
                store_point(r, i, j, q_out, chi1_out, c_out, chic_out, chiq_out, xiq_out, xic_out, st_out)

    def edge_driver(sb, lo, hi, nscan, out, st_out):
        for j in prange(sb.size):
            r = edge(sb[j], lo, hi, nscan)
            out[j] = r[0]
            st_out[j] = r[1]

    def map_driver(kind, x, q, sw, sb, out):
        scr = np.empty(scratch_size)
        for i in range(x.size):
            if kind == 0:
                out[i] = length_map(x[i], sw[i], sb[i])
            else:
                qi = q[i]
                if qi < 0.0:  # q not given: use q*
                    qi = q_star(sw[i], sb[i])[0]
                out[i] = correlation_map(x[i], qi, sw[i], sb[i], scr) if 0.0 < qi < math.inf else math.nan

    return SimpleNamespace(
        activation=act,
        moments=moments,
        mehler=mehler,
        conditional_mean=conditional_mean,
        pair=pair,
        length_map=length_map,
        correlation_map=correlation_map,
        q_star=q_star,
        point=point,
        edge=edge,
        scratch_size=scratch_size,
        drivers={"grid_driver": grid_driver, "edge_driver": edge_driver, "map_driver": map_driver},
    )


@njit(cache=True)
def _no_gauss_mean(m, s):
    return 0.0, 0.0


@njit(cache=True)
def _no_kernel(q, c):
    return 0.0, 0.0


_CACHE: dict = {}


def kernels(act, target="cpu"):
    """Compiled mean-field kernels for an activation (built once per process and
    :attr:`~fastprop.Activation.fingerprint`: never shared by different functions of one name).

    ``target`` selects how the drivers are compiled: ``"cpu"`` (serial njit) or
    ``"parallel"`` (njit with ``prange``). The scalar functions are shared.
    """
    act = _activation(act)
    key = (act.fingerprint, target)
    ns = _CACHE.get(key)
    if ns is None:
        base = _CACHE.get((act.fingerprint, None))
        if base is None:
            base = _CACHE[(act.fingerprint, None)] = _build(act)
        parallel = target == "parallel"
        drivers = {k: njit(parallel=parallel)(fn) for k, fn in base.drivers.items()}
        ns = SimpleNamespace(**{**vars(base), **drivers})
        _CACHE[key] = ns
    return ns

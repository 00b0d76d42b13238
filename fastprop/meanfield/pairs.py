"""Two-dimensional Gaussian integrals of φ (the pair integrals) and the correlation map C(c).

A template (:mod:`fastprop.run.compile`): compiled per activation by
:func:`fastprop.meanfield.kernels`, which binds the names below; not imported directly.
"""

import math

from numba import njit

from fastprop.meanfield.common import LATTICE_C_MIN, LATTICE_M_MAX, LATTICE_MAX_TERMS, SCRATCH
from fastprop.meanfield.interpolants import pair_table
from fastprop.quadrature import GL_W, GL_X, LATTICE_Z, NGL, Q_TINY, ZMAX, gauss_weight, lattice_step
from fastprop.run.compile import bound

ev, next_break, gm, ker, HAS_GM, HAS_KERNEL, ODD, STRIP, CACHE = bound(
    __name__, "ev", "next_break", "gm", "ker", "HAS_GM", "HAS_KERNEL", "ODD", "STRIP", "CACHE"
)


@njit(cache=CACHE)
def conditional_mean(m, s):
    """(E φ(m + sZ), E φ'(m + sZ)) for Z ~ N(0, 1), s ≥ 0."""
    if s <= 0.0:
        p, dp, _ = ev(m)
        return p, dp
    if HAS_GM:
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


@njit(cache=CACHE)
def lattice_shape(n1, nk, m):
    """(i0, ni, j0, nj, nw): the lattice rule's outer nodes i0 … i0 + ni − 1, inner
    lattice indices j0 … j0 + nj − 1 and Gaussian table length nw."""
    # outer nodes i·Δ₁ for i in [−n1, n1]; for odd φ every integrand is even in
    # u₁, so i ≥ 0 suffices (i > 0 counted twice)
    i0 = 0 if ODD else -n1
    ni = n1 - i0 + 1
    j0 = i0 * m - nk  # first inner lattice index used
    nj = (n1 * m + nk) - j0 + 1
    return i0, ni, j0, nj, 2 * nk + 1


@njit(cache=CACHE)
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
        if ODD and i > 0:
            w *= 2.0
        p, dp, d2p = ev(h)
        n_acc += w * p * a0[i]
        m_acc += w * dp * a1[i]
        l_acc += w * d2p * a2[i]
    return n_acc, m_acc, l_acc


@njit(cache=CACHE)
def pair(q, c, scr):
    """(E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂), E φ''(u₁)φ''(u₂)), Var u_i = q,
    Corr(u₁, u₂) = c. The third is computed by the lattice rule only (NaN
    otherwise); it gives C''(c) = σ_w² q E φ''φ'' (Price's theorem). The
    lattice rule runs when its tables fit in :data:`SCRATCH` values of the
    work space ``scr``, the same decision on every target."""
    if HAS_KERNEL:
        kn, km = ker(q, c)
        return kn, km, math.nan
    sq = math.sqrt(q if q > 0.0 else Q_TINY)
    s = sq * math.sqrt(max(0.0, (1.0 - c) * (1.0 + c)))
    if STRIP > 0.0 and abs(c) >= LATTICE_C_MIN and s > 0.0:
        ok, r = lattice_pair(sq, c, s, scr)
        if ok:
            return r
    n_acc, m_acc = pair_gauss_legendre(sq, sq, c, s)
    return n_acc, m_acc, math.nan


@njit(cache=CACHE)
def lattice_pair(sa, beta, s, scr):
    """(ok, :func:`pair_lattice`'s three integrals) for u_a = sa·z and u_b | u_a ~ N(β u_a, s²)
    (equal variances: β = c), where the rule's steps and tables fit; ok is False elsewhere.
    E[φ(u_b) | u_a] = E φ(β u_a + sZ) is analytic for |Im u_a| < STRIP/|β|, which sets Δ₁."""
    d1 = lattice_step(sa, STRIP / max(1.0, abs(beta)))
    m = int(math.ceil(abs(beta) * d1 / lattice_step(s, STRIP)))
    terms = (2.0 * LATTICE_Z * sa / d1 + 1.0) * (2.0 * LATTICE_Z * s * m / (abs(beta) * d1) + 1.0)
    if m <= LATTICE_M_MAX and terms <= LATTICE_MAX_TERMS:
        n1 = int(math.ceil(LATTICE_Z * sa / d1))
        nk = int(math.ceil(LATTICE_Z * s / (abs(beta) * d1 / m)))  # Δ₂ as in pair_lattice
        _, ni, _, nj, nw = lattice_shape(n1, nk, m)
        if 3 * nj + 3 * ni + nw <= SCRATCH:
            return True, pair_lattice(sa, beta, s, d1, m, n1, nk, scr)
    return False, (math.nan, math.nan, math.nan)


@njit(cache=CACHE)
def pair_gauss_legendre(sa, sb, c, s):
    """(E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂)) with u₁ = sa·z, u₂ = sb(c z + √(1 − c²) Z), s = sb √(1 − c²):
    the graded Gauss–Legendre rule over z of φ(u₁) times the conditional mean E[φ(u₂) | z],
    split at the kinks of both (any variances; :func:`pair` uses sa = sb)."""
    a1 = 1.0 / sa
    a2 = 1.0 / (sb * c) if sb * c != 0.0 else 0.0
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
            p, dp, _ = ev(sa * zk)
            m0, m1 = conditional_mean(sb * c * zk, s)
            n_acc += w * p * m0
            m_acc += w * dp * m1
        z = b
    return n_acc, m_acc


@njit(cache=CACHE)
def correlation_map(c, q, sw, sb, scr, tab):
    """C(c) = (σ_w² E φ(u₁)φ(u₂) + σ_b²)/q (Poole et al. 2016, eq. 5); C(1) = V(q)/q.
    The pair integral comes from the tables ``tab`` where a certified box covers (q, c)."""
    st, n, _ = pair_table(q, c, tab[2], tab[3])
    if st != 1:
        n = pair(q, c, scr)[0]
    return (sw * sw * n + sb * sb) / q

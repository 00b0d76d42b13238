"""The NNGP and NTK recursions for a batch of inputs (compiled per activation).

Entry (a, b) of K^ℓ depends only on entry (a, b) of K^{ℓ−1} and on the diagonals K^{ℓ−1}_aa,
K^{ℓ−1}_bb, which follow each input's own length map. So the diagonal goes first, layer by layer
(:func:`inputs`, :func:`diagonal_step`: n values a layer), and then every pair runs through all the
layers on its own (:func:`pairs_through_depth`): no n × n matrix is held but the recorded ones, and
any block of rows can be computed anywhere (threads, a GPU, Dask tasks) with the same result.

A template (:mod:`fastprop.run.compile`): compiled per activation and target by
:func:`fastprop.kernels.nngp.layer_kernels`, which binds the names below; not imported directly.

For a pair of inputs with variances q_a, q_b and correlation c (from the previous layer's
kernel) a layer needs E φ(u_a)φ(u_b) and E φ'(u_a)φ'(u_b), (u_a, u_b) centred Gaussian.
Each pair takes the first of:

* **Mehler's series** (:func:`series`), with φ(√q z) = Σ a_n(q) h_n(z) in normalised Hermite
  polynomials, E φ(u_a)φ(u_b) = Σ a_n(q_a) a_n(q_b) cⁿ and, with b_n(q) = √(n+1) a_{n+1}(q)/√q
  the coefficients of φ'(√q z), E φ'(u_a)φ'(u_b) = Σ b_n(q_a) b_n(q_b) cⁿ. It is used where
  the Cauchy–Schwarz bound of the truncated tail, |c|^{K+1} √(R_a R_b) with
  R = E φ² − Σ_{n≤K} a_n² (and likewise for φ'), is below ``SERIES_TOL`` of √(E φ²_a E φ²_b);
* **the exact pair integral** (:func:`pair_integrals`): positively homogeneous φ reduce to
  unit variances, equal variances go to the mean-field engine's pair integral (lattice rule,
  closed forms), and unequal ones to the same lattice rule (analytic φ: u_b given u_a is
  N(β u_a, s²), β = c √(q_b/q_a), s² = q_b(1 − c²), and the lattice makes every β u_a a node of
  u_b) or else a graded Gauss–Legendre rule over u_a of φ(u_a) times the conditional mean
  E[φ(u_b) | u_a], kink-aware in both.
"""

import math

import numpy as np
from numba import njit, prange

from fastprop.meanfield.common import KMEHLER, LATTICE_C_MIN
from fastprop.quadrature import Q_TINY
from fastprop.run.compile import bound

ev, pair, lattice_pair, pair_gauss_legendre, moments_at, hermite_coefficients, hermite_table, HOMOGENEOUS, \
    STRIP, PARALLEL, SCRATCH_SIZE, CACHE = bound(
        __name__, "ev", "pair", "lattice_pair", "pair_gauss_legendre", "moments_at", "hermite_coefficients",
        "hermite_table", "HOMOGENEOUS", "STRIP", "PARALLEL", "SCRATCH_SIZE", "CACHE",
    )  # fmt: skip

LATTICE_SWAP_C = 0.8
"""Unequal variances: the lattice rule tries the smaller variance as the outer variable first for
|c| below this, the larger one above (the cheaper order, measured for tanh)."""
SERIES_TOL = 1e-13
"""The Mehler series is used where its tail bound is below this, relative to √(E φ²_a E φ²_b)
(and likewise for φ')."""
FLOOR = 1e-14
"""R = E φ² − Σ a_n² is never taken below this times E φ² (its rounding and table error)."""
NF = 6 + KMEHLER + 1
"""Per-input values: E φ, E φ', E φ², E φ'², R, R', then a_0 … a_K."""


@njit(cache=CACHE)
def input_values(q, tab, scr, out):
    """Fill ``out`` (``NF`` values) for an input of variance q: E φ, E φ', E φ², E φ'², the
    series' tail masses R and R', and the Hermite coefficients a_0 … a_K of φ(√q z) (from the
    tables where they cover q, else by quadrature)."""
    ok, m = moments_at(q, tab, True)
    for f in range(4):
        out[f] = m[f]
    coef = out[6:]
    if not hermite_table(q, tab[0], tab[1], coef, scr):
        hermite_coefficients(q, scr, coef)
    s0 = 0.0
    s1 = 0.0
    for n in range(KMEHLER + 1):
        s0 += coef[n] * coef[n]
    sq = math.sqrt(q) if q > 0.0 else 0.0
    for n in range(KMEHLER):
        b = math.sqrt(n + 1.0) * coef[n + 1] / sq if sq > 0.0 else 0.0
        s1 += b * b
    out[4] = max(m[2] - s0, FLOOR * m[2])
    out[5] = max(m[3] - s1, FLOOR * m[3])


@njit(cache=CACHE)
def series(qa, qb, c, va, vb, ntk):
    """(ok₀, E φφ, ok₁, E φ'φ') by Mehler's series from the per-input values ``va``, ``vb``
    (:func:`input_values`); ok is False where that series' tail bound is above ``SERIES_TOL``
    (ok₁ is False when not ``ntk``)."""
    ac = abs(c)
    if not ac < 1.0 or qa <= 0.0 or qb <= 0.0:
        return False, 0.0, False, 0.0
    cp = ac**KMEHLER
    # (square roots taken apart: products of two kernel-sized values overflow past 1.3e154)
    ok0 = cp * ac * math.sqrt(va[4]) * math.sqrt(vb[4]) <= SERIES_TOL * math.sqrt(va[2]) * math.sqrt(vb[2])
    ok1 = ntk and cp * math.sqrt(va[5]) * math.sqrt(vb[5]) <= SERIES_TOL * math.sqrt(va[3]) * math.sqrt(vb[3])
    n0 = 0.0
    n1 = 0.0
    if ok0:
        for n in range(KMEHLER, -1, -1):  # Horner in c
            n0 = n0 * c + va[6 + n] * vb[6 + n]
    if ok1:
        for n in range(KMEHLER - 1, -1, -1):
            n1 = n1 * c + (n + 1.0) * va[7 + n] * vb[7 + n]
        n1 /= math.sqrt(qa) * math.sqrt(qb)  # (not √(qa qb): it under- or overflows)
    return ok0, n0, ok1, n1


@njit(cache=CACHE)
def pair_integrals(qa, qb, c, va, vb, scr):
    """(E φ(u_a)φ(u_b), E φ'(u_a)φ'(u_b)) exactly, Var u_a = qa, Var u_b = qb, Corr = c."""
    if qa <= 0.0 or qb <= 0.0:  # a degenerate input: u ≡ 0, so the expectation factorises
        pa, dpa, _ = ev(0.0)
        pb, dpb, _ = ev(0.0)
        if qa <= 0.0 and qb <= 0.0:
            return pa * pb, dpa * dpb
        if qa <= 0.0:
            return pa * vb[0], dpa * vb[1]
        return va[0] * pb, va[1] * dpb
    if HOMOGENEOUS:  # φ(√q z) = √q φ(z), φ'(√q z) = φ'(z)
        r = pair(1.0, c, scr)
        return math.sqrt(qa) * math.sqrt(qb) * r[0], r[1]
    if qa == qb:
        r = pair(qa, c, scr)
        return r[0], r[1]
    sa = math.sqrt(qa if qa > 0.0 else Q_TINY)
    sb = math.sqrt(qb if qb > 0.0 else Q_TINY)
    root = math.sqrt(max(0.0, (1.0 - c) * (1.0 + c)))
    s = sb * root
    if STRIP > 0.0 and abs(c) >= LATTICE_C_MIN and root > 0.0:
        # the mean-field engine's lattice rule (analytic φ) with β = c √(q_2/q_1) in place of c:
        # u_2 | u_1 ~ N(β u_1, s²). The integrals are symmetric in the two inputs; whether the
        # rule fits in its tables, and what it costs, depends on the order: measured, the smaller
        # variance outside is cheaper for |c| < 0.8 and the larger beyond. That order first, then
        # the other (a choice that depends on {q_a, q_b} only)
        small_out = (qa <= qb) == (abs(c) < LATTICE_SWAP_C)
        s1, s2 = (sa, sb) if small_out else (sb, sa)
        for _ in range(2):
            ok, r = lattice_pair(s1, c * s2 / s1, s2 * root, scr)
            if ok:
                return r[0], r[1]
            s1, s2 = s2, s1
    return pair_gauss_legendre(sa, sb, c, s)


@njit(cache=CACHE)
def layer_values(kv, tv, qa, qb, va, vb, sw2, sb2, ntk, scr, exact_ok):
    """(ok, by_series, K', Θ') of a pair at the next layer from its current K = kv, Θ = tv and the
    two inputs' variances and values: K' = σ_w² E φφ + σ_b², Θ' = K' + σ_w² E φ'φ' Θ (Θ' = tv when
    not ``ntk``). Each expectation by Mehler's series where certified, else by the exact integral
    (so K' does not depend on whether the NTK is asked for); without ``exact_ok`` a pair the
    series does not certify returns ok = False (a GPU thread, which has no room for the exact rule)."""
    den = math.sqrt(qa) * math.sqrt(qb)
    c = kv / den if den > 0.0 else 0.0
    c = min(1.0, max(-1.0, c))
    ok0, e0, ok1, e1 = series(qa, qb, c, va, vb, ntk)
    by_series = ok0 and (ok1 or not ntk)
    if not by_series:
        if not exact_ok:
            return False, False, 0.0, 0.0
        x0, x1 = pair_integrals(qa, qb, c, va, vb, scr)
        if not ok0:
            e0 = x0
        if not ok1:
            e1 = x1
    k = sw2 * e0 + sb2
    t = k + sw2 * e1 * tv if ntk else tv
    return True, by_series, k, t


@njit(parallel=PARALLEL, cache=CACHE)
def inputs(q, tab, vals):
    """vals[a] = :func:`input_values` at q[a] for every input."""
    for a in prange(q.size):
        scr = np.empty(SCRATCH_SIZE)
        input_values(q[a], tab, scr, vals[a])


@njit(cache=CACHE)
def diagonal_step(vals, sw2, sb2, ntk, q, t):
    """One layer of the diagonal, in place: K_aa ← σ_w² E φ² + σ_b² (the length map) and
    Θ_aa ← K_aa + σ_w² E φ'² Θ_aa, from the per-input values of the previous layer."""
    for a in range(q.size):
        kv = sw2 * vals[a, 2] + sb2
        q[a] = kv
        if ntk:
            t[a] = kv + sw2 * vals[a, 3] * t[a]


TILE = 32
"""Pairs of a row that go through the layers together (their per-input values stay in cache)."""


@njit(cache=CACHE)
def pairs_through_depth(k0row, qs, vals, sw2, sb2, ntk, rec, a, b0, b1, scr, kv, tv, orow, out_k, out_t, exact):
    """Entries (a, b) for b0 ≤ b < b1 (all < a, or all > a) of K^ℓ and Θ^ℓ for ℓ = 1 … depth,
    from row a of K⁰ (``k0row``), written to out[j, orow, b] at the recorded layers (``rec`` as
    slots: rec[ℓ] ≥ 0 is where layer ℓ goes); exact[ℓ] counts the pairs that took the exact
    integral at layer ℓ. An entry needs only its own previous value and the two diagonals
    (``qs[ℓ]``, ``vals[ℓ]``: the diagonal of K^ℓ and its per-input values), so pairs are
    independent; ``kv``, ``tv`` hold the tile's current values. A pair is always evaluated with
    the larger index first, so (a, b) and (b, a) are the same numbers."""
    upper = b0 > a
    for b in range(b0, b1):
        kv[b - b0] = k0row[b]
        tv[b - b0] = k0row[b]
    for ell in range(1, qs.shape[0]):
        qa = qs[ell - 1, a]
        va = vals[ell - 1, a]
        j = rec[ell]
        for b in range(b0, b1):
            if upper:
                _, by_series, k, t = layer_values(kv[b - b0], tv[b - b0], qs[ell - 1, b], qa, vals[ell - 1, b], va,
                                                  sw2, sb2, ntk, scr, True)  # fmt: skip
            else:
                _, by_series, k, t = layer_values(kv[b - b0], tv[b - b0], qa, qs[ell - 1, b], va, vals[ell - 1, b],
                                                  sw2, sb2, ntk, scr, True)  # fmt: skip
            if not by_series:
                exact[ell] += 1
            kv[b - b0] = k
            tv[b - b0] = t
            if j >= 0:
                out_k[j, orow, b] = k
                if ntk:
                    out_t[j, orow, b] = t


@njit(cache=CACHE)
def pair_through_depth(k0, qs, vals, sw2, sb2, ntk, rec, a, b, scr, exact_ok, out_k, out_t, exact):
    """Entry (a, b), b < a, alone through every layer, like :func:`pairs_through_depth` (written to
    out[j, a, b]); without ``exact_ok`` it stops at the first layer the series does not certify
    and returns False."""
    kv = k0
    tv = k0
    for ell in range(1, qs.shape[0]):
        ok, by_series, kv, tv = layer_values(kv, tv, qs[ell - 1, a], qs[ell - 1, b], vals[ell - 1, a],
                                             vals[ell - 1, b], sw2, sb2, ntk, scr, exact_ok)  # fmt: skip
        if not ok:
            return False
        if not by_series:
            exact[ell] += 1
        j = rec[ell]
        if j >= 0:
            out_k[j, a, b] = kv
            if ntk:
                out_t[j, a, b] = tv
    return True


@njit(parallel=PARALLEL, cache=CACHE)
def pair_list(k0, qs, vals, sw2, sb2, ntk, rec, a_idx, b_idx, out_k, out_t, exact_count):
    """The entries (a_idx[i], b_idx[i]), b < a, through every layer (:func:`pair_through_depth`,
    the exact rule where the series is not certified): the pairs a GPU left to the CPU.
    ``exact_count[ℓ]``: how many took the exact integral at layer ℓ."""
    nt = min(a_idx.size, 64)
    counts = np.zeros((nt, exact_count.size), dtype=np.int64)
    for t in prange(nt):
        scr = np.empty(SCRATCH_SIZE)
        for i in range(t, a_idx.size, nt):
            pair_through_depth(k0[a_idx[i], b_idx[i]], qs, vals, sw2, sb2, ntk, rec, a_idx[i], b_idx[i], scr, True,
                               out_k, out_t, counts[t])  # fmt: skip
    for t in range(nt):
        for ell in range(exact_count.size):
            exact_count[ell] += counts[t, ell]


@njit(parallel=PARALLEL, cache=CACHE)
def pairs(k0, qs, vals, sw2, sb2, ntk, rec, rows, row0, full, out_k, out_t, exact_count):
    """The off-diagonal entries of rows ``rows`` through every layer (:func:`pairs_through_depth`,
    ``TILE`` entries at a time): (a, b < a), and with ``full`` also (a, b > a). Row a of K⁰ is
    k0[a − row0] and goes to out[j, a − row0]. ``exact_count[i, ℓ]``: how many pairs of row
    rows[i] took the exact integral at layer ℓ."""
    n = qs.shape[1]
    for i in prange(rows.size):
        a = rows[i]
        orow = a - row0
        scr = np.empty(SCRATCH_SIZE)
        kv = np.empty(TILE)
        tv = np.empty(TILE)
        exact_count[i, :] = 0
        for b0 in range(0, a, TILE):
            pairs_through_depth(k0[orow], qs, vals, sw2, sb2, ntk, rec, a, b0, min(a, b0 + TILE), scr, kv, tv, orow,
                                out_k, out_t, exact_count[i])  # fmt: skip
        if full:
            for b0 in range(a + 1, n, TILE):
                pairs_through_depth(k0[orow], qs, vals, sw2, sb2, ntk, rec, a, b0, min(n, b0 + TILE), scr, kv, tv,
                                    orow, out_k, out_t, exact_count[i])  # fmt: skip


@njit(parallel=PARALLEL, cache=CACHE)
def mirror_lower(out):
    """out[j, b, a] = out[j, a, b] for b < a (the upper triangle from the lower one)."""
    n = out.shape[1]
    for b in prange(n):
        for j in range(out.shape[0]):
            for a in range(b + 1, n):
                out[j, b, a] = out[j, a, b]

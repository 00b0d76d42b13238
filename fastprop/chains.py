"""Monte-Carlo chains: finite-width random networks and the law of ‖x_ℓ‖.

A chain is one random network of width d and depth L applied to x₀ (DESIGN §1):
``h_ℓ = W_ℓ x_{ℓ-1} + b_ℓ``, ``x_ℓ = φ(h_ℓ)``, with ``W_ℓ`` Gaussian
(entries N(0, σ_w²/d)) or ``σ_w`` times a Haar-orthogonal matrix, and
``b_ℓ ~ N(0, σ_b² I)``. Each chain draws its numbers from its own counter-based
stream (:mod:`fastprop.rng`), so a chain's result depends only on (seed, chain
index, parameters).

Samplers (all exact in law for the sequence of norms ‖x_ℓ‖)
------------------------------------------------------------
``dense``
    Draws every ``W_ℓ`` entry by entry (d² normals a layer, row-major; the
    orthogonal one by Gram–Schmidt of a Gaussian matrix's columns, which is
    Haar: Mezzadri 2007), then d bias normals when σ_b > 0. The reference path.
``invariant``
    Rotation invariance: given x, ``W x`` is N(0, σ_w²‖x‖²/d · I) for Gaussian
    weights and uniform on the sphere of radius σ_w‖x‖ for orthogonal ones, so
    ``h_ℓ`` is drawn from d normals (2d for orthogonal weights with bias) and
    only ‖x_ℓ‖ is carried. For positively homogeneous φ (linear, relu,
    leaky_relu, abs) with σ_b = 0 and Gaussian weights the layer gain is a
    chi-square factor: ``‖x_ℓ‖² / ‖x_{ℓ-1}‖² = (σ_w²/d)(φ(1)² χ²_K + φ(−1)² χ²_{d−K})``
    with K ~ Binomial(d, ½) (K = d when φ(1)² = φ(−1)²), a handful of numbers a
    layer whatever d; for orthogonal weights and |φ| = |h| the gain is σ_w²
    exactly.
``auto``
    ``invariant``, the fastest exact sampler for every supported request.

Depth without overflow: for positively homogeneous φ with σ_b = 0 the chain
carries log‖x_ℓ‖ and a unit direction, so depth 10⁴ and beyond neither
overflows nor underflows; a chain whose signal becomes exactly 0 (every unit of
a ReLU layer inactive) stays 0. Elsewhere the dense sampler propagates x itself
and the invariant sampler carries log‖x_ℓ‖ (and ‖x_ℓ‖² only while it is a
representable float), so both overflow exactly where ‖x_ℓ‖ itself leaves the
float range (≈ 1.8e308), not where its square does; norms that overflow are
counted as infinite and a NaN (e.g. φ(−∞) = NaN for gelu) as undefined, never
as a zero norm.

RMS normalisation (``rms_norm=True``): after layer ℓ, ``x_ℓ ← x_ℓ / ‖x_ℓ‖_rms``
with ``‖x‖_rms = ‖x‖/√d`` (the remedy for deep linear nets in the thesis
chapter behind this package). The recorded ``‖x_ℓ‖`` is then the norm *before*
that normalisation, i.e. the gain of layer ℓ on an input of norm √d.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import exactsum, rng

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
def _log_norm(x, d):
    """log‖x‖ without spurious overflow/underflow (−inf for 0, NaN if x has NaN)."""
    s = 0.0
    for i in range(d):
        s += x[i] * x[i]
    if N2_MIN < s < N2_MAX:
        return 0.5 * math.log(s)
    m = 0.0
    for i in range(d):
        a = abs(x[i])
        if a != a:
            return math.nan
        m = max(m, a)
    if m == 0.0:
        return -math.inf
    if m == math.inf:
        return math.inf
    t = 0.0
    for i in range(d):
        t += (x[i] / m) ** 2
    return math.log(m) + 0.5 * math.log(t)


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


def _build_chain(act, dtype):
    """The scalar chain function for an activation, compiled by whichever target calls it.

    ``dtype`` (float64 or float32) is that of the working vectors the caller
    passes (x, h and the normals z); the matrix–vector product accumulates in it.
    """
    ev = act.eval3
    F = np.dtype(dtype).type

    @njit
    def phi(h):
        return ev(h)[0]

    @njit
    def dense_preact(st, z, q, x, h, d, sw, sb, ortho):
        """h = W x + b for one freshly drawn layer (b only if σ_b > 0)."""
        nb = d if sb > 0.0 else 0
        rng.fill_normals(st, z, d * d + nb)
        if ortho:
            _haar_apply(z, q, x, h, d)
            for i in range(d):
                h[i] *= sw
        else:
            c = F(sw / math.sqrt(d))
            for i in range(d):
                acc = F(0.0)
                for j in range(d):
                    acc += z[i * d + j] * x[j]
                h[i] = c * acc
        for i in range(nb):
            h[i] += sb * z[d * d + i]

    @njit
    def chain(st, out, col, rec, L, d, sw, sb, x0, method, ortho, tracked, rms, pos_sq, neg_sq, z, q, x, h):
        half_log_d = 0.5 * math.log(d)
        nrec = rec.shape[0]
        j = 0  # the next recorded layer is rec[j] (rec is increasing); out[j, col] holds it
        if tracked:
            # positively homogeneous φ, σ_b = 0: carry log‖x‖ and (dense) a unit direction
            logn = _log_norm(x0, d)
            if logn > -math.inf:
                r = math.exp(-logn)
                for i in range(d):
                    x[i] = x0[i] * r
            if rec[0] == 0:
                out[0, col] = logn
                j = 1
            for ell in range(1, L + 1):
                if logn == -math.inf:
                    for m in range(j, nrec):
                        out[m, col] = -math.inf
                    return
                if method == DENSE:
                    dense_preact(st, z, q, x, h, d, sw, 0.0, ortho)
                    r2 = 0.0
                    for i in range(d):
                        h[i] = phi(h[i])
                        r2 += h[i] * h[i]
                    if r2 > 0.0:
                        r = 1.0 / math.sqrt(r2)
                        for i in range(d):
                            x[i] = h[i] * r
                elif ortho and pos_sq == neg_sq:
                    r2 = sw * sw * pos_sq
                elif ortho:
                    rng.fill_normals(st, z, d)
                    zz = 0.0
                    for i in range(d):
                        zz += z[i] * z[i]
                    c = sw / math.sqrt(zz)
                    r2 = 0.0
                    for i in range(d):
                        y = phi(c * z[i])
                        r2 += y * y
                else:
                    if pos_sq == neg_sq:
                        g = pos_sq * rng.chi2_variate(st, d)
                    else:
                        k = rng.binomial_half(st, d)
                        g = 0.0
                        if pos_sq > 0.0:
                            g += pos_sq * rng.chi2_variate(st, k)
                        if neg_sq > 0.0:
                            g += neg_sq * rng.chi2_variate(st, d - k)
                    r2 = sw * sw / d * g
                if r2 > 0.0:
                    logn += 0.5 * math.log(r2)
                elif r2 == 0.0:
                    logn = -math.inf
                else:  # NaN (a NaN input): undefined, never a zero
                    logn = math.nan
                if j < nrec and rec[j] == ell:
                    out[j, col] = logn
                    j += 1
                if rms and logn > -math.inf:
                    logn = half_log_d
            return
        if method == DENSE:
            for i in range(d):
                x[i] = x0[i]
            logn = _log_norm(x, d)
            if rec[0] == 0:
                out[0, col] = logn
                j = 1
            for ell in range(1, L + 1):
                dense_preact(st, z, q, x, h, d, sw, sb, ortho)
                for i in range(d):
                    x[i] = phi(h[i])
                logn = _log_norm(x, d)
                if j < nrec and rec[j] == ell:
                    out[j, col] = logn
                    j += 1
                if rms and -math.inf < logn < math.inf:
                    r = math.exp(half_log_d - logn)
                    for i in range(d):
                        x[i] *= r
            return
        # invariant sampler, general φ: carry log‖x‖, and n2 = ‖x‖² while it is
        # representable (the same arithmetic as ever there); beyond, the layer's
        # scale comes from log‖x‖, so it overflows only where ‖x‖ itself does,
        # as in the dense sampler, and a NaN stays NaN (never a zero norm)
        n2 = 0.0
        for i in range(d):
            n2 += x0[i] * x0[i]
        logn = _log_norm(x0, d)
        if rec[0] == 0:
            out[0, col] = logn
            j = 1
        for ell in range(1, L + 1):
            # the plain arithmetic while ‖x‖² and the pre-activation variance are representable
            v = sw * sw * n2 / d + sb * sb
            in_range = (N2_MIN < n2 < N2_MAX or logn == -math.inf) and v < N2_MAX
            r = 0.0 if in_range else math.exp(logn)  # ‖x‖, outside the range of n2
            if ortho:
                nb = d if sb > 0.0 else 0
                rng.fill_normals(st, z, d + nb)
                zz = 0.0
                for i in range(d):
                    zz += z[i] * z[i]
                c = sw * math.sqrt(n2 / zz) if in_range else sw * r / math.sqrt(zz)
                for i in range(d):
                    h[i] = c * z[i]
                for i in range(nb):
                    h[i] += sb * z[d + i]
            else:
                s = math.sqrt(v) if in_range else math.hypot(sw * r / math.sqrt(d), sb)
                rng.fill_normals(st, z, d)
                for i in range(d):
                    h[i] = s * z[i]
            n2 = 0.0
            for i in range(d):
                y = phi(h[i])
                n2 += y * y
            if N2_MIN < n2 < N2_MAX:
                logn = 0.5 * math.log(n2)
            else:  # zero, underflowed, overflowed or NaN: from the vector itself
                for i in range(d):
                    x[i] = phi(h[i])
                logn = _log_norm(x, d)
            if j < nrec and rec[j] == ell:
                out[j, col] = logn
                j += 1
            if rms and -math.inf < logn < math.inf:
                n2 = float(d)
                logn = half_log_d
            if logn != logn:  # undefined from here on
                for m in range(j, nrec):
                    out[m, col] = math.nan
                return

    return chain


def _build_chain_kernel(chain, parallel, dtype):
    @njit(parallel=parallel)
    def run(out, rec, first, nb, seed, d, L, sw, sb, x0, method, ortho, tracked, rms, pos_sq, neg_sq, nchunks):
        zsize = d * d + d if method == DENSE else 2 * d
        qsize = d * d if (method == DENSE and ortho) else 1
        for t in prange(nchunks):
            lo = t * nb // nchunks
            hi = (t + 1) * nb // nchunks
            st = np.empty(rng.STREAM_SIZE, np.uint64)
            z = np.empty(zsize, dtype)
            q = np.empty(qsize, dtype)
            x = np.empty(d, dtype)
            h = np.empty(d, dtype)
            for i in range(lo, hi):
                rng.stream_init(st, seed, first + i)
                chain(st, out, i, rec, L, d, sw, sb, x0, method, ortho, tracked, rms, pos_sq, neg_sq, z, q, x, h)

    return run


def _build_stats_kernel(parallel):
    @njit(parallel=parallel)
    def update(logn, nb, tlog, hist, zeros, n_inf, n_nan, above, below, sums, sq_inf):
        """Fold a batch of recorded log-norms (slots × nb) into the statistics."""
        n_slots = logn.shape[0]
        for s in prange(n_slots):
            for i in range(nb):
                v = logn[s, i]
                if v != v:
                    n_nan[s] += 1
                    continue
                for k in range(tlog.shape[0]):
                    if v > tlog[k]:
                        above[s, k] += 1
                    elif v < tlog[k]:
                        below[s, k] += 1
                if v == -math.inf:
                    zeros[s] += 1
                    continue
                if v == math.inf:
                    n_inf[s] += 1
                    continue
                hist[s, hist_bin(v)] += 1
                sq = math.exp(2.0 * v)
                if sq == math.inf:
                    sq_inf[s] += 1
                else:
                    exactsum.add(sums[s, 0], sq)
                exactsum.add(sums[s, 1], v)
                exactsum.add(sums[s, 2], v * v)
            for j in range(3):
                exactsum.normalize(sums[s, j])

    return update


_CACHE: dict = {}


def chain_function(act, dtype="float64"):
    """The scalar chain function of an activation and working dtype (one per process)."""
    key = ("chain", act.fingerprint, dtype)
    k = _CACHE.get(key)
    if k is None:
        k = _CACHE[key] = _build_chain(act, dtype)
    return k


def chain_kernel(act, target, dtype="float64"):
    """The compiled chain batch kernel for an activation, a CPU target and a working dtype."""
    key = ("run", act.fingerprint, target, dtype)
    k = _CACHE.get(key)
    if k is None:
        chain = chain_function(act, dtype)
        k = _CACHE[key] = _build_chain_kernel(chain, target == "parallel", np.dtype(dtype))
    return k


def stats_kernel(target):
    key = ("stats", target)
    k = _CACHE.get(key)
    if k is None:
        k = _CACHE[key] = _build_stats_kernel(target == "parallel")
    return k

"""Generalized splitting in the space of a network's normals (method ``"splitting"``).

A template (:mod:`fastprop.run.compile`): compiled per activation and target by
:func:`fastprop.rare.compiled.splitting_kernels`, which binds ``layer`` (the
invariant sampler's layer, :func:`fastprop.chains.samplers.invariant_layer`) and
``PARALLEL``; not imported directly.

The norms ‖x_ℓ‖ of a chain are a function of D = L(d + nb) independent standard
normals Z (the invariant sampler: d a layer, and nb = d more for the bias of
orthogonal weights), so the event is ``{S(Z) > s}`` with the score
``S = ±log‖x_L‖`` and Z ~ N(0, I_D). Fixed-effort generalized splitting (Botev &
Kroese 2012; the subset simulation of Au & Beck 2001 with fixed levels) with levels
γ_1 < … < γ_T = s: N particles are drawn; at each level the fraction p̂_t of them
above γ_t is recorded, the survivors are copied back to N (each ⌊N/n_t⌋ times, and
the remaining N mod n_t copies go to distinct survivors chosen at random), and every
particle makes ``m`` preconditioned Crank–Nicolson moves ``Z' = √(1−ε²) Z + ε ξ``
(reversible for N(0, I)), accepted when ``S(Z') > γ_t``; so the moves leave the law
of Z given {S > γ_t} invariant. With fixed levels ``∏_t p̂_t`` is an unbiased
estimate of P(S > s) (a Feynman–Kac particle estimate: Del Moral 2004, §3.5;
Cérou, Del Moral, Furon & Guyader 2012), for any move count and steps fixed in
advance: the pilot adapts the step ε of each level to the acceptance rate at the
level before (towards 30 %), and the runs reuse the pilot's steps.

``run_levels`` with ``adaptive`` is the pilot that chooses the levels: each is the
(1 − p0) quantile of the scores (Cérou & Guyader 2007), until the threshold.
"""

import math

import numpy as np
from numba import njit, prange

from fastprop.chains import rng
from fastprop.run.compile import bound

layer, PARALLEL, CACHE = bound(__name__, "layer", "PARALLEL", "CACHE")

STAGNATED = -1
"""``run_levels``'s level count when the adaptive levels stopped rising (S cannot reach s)."""

TARGET_ACCEPTANCE = 0.3


@njit(cache=CACHE)
def score(z, L, d, nb, sw, sb, ortho, sign, x, h):
    """``sign · log‖x_L‖`` of the network whose normals are z, from a unit x₀; −inf for a
    network whose norm is undefined (NaN), which is in no event."""
    n2 = 1.0
    logn = 0.0
    for ell in range(L):
        n2, logn = layer(z, ell * (d + nb), n2, logn, d, nb, sw, sb, ortho, x, h)
    if logn != logn:
        return -math.inf
    return sign * logn


@njit(cache=CACHE)
def _resample(st, Z, S, Zp, Sp, idx, level, N):
    """Copy the particles with S > level back to N (see the module notes); return their
    number n_t (nothing is copied when it is 0)."""
    n = 0
    for i in range(N):
        if S[i] > level:
            idx[n] = i
            n += 1
    if n == 0:
        return 0
    extra = N % n
    for k in range(extra):  # partial Fisher–Yates: `extra` distinct survivors, uniformly
        j = k + int(rng.next_uniform(st) * (n - k))
        idx[k], idx[j] = idx[j], idx[k]
    slot = 0
    for k in range(n):
        src = idx[k]
        for _ in range(N // n + (1 if k < extra else 0)):
            Zp[slot, :] = Z[src, :]
            Sp[slot] = S[src]
            slot += 1
    Z[:, :] = Zp
    S[:] = Sp
    return n


@njit(cache=CACHE)
def _move(st, Z, S, prop, level, N, D, m, eps, L, d, nb, sw, sb, ortho, sign, x, h):
    """m pCN moves of every particle within {S > level}; return the accepted count."""
    a = math.sqrt(1.0 - eps * eps)
    accepted = 0
    for i in range(N):
        for _ in range(m):
            rng.fill_normals(st, prop, D)
            for c in range(D):
                prop[c] = a * Z[i, c] + eps * prop[c]
            s = score(prop, L, d, nb, sw, sb, ortho, sign, x, h)
            if s > level:
                Z[i, :] = prop
                S[i] = s
                accepted += 1
    return accepted


@njit(cache=CACHE)
def run_levels(st, levels, steps, adaptive, target, N, m, p0, L, d, nb, sw, sb, ortho, sign, stats):
    """One splitting run: returns log ∏ p̂_t (−inf when a level has no survivor).

    Fixed levels ``levels`` (the last is ``target``) and pCN steps ``steps`` (one a
    level: fixed kernels keep the run unbiased), or, with ``adaptive``, levels chosen on
    the way and steps adapted to the acceptance rate, both written to ``levels`` and
    ``steps`` (their length caps the number of levels).
    ``stats`` ← (levels passed or STAGNATED, networks evaluated, accepted moves,
    proposed moves)."""
    D = L * (d + nb)
    Z = np.empty((N, D))
    Zp = np.empty((N, D))
    S = np.empty(N)
    Sp = np.empty(N)
    idx = np.empty(N, np.int64)
    prop = np.empty(D)
    x = np.empty(d)
    h = np.empty(d)
    for i in range(N):
        rng.fill_normals(st, Z[i], D)
        S[i] = score(Z[i], L, d, nb, sw, sb, ortho, sign, x, h)
    stats[:] = 0
    stats[1] = N
    log_p = 0.0
    eps = 0.5
    t = 0
    prev = -math.inf
    while True:
        if adaptive:
            Sp[:] = np.sort(S)
            level = min(Sp[min(N - 1, int(math.floor((1.0 - p0) * N)))], target)
            k = N - 1
            while k >= 0 and Sp[k] >= level:  # ties at the top (unmoved copies): pass at least one
                k -= 1
            if level == Sp[N - 1] and level < target:
                level = Sp[k] if k >= 0 else prev
            # (a first level of −inf is real progress: it keeps the networks not dead)
            if t > 0 and level <= prev or t == levels.shape[0] - 1 and level < target:
                stats[0] = STAGNATED
                return log_p
            levels[t] = level
            steps[t] = eps
        else:
            level = levels[t]
            eps = steps[t]
        n = _resample(st, Z, S, Zp, Sp, idx, level, N)
        if n == 0:
            stats[0] = t
            return -math.inf
        log_p += math.log(n / N)
        if level >= target:
            stats[0] = t + 1
            return log_p
        acc = _move(st, Z, S, prop, level, N, D, m, eps, L, d, nb, sw, sb, ortho, sign, x, h)
        stats[1] += N * m
        stats[2] += acc
        stats[3] += N * m
        if adaptive:  # the step towards TARGET_ACCEPTANCE
            rate = acc / (N * m)
            eps = min(1.0, max(1e-3, eps * math.exp(2.0 * (rate - TARGET_ACCEPTANCE))))
        prev = level
        t += 1


@njit(parallel=PARALLEL, cache=CACHE)
def replicas(log_p, stats, first, seed, stream, levels, steps, N, m, L, d, nb, sw, sb, ortho, sign):
    """Independent fixed-level runs r = first … first + len(log_p) − 1, run r on the stream
    (seed, stream + r): ``log_p[i]``, ``stats[i]`` of run first + i."""
    target = levels[levels.shape[0] - 1]
    for i in prange(log_p.shape[0]):
        st = np.empty(rng.STREAM_SIZE, np.uint64)
        rng.stream_init(st, seed, stream + np.uint64(first + i))
        log_p[i] = run_levels(st, levels, steps, False, target, N, m, 0.0, L, d, nb, sw, sb, ortho, sign, stats[i])

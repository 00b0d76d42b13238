"""Exponential tilting of the layer gains (method ``"tilt"``).

Where the layer gains are independent of the state (Gaussian weights, σ_b = 0 and
φ = linear, abs or relu), ``log‖x_L‖² = shift + S`` with ``S = Σ_ℓ log G_ℓ`` a sum of
L independent terms (:mod:`fastprop.chains.exact`). Each chain draws its gains from
the law tilted by ``G^θ`` (:meth:`~fastprop.chains.exact.ChainNormLaw.tilted_gain`:
K from reweighted binomial weights, ``G | K ~ 2·Gamma(K/2 + θ)``), so that its
likelihood ratio is exactly ``exp(L log M(θ) − θ S)``. With θ the saddle point of
the threshold (``κ'(θ) = log t²``) the tilted chains sit on the threshold and the
estimator ``LR · 1{event}`` is logarithmically efficient: its relative variance grows
like √L, not like 1/p (Siegmund 1976; Bucklew, Ney & Sadowsky 1990; Bucklew 2004,
ch. 5). Its values are bounded: ``LR · 1{event} = B · w`` with
``B = exp(L log M(θ) − θ s_y)`` (the Chernoff bound of the tail) and
``w = exp(−θ (S − s_y)) ∈ (0, 1]`` on the event, so the sample variance is an
honest basis for the interval.

Streams: chain c of a tilted run reads the stream (seed, TILT_STREAM + c), apart
from the chains of :func:`fastprop.simulate_chains`; its result depends on nothing
else. ``w`` is summed exactly (:mod:`fastprop.chains.exactsum`), so a run is the
same bit for bit for every target, thread count, stage and Dask split.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from scipy import optimize, special

from ..chains import exactsum, rng

TILT_STREAM = np.uint64(1 << 62)
"""Chain c of a tilted run reads the stream (seed, TILT_STREAM + c)."""


MAX_JUMP = 4
"""The largest number of layers a "jump" component of the mixture proposal tilts."""


@njit(cache=True, inline="always")
def _log_add(a, b):
    hi = max(a, b)
    if hi == -math.inf:
        return hi
    return hi + math.log(math.exp(a - hi) + math.exp(b - hi))


@njit(cache=True)
def tilted_weight(st, L, tab, jumps, cum_pi, log_pi, s_y, log_ref, upper, e):
    """One tilted chain: ``w = exp(log LR − log_ref)`` if the event ``S > s_y`` (upper) or
    ``S < s_y`` (lower) happens, else 0, where ``S = Σ_ℓ log G_ℓ``.

    ``tab[i] = (cum, shape, theta, c)`` over the gain components k_j: a layer drawn from table
    i takes K = k_j with probability ``cum[j] − cum[j−1]`` and ``G = 2·Gamma(shape[j])``, and
    its log density ratio to the nominal law is ``theta[j]·log G − c[j]``. The proposal is a
    mixture (:class:`TiltPlan`): component 0 draws every layer from table 0; component
    i ≥ 1 draws ``jumps[i−1]`` layers, a uniform subset (selection sampling), from table i and
    the others from the last table (nominal); it is chosen by ``cum_pi``. The likelihood
    ratio is the mixture's: 1/Σ_i π_i E_i, with E_0 = ∏_ℓ r_0(ℓ) and E_i the mean over
    subsets of size m of ∏ r_i, the elementary symmetric polynomial e_m(r_i(1..L))/C(L, m),
    accumulated in logs in ``e`` (``log_pi[i]`` holds log π_i − log C(L, m)). With one
    component (``jumps`` empty) no draw picks it."""
    n_jump = jumps.shape[0]
    comp = 0
    if n_jump > 0:
        u = rng.next_uniform(st)
        while comp < n_jump and u >= cum_pi[comp]:
            comp += 1
    left = L if comp == 0 else jumps[comp - 1]
    nominal = tab.shape[0] - 1
    for i in range(n_jump):
        e[i, 0] = 0.0
        for q in range(1, jumps[i] + 1):
            e[i, q] = -math.inf
    nk = tab.shape[2]
    s = 0.0
    log_r0 = 0.0
    for ell in range(L):
        t = 0
        if comp > 0:
            if rng.next_uniform(st) * (L - ell) < left:
                t = comp
                left -= 1
            else:
                t = nominal
        j = 0
        if nk > 1:
            u = rng.next_uniform(st)
            while j < nk - 1 and u >= tab[t, 0, j]:
                j += 1
        g = math.log(2.0) + rng.log_gamma_variate(st, tab[t, 1, j])
        s += g
        log_r0 += tab[0, 2, j] * g - tab[0, 3, j]
        for i in range(n_jump):
            r = tab[i + 1, 2, j] * g - tab[i + 1, 3, j]
            for q in range(jumps[i], 0, -1):
                e[i, q] = _log_add(e[i, q], r + e[i, q - 1])
    hit = s > s_y if upper else s < s_y
    if not hit:
        return 0.0
    log_mix = log_pi[0] + log_r0
    for i in range(n_jump):
        log_mix = _log_add(log_mix, log_pi[i + 1] + e[i, jumps[i]])
    return math.exp(-log_mix - log_ref)


@njit(cache=True)
def _chains(lo, hi, out, first, seed, L, tab, jumps, cum_pi, log_pi, s_y, log_ref, upper):
    st = np.empty(rng.STREAM_SIZE, np.uint64)
    e = np.empty((MAX_JUMP, MAX_JUMP + 1))
    for i in range(lo, hi):
        rng.stream_init(st, seed, TILT_STREAM + np.uint64(first + i))
        out[i] = tilted_weight(st, L, tab, jumps, cum_pi, log_pi, s_y, log_ref, upper, e)


@njit(cache=True)
def weights_serial(out, first, nb, seed, L, tab, jumps, cum_pi, log_pi, s_y, log_ref, upper):
    """``out[i]`` ← w of tilted chain first + i, i < nb (one thread)."""
    _chains(0, nb, out, first, seed, L, tab, jumps, cum_pi, log_pi, s_y, log_ref, upper)


@njit(parallel=True, cache=True)
def weights_parallel(out, first, nb, seed, L, tab, jumps, cum_pi, log_pi, s_y, log_ref, upper, nchunks):
    """``out[i]`` ← w of tilted chain first + i, i < nb (``prange`` over chunks)."""
    for t in prange(nchunks):
        lo, hi = t * nb // nchunks, (t + 1) * nb // nchunks
        _chains(lo, hi, out, first, seed, L, tab, jumps, cum_pi, log_pi, s_y, log_ref, upper)


@njit(cache=True)
def fold(out, nb, sums):
    """Add Σw (row 0), Σw² (row 1) of ``out[:nb]`` exactly into ``sums``; return the hits."""
    hits = 0
    for i in range(nb):
        w = out[i]
        if w > 0.0:
            hits += 1
            exactsum.add(sums[0], w)
            exactsum.add(sums[1], w * w)
    exactsum.normalize(sums[0])
    exactsum.normalize(sums[1])
    return hits


class TiltPlan:
    """The proposal of one request (``law``: :func:`fastprop.chains.exact.chain_norm`;
    ``log_t``: the log threshold) as the tables of :func:`tilted_weight`.

    A table tilts each gain component K = k_j (nominal weight w_j) by its own θ_j and draws
    it with probability v_j (``cum``; ``shape`` = k_j/2 + θ_j), so that a layer's log density
    ratio to the nominal law is ``log q/f = θ_j log G − c_j`` with
    ``c_j = log M_{k_j}(θ_j) − log(v_j/w_j)`` and M_k(θ) = E[(χ²_k)^θ] = 2^θ Γ(k/2 + θ)/Γ(k/2).

    * **One tilt** (upper tails, and every tail of a single χ²_d gain): θ_j = θ, the saddle
      point of the threshold, v_j ∝ w_j M_{k_j}(θ), on every layer (one component): the
      exponential tilt of the whole gain, log LR = L log M(θ) − θ S, and on the event
      ``w ≤ 1`` with ``log_ref = L log M(θ) − θ s_y``, the Chernoff bound.
    * **Lower tails of relu** (a binomial mixture of χ²_k). The mixture's cumulant
      function has a pole at θ = −½ (the χ²_1 component, whose density is ∝ g^{−1/2} at 0),
      so the one saddle tilt piles the draws onto K = 1 far below the threshold and is
      worse than plain Monte Carlo. Each component gets its own saddle instead
      (ψ(k/2 + θ_k) + log 2 = the layer's share of s_y, θ_k = 0 where that is not rare for
      it) and weight v_k ∝ w_k M_k(θ_k) e^{−θ_k·share}, its Chernoff bound: for one layer
      the zero-variance draw up to that bound. The deficit can be shared by all layers
      (the large-deviation path of light tails) or taken by a few (the "big jumps" of the
      heavy lower tail of log χ²_1, which dominate at small depth), so the proposal is a
      mixture (Dupuis, Leder & Wang 2007): with probability ½ every layer is tilted for
      s_y/L (table 0); else m ∈ {1, …, min(4, L−1)} uniformly, m layers (a uniform subset)
      tilted for (s_y − (L−m)E[log G])/m (table m) and the others nominal (the last
      table). The likelihood ratio is the mixture's, exact; ``log_ref`` only scales the
      weights.

    θ = 0 everywhere (plain Monte Carlo) where the event is not rare (the threshold on
    the near side of the mean of log‖x_L‖²)."""

    def __init__(self, law, log_t, upper):
        self.upper = upper
        self.depth = L = law.depth
        y = 2.0 * log_t
        self.s_y = y - law.shift
        mean = 2.0 * law.mean_log()
        rare = (y > mean if upper else y < mean) and L > 0
        k, logw = law.gain_mixture()
        nominal = _table(k, logw, np.zeros(k.size))
        self.jumps = np.zeros(0, np.int64)
        if rare and not upper and k.size > 1:
            mu = (mean - law.shift) / L  # E log G
            tables, log_e = [], []
            for m in [L, *range(1, min(MAX_JUMP, L - 1) + 1)]:
                tab, log_chernoff = _component_table(k, logw, (self.s_y - (L - m) * mu) / m)
                tables.append(tab)
                log_e.append(log_chernoff * m + math.log(special.comb(L, m)))
            self.jumps = np.arange(1, len(tables), dtype=np.int64)
            self.tab = np.stack([*tables, nominal])
            self.log_ref = max(log_e)
        else:
            th = law.saddle(y) if rare else 0.0
            tilted = _table(k, logw, np.full(k.size, th))
            self.tab = np.stack([tilted, nominal])
            self.log_ref = L * float(tilted[3, 0]) - th * self.s_y
        n_jump = self.jumps.size
        pi = np.array([0.5] + [0.5 / n_jump] * n_jump) if n_jump else np.ones(1)
        self.cum_pi = np.cumsum(pi)
        self.cum_pi[-1] = 1.0
        self.log_pi = np.log(pi) - np.log(special.comb(L, np.concatenate([[0], self.jumps])))
        self.theta = self.tab[0, 2].copy()

    @property
    def args(self):
        """The kernel's arguments after (out, first, nb, seed)."""
        return (self.depth, self.tab, self.jumps, self.cum_pi, self.log_pi, self.s_y, self.log_ref, self.upper)


def _log_chi2_moment(k, s):
    """log E[(χ²_k)^s] = s log 2 + log Γ(k/2 + s) − log Γ(k/2)."""
    return s * math.log(2.0) + special.gammaln(0.5 * k + s) - special.gammaln(0.5 * k)


def _table(k, logw, theta, log_v=None):
    """(cum, shape, theta, c) for components k with nominal log-weights logw tilted by theta
    and drawn with log-weights log_v (default ∝ w_k M_k(θ_k): the exponential tilt)."""
    log_m = _log_chi2_moment(k, theta)
    if log_v is None:
        log_v = logw + log_m
    top = log_v.max()
    log_v = log_v - (top + math.log(np.exp(log_v - top).sum()))
    cum = np.cumsum(np.exp(log_v))
    cum[-1] = 1.0
    return np.stack([cum, 0.5 * k + theta, theta, log_m - (log_v - logw)])


def _component_table(k, logw, share):
    """The table with a saddle per component for the share (and log Σ_k w_k M_k e^{−θ_k share})."""
    theta = np.array([_component_saddle(kj, share) for kj in k])
    log_v = logw + _log_chi2_moment(k, theta) - theta * share
    top = log_v.max()
    return _table(k, logw, theta, log_v), float(top + math.log(np.exp(log_v - top).sum()))


def _component_saddle(k, share):
    """θ ≤ 0 with E_θ[log χ²_k] = ψ(k/2 + θ) + log 2 = share (0 where share is not below the
    untilted mean; ψ → −∞ at the pole θ = −k/2, so a root exists for any finite share)."""
    a = 0.5 * k
    target = share - math.log(2.0)
    if target >= special.digamma(a):
        return 0.0
    lo = -a * (1.0 - 1e-12)
    if special.digamma(a + lo) >= target:
        return lo
    return optimize.brentq(lambda th: special.digamma(a + th) - target, lo, 0.0, xtol=1e-15)

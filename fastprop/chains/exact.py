"""Exact laws of ‖x_L‖ for Gaussian chains where the layer gains are independent.

For Gaussian weights, σ_b = 0 and φ with |φ(h)| = |h| (linear, abs), rotation
invariance makes the squared layer gains independent:
``‖x_L‖² = ‖x_0‖² ∏_{ℓ=1}^{L} (σ_w²/d) G_ℓ`` with ``G_ℓ ~ χ²_d``. For relu,
``G_ℓ = χ²_{K_ℓ}`` with ``K_ℓ ~ Binomial(d, ½)`` (K = 0 gives an exact zero,
after which the chain stays at 0): Hanin & Nica 2018; the factors (2/d)·χ²_K
at σ_w = √2 are the He-initialised case.

Method
------
Let ``Y = log‖x_L‖²`` given ‖x_L‖ > 0, with cumulant generating function
``κ(s) = s·log(‖x_0‖² (σ_w²/d)^L) + L·log M(s)``, where
``M(s) = E[G^s | G > 0] = Σ_k w_k 2^s Γ(k/2 + s)/Γ(k/2)`` is analytic for
Re s > −k_min/2. Tail probabilities are Bromwich integrals along a vertical
line through the saddle point ŝ (κ'(ŝ) = y):

    P(Y > y) =  (1/π) ∫₀^∞ Re[ e^{κ(c+it) − (c+it) y} / (c + it) ] dt,   c > 0,
    P(Y < y) = −(1/π) ∫₀^∞ Re[ e^{κ(c+it) − (c+it) y} / (c + it) ] dt,   c < 0.

On that line the integrand does not oscillate to first order, so the smaller
tail is computed with *relative* accuracy however far out it is (no
cancellation; the other tail is one minus it). The integral is evaluated by the
trapezoidal rule in u with t = a·sinh(u), a the smaller of the saddle's width
1/√κ''(ŝ) and the distance to the nearest pole (of 1/s at 0, of M at smin): fine
steps near a close pole, long ones far out. It converges geometrically for this
analytic integrand; the step is halved until two successive sums agree to 1e-14
(or to the rounding floor ~4e-16·|κ| of the exponent in far tails), and the range
is extended until the integrand is below 1e-18 of the sum. κ' and κ'' are
analytic (digamma, trigamma), so the saddle is found however close it lies to
the pole at smin.

Lower tails of wide relu chains put the saddle within 1e-4…1e-9 of that pole
(the χ²_1 component, weight d·2^−d, dominates far down); within 1e-3 of it the
line is moved away by up to the saddle's distance, capped so that the cancellation
this costs stays below e^10: accuracy ~1e-9 relative (tested at width 30 against
the closed form). Elsewhere the line stays on the saddle. Very wide layers far down
(width 60, P ~ 1e-18) defeat this and warn.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import special

from .. import _validate
from ..activations import activation as _activation

__all__ = ["ChainNormLaw", "chain_norm"]

_MAX_NODES = 1 << 17
_NEAR_POLE = 1e-3
"""A saddle closer than this to the pole of M(s) at smin moves the Bromwich line (_log_tail)."""
_SUPPORTED = {"linear": "chi2_d", "abs": "chi2_d", "relu": "chi2_binomial"}


class ChainNormLaw:
    """The exact law of ‖x_L‖ for a Gaussian chain with independent gains.

    Build it with :func:`chain_norm`. Methods: :meth:`cdf`, :meth:`sf`,
    :meth:`logsf`, :meth:`logcdf`, :meth:`quantile`, :meth:`median`,
    :meth:`moment`, :meth:`mean`, :meth:`mean_log`, :meth:`std_log`;
    :attr:`atom` is P(‖x_L‖ = 0).
    """

    def __init__(self, width, depth, activation, sigma_w, x0_norm):
        self.width, self.depth, self.activation = width, depth, activation
        self.sigma_w, self.x0_norm = sigma_w, x0_norm
        if activation == "relu":
            k = np.arange(1, width + 1)
            logw = special.gammaln(width + 1) - special.gammaln(k + 1) - special.gammaln(width - k + 1)
            logw = logw - width * math.log(2)
            p0 = 2.0**-width
            self._k = k.astype(float)
            self._logw = logw - math.log1p(-p0)  # weights given K ≥ 1
            self.atom = -math.expm1(depth * math.log1p(-p0)) if depth else 0.0
        else:
            self._k = np.array([float(width)])
            self._logw = np.array([0.0])
            self.atom = 0.0
        # in logs of σ_w and ‖x₀‖, so that extreme values neither overflow nor underflow
        log_gain = 2.0 * math.log(sigma_w) - math.log(width) if sigma_w > 0 else -math.inf
        self._shift = 2.0 * math.log(x0_norm) + depth * log_gain if depth else 2.0 * math.log(x0_norm)
        self._smin = -0.5 * self._k.min()  # M(s) is analytic for Re s > smin

    def __repr__(self):
        return (
            f"ChainNormLaw(width={self.width}, depth={self.depth}, activation={self.activation!r}, "
            f"sigma_w={self.sigma_w:g}, x0_norm={self.x0_norm:g})"
        )

    # ---------------------------------------------------------------- moments
    def _logM(self, s):
        """log E[G^s | G > 0] for complex s (vectorised)."""
        s = np.asarray(s, dtype=complex)[..., None]
        a = 0.5 * self._k
        terms = self._logw + s * math.log(2.0) + special.loggamma(a + s) - special.gammaln(a)
        m = terms.real.max(axis=-1, keepdims=True)
        return (m + np.log(np.exp(terms - m).sum(axis=-1, keepdims=True)))[..., 0]

    def _kappa(self, s):
        return s * self._shift + self.depth * self._logM(s)

    def _g_moments(self):
        a = 0.5 * self._k
        w = np.exp(self._logw)
        mu = special.digamma(a) + math.log(2.0)
        m1 = float(np.sum(w * mu))
        m2 = float(np.sum(w * (special.polygamma(1, a) + mu * mu)))
        return m1, m2 - m1 * m1

    def mean_log(self) -> float:
        """E[log‖x_L‖ | ‖x_L‖ > 0] = ½(log‖x₀‖² + L log(σ_w²/d) + L E log G)."""
        m1, _ = self._g_moments()
        return 0.5 * (self._shift + self.depth * m1)

    def std_log(self) -> float:
        """Standard deviation of log‖x_L‖ given ‖x_L‖ > 0: ½ √(L Var log G)."""
        _, v = self._g_moments()
        return 0.5 * math.sqrt(self.depth * v)

    def moment(self, m) -> float:
        """E‖x_L‖^m for m > 0 (zeros included): e^{κ(m/2)} (1 − atom)."""
        if not m > 0:
            raise ValueError(f"m must be > 0, got {m!r}")
        return float(np.exp(self._kappa(0.5 * m).real)) * (1.0 - self.atom)

    def mean(self) -> float:
        """E‖x_L‖."""
        return self.moment(1.0)

    # ------------------------------------------------- exponential tilting
    def cgf(self, s) -> float:
        """κ(s) = log E[‖x_L‖^{2s} | ‖x_L‖ > 0] for real s > −k_min/2 (the module notes)."""
        s = float(s)
        if not s > self._smin:
            raise ValueError(f"s must exceed {self._smin:g} (the moments of order ≤ −k_min/2 diverge), got {s!r}")
        return float(self._kappa(s).real)

    def saddle(self, y) -> float:
        """The saddle point ŝ of log‖x_L‖² = y: κ'(ŝ) = y (at the edge of the strip where
        y lies beyond every tilt)."""
        return float(self._saddle(float(y)))

    def tilted_gain(self, s):
        """One layer's gain law tilted by G^s (Siegmund 1976; Bucklew 2004, ch. 5):
        ``(k, p, log M(s))`` with K = k_j drawn with probability p_j ∝ w_j M_{k_j}(s) and
        G | K ~ 2·Gamma(K/2 + s), where M_k(s) = E[(χ²_k)^s] = 2^s Γ(k/2 + s)/Γ(k/2) and
        M(s) = Σ_j w_j M_{k_j}(s) (given G > 0). Its density is g^s f(g)/M(s): a path of
        L tilted layers has likelihood ratio ``exp(L log M(s) − s Σ_ℓ log G_ℓ)``."""
        s = float(s)
        if not s > self._smin:
            raise ValueError(f"the tilt s must exceed {self._smin:g}, got {s!r}")
        a = 0.5 * self._k
        terms = self._logw + s * math.log(2.0) + special.gammaln(a + s) - special.gammaln(a)
        m = terms.max()
        log_m = float(m + math.log(np.exp(terms - m).sum()))
        return self._k.copy(), np.exp(terms - log_m), log_m

    def gain_mixture(self):
        """(k, log w): one layer's gain G is χ²_{k_j} with probability w_j, given G > 0."""
        return self._k.copy(), self._logw.copy()

    @property
    def shift(self) -> float:
        """log(‖x₀‖² (σ_w²/d)^L): log‖x_L‖² = shift + Σ_ℓ log G_ℓ."""
        return self._shift

    def _tilted_psi(self, s):
        """(p_k(s), ψ(k/2 + s)): the tilted component weights and digammas at real s."""
        a = 0.5 * self._k
        terms = self._logw + s * math.log(2.0) + special.gammaln(a + s) - special.gammaln(a)
        p = np.exp(terms - terms.max())
        return p / p.sum(), special.digamma(a + s)

    def _d2kappa(self, s):
        """κ''(s) = L [Σ_k p_k ψ'(k/2 + s) + Var_p(ψ(k/2 + s))] (analytic, for the same reason)."""
        p, psi = self._tilted_psi(s)
        mean = float(np.sum(p * psi))
        return self.depth * float(np.sum(p * (special.polygamma(1, 0.5 * self._k + s) + (psi - mean) ** 2)))

    def _dkappa(self, s):
        """κ'(s) = shift + L Σ_k p_k(s) (log 2 + ψ(k/2 + s)) for real s > smin, with p_k(s) the
        tilted weights (analytic: a difference quotient would step across the pole at smin)."""
        p, psi = self._tilted_psi(s)
        return self._shift + self.depth * float(np.sum(p * (math.log(2.0) + psi)))

    # ------------------------------------------------------------- tails
    def _saddle(self, y):
        """ŝ with κ'(ŝ) = y, ŝ > smin."""

        def dk(s):
            return self._dkappa(s) - y

        lo = self._smin + 1e-9 * (1 + abs(self._smin))
        if dk(lo) > 0:
            return lo
        hi = 16.0
        while dk(hi) < 0:
            if hi > 1e12:
                return hi
            hi *= 4.0
        from scipy import optimize  # on first use: importing it is slow

        return optimize.brentq(dk, lo, hi, xtol=1e-12, rtol=1e-14)

    def _bromwich(self, y, c):
        """(1/π) ∫₀^∞ Re[e^{κ(c+it) − κ(c) − ity} / (c+it)] dt, times sign(c) handled by caller."""
        k0 = self._kappa(c).real
        # scale of t: the curvature of κ at c
        width = 1.0 / math.sqrt(max(self._d2kappa(c), 1e-12))
        dist = min(abs(c), c - self._smin)  # distance from the line to the nearest pole (s = 0 or smin)
        a = min(width, dist)
        t_max = 1e4 * width

        def g(u):  # the integrand in u, t = a·sinh(u)
            t = a * np.sinh(u)
            s = c + 1j * t
            with np.errstate(under="ignore", over="ignore"):  # the far end underflows to 0: harmless
                return (np.exp(self._kappa(s) - k0 - 1j * t * y) / s).real * a * np.cosh(u)

        def trap(step):
            total = 0.5 * g(np.array([0.0]))[0]
            start = 1
            while True:
                u = step * np.arange(start, start + 256)
                v = g(u)
                total += v.sum()
                start += 256
                if np.all(np.abs(v[-32:]) < 1e-18 * abs(total)) or a * math.sinh(start * step) > t_max:
                    return total * step
                if start > _MAX_NODES:
                    return total * step

        step = 0.5
        # rounding floor: κ is evaluated to ~1e-16 of its size, which is an absolute
        # error in the exponent
        tol = 1e-14 + 4e-16 * (abs(k0) + abs(c * y))
        prev = trap(step)
        for _ in range(8):
            step /= 2
            cur = trap(step)
            change = abs(cur - prev) / abs(cur) if cur else 0.0
            # off the saddle (the near-pole line) the value is a cancellation of terms
            # of size ~1, |cur| times larger than it: the floor grows by 1/|cur|
            if change <= tol + 1e-15 / max(abs(cur), 1e-300):
                return cur / math.pi, k0 - c * y
            prev = cur
        warnings.warn(
            f"exact law: the Bromwich integral at log‖x‖² = {y:.6g} did not converge to {tol:.1e} "
            f"(last two estimates differ by {change:.1e} relative)",
            RuntimeWarning,
            stacklevel=4,
        )
        return cur / math.pi, k0 - c * y

    def _log_tail(self, y, upper):
        """log P(Y > y) (upper) or log P(Y < y), given ‖x_L‖ > 0, and its complement."""
        if self.depth == 0 or self.sigma_w == 0:
            v = self._shift
            hit = v > y if upper else v < y
            return (0.0 if hit else -math.inf), (-math.inf if hit else 0.0)
        mu = self._kappa(1e-7).real / 1e-7  # κ'(0) = E Y
        scale = 2.0 * self.std_log()
        small_upper = y > mu
        s_hat = self._saddle(y)
        cmin = 0.5 / scale
        if small_upper:
            c = max(s_hat, cmin)
        elif s_hat - self._smin < _NEAR_POLE:
            # the saddle crowds the pole of M at smin (wide relu's χ²_1 component): a line
            # between them blows up and one on the saddle resolves the pole's peak poorly; a
            # step of up to the saddle's distance away, small enough that the cancellation
            # it costs, e^{κ''δ²/2}, stays below e^10
            dist = s_hat - self._smin
            c = s_hat + min(dist, math.sqrt(20.0 / self._d2kappa(s_hat)))
        else:  # inside the strip (smin, 0): −cmin can lie beyond the pole at smin
            c = max(min(s_hat, -cmin), 0.5 * (s_hat + self._smin))
        val, logfac = self._bromwich(y, c)
        small = abs(val)
        log_small = math.log(small) + logfac if small > 0 else -math.inf
        log_big = math.log1p(-math.exp(log_small)) if log_small < 0 else -math.inf
        if upper == small_upper:
            return log_small, log_big
        return log_big, log_small

    def _vectorise(self, t, fn):
        arr = _validate.real_array(t, "t", low=0.0)
        out = np.array([fn(float(v)) for v in arr.reshape(-1)]).reshape(arr.shape)
        return float(out) if out.ndim == 0 else out

    def logsf(self, t):
        """log P(‖x_L‖ > t)."""

        def one(v):
            if v == 0:
                return math.log1p(-self.atom) if self.atom < 1 else -math.inf
            up, _ = self._log_tail(2 * math.log(v), True)
            return up + math.log1p(-self.atom)

        return self._vectorise(t, one)

    def logcdf(self, t):
        """log P(‖x_L‖ ≤ t) (the atom at 0 included)."""

        def one(v):
            if v == 0:
                return math.log(self.atom) if self.atom > 0 else -math.inf
            lo, _ = self._log_tail(2 * math.log(v), False)
            cont = lo + math.log1p(-self.atom)
            return np.logaddexp(cont, math.log(self.atom)) if self.atom > 0 else cont

        return self._vectorise(t, one)

    def sf(self, t):
        """P(‖x_L‖ > t), accurate to ~1e-12 relative in both tails."""
        return np.exp(self.logsf(t))

    def cdf(self, t):
        """P(‖x_L‖ ≤ t), including the atom at 0."""
        return np.exp(self.logcdf(t))

    def quantile(self, p):
        """The p-quantile of ‖x_L‖ (0 for p ≤ atom)."""
        ps = _validate.real_array(p, "p", low=0.0, high=1.0)

        def one(q):
            if q <= self.atom:
                return 0.0
            if q == 1.0:
                return math.inf
            mu, sd = self.mean_log(), max(self.std_log(), 1e-3)
            # solve in u = log t; use the smaller tail for accuracy
            if q < 0.5:
                f = lambda u: float(self.logcdf(math.exp(u))) - math.log(q)  # noqa: E731
            else:
                f = lambda u: float(self.logsf(math.exp(u))) - math.log1p(-q)  # noqa: E731
            a, b = mu - 4 * sd, mu + 4 * sd
            while f(a) * f(b) > 0:
                a, b = a - 4 * sd, b + 4 * sd
            from scipy import optimize

            return math.exp(optimize.brentq(f, a, b, xtol=1e-13, rtol=1e-13))

        out = np.array([one(float(q)) for q in ps.reshape(-1)]).reshape(ps.shape)
        return float(out) if out.ndim == 0 else out

    def median(self):
        return self.quantile(0.5)


def chain_norm(width, depth, activation="linear", sigma_w=1.0, x0_norm=1.0) -> ChainNormLaw:
    """The exact law of ‖x_L‖ for a width-d, depth-L chain with Gaussian weights
    N(0, σ_w²/d), σ_b = 0, and activation linear, abs or relu (see the module
    notes for the formula and the method).

    >>> law = chain_norm(10, 100)          # He-initialised linear chain
    >>> round(float(law.sf(10.0)) * 1700, 1)   # about one chain in 1,700 exceeds 10
    1.0
    """
    d = _validate.positive_int(width, "width")
    L = _validate.positive_int(depth, "depth", low=0)
    name = _activation(activation).name
    if name not in _SUPPORTED:
        raise ValueError(
            f"no exact law for activation {name!r}; supported: {', '.join(_SUPPORTED)} (Gaussian weights, sigma_b = 0)"
        )
    sw = float(_validate.real_array(sigma_w, "sigma_w", low=0.0, low_open=True))
    x0n = float(_validate.real_array(x0_norm, "x0_norm", low=0.0, low_open=True))
    return ChainNormLaw(d, L, name, sw, x0n)

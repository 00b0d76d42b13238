"""Public functions: :func:`jacobian_moments` and :func:`jacobian_spectrum`."""

from __future__ import annotations

import math
import warnings

import numpy as np

from .. import _validate
from ..activations import activation as _activation
from . import freeprob, law, series

NSUB = 8
"""Refinement of the law of D² used for the density (the estimate uses NSUB/2)."""
NSUB_MAX = 64
"""Finest refinement :meth:`JacobianSpectrum.density` goes to where the estimate is large."""
REFINE_TOL = 1e-8
"""Target of the density's relative error estimate (away from the edges)."""
UNRELIABLE = 1e-2
""":meth:`JacobianSpectrum.density` returns NaN where the error estimate exceeds this times the value."""
K_SERIES = 8
"""Moments up to this order come from the S-transform series; higher ones by quadrature of the density."""

K_MAX = 64
"""Highest moment order :meth:`JacobianSpectrum.moments` computes."""

WEIGHTS = ("gaussian", "orthogonal")


def _q_star(act, sigma_w, sigma_b):
    from ..meanfield.maps import q_star

    return q_star(sigma_w, sigma_b, act)


def jacobian_moments(activation, k, *, q=None, sigma_w=None, sigma_b=None):
    """μ_k = ∫ φ'(√q z)^{2k} Dz, the moments of D² (Pennington, Schoenholz & Ganguli
    2017, Table 1), at ``q`` or at the fixed point q*(σ_w, σ_b) of the length map.

    Give either ``q`` (≥ 0; q = 0 is the limit q → 0⁺, q = inf the limit q → ∞, evaluated at q = 1e300, so that
    ``q=spectrum_map(…).q_star`` works on chaotic grids) or both ``sigma_w`` and
    ``sigma_b``; every argument broadcasts like a NumPy ufunc argument (``k`` ≥ 1,
    integers). Integration: the kink-split, graded Gauss–Legendre rule of
    :mod:`fastprop.quadrature` (to about 1e-13 relatively at any q for k ≤ 8, kinks
    included; φ'^{2k} grows peaked as k grows and the error with it: selu at q = 1 is
    4e-12 off at k = 10, 1.6e-7 at k = 20, 1e-2 at k = 64; erf 1.4e-10 at k = 20).
    Where q* = +inf (e.g. relu with σ_w > √2) the limit q → ∞ is returned.
    Closed forms: erf(√π h/2): (1 + πkq)^{−1/2}; hard_tanh: erf(1/√(2q)); relu: ½.
    """
    act = _activation(activation)
    kk = np.asarray(k)
    if kk.dtype.kind not in "iu" and not (kk.dtype.kind == "f" and np.all(kk == np.round(kk))):
        raise TypeError(f"k must be an integer or an array of integers, got {k!r}")
    if np.any(kk < 1):
        raise ValueError(f"k must be ≥ 1, got {k!r}")
    if q is not None:
        if sigma_w is not None or sigma_b is not None:
            raise TypeError("give either q or (sigma_w, sigma_b), not both")
        try:
            qa = _validate.real_array(q, "q", low=0.0)
        except ValueError:  # +inf is allowed: the limit q → ∞ (q* of a diverging length map)
            raw = np.asarray(q, dtype=float)
            if not np.all(np.isfinite(raw) | np.isposinf(raw)):
                raise
            qa = np.where(
                np.isposinf(raw), np.inf, _validate.real_array(np.where(np.isposinf(raw), 0.0, raw), "q", low=0.0)
            )
    else:
        if sigma_w is None or sigma_b is None:
            raise TypeError("give q, or both sigma_w and sigma_b (μ_k at q*)")
        sw = _validate.real_array(sigma_w, "sigma_w", low=0.0)
        sb = _validate.real_array(sigma_b, "sigma_b", low=0.0)
        qa = np.asarray(_q_star(act, sw, sb), dtype=float)
    qb, kb = np.broadcast_arrays(qa, kk.astype(np.int64))
    out = np.empty(qb.shape)
    law.derivative_kernels(act).mu_many(
        np.ascontiguousarray(qb, dtype=float).ravel(), np.ascontiguousarray(kb).ravel(), out.reshape(-1)
    )
    return float(out) if out.ndim == 0 else out


class JacobianSpectrum:
    r"""The law of the eigenvalues λ of J Jᵀ (squared singular values of the
    input–output Jacobian) of a deep network in the mean-field limit, at q*.

    J = D_L W_L ⋯ D_1 W_1 with D = diag φ'(h), h ~ N(0, q*); by freeness
    S_{JJᵀ} = (S_{WWᵀ} S_{D²})^L (Pennington, Schoenholz & Ganguli 2017, 2018).
    :meth:`moments` are exact (series of the S-transform, :mod:`fastprop.spectra.series`,
    from the certified μ_k); :meth:`density` solves the S-transform equation at each
    λ (:mod:`fastprop.spectra.freeprob`) on a discretised law of D²
    (:mod:`fastprop.spectra.law`). ``atom`` is the mass at λ = 0, P(φ'(h) = 0)
    (e.g. ½ for relu). With orthogonal weights an atom of D² at t with mass a > 1 − 1/L
    gives J Jᵀ an atom at (σ_w² t)^L of mass L a − (L − 1) (atoms of a free product,
    Bercovici & Voiculescu 1993; e.g. hard_tanh at small q*, where φ' = 1 on |h| < 1):
    ``atoms`` lists every atom as (λ, mass), the one at 0 included. :meth:`density` is
    that of the continuous part (it integrates to 1 − the atoms' mass).
    """

    def __init__(self, act, sigma_w, sigma_b, depth, weights):
        self.activation = act.name
        self.sigma_w = float(sigma_w)
        self.sigma_b = float(sigma_b)
        self.depth = int(depth)
        self.weights = weights
        self._act = act
        self.q_star = float(_q_star(act, self.sigma_w, self.sigma_b))
        self._w2 = self.sigma_w**2
        self._orth = weights == "orthogonal"
        self._laws = {}
        t, w = law.derivative_law(act, self.q_star, NSUB)
        self.atom = float(w[t == 0.0].sum())
        self.atoms = [(0.0, self.atom)] if self.atom > 0.0 else []
        if weights == "orthogonal" and t.size:
            top = int(np.argmax(np.where(t > 0.0, w, -1.0)))
            mass = self.depth * float(w[top]) - (self.depth - 1)
            if mass > 1e-12:
                self.atoms.append(((self._w2 * float(t[top])) ** self.depth, mass))
        self._t, self._w, self._a0 = self._law(NSUB)
        self._mu = None
        self._table = None
        if self._t.size == 0 or self.sigma_w == 0.0:
            raise ValueError("J Jᵀ = 0 here (φ' vanishes almost surely, or σ_w = 0): the law is an atom at 0")
        args = (self.depth, self._w2, self._orth, *self._law(NSUB))
        self._hi, self._zeta_hi = freeprob.upper_edge(*args, float(self._t[-1]))
        self._lo = float(freeprob.lower_edge(*args, float(self._t[0])))
        self._certified = True
        if any(at > 0.0 for at, _ in self.atoms):
            # the continuous part ends below the atom, at a critical point of z(ζ) between
            # the atom's node of D² and the node below it (none: the atom at 0)
            t_top = float(t[top])
            below = self._t[self._t < t_top]
            hi, zeta = freeprob.edge_below_atom(*args, t_top, float(below[-1]) if below.size else 0.0)
            if math.isfinite(hi) and hi > self._lo:
                self._hi, self._zeta_hi = hi, zeta
            else:
                self._certified = False
        if sum(m for _, m in self.atoms) >= 1.0 - 1e-12:  # atoms only: e.g. linear, orthogonal (σ_w^{2L} I)
            self._hi, self._lo, self._certified = 0.0, 0.0, True

    def _law(self, nsub):
        """(t, w, a0): the nodes t > 0 and weights of the law of D² refined ``nsub`` times,
        and the rest of the mass a0 = 1 − Σ w (the atom at 0)."""
        if nsub not in self._laws:
            t, w = law.derivative_law(self._act, self.q_star, nsub)
            keep = t > 0.0
            self._laws[nsub] = (t[keep], w[keep], 1.0 - w[keep].sum())
        return self._laws[nsub]

    def __repr__(self):
        return (
            f"JacobianSpectrum({self.activation!r}, sigma_w={self.sigma_w:g}, sigma_b={self.sigma_b:g}, "
            f"depth={self.depth}, weights={self.weights!r}; q*={self.q_star:.6g}, support={self.support()})"
        )

    # ------------------------------------------------------------------ moments
    def _mus(self, k):
        if self._mu is None or self._mu.size < k:
            n = max(k, 8)
            self._mu = np.empty(n)  # q* = +inf (a diverging length map) is the limit q → ∞
            law.derivative_kernels(self._act).mu_many(np.full(n, self.q_star), np.arange(1, n + 1), self._mu)
        return self._mu[:k]

    def moments(self, k):
        """Raw moments E λ^k (k = 0 … 64; arrays allowed), atoms included. Up to k = ``K_SERIES``
        (8) from the S-transform series, exact to the rounding of μ_k: m_1 = χ_1^L. Higher ones by
        Gauss–Legendre quadrature of the density (its certified error, about 1e-10): there the
        series is ill-conditioned (orthogonal weights: changing μ_k by 1e-16 moves m_48 by
        300 %) and μ_k itself loses digits (:func:`jacobian_moments`)."""
        kk = np.asarray(k)
        if kk.dtype.kind not in "iu" or np.any(kk < 0) or np.any(kk > K_MAX):
            raise ValueError(f"k must be integers in 0 … {K_MAX}, got {k!r}")
        top = int(kk.max()) if kk.size else 0
        low = min(max(top, 1), K_SERIES)
        m = np.concatenate([[1.0], series.jjt_moments(self._mus(low), self.depth, self.sigma_w, self._orth)])
        if top > K_SERIES:
            m = np.concatenate([m, [self._moment_by_quadrature(j) for j in range(K_SERIES + 1, top + 1)]])
        out = m[kk]
        return float(out) if out.ndim == 0 else out

    def _moment_by_quadrature(self, k):
        """∫ λ^k ρ(λ) dλ over the Gauss–Legendre panels of :meth:`cdf`, plus the atoms."""
        total = sum(mass * at**k for at, mass in self.atoms)
        if self._continuous_mass() > 0.0:
            e, _, _, _, rho = self._cdf_table()
            gx, gw = np.polynomial.legendre.leggauss(16)
            half = 0.5 * np.diff(e)[:, None]
            nodes = 0.5 * (e[:-1] + e[1:])[:, None] + half * gx
            total += float((rho * nodes**k * gw * half).sum())
        return total

    @property
    def mean(self):
        """E λ = χ_1^L = (σ_w² μ_1)^L."""
        return self.moments(1)

    @property
    def variance(self):
        """Var λ = m_2 − m_1²; at χ_1 = 1 it is L(μ_2/μ_1² − 1) (orthogonal) or L μ_2/μ_1²
        (Gaussian) (Pennington et al. 2017, Table 1)."""
        m = self.moments([1, 2])
        return float(m[1] - m[0] ** 2)

    # ------------------------------------------------------------------ density
    def support(self):
        """(lo, hi): the edges of the continuous part (lo = 0 where it reaches down to 0; a
        tiny lo > 0 can be the discretised law's own: it stops at |z| = 9, so with
        orthogonal weights the mass below about (σ_w² min φ'²)^L is not resolved — 2.4e-7
        of it for tanh at σ_w = 1.2, σ_b = 0.1, L = 2;
        gaps inside, e.g. for leaky_relu at small depth, are not reported). ``atom`` is
        the mass at 0. hi is the upper edge of the continuous part: below the atom at
        λ > 0 where there is one (:attr:`atoms`; e.g. hard_tanh with orthogonal weights at
        σ_b = 0.05, L = 8: the continuous part ends at 0.362, the atom sits at 1.151). It is
        computed on the discretised law (its error is that of the law near the top of φ'²,
        below 1e-8 relatively for the built-ins; exact where D² has atoms only)."""
        return (self._lo, float(self._hi))

    def _continuous_mass(self):
        """1 − the atoms' mass (0 where J Jᵀ is atoms only, e.g. linear with orthogonal weights)."""
        rest = 1.0 - sum(m for _, m in self.atoms)
        return 0.0 if rest < 1e-12 or self._hi <= 0.0 else rest

    def _march(self, lam, nsub):
        """(m, error estimate of m) at the λ of ``lam`` (any order, inside (lo, hi)) on the
        law refined ``nsub`` times, the estimate from the law refined ``nsub/2`` times."""
        hi, lo = float(self._hi), self._lo
        # guide points from the top edge down to the smallest λ asked for (continuation)
        low = max(lam.min(), lo)
        span = hi - max(lo, 0.0)
        guide = hi - span * (np.arange(1, 65) / 64.0) ** 2
        if lo == 0.0:
            geo = hi * 0.85 ** np.arange(1, 4000)
            guide = np.concatenate([guide, geo[geo > low]])
        guide = guide[guide > low]
        allv = np.concatenate([lam, guide])
        order = np.argsort(-allv, kind="stable")
        seq = np.ascontiguousarray(allv[order])
        zeta = np.empty(seq.size, complex)
        m = np.empty(seq.size, complex)
        err = np.empty(seq.size)
        freeprob.march(seq, self._zeta_hi, hi, self.depth, self._w2, self._orth, *self._law(nsub),
                       *self._law(nsub // 2), zeta, m, err)  # fmt: skip
        back = np.empty(seq.size, dtype=np.int64)
        back[order] = np.arange(seq.size)
        sel = back[: lam.size]
        return m[sel], err[sel]

    def _solve(self, lam):
        """(m, error estimate of m) at the λ of ``lam``: on the law refined ``NSUB`` times,
        then, where the estimate exceeds ``REFINE_TOL`` |Im m| (+ 1e-12 |m|: edges), on
        laws refined twice as finely, up to ``NSUB_MAX``."""
        lam = np.asarray(lam, dtype=float)
        m, err = self._march(lam, NSUB)
        nsub = NSUB
        while nsub < NSUB_MAX:
            bad = ~(err <= REFINE_TOL * np.abs(m.imag) + 1e-12 * np.abs(m))
            if not bad.any():
                break
            nsub *= 2
            idx = np.flatnonzero(bad)
            m_new, err_new = self._march(lam[idx], nsub)
            took = np.isfinite(err_new) | np.isnan(err[idx])  # a finer solve that fails keeps the coarser one
            m[idx[took]], err[idx[took]] = m_new[took], err_new[took]
        return m, err

    def _density(self, flat):
        """(ρ, error estimate, unreliable) at the λ of the flat array ``flat``: the best value
        wherever the solve converged (NaN where it failed); ``unreliable`` where the estimate
        exceeds ``UNRELIABLE`` of the value (and, at the edges where ρ → 0, 1e-10 of |M|/(πλ))."""
        rho = np.zeros(flat.size)
        err = np.zeros(flat.size)
        bad = np.zeros(flat.size, dtype=bool)
        inside = (flat > self._lo) & (flat < self._hi)
        if inside.any():
            m, e = self._solve(flat[inside])
            rho[inside] = np.where(np.isnan(e), np.nan, np.maximum(-m.imag, 0.0) / (math.pi * flat[inside]))
            err[inside] = e / (math.pi * flat[inside])
            bad[inside] = ~(err[inside] <= UNRELIABLE * rho[inside] + 1e-10 * np.abs(m) / (math.pi * flat[inside]))
        return rho, err, bad

    def density(self, lam, return_error=False):
        """ρ(λ) = −Im M_{JJᵀ}(λ + i0)/(πλ) at each λ (array or float); 0 outside the
        support. NaN (with a warning) where no solution has an error estimate below
        ``UNRELIABLE`` (1 %) of its value or below 1e-10 |M|/(πλ) (errors of negligible mass,
        as λρ(λ), the density of ln λ, goes: tails and edges): e.g. parts of the lower tail of
        orthogonal tanh, swish or gelu spectra, which the discretised law of D² near 0 does not
        resolve. With
        ``return_error``, also the estimate of each value's discretisation error (|ΔM|/(πλ)
        between two refinements of the law of D²; NaN where the solve failed)."""
        lam = _validate.real_array(lam, "lam")
        if not self._certified:
            warnings.warn(
                "J Jᵀ has an atom at λ > 0 here (orthogonal weights, φ' constant with probability > 1 − 1/L) and "
                "no gap was found between it and the continuous part: the density near the atom is not certified",
                stacklevel=2,
            )
        rho, err, bad = self._density(lam.ravel())
        if bad.any():
            rho[bad] = np.nan
            warnings.warn(
                f"density: {int(bad.sum())} of {bad.size} values are NaN — no solution with an error estimate below "
                f"{UNRELIABLE:g} of the value (see return_error)",
                stacklevel=2,
            )
        rho = rho.reshape(lam.shape)
        err = err.reshape(lam.shape)
        if lam.ndim == 0:
            rho, err = float(rho), float(err)
        return (rho, err) if return_error else rho

    # ------------------------------------------------------------------ cdf
    def _cdf_table(self):
        """Gauss–Legendre panels over (lo, hi), geometric in λ (ratio 1.5) and graded
        towards the edges; the density at their nodes; each panel's mass."""
        if self._table is not None:
            return self._table
        hi, lo = float(self._hi), self._lo
        bottom = lo if lo > 0.0 else hi * 1e-300
        edges = {hi, bottom}
        width = hi - bottom
        for j in range(1, 45):  # graded towards the square-root edges
            edges.add(hi - width * 2.0**-j)
            if lo > 0.0:
                edges.add(lo + width * 2.0**-j)
        x = hi / 2.0
        while x > bottom:
            edges.add(x)
            x /= 1.5
        e = np.array(sorted(v for v in edges if bottom <= v <= hi))
        gx, gw = np.polynomial.legendre.leggauss(16)
        # from the top down, 64 panels at a time, until a batch holds < 1e-18 of the mass
        top = len(e) - 1
        rho_parts = []
        while top > 0:
            first = max(top - 64, 0)
            sub = e[first : top + 1]
            half = 0.5 * np.diff(sub)[:, None]
            nodes = 0.5 * (sub[:-1] + sub[1:])[:, None] + half * gx
            part = self._density(nodes.ravel())[0].reshape(nodes.shape)  # best values (see cdf)
            rho_parts.insert(0, part)
            top = first
            if (part * gw * half).sum() < 1e-18 and self._lo == 0.0:
                break
        e = e[top:]
        rho = np.concatenate(rho_parts)
        half = 0.5 * np.diff(e)[:, None]
        mass = (rho * gw * half).sum(axis=1)
        # Legendre coefficients of ρ on each panel (16-point rule: exact transform to degree 15)
        vander = np.polynomial.legendre.legvander(gx, 15)
        coef = np.linalg.solve(vander, rho.T).T
        above = np.concatenate([np.cumsum(mass[::-1])[::-1][1:], [0.0]])  # mass above each panel
        self._table = (e, coef, mass, above, rho)
        return self._table

    def cdf(self, lam):
        """P(λ_JJᵀ ≤ λ), atoms included: 1 − ∫_λ^hi ρ − (atoms above λ), by Gauss–Legendre
        panels over the support (λ below hi·1e-300 get the value at hi·1e-300). It integrates
        the density's best values, also where :meth:`density` returns NaN (a far lower tail
        that the law of D² does not resolve: there the cdf is as good as those values)."""
        lam = _validate.real_array(lam, "lam")
        flat = lam.ravel()
        if self._continuous_mass() == 0.0:  # atoms only
            out = np.zeros(flat.size)
            for at, mass in self.atoms:
                out += np.where(flat >= at, mass, 0.0)
            out = np.clip(out, 0.0, 1.0).reshape(lam.shape)
            return float(out) if lam.ndim == 0 else out
        e, coef, mass, above, _ = self._cdf_table()
        out = np.empty(flat.size)
        for i, v in enumerate(flat):
            if v < 0.0:
                out[i] = 0.0
            elif v >= e[-1]:
                out[i] = 1.0
            elif v <= e[0]:
                out[i] = self.atom if self._lo > 0.0 else 1.0 - above[0] - mass[0]
            else:
                p = min(np.searchsorted(e, v, side="right") - 1, len(mass) - 1)
                a, b = e[p], e[p + 1]
                x = (2.0 * v - a - b) / (b - a)
                integ = np.polynomial.legendre.legint(coef[p], lbnd=x)
                part = np.polynomial.legendre.legval(1.0, integ) * 0.5 * (b - a)
                out[i] = 1.0 - above[p] - part
        for at, mass in self.atoms:  # the continuous part's complement excludes the atoms above λ
            if at > 0.0:
                out -= np.where(flat < at, mass, 0.0)
        out = np.clip(out, 0.0, 1.0).reshape(lam.shape)
        return float(out) if lam.ndim == 0 else out

    def quantile(self, p):
        """The smallest λ with cdf(λ) ≥ p: an atom's location where p falls in its mass (0 for
        p ≤ atom), else bisection (in ln λ across decades) on :meth:`cdf`'s interpolant; the
        lower edge of the continuous part for p = 0 when there is no atom at 0."""
        p = _validate.real_array(p, "p", low=0.0, high=1.0)
        flat = p.ravel()
        out = np.empty(flat.size)
        if self._continuous_mass() == 0.0:  # atoms only
            levels = np.cumsum([m for _, m in self.atoms])
            for i, v in enumerate(flat):
                out[i] = self.atoms[min(int(np.searchsorted(levels, v - 1e-15)), len(levels) - 1)][0]
            out = out.reshape(p.shape)
            return float(out) if p.ndim == 0 else out
        e = self._cdf_table()[0]
        top = self.cdf(e[-1])  # below the atoms at λ > 0, which sit above the continuous part
        for i, v in enumerate(flat):
            if v <= self.atom:
                out[i] = 0.0 if self.atom > 0.0 else (self._lo if self._lo > 0.0 else 0.0)
                continue
            if v > top:
                acc = top
                out[i] = e[-1]
                for at, mass in self.atoms:
                    if at > 0.0:
                        acc += mass
                        out[i] = at
                        if acc >= v - 1e-15:
                            break
                continue
            if v <= self.cdf(e[0]):
                out[i] = e[0]
                continue
            lo, hi = e[0], e[-1]
            for _ in range(400):
                mid = 0.5 * (lo + hi) if hi < 4.0 * lo else math.exp(0.5 * (math.log(lo) + math.log(hi)))
                if mid <= lo or mid >= hi:
                    break
                if self.cdf(mid) < v:
                    lo = mid
                else:
                    hi = mid
            out[i] = 0.5 * (lo + hi)
        out = out.reshape(p.shape)
        return float(out) if p.ndim == 0 else out


def jacobian_spectrum(activation, sigma_w, sigma_b, depth, weights="gaussian"):
    """The law of the eigenvalues of J Jᵀ at depth L in the mean-field limit (a
    :class:`JacobianSpectrum`: ``density``, ``cdf``, ``quantile``, ``support``,
    ``moments``, ``mean``, ``variance``, ``atom``), at q*(σ_w, σ_b)."""
    act = _activation(activation)
    sw = _validate.real_scalar(sigma_w, "sigma_w", low=0.0)
    sb = _validate.real_scalar(sigma_b, "sigma_b", low=0.0)
    depth = _validate.positive_int(depth, "depth", low=1)
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    if depth == 1 and weights == "orthogonal":
        raise ValueError(
            "depth 1 with orthogonal weights: J Jᵀ = σ_w² D², whose law is that of σ_w² φ'(h)², h ~ N(0, q*) "
            "(no free convolution; its moments are σ_w^{2k} μ_k, see jacobian_moments)"
        )
    return JacobianSpectrum(act, sw, sb, depth, weights)

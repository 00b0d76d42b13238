"""Streaming statistics of Jacobian chains: :class:`JacobianResult`.

A result holds, for every recorded layer and every quantity of :func:`quantities`, the statistics
a :class:`~fastprop.ChainResult` holds for ‖x_ℓ‖ (fixed histogram of log10, threshold counts,
exact sums of the value's square, its log and the log's square), with the same merge rules: the
results of disjoint chain ranges add up exactly. :meth:`JacobianResult.law` gives any quantity's
statistics as a ChainResult (its "norm" is that quantity), so tails with intervals, quantiles and
histograms work as they do for the forward norm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import _validate
from ..chains import exactsum
from ..chains.common import NBINS
from ..chains.result import COUNTS, ChainResult, empty_result
from ..run import files as _io

__all__ = ["JacobianResult", "quantities"]


def quantities(d):
    """The names of the recorded quantities of a width-d chain, in slot order: "s1" … "s<d>" (the
    singular values of J_ℓ, largest first), "r1" … "r<d>" (|T_ii| of the QR form J_ℓ V = Q_ℓ T_ℓ,
    whose logs over ℓ estimate the Lyapunov exponents; V = I, or V e_1 = x̂_0 for positively
    homogeneous φ with σ_b = 0 (params["qr_frame"]), where r1 = ‖x_ℓ‖/‖x_0‖), "backward" (‖J_ℓᵀ u‖), "forward"
    (‖J_ℓ v‖), "s2/s1" and "effective_rank" ((Σ s_i)²/Σ s_i²)."""
    return (*(f"s{i + 1}" for i in range(d)), *(f"r{i + 1}" for i in range(d)), "backward", "forward", "s2/s1",
            "effective_rank")  # fmt: skip


@dataclass(eq=False)
class JacobianResult:
    """Statistics of the input–output Jacobians J_ℓ = ∂x_ℓ/∂x_0 of ``n`` random networks at the
    recorded ``layers`` (:func:`fastprop.simulate_jacobians`).

    ``stats`` holds them as one :class:`~fastprop.ChainResult` whose slots are (quantity, layer)
    pairs, quantity-major; use :meth:`law`, :meth:`mean_log_singular_values` and
    :meth:`lyapunov` rather than reading it directly.
    """

    params: dict
    layers: np.ndarray
    stats: ChainResult
    meta: dict = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of chains."""
        return self.stats.n

    @property
    def width(self) -> int:
        return self.params["width"]

    @property
    def quantities(self):
        """The names :meth:`law` accepts (:func:`quantities`)."""
        return quantities(self.width)

    def __repr__(self):
        p = self.params
        return (f"JacobianResult(width={p['width']}, depth={p['depth']}, activation={p['activation']!r}, "
                f"sigma_w={p['sigma_w']:g}, sigma_b={p['sigma_b']:g}, weights={p['weights']!r}, "
                f"method={p['method']!r}, rms_norm={p['rms_norm']}, n={self.n}, "
                f"layers={self.layers.tolist()})")  # fmt: skip

    def _slot(self, layer):
        try:
            return ChainResult._slot(self, layer)
        except ValueError as exc:
            raise ValueError(str(exc).replace("simulate_chains", "simulate_jacobians")) from None

    def law(self, quantity) -> ChainResult:
        """The statistics of one quantity (a name of :func:`quantities`, e.g. ``"s1"``,
        ``"backward"``, ``"s2/s1"``) at every recorded layer, as a ChainResult whose "norm" is that
        quantity: ``law("s1").tail_probability(t, layer=ℓ)`` is P(s_1(J_ℓ) > t) with its interval
        (t among the declared ``thresholds``), ``.quantile``, ``.histogram``, ``.mean_log_norm``
        (E log) and ``.std_log_norm`` likewise. The histogram spans 1e-330 … 1e330; values beyond
        fall in its end bins (quantiles there are clamped), while E log and its spread are exact
        sums whatever the value."""
        names = self.quantities
        if quantity not in names:
            raise ValueError(f"unknown quantity {quantity!r}; choose one of {', '.join(names)}")
        q = names.index(quantity)
        nrec = self.layers.size
        part = slice(q * nrec, (q + 1) * nrec)
        arrays = {k: getattr(self.stats, k)[part] for k in COUNTS}
        norms = None if self.stats.norms is None else self.stats.norms[part]
        params = dict(self.stats.params, quantity=quantity)
        return ChainResult(params=params, layers=self.layers, thresholds=self.stats.thresholds,
                           chain_ranges=list(self.stats.chain_ranges), norms=norms, meta=dict(self.meta),
                           **arrays)  # fmt: skip

    def mean_log_singular_values(self, layer=-1):
        """E log s_i(J_ℓ), i = 1 … d (natural log, largest first); −inf where some chains have
        s_i = 0 (a rank-deficient Jacobian: ReLU units all off, or RMS normalisation)."""
        s = self._slot(layer)
        return np.array([self.law(f"s{i + 1}").mean_log_norm(s - self.layers.size) for i in range(self.width)])

    def lyapunov(self, layer=-1, level=0.95, nonzero=False):
        """The Lyapunov spectrum from the QR diagonals: λ_i ≈ E log |T_ii(J_ℓ)| / ℓ (Benettin et
        al. 1980), natural log, largest first, with a ``level`` confidence interval from the spread
        over chains (normal approximation, z · std / √m / ℓ over the m chains used). Returns (λ,
        ci_low, ci_high) as arrays of d. The estimate of λ_i = lim (1/L) E log s_i(J_L) has a bias
        O(1/ℓ) from the initial transient: record a deep layer.

        Where some chains have |T_ii| = 0 (their Jacobian lost that direction exactly: every ReLU
        unit of a layer off, or the RMS normalisation's projection) the exponent is −inf; with
        ``nonzero=True`` it is conditioned on |T_ii| > 0 instead (the share of such chains is
        ``law(f"r{i}").zeros``)."""
        s = self._slot(layer)
        ell = int(self.layers[s])
        if ell == 0:
            raise ValueError("the Lyapunov exponents need a recorded layer ℓ ≥ 1")
        level = _validate.real_scalar(level, "level", low=0.0, low_open=True)
        if not level < 1.0:
            raise ValueError(f"level must be in (0, 1), got {level!r}")
        nonzero = _validate.boolean(nonzero, "nonzero")
        from scipy import stats

        z = stats.norm.isf((1.0 - level) / 2)
        lam = np.full(self.width, np.nan)
        half = np.zeros(self.width)
        j = s - self.layers.size
        for i in range(self.width):
            r = self.law(f"r{i + 1}")
            lam[i] = r.mean_log_norm(j, nonzero=nonzero) / ell
            m = r._finite_count(s)
            if math.isfinite(lam[i]):  # (NaN for a single chain: no spread to estimate)
                half[i] = z * r.std_log_norm(j) / math.sqrt(m) / ell if m > 1 else math.nan
        return lam, lam - half, lam + half

    # -------------------------------------------------------------- combine
    def merge(self, other) -> JacobianResult:
        """The result over the union of two disjoint chain ranges (exact: bit for bit the run over
        the union)."""
        if not isinstance(other, JacobianResult):
            raise TypeError(f"can only merge another JacobianResult, got {type(other).__name__}")
        if self.params != other.params or not np.array_equal(self.layers, other.layers):
            raise ValueError("cannot merge results of different simulations (parameters or recorded layers differ)")
        return JacobianResult(params=dict(self.params), layers=self.layers.copy(), stats=self.stats.merge(other.stats),
                              meta=dict(self.meta))  # fmt: skip

    def identical(self, other) -> bool:
        """True when both hold exactly the same statistics (``meta`` aside)."""
        return (isinstance(other, JacobianResult) and self.params == other.params
                and np.array_equal(self.layers, other.layers) and self.stats.identical(other.stats))  # fmt: skip

    # ----------------------------------------------------------------- files
    _DIMS = {"layers": ("layer",), "thresholds": ("threshold",), "hist": ("slot", "bin"), "zeros": ("slot",),
             "n_inf": ("slot",), "n_nan": ("slot",), "above": ("slot", "threshold"),
             "below": ("slot", "threshold"), "sums": ("slot", "moment", "limb"), "sq_inf": ("slot",),
             "norms": ("slot", "chain")}  # fmt: skip

    def _info(self):
        return {"format": "fastprop.JacobianResult/1", "params": self.params,
                "chain_ranges": [list(map(int, r)) for r in self.stats.chain_ranges], "meta": self.meta}  # fmt: skip

    def _arrays(self):
        arrays = {"layers": self.layers, "thresholds": self.stats.thresholds}
        arrays.update({k: getattr(self.stats, k) for k in COUNTS})
        if self.stats.norms is not None:
            arrays["norms"] = self.stats.norms
        return arrays

    def save(self, path):
        """Write the result to ``path`` atomically (``.npz``; ``.nc`` needs the xarray extra)."""
        return _io.save(path, self._info(), self._arrays(), self._DIMS, coords=("layers", "thresholds"))

    @classmethod
    def load(cls, path) -> JacobianResult:
        """Read a result written by :meth:`save`, bit for bit."""
        info, arrays = _io.load(path, "JacobianResult")
        params, ranges = info.get("params"), info.get("chain_ranges")
        if not isinstance(params, dict) or not isinstance(params.get("width"), int) or not isinstance(ranges, list):
            raise _io.FileFormatError(f"{str(path)!r}: no parameter record")
        d = params["width"]
        _io.check_arrays(path, arrays, {
            "layers": ("layer",), "thresholds": ("threshold",), "hist": ("slot", NBINS + 2), "zeros": ("slot",),
            "n_inf": ("slot",), "n_nan": ("slot",), "above": ("slot", "threshold"),
            "below": ("slot", "threshold"), "sums": ("slot", 3, exactsum.NLIMB), "sq_inf": ("slot",),
            "norms": ("slot", None)}, optional=("norms",))  # fmt: skip
        layers = arrays["layers"]
        if arrays["hist"].shape[0] != len(quantities(d)) * layers.size:
            raise _io.FileFormatError(f"{str(path)!r}: its statistics do not match width {d} and its layers")
        stats = _stats(params, layers, arrays["thresholds"], [tuple(r) for r in ranges], info.get("meta", {}),
                       {k: arrays[k] for k in COUNTS}, arrays.get("norms"))  # fmt: skip
        counted = stats.hist.sum(axis=1) + stats.zeros + stats.n_inf + stats.n_nan
        if np.any(counted != stats.n):
            raise _io.FileFormatError(f"{str(path)!r}: its counts do not add up to its {stats.n} chains")
        return cls(params=params, layers=layers, stats=stats, meta=info.get("meta", {}))


def _stats(params, layers, thresholds, ranges, meta, counts, norms):
    nslots = len(quantities(params["width"])) * layers.size
    return ChainResult(params=params, layers=np.arange(nslots, dtype=np.int64), thresholds=thresholds,
                       chain_ranges=ranges, norms=norms, meta=meta, **counts)  # fmt: skip


def empty_jacobian_result(params, layers, thresholds, first, n, keep_values, meta):
    """A result with zeroed statistics for chains first … first + n − 1."""
    nslots = len(quantities(params["width"])) * layers.size
    stats = empty_result(params, np.arange(nslots, dtype=np.int64), thresholds, first, n, keep_values, meta)
    return JacobianResult(params=params, layers=layers, stats=stats, meta=meta)

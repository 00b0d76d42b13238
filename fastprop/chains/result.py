"""Streaming statistics of chain norms: :class:`ChainResult` and :class:`TailEstimate`.

Everything a result holds is an integer count or an exact sum
(:mod:`fastprop.chains.exactsum`), so results of disjoint chain ranges add up exactly:
``merge`` of the halves [0, n/2) and [n/2, n) equals the run over [0, n) bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import _validate
from ..run import files as _io
from . import exactsum
from .common import BINS_PER_DECADE, LOG10_MAX, LOG10_MIN, NBINS, hist_edges

__all__ = ["ChainResult", "TailEstimate"]

INTERVALS = ("wilson", "clopper-pearson")


@dataclass(frozen=True)
class TailEstimate:
    """A Monte-Carlo probability with its confidence interval.

    ``p = hits / n``; ``[ci_low, ci_high]`` covers the true probability with
    probability ≈ ``level``: the Wilson score interval (Wilson 1927; good
    coverage down to a handful of hits) or the exact Clopper–Pearson interval
    (Clopper & Pearson 1934; conservative).
    """

    p: float
    ci_low: float
    ci_high: float
    hits: int
    n: int
    level: float = 0.95
    interval: str = "wilson"

    @property
    def rel_error(self) -> float:
        """Half-width of the interval relative to p (inf when p = 0)."""
        return (self.ci_high - self.ci_low) / (2 * self.p) if self.p > 0 else math.inf

    def __str__(self):
        ci = f"[{self.ci_low:.4g}, {self.ci_high:.4g}]"
        return f"{self.p:.4g} {ci} ({self.hits}/{self.n}, {self.level:.0%} {self.interval})"


def binomial_interval(hits, n, level=0.95, interval="wilson"):
    """(low, high) confidence interval for a binomial proportion hits/n."""
    if not isinstance(interval, str) or interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}; choose one of {', '.join(INTERVALS)}")
    level = _validate.real_scalar(level, "level", low=0.0, low_open=True)
    if not level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    alpha = 1.0 - level
    from scipy import stats  # on first use: importing it costs half a second

    if interval == "wilson":
        z = stats.norm.isf(alpha / 2)
        p = hits / n
        denom = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        return max(0.0, centre - half), min(1.0, centre + half)
    low = 0.0 if hits == 0 else float(stats.beta.ppf(alpha / 2, hits, n - hits + 1))
    high = 1.0 if hits == n else float(stats.beta.ppf(1 - alpha / 2, hits + 1, n - hits))
    return low, high


COUNTS = ("hist", "zeros", "n_inf", "n_nan", "above", "below", "sums", "sq_inf")
"""The statistics a result holds, in the argument order of the stats kernels."""


@dataclass(eq=False)
class ChainResult:
    """Statistics of ‖x_ℓ‖ over chains ``chain_ranges`` at the recorded ``layers``.

    Per recorded layer (axis 0 of every array): ``hist`` counts log10‖x‖ on the
    fixed global bins :func:`fastprop.chains.hist_edges` (index 0 underflow,
    last overflow); ``zeros`` counts exact zeros; ``n_inf`` / ``n_nan`` count
    overflowed and undefined norms; ``above[:, k]`` / ``below[:, k]`` count
    ‖x‖ > t_k and ‖x‖ < t_k for the declared ``thresholds`` (an overflowed
    norm counts as above every threshold, a NaN as neither); ``sums[:, j]``
    are exact sums of ‖x‖², log‖x‖ and (log‖x‖)² over finite non-zero norms;
    ``sq_inf`` counts norms whose square overflows. ``norms`` (optional) keeps
    every recorded log‖x‖ in chain order.
    """

    params: dict
    layers: np.ndarray
    thresholds: np.ndarray
    chain_ranges: list
    hist: np.ndarray
    zeros: np.ndarray
    n_inf: np.ndarray
    n_nan: np.ndarray
    above: np.ndarray
    below: np.ndarray
    sums: np.ndarray
    sq_inf: np.ndarray
    norms: np.ndarray | None = None
    meta: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ basics
    @property
    def n(self) -> int:
        """Number of chains."""
        return int(sum(b - a for a, b in self.chain_ranges))

    def __repr__(self):
        p = self.params
        return (
            f"ChainResult(width={p['width']}, depth={p['depth']}, activation={p['activation']!r}, "
            f"sigma_w={p['sigma_w']:g}, sigma_b={p['sigma_b']:g}, weights={p['weights']!r}, "
            f"method={p['method']!r}, n={self.n}, layers={self.layers.tolist()}, "
            f"thresholds={self.thresholds.tolist()})"
        )

    def _slot(self, layer) -> int:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {type(layer).__name__}")
        layer = int(layer)
        if layer < 0:
            if -layer > self.layers.size:
                raise ValueError(
                    f"layer={layer}: only {self.layers.size} layers were recorded ({self.layers.tolist()})"
                )
            return self.layers.size + layer
        hit = np.flatnonzero(self.layers == layer)
        if hit.size == 0:
            raise ValueError(
                f"layer {layer} was not recorded; recorded layers are {self.layers.tolist()} "
                "(pass layers= to simulate_chains, or a negative index into them)"
            )
        return int(hit[0])

    # ------------------------------------------------------------ estimates
    def tail_probability(self, t, side="upper", layer=-1, level=0.95, interval="wilson") -> TailEstimate:
        """P(‖x_ℓ‖ > t) (``side="upper"``) or P(‖x_ℓ‖ < t) (``"lower"``) with a
        confidence interval (``interval`` "wilson" or "clopper-pearson").

        ``t`` must be one of the declared ``thresholds`` (exact counts), unless
        the raw norms were kept. ``layer`` is a recorded depth ℓ, or a negative
        index into ``layers`` (−1: the deepest recorded).
        """
        if not isinstance(side, str) or side not in ("upper", "lower"):
            raise ValueError(f"side must be 'upper' or 'lower', got {side!r}")
        s = self._slot(layer)
        t = _validate.real_scalar(t, "t", low=0.0, low_open=True)
        k = np.flatnonzero(self.thresholds == t)
        if k.size:
            hits = int((self.above if side == "upper" else self.below)[s, k[0]])
        elif self.norms is not None:
            if not (t > 0 and math.isfinite(t)):
                raise ValueError(f"t must be a positive finite threshold, got {t!r}")
            v = self.norms[s]
            lt = math.log(t)
            hits = int(np.count_nonzero(v > lt if side == "upper" else v < lt))
        else:
            raise ValueError(
                f"t={t!r} is not a declared threshold ({self.thresholds.tolist()}); pass it in "
                "simulate_chains(thresholds=...) or run with keep_norms=True"
            )
        lo, hi = binomial_interval(hits, self.n, level, interval)
        return TailEstimate(hits / self.n, lo, hi, hits, self.n, level, interval)

    def zero_probability(self, layer=-1, level=0.95, interval="wilson") -> TailEstimate:
        """P(‖x_ℓ‖ = 0) (e.g. a ReLU network with every unit of a layer inactive)."""
        s = self._slot(layer)
        hits = int(self.zeros[s])
        lo, hi = binomial_interval(hits, self.n, level, interval)
        return TailEstimate(hits / self.n, lo, hi, hits, self.n, level, interval)

    def _finite_count(self, s):
        return int(self.hist[s].sum())

    def mean_sq_norm(self, layer=-1) -> float:
        """E‖x_ℓ‖² over all chains (zeros included; inf if a square overflowed,
        NaN if some norms were undefined)."""
        s = self._slot(layer)
        if self.n_nan[s]:
            return math.nan
        if self.n_inf[s] or self.sq_inf[s]:
            return math.inf
        return exactsum.value(self.sums[s, 0]) / self.n

    def mean_log_norm(self, layer=-1, nonzero=False) -> float:
        """E log‖x_ℓ‖ (natural log). With zeros present this is −inf unless
        ``nonzero=True``, which conditions on ‖x_ℓ‖ > 0."""
        s = self._slot(layer)
        if self.n_nan[s]:
            return math.nan
        if self.n_inf[s]:
            return math.inf
        if self.zeros[s] and not nonzero:
            return -math.inf
        m = self._finite_count(s)
        return exactsum.value(self.sums[s, 1]) / m if m else math.nan

    def std_log_norm(self, layer=-1, nonzero=True) -> float:
        """Standard deviation of log‖x_ℓ‖ over the finite non-zero norms."""
        s = self._slot(layer)
        m = self._finite_count(s)
        if m < 2:
            return math.nan
        # exact integer moments: m·Σv² − (Σv)², rounded once
        s1 = exactsum.to_int(self.sums[s, 1])
        s2 = exactsum.to_int(self.sums[s, 2])
        scale = 1 << exactsum.OFFSET
        var = (m * s2 * scale - s1 * s1) / (m * (m - 1) * scale * scale)
        return math.sqrt(max(var, 0.0))

    def histogram(self, layer=-1, trim=True):
        """``(counts, edges)`` of log10‖x_ℓ‖ on the fixed global bins, like
        ``np.histogram``; ``trim`` drops empty bins at both ends. Zeros, non-finite
        norms and the under/overflow bins are not included (see ``zeros``, ``n_inf``)."""
        s = self._slot(layer)
        counts = self.hist[s, 1:-1]
        edges = hist_edges()
        if trim:
            nz = np.flatnonzero(counts)
            if nz.size:
                counts = counts[nz[0] : nz[-1] + 1]
                edges = edges[nz[0] : nz[-1] + 2]
        return counts.copy(), edges.copy()

    def quantile(self, q, layer=-1):
        """Quantile(s) of ‖x_ℓ‖. Exact with ``keep_norms=True``; otherwise read off
        the histogram, interpolating log-linearly inside a bin (resolution
        1/50 decade, ≈ 4.7 % in ‖x‖). Zeros are the lowest values; NaN norms are
        left out."""
        qs = _validate.real_array(q, "q", low=0.0, high=1.0)
        s = self._slot(layer)
        if self.norms is not None:
            v = self.norms[s]
            out = np.exp(np.quantile(v[~np.isnan(v)], qs))
            return float(out) if out.ndim == 0 else out
        counts = np.concatenate([[self.zeros[s]], self.hist[s], [self.n_inf[s]]]).astype(float)
        cum = np.cumsum(counts)
        total = cum[-1]
        res = []
        for qq in qs.reshape(-1):
            r = qq * total
            j = int(np.searchsorted(cum, r, side="left"))
            j = min(j, counts.size - 1)
            while counts[j] == 0 and j < counts.size - 1:
                j += 1
            if j == 0:
                res.append(0.0)
            elif j == counts.size - 1:
                res.append(math.inf)
            elif j == 1 or j == counts.size - 2:
                res.append(10.0 ** (LOG10_MIN if j == 1 else LOG10_MAX))
            else:
                frac = (r - (cum[j] - counts[j])) / counts[j]
                lo = LOG10_MIN + (j - 2) / BINS_PER_DECADE
                res.append(10.0 ** (lo + min(max(frac, 0.0), 1.0) / BINS_PER_DECADE))
        out = np.array(res).reshape(qs.shape)
        return float(out) if out.ndim == 0 else out

    # -------------------------------------------------------------- combine
    def _compatible(self, other):
        if not isinstance(other, ChainResult):
            raise TypeError(f"can only merge ChainResult objects, got {type(other).__name__}")
        diff = {
            k: (self.params.get(k), other.params.get(k))
            for k in self.params.keys() | other.params.keys()
            if self.params.get(k) != other.params.get(k)
        }
        if None in diff.get("activation_fingerprint", ()):  # a file from before fingerprints: trust the name
            del diff["activation_fingerprint"]
        if diff:
            raise ValueError(f"cannot merge results of different simulations: {diff}")
        if not (np.array_equal(self.layers, other.layers) and np.array_equal(self.thresholds, other.thresholds)):
            raise ValueError("cannot merge results with different recorded layers or thresholds")
        if (self.norms is None) != (other.norms is None):
            raise ValueError("cannot merge a result that kept raw norms with one that did not")

    def merge(self, other) -> ChainResult:
        """The result over the union of two disjoint chain ranges (exact)."""
        self._compatible(other)
        ranges = sorted(self.chain_ranges + other.chain_ranges)
        for (a0, a1), (b0, b1) in zip(ranges, ranges[1:], strict=False):
            if b0 < a1:
                raise ValueError(f"chain ranges overlap: [{a0}, {a1}) and [{b0}, {b1}); each chain may be counted once")
        counts = {k: getattr(self, k) + getattr(other, k) for k in COUNTS}
        for s in range(counts["sums"].shape[0]):
            for j in range(3):
                exactsum.normalize(counts["sums"][s, j])
        norms = None
        if self.norms is not None:
            pieces = _range_pieces(self) + _range_pieces(other)
            pieces.sort(key=lambda p: p[0])
            norms = np.concatenate([p[1] for p in pieces], axis=1)
        return ChainResult(
            params=dict(self.params),
            layers=self.layers.copy(),
            thresholds=self.thresholds.copy(),
            chain_ranges=_coalesce(ranges),
            norms=norms,
            meta=dict(self.meta),
            **counts,
        )

    def identical(self, other) -> bool:
        """True when both results hold exactly the same statistics (``meta`` aside)."""
        if not isinstance(other, ChainResult) or self.params != other.params:
            return False
        if self.chain_ranges != other.chain_ranges:
            return False
        arrays = ("layers", "thresholds", *COUNTS)
        if not all(np.array_equal(getattr(self, k), getattr(other, k)) for k in arrays):
            return False
        if (self.norms is None) != (other.norms is None):
            return False
        return self.norms is None or np.array_equal(self.norms, other.norms, equal_nan=True)

    # ----------------------------------------------------------------- files
    _DIMS = {
        "layers": ("layer",),
        "thresholds": ("threshold",),
        "hist": ("layer", "bin"),
        "zeros": ("layer",),
        "n_inf": ("layer",),
        "n_nan": ("layer",),
        "above": ("layer", "threshold"),
        "below": ("layer", "threshold"),
        "sums": ("layer", "moment", "limb"),
        "sq_inf": ("layer",),
        "norms": ("layer", "chain"),
    }

    def _info(self):
        return {
            "format": "fastprop.ChainResult/1",
            "params": self.params,
            "chain_ranges": [list(map(int, r)) for r in self.chain_ranges],
            "meta": self.meta,
        }

    def _arrays(self):
        arrays = {k: getattr(self, k) for k in ("layers", "thresholds", *COUNTS)}
        if self.norms is not None:
            arrays["norms"] = self.norms
        return arrays

    def save(self, path):
        """Write the result to ``path`` atomically: netCDF when the name ends in
        ``.nc`` (needs the xarray extra), ``.npz`` otherwise; :meth:`load` reads it back exactly."""
        return _io.save(path, self._info(), self._arrays(), self._DIMS, coords=("layers", "thresholds"))

    @classmethod
    def load(cls, path) -> ChainResult:
        """Read a result written by :meth:`save` (``.npz`` or netCDF), bit for bit."""
        info, arrays = _io.load(path, "ChainResult")
        _check_file(path, info, arrays)
        return cls(
            # files from before dtype existed are float64; from before fingerprints, None
            params={"dtype": "float64", "activation_fingerprint": None, **info["params"]},
            chain_ranges=[tuple(r) for r in info["chain_ranges"]],
            meta=info.get("meta", {}),
            norms=arrays.pop("norms", None),
            **arrays,
        )

    def to_xarray(self):
        """An ``xarray.Dataset`` of the statistics (dims layer, threshold, bin, …); needs xarray.

        ``hist`` counts log10‖x‖ on :func:`fastprop.chains.hist_edges` with an
        underflow and an overflow bin; ``sums`` are exact integer limbs
        (:mod:`fastprop.chains.exactsum`); the parameters are in the attributes.
        """
        return _io.dataset(self._info(), self._arrays(), self._DIMS, coords=("layers", "thresholds"))


_PARAMS = {
    "width": int, "depth": int, "activation": str, "sigma_w": float, "sigma_b": float, "weights": str,
    "method": str, "rms_norm": bool, "seed": int, "keep_norms": bool,
}  # fmt: skip
"""Parameters every result file records, with their types."""


def _check_file(path, info, arrays):
    """Structure and internal consistency of a loaded result (raises FileFormatError)."""
    where = repr(str(path))

    def bad(msg):
        raise _io.FileFormatError(f"{where}: {msg}")

    params, ranges = info.get("params"), info.get("chain_ranges")
    if not isinstance(params, dict) or not isinstance(info.get("meta", {}), dict):
        bad("no parameter record")
    for key, kind in _PARAMS.items():
        v = params.get(key)
        ok = isinstance(v, kind) or (kind is float and isinstance(v, int) and not isinstance(v, bool))
        if not ok or (kind is int and isinstance(v, bool)):
            bad(f"parameter {key!r} is {v!r}, expected a {kind.__name__}")
    size = _io.check_arrays(
        path,
        arrays,
        {
            "layers": ("layer",),
            "thresholds": ("threshold",),
            "hist": ("layer", NBINS + 2),
            "zeros": ("layer",),
            "n_inf": ("layer",),
            "n_nan": ("layer",),
            "above": ("layer", "threshold"),
            "below": ("layer", "threshold"),
            "sums": ("layer", 3, exactsum.NLIMB),
            "sq_inf": ("layer",),
            "norms": ("layer", None),
        },  # fmt: skip
        optional=("norms",),
    )
    for key in COUNTS:
        if arrays[key].dtype != np.int64:
            bad(f"{key!r} must hold int64 counts, has {arrays[key].dtype}")
    if not (
        isinstance(ranges, list)
        and ranges
        and all(isinstance(r, list) and len(r) == 2 and all(type(v) is int for v in r) for r in ranges)
    ):
        bad(f"chain_ranges must be a list of [start, stop] pairs, got {ranges!r}")
    for (a0, a1), nxt in zip(ranges, ranges[1:] + [None], strict=True):
        if not 0 <= a0 < a1 or (nxt is not None and nxt[0] < a1):
            bad(f"chain_ranges {ranges!r} are not increasing, disjoint ranges of chain indices")
    n = sum(b - a for a, b in ranges)
    layers = arrays["layers"]
    if size["layer"] == 0 or np.any(layers < 0) or np.any(layers > params["depth"]) or np.any(np.diff(layers) <= 0):
        bad(f"recorded layers {layers.tolist()} are not increasing depths in [0, {params['depth']}]")
    counted = arrays["hist"].sum(axis=1) + arrays["zeros"] + arrays["n_inf"] + arrays["n_nan"]
    if np.any(counted != n):
        bad(f"its counts ({counted.tolist()} norms per layer) do not add up to its {n} chains {ranges!r}")
    if np.any(arrays["above"] + arrays["below"] > n) or any(np.any(arrays[k] < 0) for k in COUNTS if k != "sums"):
        bad("its threshold counts are inconsistent with its number of chains")
    if "norms" in arrays and arrays["norms"].shape[1] != n:
        bad(f"it keeps {arrays['norms'].shape[1]} norms a layer for {n} chains")


def _coalesce(ranges):
    out = []
    for a, b in ranges:
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _range_pieces(r):
    """(start, norms) for each chain range of a result, in its stored order."""
    pieces, col = [], 0
    for a, b in r.chain_ranges:
        pieces.append((a, r.norms[:, col : col + (b - a)]))
        col += b - a
    return pieces


def empty_result(params, layers, thresholds, first_chain, n_chains, keep_norms, meta):
    """A result with zeroed statistics for ``n_chains`` chains from ``first_chain``."""
    ns, nt = layers.size, thresholds.size
    return ChainResult(
        params=params,
        layers=layers,
        thresholds=thresholds,
        chain_ranges=[(first_chain, first_chain + n_chains)],
        hist=np.zeros((ns, NBINS + 2), np.int64),
        zeros=np.zeros(ns, np.int64),
        n_inf=np.zeros(ns, np.int64),
        n_nan=np.zeros(ns, np.int64),
        above=np.zeros((ns, nt), np.int64),
        below=np.zeros((ns, nt), np.int64),
        sums=np.zeros((ns, 3, exactsum.NLIMB), np.int64),
        sq_inf=np.zeros(ns, np.int64),
        norms=np.empty((ns, n_chains)) if keep_norms else None,
        meta=meta,
    )

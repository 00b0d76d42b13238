r"""Dynamical-isometry maps over (σ_w, σ_b): μ_1, μ_2, the variance and the top of the
spectrum of J Jᵀ at depth L (Pennington, Schoenholz & Ganguli 2017, Fig. 1).

Normalised variances add under free multiplicative convolution, so with
m_1 = χ_1^L the mean of the eigenvalues of J Jᵀ,

.. math:: \frac{σ^2_{JJ^T}}{m_1^2} = L\Bigl(\frac{μ_2}{μ_1^2} - 1 + v_W\Bigr),

v_W = 1 for Gaussian weights (Marchenko–Pastur) and 0 for orthogonal ones
(Pennington et al. 2017, Table 1: L(μ_2/μ_1² − 1 − s_1), s_1 = −1 or 0). The
largest singular value s_max = √λ₊ is the upper edge of the support
(:func:`fastprop.spectra.freeprob.upper_edge`), computed per point when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .. import _validate
from ..activations import activation as _activation
from ..run import files as _io
from . import law, tabulate

EDGE_NSUB = 2
"""Refinement of the law of D² for the upper edge in maps (the edge lies off the
support; it agrees with the 8-fold law of :func:`fastprop.jacobian_spectrum` to
about 1e-13 relatively for tanh)."""

_FIELDS = ("q_star", "chi_1", "mu_1", "mu_2", "variance_gaussian", "variance_orthogonal",
           "s_max_gaussian", "s_max_orthogonal", "status")  # fmt: skip


@dataclass(eq=False)
class SpectrumMap:
    """J Jᵀ spectra over a (σ_w, σ_b) grid at depth L; 2-D arrays indexed [i_w, i_b].

    q_star, chi_1, status: from :func:`fastprop.meanfield_grid`. mu_1, mu_2: E φ'^2,
    E φ'^4 at q*. variance_gaussian, variance_orthogonal: σ²_{JJᵀ}(L) (module
    docstring). s_max_gaussian, s_max_orthogonal: the largest singular value of J
    (NaN unless computed: ``largest=True``).
    """

    sigma_w: np.ndarray
    sigma_b: np.ndarray
    q_star: np.ndarray
    chi_1: np.ndarray
    mu_1: np.ndarray
    mu_2: np.ndarray
    variance_gaussian: np.ndarray
    variance_orthogonal: np.ndarray
    s_max_gaussian: np.ndarray
    s_max_orthogonal: np.ndarray
    status: np.ndarray
    activation: str = "tanh"
    depth: int = 1
    meta: dict = field(default_factory=dict)

    def _arrays(self):
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}

    def save(self, path):
        """Write the map to ``path`` atomically (``.npz``; ``.nc`` needs the xarray extra)."""
        dims = {"sigma_w": ("sigma_w",), "sigma_b": ("sigma_b",), **dict.fromkeys(_FIELDS, ("sigma_w", "sigma_b"))}
        info = {"activation": self.activation, "depth": self.depth, "meta": self.meta,
                "format": "fastprop.SpectrumMap/1"}  # fmt: skip
        return _io.save(path, info, self._arrays(), dims, coords=("sigma_w", "sigma_b"))

    @classmethod
    def load(cls, path):
        """Read a map written by :meth:`save`; values round-trip bit for bit."""
        info, arrays = _io.load(path, "SpectrumMap")
        shapes = {"sigma_w": ("sigma_w",), "sigma_b": ("sigma_b",), **dict.fromkeys(_FIELDS, ("sigma_w", "sigma_b"))}
        _io.check_arrays(path, arrays, shapes)
        if not isinstance(info.get("activation"), str) or not isinstance(info.get("depth"), int):
            raise _io.FileFormatError(f"{str(path)!r}: no activation name or depth record")
        return cls(activation=info["activation"], depth=info["depth"], meta=info.get("meta", {}), **arrays)


def spectrum_variance(mu_1, mu_2, chi_1, depth, weights="gaussian"):
    """σ²_{JJᵀ}(L) = χ_1^{2L} L (μ_2/μ_1² − 1 + v_W), v_W = 1 (Gaussian) or 0 (orthogonal)."""
    v_w = {"gaussian": 1.0, "orthogonal": 0.0}[weights]
    mu_1 = np.asarray(mu_1, dtype=float)
    return np.asarray(chi_1, dtype=float) ** (2 * depth) * depth * (np.asarray(mu_2) / mu_1**2 - 1.0 + v_w)


def spectrum_map(activation, sigma_w, sigma_b, depth, *, largest=False, target="auto"):
    """μ_1, μ_2, σ²_{JJᵀ}(L) for both weight laws and (``largest=True``) the largest
    singular value of J over the grid ``sigma_w`` × ``sigma_b`` (1-D axes), at depth L
    (a :class:`SpectrumMap`). The χ_1 = 1 line is :func:`fastprop.edge_of_chaos`.
    ``largest`` costs an edge search on the law of D² a point (far more than the
    rest: a mean-field grid, on ``target``, and two quadratures a point)."""
    from ..meanfield import meanfield_grid

    act = _activation(activation)
    sw = _validate.axis(sigma_w, "sigma_w")
    sb = _validate.axis(sigma_b, "sigma_b")
    depth = _validate.positive_int(depth, "depth", low=1)
    largest = _validate.boolean(largest, "largest")
    g = meanfield_grid(act, sw, sb, target=target)
    q = np.ascontiguousarray(g.q_star, dtype=float).ravel()
    k = law.derivative_kernels(act)

    def quadrature(order):
        def mu(qs):
            out = np.empty(qs.size)
            k.mu_many(np.ascontiguousarray(qs), np.full(qs.size, order, np.int64), out)
            return out

        return mu

    mu1 = tabulate.mu_at(q, quadrature(1)).reshape(g.shape)
    mu2 = tabulate.mu_at(q, quadrature(2)).reshape(g.shape)
    chi1 = sw[:, None] ** 2 * mu1
    smax = {}
    for weights in ("gaussian", "orthogonal"):
        out = np.full(q.size, np.nan)
        if largest:
            w2 = np.repeat(sw**2, sb.size)
            k.upper_edges(q, w2, depth, weights == "orthogonal", EDGE_NSUB, out)
            out = np.sqrt(out)
        smax[weights] = out.reshape(g.shape)
    return SpectrumMap(
        sigma_w=sw, sigma_b=sb, q_star=g.q_star, chi_1=chi1, mu_1=mu1, mu_2=mu2,
        variance_gaussian=spectrum_variance(mu1, mu2, chi1, depth, "gaussian"),
        variance_orthogonal=spectrum_variance(mu1, mu2, chi1, depth, "orthogonal"),
        s_max_gaussian=smax["gaussian"], s_max_orthogonal=smax["orthogonal"], status=g.status,
        activation=act.name, depth=depth, meta={"target": g.target},
    )  # fmt: skip

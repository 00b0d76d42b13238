r"""Jacobian spectra in the mean-field limit, by free probability.

* :func:`jacobian_moments` — μ_k = ∫ φ'(√q z)^{2k} Dz (Pennington, Schoenholz &
  Ganguli 2017, Table 1), the moments of D² = diag φ'(h)², at q or at q*.
* :func:`jacobian_spectrum` — the law of the eigenvalues of J Jᵀ,
  J = D_L W_L ⋯ D_1 W_1, from S_{JJᵀ} = (S_{WWᵀ} S_{D²})^L: exact moments
  (:mod:`~fastprop.spectra.series`), the density by Newton on the S-transform
  equation (:mod:`~fastprop.spectra.freeprob`) over a discretised law of D²
  (:mod:`~fastprop.spectra.law`, compiled per activation from the template
  :mod:`~fastprop.spectra.derivatives`), cdf and quantiles.
* :func:`spectrum_map` — μ_1, μ_2, σ²_{JJᵀ}(L) for both weight laws and the
  largest singular value over a (σ_w, σ_b) grid (:mod:`~fastprop.spectra.maps`;
  μ_k through a certified series in ln q over the map's range,
  :mod:`~fastprop.spectra.tabulate`).
"""

from .maps import SpectrumMap, spectrum_map, spectrum_variance
from .spectrum import JacobianSpectrum, jacobian_moments, jacobian_spectrum

__all__ = [
    "JacobianSpectrum",
    "jacobian_moments",
    "jacobian_spectrum",
    "SpectrumMap",
    "spectrum_map",
    "spectrum_variance",
]

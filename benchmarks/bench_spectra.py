"""asv benchmarks of the mean-field Jacobian spectra (issue 18 goals: a density on 1000 λ
at depth 100 in ≤ 1 s; a 500 × 500 map of σ²_JJᵀ in ≤ 2 s). JIT warm-up in setup."""

import numpy as np

import fastprop as fp


class Density:
    """Density of J Jᵀ on 1000 λ over its support, depth 100, at σ_w = 1.5, σ_b = 0.3."""

    params = (["tanh", "erf", "gelu", "hard_tanh", "relu"], ["gaussian", "orthogonal"])
    param_names = ["activation", "weights"]
    timeout = 600

    def setup(self, activation, weights):
        self.spectrum = fp.jacobian_spectrum(activation, 1.5, 0.3, 100, weights)
        lo, hi = self.spectrum.support()
        self.lam = np.geomspace(max(lo, hi * 1e-12), hi, 1002)[1:-1]
        self.spectrum.density(self.lam)

    def time_density(self, activation, weights):
        fp.jacobian_spectrum(activation, 1.5, 0.3, 100, weights).density(self.lam)


class Map:
    """spectrum_map (μ_1, μ_2, σ²_JJᵀ for both weight laws) over σ_w ∈ [0.1, 5], σ_b ∈ [0, 3]."""

    params = (["tanh", "hard_tanh", "relu"], [500])
    param_names = ["activation", "n"]
    timeout = 600
    number = 1
    repeat = 3

    def setup(self, activation, n):
        self.sw = np.linspace(0.1, 5.0, n)
        self.sb = np.linspace(0.0, 3.0, n)
        fp.spectrum_map(activation, self.sw[:40], self.sb[:60], 100)

    def time_map(self, activation, n):
        fp.spectrum_map(activation, self.sw, self.sb, 100)

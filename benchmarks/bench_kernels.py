"""asv benchmarks of the NNGP / NTK kernels of a batch of inputs (issue 19 goal: n = 2000
inputs, depth 10, tanh, NNGP and NTK in ≤ 5 s on the 2-core development machine). JIT
warm-up in setup."""

import numpy as np

import fastprop as fp


class Batch:
    """fp.nngp on n Gaussian inputs in d0 = 50, σ_w = 1.5, σ_b = 0.3 (chaotic phase: correlations
    settle near c* ≈ 0.5, where Mehler's series serves almost every pair)."""

    params = (["tanh", "relu", "erf"], [500, 2000])
    param_names = ["activation", "n"]
    timeout = 900
    number = 1
    repeat = 3

    def setup(self, activation, n):
        self.X = np.random.default_rng(0).normal(size=(n, 50))
        fp.nngp(self.X[:8], 2, activation, 1.5, 0.3)

    def time_nngp_ntk_depth_10(self, activation, n):
        fp.nngp(self.X, 10, activation, 1.5, 0.3)

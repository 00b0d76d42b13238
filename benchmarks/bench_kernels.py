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


class Varied:
    """fp.nngp of 2000 inputs whose squared norms span four decades (like benchmarks/compare_kernels.py's
    job): a first layer at q up to 675, where many pairs need the exact integral."""

    timeout = 900
    number = 1
    repeat = 3

    def setup(self):
        rng = np.random.default_rng(1)
        x = rng.normal(size=(2000, 10))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        self.X = x * np.sqrt(10 * np.exp(rng.uniform(np.log(1e-2), np.log(1e2), 2000)))[:, None]
        fp.nngp(self.X[:8], 2, "tanh", 1.5, 0.3)

    def time_tanh_depth_10_last_layer(self):
        fp.nngp(self.X, 10, "tanh", 1.5, 0.3, layers=[10])


class Networks:
    """fp.simulate_kernels: 17 inputs, depth 10, NNGP and NTK (the CLI's finite-width job)."""

    params = ([16, 64, 256],)
    param_names = ["width"]
    number = 1
    repeat = 3

    def setup(self, width):
        t = np.linspace(0, np.pi, 17)
        self.X = np.stack([np.cos(t), np.sin(t)], axis=1)
        fp.simulate_kernels(self.X, 4, 2, 2)

    def time_100_networks(self, width):
        fp.simulate_kernels(self.X, width, 10, 100, "tanh", 1.2, 0.1)

"""asv benchmarks of the mean-field engine (JIT warm-up in setup; first-call latency in bench_latency.py)."""

import numpy as np

import fastprop as fp


class Grid:
    """Whole-grid time; all six quantities. σ_w ∈ [0.1, 5], σ_b ∈ [0, 3] (the accuracy-contract range)."""

    params = (["tanh", "hard_tanh", "relu"], ["cpu", "parallel"], [100])
    param_names = ["activation", "target", "n"]
    timeout = 600

    def setup(self, activation, target, n):
        self.sw = np.linspace(0.1, 5.0, n)
        self.sb = np.linspace(0.0, 3.0, n)
        fp.meanfield_grid(activation, self.sw[:2], self.sb[:2], target=target)  # compile

    def time_grid(self, activation, target, n):
        fp.meanfield_grid(activation, self.sw, self.sb, target=target)


class GridLarge:
    """1000 × 1000 grid on all threads: smooth (erf), kinked (hard_tanh), closed form (relu).

    tanh is left out: about 4 minutes a run on 2 cores (see benchmarks/README.md).
    """

    params = (["erf", "hard_tanh", "relu"],)
    param_names = ["activation"]
    timeout = 1800
    number = 1
    repeat = 1

    def setup(self, activation):
        self.sw = np.linspace(0.1, 5.0, 1000)
        self.sb = np.linspace(0.0, 3.0, 1000)
        fp.meanfield_grid(activation, self.sw[:2], self.sb[:2], target="parallel")

    def time_grid_1000(self, activation):
        fp.meanfield_grid(activation, self.sw, self.sb, target="parallel")


class CudaGrid:
    """tanh 1000 × 1000, all six quantities, on the GPU (skipped without a usable
    GPU); goal on an H100: ≤ 0.2 s after compilation (issue 4)."""

    timeout = 600
    number = 1
    repeat = 3

    def setup(self):
        from fastprop.run.targets import resolve_target

        if resolve_target("auto") != "cuda":
            raise NotImplementedError("no usable CUDA GPU")
        self.sw = np.linspace(0.1, 5.0, 1000)
        self.sb = np.linspace(0.0, 3.0, 1000)
        fp.meanfield_grid("tanh", self.sw[:2], self.sb[:2], target="cuda")  # compile

    def time_tanh_grid_1000(self):
        fp.meanfield_grid("tanh", self.sw, self.sb, target="cuda")


class EdgeOfChaos:
    params = (["tanh", "relu", "erf"],)
    param_names = ["activation"]

    def setup(self, activation):
        self.sb = np.linspace(0.0, 3.0, 100)
        fp.edge_of_chaos(activation, self.sb[:2], target="cpu")

    def time_edge(self, activation):
        fp.edge_of_chaos(activation, self.sb, target="cpu")

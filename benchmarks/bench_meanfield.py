"""asv benchmarks of the mean-field engine (JIT warm-up and table build in setup;
first-call latency in bench_latency.py; the table build itself in ``Tables``)."""

import os

import numpy as np

import fastprop as fp
from fastprop.meanfield import interpolants
from fastprop.meanfield.tables import Tables


class Grid:
    """Whole-grid time; all six quantities. σ_w ∈ [0.1, 5], σ_b ∈ [0, 3] (the accuracy-contract range)."""

    params = (["tanh", "hard_tanh", "relu"], ["cpu", "parallel"], [100])
    param_names = ["activation", "target", "n"]
    timeout = 600

    def setup(self, activation, target, n):
        self.sw = np.linspace(0.1, 5.0, n)
        self.sb = np.linspace(0.0, 3.0, n)
        fp.meanfield_grid(activation, self.sw, self.sb, target=target)  # compile, build the tables it needs

    def time_grid(self, activation, target, n):
        fp.meanfield_grid(activation, self.sw, self.sb, target=target)


class GridLarge:
    """1000 × 1000 grid on all threads: tanh (the issue-15 goal: ≥ 10× NumPy GH-64 for q*
    and χ_1 alone, see compare.py), smooth (erf), kinked (hard_tanh), closed form (relu)."""

    params = (["tanh", "erf", "hard_tanh", "relu"],)
    param_names = ["activation"]
    timeout = 1800
    number = 1
    repeat = 3

    def setup(self, activation):
        self.sw = np.linspace(0.1, 5.0, 1000)
        self.sb = np.linspace(0.0, 3.0, 1000)
        fp.meanfield_grid(activation, self.sw[::10], self.sb, target="parallel")  # builds the tables it needs

    def time_grid_1000(self, activation):
        fp.meanfield_grid(activation, self.sw, self.sb, target="parallel")


class GridHuge:
    """A 10⁷-point tanh grid (3000 × 3334) on all threads: memory is that of the outputs
    (57 bytes a point), nothing else grows with the grid."""

    timeout = 1800
    number = 1
    repeat = 1

    def setup(self):
        self.sw = np.linspace(0.1, 5.0, 3000)
        self.sb = np.linspace(0.0, 3.0, 3334)
        fp.meanfield_grid("tanh", self.sw[::30], self.sb, target="parallel")

    def time_tanh_grid_1e7(self):
        fp.meanfield_grid("tanh", self.sw, self.sb, target="parallel")

    def peakmem_tanh_grid_1e7(self):
        fp.meanfield_grid("tanh", self.sw, self.sb, target="parallel")


class TableBuild:
    """Building an activation's tables (normally done once per machine and cached):
    the one-dimensional table (485 ln q panels) with the q* start table, and one ln q
    panel's 7 pair boxes, start table and c* table (q ∈ [2.7, 7.4], where a tanh
    grid's chaotic points live)."""

    params = (["tanh", "hard_tanh", "gelu"],)
    param_names = ["activation"]
    timeout = 600
    number = 1
    repeat = 3

    def setup(self, activation):
        self._env = os.environ.get("FASTPROP_CACHE_DIR")
        os.environ["FASTPROP_CACHE_DIR"] = "off"  # build, never load
        self.t = Tables(fp.activation(activation))
        self.panel = int(1 - interpolants.LNQ_LO)
        self.t.build_panels([self.panel])  # compiles the node drivers

    def teardown(self, activation):
        if self._env is None:
            os.environ.pop("FASTPROP_CACHE_DIR", None)
        else:
            os.environ["FASTPROP_CACHE_DIR"] = self._env

    def time_one_dimensional_table(self, activation):
        Tables(fp.activation(activation)).ensure_q_start()

    def time_pair_panel(self, activation):
        self.t.OK2[self.panel] = 0
        self.t.SD[self.panel] = 0.0
        self.t.OKC[self.panel] = 0
        self.t.build_panels([self.panel])


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
        fp.edge_of_chaos(activation, self.sb, target="cpu")

    def time_edge(self, activation):
        fp.edge_of_chaos(activation, self.sb, target="cpu")

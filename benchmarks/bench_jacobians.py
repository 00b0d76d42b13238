"""asv benchmarks of the Jacobian engine (JIT warm-up in setup; results are chains per second)."""

import fastprop as fp


class Jacobians:
    """sampler × activation at width 10, depth 100, the full spectrum at the last layer, all threads
    (issue 17's goals: dense ≥ 20 000 chains/s, the triangular sampler ≥ 10× dense; relu and tanh
    with σ_w = 1, relu with σ_b = 0)."""

    params = (["dense", "rotated", "triangular"], ["linear", "relu", "tanh"])
    param_names = ["method", "activation"]
    timeout = 600

    def setup(self, method, activation):
        if method == "triangular" and activation == "tanh":
            raise NotImplementedError("the triangular sampler is for linear, relu and abs chains (σ_b = 0)")
        self.kw = dict(width=10, depth=100, activation=activation, method=method, target="parallel",
                       sigma_b=0.1 if activation == "tanh" else 0.0)  # fmt: skip
        self.n = 4000
        fp.simulate_jacobians(n_chains=10, **self.kw)  # compile

    def time_jacobians(self, method, activation):
        fp.simulate_jacobians(n_chains=self.n, **self.kw)

    def track_chains_per_second(self, method, activation):
        import time

        t = time.perf_counter()
        fp.simulate_jacobians(n_chains=self.n, **self.kw)
        return self.n / (time.perf_counter() - t)

    track_chains_per_second.unit = "chains/s"


class CudaJacobians:
    """Width 10, depth 100, rotated tanh on the GPU (skipped without a usable GPU)."""

    timeout = 600

    def setup(self):
        from fastprop.run.targets import resolve_target

        if resolve_target("auto") != "cuda":
            raise NotImplementedError("no usable CUDA GPU")
        self.kw = dict(width=10, depth=100, activation="tanh", sigma_b=0.1, target="cuda")
        fp.simulate_jacobians(n_chains=1000, **self.kw)  # compile

    def track_chains_per_second(self):
        import time

        n = 10**6
        t = time.perf_counter()
        fp.simulate_jacobians(n_chains=n, **self.kw)
        return n / (time.perf_counter() - t)

    track_chains_per_second.unit = "chains/s"

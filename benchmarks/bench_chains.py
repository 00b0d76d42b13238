"""asv benchmarks of the chain engine (JIT warm-up in setup; results are chains per second)."""

import fastprop as fp

# chains per timed call, chosen so that one call takes ~0.1–2 s on 2 cores
_N = {"dense": {4: 20_000, 10: 4_000, 32: 400}, "invariant": {4: 200_000, 10: 100_000, 32: 40_000}}


class Chains:
    """method × activation × width × depth, all threads."""

    params = (["invariant", "dense"], ["linear", "tanh"], [4, 10, 32], [10, 100, 1000])
    param_names = ["method", "activation", "width", "depth"]
    timeout = 600

    def setup(self, method, activation, width, depth):
        self.kw = dict(
            width=width,
            depth=depth,
            activation=activation,
            method=method,
            target="parallel",
            sigma_w=1.0,
            sigma_b=0.0 if activation == "linear" else 0.1,
        )
        self.n = max(10, _N[method][width] * 100 // depth)
        fp.simulate_chains(n_chains=10, **self.kw)  # compile

    def time_chains(self, method, activation, width, depth):
        fp.simulate_chains(n_chains=self.n, **self.kw)

    def track_chains_per_second(self, method, activation, width, depth):
        import time

        t = time.perf_counter()
        fp.simulate_chains(n_chains=self.n, **self.kw)
        return self.n / (time.perf_counter() - t)

    track_chains_per_second.unit = "chains/s"


class CudaChains:
    """d = 10, L = 100 on the GPU (skipped without a usable GPU); goals on an H100:
    auto ≥ 5e7 chains/s, dense ≥ 5e6 chains/s (issue 4)."""

    params = (["invariant", "dense"],)
    param_names = ["method"]
    timeout = 600

    def setup(self, method):
        from fastprop.run.targets import resolve_target

        if resolve_target("auto") != "cuda":
            raise NotImplementedError("no usable CUDA GPU")
        self.kw = dict(width=10, depth=100, method=method, target="cuda")
        self.n = 10**8 if method == "invariant" else 10**7
        fp.simulate_chains(n_chains=1000, **self.kw)  # compile

    def track_chains_per_second(self, method):
        import time

        t = time.perf_counter()
        fp.simulate_chains(n_chains=self.n, **self.kw)
        return self.n / (time.perf_counter() - t)

    track_chains_per_second.unit = "chains/s"


class ExactLaw:
    """Exact tail probability of ‖x_100‖ for a width-10 linear chain (both tails)."""

    def setup(self):
        self.law = fp.exact.chain_norm(10, 100)

    def time_sf_and_cdf(self):
        self.law.sf(10.0)
        self.law.cdf(0.01)

"""Side-by-side: fastprop chains vs hand-written NumPy (and PyTorch, when installed).

    python benchmarks/compare_chains.py [--width 10] [--depth 100] [--repeat 3]

All baselines simulate a width-d, depth-L linear network with N(0, 1/d) weights
(He/Kaiming) from x0 = e_1 and estimate P(‖x_L‖ > 10) and P(‖x_L‖ < 0.01):

* NumPy: batches of 4096 chains, ``np.matmul`` of (b, d, d) by (b, d, 1) each layer,
  ``Generator.standard_normal`` for the weights (the usual hand-written loop).
* PyTorch (float64, CPU), the same loop with ``torch.bmm``, if torch is importable.
* fastprop ``method="dense"`` (every weight drawn, the reference sampler) and
  ``method="auto"`` (exact chi-square layer gains), target "parallel", warm JIT.

Prints chains per second (median of --repeat runs), the ratios to NumPy and the
estimates next to the exact values from ``fp.exact``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

import fastprop as fp


def numpy_chains(n, d, L, seed=0, batch=4096):
    rng = np.random.default_rng(seed)
    out = []
    for s in range(0, n, batch):
        b = min(batch, n - s)
        x = np.zeros((b, d, 1))
        x[:, 0, 0] = 1.0
        for _ in range(L):
            w = rng.standard_normal((b, d, d))
            w *= 1.0 / np.sqrt(d)
            x = np.matmul(w, x)
        out.append(np.linalg.norm(x[..., 0], axis=1))
    return np.concatenate(out)


def torch_chains(n, d, L, seed=0, batch=4096):
    import torch

    g = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, n, batch):
        b = min(batch, n - s)
        x = torch.zeros((b, d, 1), dtype=torch.float64)
        x[:, 0, 0] = 1.0
        for _ in range(L):
            w = torch.randn((b, d, d), generator=g, dtype=torch.float64) / d**0.5
            x = torch.bmm(w, x)
        out.append(torch.linalg.norm(x[..., 0], dim=1))
    return torch.cat(out).numpy()


def rate(fn, n, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn(n)
        times.append(time.perf_counter() - t)
    return n / statistics.median(times), res


def rare_tail(d, L, p=1e-7, rel=0.1):
    """The GPU goal: P(‖x_L‖ > t) with t the exact 1e-7 upper quantile, to ±10 % (95 %
    Wilson interval), timed end to end with ``fastprop.checkpoint.run_chains``."""
    import tempfile

    from scipy.optimize import brentq

    from fastprop.run.checkpoint import run_chains

    law = fp.exact.chain_norm(d, L)
    t = brentq(lambda v: law.logsf(v) - np.log(p), law.median(), 1e6)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        r = run_chains(
            f"{tmp}/rare.npz", width=d, depth=L, thresholds=(t,), target_rel_error=rel, max_chains=10**11,
            target="cuda", checkpoint_every=1e9,
        )  # fmt: skip
        dt = time.perf_counter() - t0
    est = r.tail_probability(t)
    print(
        f"cuda rare tail P(||x_{L}|| > {t:.4g}) = {est.p:.3e} [{est.ci_low:.3e}, {est.ci_high:.3e}] "
        f"(exact {float(law.sf(t)):.3e}) from {r.n:.3g} chains in {dt:.1f} s"
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--width", type=int, default=10)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    d, L = args.width, args.depth
    law = fp.exact.chain_norm(d, L)
    print(f"width {d}, depth {L}, linear Gaussian chains; {os.cpu_count()} CPU cores")
    print(f"exact: P(>10) = {float(law.sf(10.0)):.4g}   P(<0.01) = {float(law.cdf(0.01)):.4g}")
    rows = []

    def summary(name, r, norms=None, result=None):
        if result is not None:
            up, lo = result.tail_probability(10.0).p, result.tail_probability(0.01, "lower").p
        else:
            up, lo = float(np.mean(norms > 10)), float(np.mean(norms < 0.01))
        rows.append((name, r, up, lo))

    n_np = max(2000, 2_000_000 // L)
    r, norms = rate(lambda n: numpy_chains(n, d, L), n_np, args.repeat)
    summary(f"numpy matmul ({n_np} chains)", r, norms)
    try:
        import torch  # noqa: F401

        r, norms = rate(lambda n: torch_chains(n, d, L), n_np, args.repeat)
        summary(f"torch bmm float64 ({n_np} chains)", r, norms)
    except ImportError:
        print("(PyTorch not installed: skipped)")
    for method, n in (("dense", 6 * n_np), ("auto", 200 * n_np)):
        fp.simulate_chains(d, L, 10, method=method, target="parallel")  # compile
        r, res = rate(lambda n, m=method: fp.simulate_chains(d, L, n, method=m, target="parallel"), n, args.repeat)
        summary(f"fastprop {method} ({n} chains)", r, result=res)
    from fastprop.run.targets import resolve_target

    if resolve_target("auto") == "cuda":  # a real GPU, not the simulator
        for method, n in (("dense", 10**7), ("auto", 10**8)):
            fp.simulate_chains(d, L, 1000, method=method, target="cuda")  # compile
            r, res = rate(lambda n, m=method: fp.simulate_chains(d, L, n, method=m, target="cuda"), n, args.repeat)
            summary(f"fastprop cuda {method} ({n} chains)", r, result=res)
        rare_tail(d, L)
    else:
        print("(no usable GPU: the cuda target was not timed)")
    base = rows[0][1]
    print(f"{'':34s} {'chains/s':>12s} {'vs numpy':>9s} {'P(>10)':>10s} {'P(<0.01)':>10s}")
    for name, r, up, lo in rows:
        print(f"{name:34s} {r:12.0f} {r / base:8.1f}x {up:10.3g} {lo:10.4g}")


if __name__ == "__main__":
    main()

"""NNGP and NTK through depth, side by side: fastprop against neural-tangents, in one run.

    python benchmarks/compare_kernels.py [--n 300] [--n-big 2000] [--depth 10]
                                         [--nt-python /path/to/venv/bin/python] [--degrees 25 100]

The job: n inputs in d0 = 10 whose squared norms per feature span 1e-2 … 1e2 (plus four fixed
inputs at 0.5, 3, 40 and 300), σ_w = 1.5, σ_b = 0.3, depth 10, NNGP and NTK of every pair.

* **fastprop**: ``fp.nngp`` (target "parallel"), warm, median of 3.
* **neural-tangents** (archived; 0.6.5 needs jax 0.4.30, so it runs in its own interpreter,
  ``--nt-python``): ``stax.serial(*[Dense(1, σ_w, σ_b), φ] * depth, Dense(1, σ_w, σ_b))``, whose
  kernel_fn gives our K^depth and Θ^depth (NTK parameterisation), jitted, warmed up, median of
  3. relu by its closed form (``stax.Relu``), tanh by ``stax.ElementwiseNumerical`` (a 2-D
  Gauss–Hermite rule of the given degree, which holds n² deg² values at once: beyond degree 25
  the kernel is computed in blocks of 25 × 25 inputs with ``nt.batch``; neither has an iteration
  to stop).
* **truth**: the recursion pair by pair with nested adaptive quadrature (scipy.quad at 1e-13,
  ``tests/reference.py``) for the four fixed inputs, through every layer; the error is the largest
  |K − K_ref| / √(K_aa K_bb) (and likewise for Θ) over their pairs at the last layer.

Without ``--nt-python`` (or where neural-tangents does not import) only fastprop runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SW, SB, D0 = 1.5, 0.3, 10
FIXED = (0.5, 3.0, 40.0, 300.0)


def inputs(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, D0))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sq = np.exp(rng.uniform(math.log(1e-2), math.log(1e2), n))
    sq[: len(FIXED)] = FIXED
    return x * np.sqrt(sq * D0)[:, None]


def median_time(f, repeats=3):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def nt_worker(path_in, path_out):
    """Runs under --nt-python: neural-tangents on the inputs in path_in."""
    import jax
    import jax.numpy as jnp
    import neural_tangents as nt
    from neural_tangents import stax

    jax.config.update("jax_enable_x64", True)
    job = dict(np.load(path_in))
    X, depth = job["X"], int(job["depth"])
    results = {}
    for label, phi in [("relu", stax.Relu())] + [
        (f"tanh_deg{int(d)}", stax.ElementwiseNumerical(jnp.tanh, deg=int(d))) for d in job["degrees"]
    ]:
        layers = []
        for _ in range(depth):
            layers += [stax.Dense(1, W_std=SW, b_std=SB, parameterization="ntk"), phi]
        _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=SW, b_std=SB, parameterization="ntk"))
        fn = jax.jit(kernel_fn, static_argnames="get")
        deg = int(label.split("deg")[1]) if "deg" in label else 0
        if deg > 25:  # the rule holds n² deg² values at once: in blocks of 25 × 25 inputs (64 GB otherwise)
            fn = nt.batch(fn, batch_size=25)

        def run(fn=fn):
            k = fn(X, None, get=("nngp", "ntk"))
            return np.asarray(k.nngp), np.asarray(k.ntk)

        run()  # compile
        t, (k, th) = median_time(run, 3 if deg <= 25 else 1)  # (degree 100: minutes a run)
        results[label + "_time"] = t
        results[label + "_nngp"], results[label + "_ntk"] = k, th
    np.savez(path_out, **results)


def reference(X, depth, name):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import reference as R

    fn = R.relu_pair2 if name == "relu" else lambda qa, qb, c: R.pair2(name, qa, qb, c)
    x = X[: len(FIXED)]
    return R.kernels_through_depth(x @ x.T / D0, depth, SW, SB, fn)[-1]


def rel_error(k, ref):
    d = np.sqrt(np.abs(np.diag(ref)))
    return float(np.max(np.abs(k - ref) / np.outer(d, d)))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300, help="inputs in the side-by-side job (default 300)")
    p.add_argument("--n-big", type=int, default=2000, help="inputs of fastprop's larger job (default 2000)")
    p.add_argument("--depth", type=int, default=10)
    p.add_argument("--nt-python", default=None, help="a Python with neural-tangents 0.6.5 and jax 0.4.30")
    p.add_argument("--degrees", type=int, nargs="+", default=[25, 100])
    p.add_argument("--nt-worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.nt_worker:
        return nt_worker(*args.nt_worker)

    import fastprop as fp

    X = inputs(args.n)
    rows = []
    refs = {name: reference(X, args.depth, name) for name in ("relu", "tanh")}
    fast = {}
    for name in ("relu", "tanh"):
        fp.nngp(X[:8], args.depth, name, SW, SB)  # compile or load the kernels
        t, r = median_time(lambda name=name: fp.nngp(X, args.depth, name, SW, SB, layers=[args.depth]))
        m = len(FIXED)
        fast[name] = (t, r.nngp[0], r.ntk[0])
        rows.append((f"fastprop {name}", args.n, t, rel_error(r.nngp[0][:m, :m], refs[name][0]),
                     rel_error(r.ntk[0][:m, :m], refs[name][1])))  # fmt: skip
    if args.n_big:
        Xb = inputs(args.n_big, seed=1)
        t, _ = median_time(lambda: fp.nngp(Xb, args.depth, "tanh", SW, SB, layers=[args.depth]))
        rows.append(("fastprop tanh", args.n_big, t, math.nan, math.nan))
    nt = None
    if args.nt_python:
        with tempfile.TemporaryDirectory() as tmp:
            fin, fout = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
            np.savez(fin, X=X, depth=args.depth, degrees=np.array(args.degrees))
            run = subprocess.run([args.nt_python, os.path.abspath(__file__), "--nt-worker", fin, fout],
                                 capture_output=True, text=True)  # fmt: skip
            if run.returncode == 0:
                nt = dict(np.load(fout))
            else:
                print(f"neural-tangents did not run: {run.stderr.strip().splitlines()[-1:]}")
    if nt is not None:
        m = len(FIXED)
        for label in ["relu"] + [f"tanh_deg{d}" for d in args.degrees]:
            name = label.split("_")[0]
            k, th = nt[label + "_nngp"], nt[label + "_ntk"]
            rows.append((f"neural-tangents {label}", args.n, float(nt[label + "_time"]),
                         rel_error(k[:m, :m], refs[name][0]), rel_error(th[:m, :m], refs[name][1])))  # fmt: skip
    print(f"\ndepth {args.depth}, sigma_w {SW}, sigma_b {SB}, NNGP and NTK of every pair; error: max |K - K_ref| / "
          f"sqrt(K_aa K_bb) over the pairs of the inputs with q0 = {FIXED} at the last layer")  # fmt: skip
    print(f"{'method':>30} {'n':>6} {'median s':>10} {'us/pair-layer':>14} {'NNGP error':>11} {'NTK error':>10} "
          f"{'time / fastprop':>16}")  # fmt: skip
    summary = []
    for label, n, t, e0, e1 in rows:
        per = t / (n * (n + 1) / 2 * args.depth) * 1e6
        name = "tanh" if "tanh" in label else "relu"
        ratio = t / fast[name][0] if label.startswith("neural") else math.nan
        print(f"{label:>30} {n:>6} {t:10.4g} {per:14.4g} {e0:11.2g} {e1:10.2g} "
              f"{'' if math.isnan(ratio) else f'{ratio:.3g}':>16}")  # fmt: skip
        summary.append({"method": label, "n": n, "seconds": t, "nngp_error": e0, "ntk_error": e1})
    print(json.dumps({"depth": args.depth, "rows": summary}))


if __name__ == "__main__":
    main()

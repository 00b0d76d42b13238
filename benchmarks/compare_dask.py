"""Overhead of Dask execution: the same job locally and on a LocalCluster, side by side.

    python benchmarks/compare_dask.py                 # 10^6 chains and a 1000 x 1000 tanh grid
    python benchmarks/compare_dask.py --grid 300 --chains 200000 --repeat 1   # quick

The local run uses target "parallel" on all cores; the cluster has one worker process per
core, one thread each (NUMBA_NUM_THREADS=1), so both use the same cores. Both are warmed
up first (JIT compilation on every worker is a one-off cost, reported separately).
Prints medians and the overhead (cluster / local - 1); also checks the results are
identical.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import fastprop as fp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import timed  # noqa: E402  (the side-by-side scripts share one timer)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--grid", type=int, default=1000, help="grid points per axis (default 1000)")
    ap.add_argument("--chains", type=int, default=10**6, help="chains (default 1e6)")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="worker processes (default: cores)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    from distributed import Client, LocalCluster

    sw = np.linspace(0.1, 5, args.grid)
    sb = np.linspace(0, 3, args.grid)
    chain_kw = {"width": 10, "depth": 100, "n_chains": args.chains, "seed": 0}
    warm_grid = (np.linspace(0.5, 3, 8), np.linspace(0, 1, 4))
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        env={"NUMBA_NUM_THREADS": "1"},
    )
    client = Client(cluster)
    try:
        t0 = time.perf_counter()
        fp.meanfield_grid("tanh", *warm_grid, client=client)
        fp.simulate_chains(**{**chain_kw, "n_chains": 1000}, client=client)
        warm_cluster = time.perf_counter() - t0
        t0 = time.perf_counter()
        fp.meanfield_grid("tanh", *warm_grid)
        fp.simulate_chains(**{**chain_kw, "n_chains": 1000})
        warm_local = time.perf_counter() - t0

        rows = []
        t_loc, g_loc = timed(lambda: fp.meanfield_grid("tanh", sw, sb), args.repeat)
        t_cl, g_cl = timed(lambda: fp.meanfield_grid("tanh", sw, sb, client=client), args.repeat)
        same = all(
            np.array_equal(getattr(g_loc, k), getattr(g_cl, k), equal_nan=True)
            for k in ("q_star", "chi_1", "c_star", "chi_c", "xi_q", "xi_c", "status")
        )
        rows.append((f"tanh grid {args.grid} x {args.grid}, all six", t_loc, t_cl, same))
        t_loc, r_loc = timed(lambda: fp.simulate_chains(**chain_kw), args.repeat)
        t_cl, r_cl = timed(lambda: fp.simulate_chains(**chain_kw, client=client), args.repeat)
        rows.append((f"{args.chains:,} chains d=10 L=100 auto", t_loc, t_cl, r_loc.identical(r_cl)))
    finally:
        client.close()
        cluster.close()

    print(f"machine: {os.cpu_count()} cores; cluster: {args.workers} workers x 1 thread; medians of {args.repeat}")
    print(f"first-call compile: local {warm_local:.1f} s, cluster (all workers at once) {warm_cluster:.1f} s")
    print(f"{'job':<40}{'local s':>10}{'cluster s':>11}{'overhead':>10}  identical")
    for name, a, b, same in rows:
        print(f"{name:<40}{a:>10.2f}{b:>11.2f}{b / a - 1:>+10.1%}  {same}")


if __name__ == "__main__":
    main()

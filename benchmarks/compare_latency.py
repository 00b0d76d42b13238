"""First-call latency of a new process, kernel cache cold and warm (issue: the compile wall).

    python benchmarks/compare_latency.py [--repeat 3]

Each job runs as a fresh interpreter; "cold" gets an empty FASTPROP_CACHE_DIR, "warm" one
filled by an earlier process, "off" no cache (FASTPROP_CACHE_DIR=off: what every process paid
before the cache). Prints medians of --repeat runs (Numba's cache of fastprop's own
module-level helpers is warm in every case: it lives beside the installed package).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

JOBS = {
    "fastprop grid (defaults: tanh 200 x 100, npz + png)": [
        "-c",
        "import sys; from fastprop.cli import main; sys.exit(main(['grid', '-q']))",
    ],
    "simulate_chains(10, 100, 10**4, 'tanh', 1.5, 0.3)": [
        "-c",
        "import fastprop as fp; fp.simulate_chains(10, 100, 10**4, activation='tanh', sigma_w=1.5, sigma_b=0.3)",
    ],
    "import fastprop": ["-c", "import fastprop"],
}


def _time(args, cache, cwd):
    env = dict(os.environ, FASTPROP_CACHE_DIR=cache)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True, env=env, cwd=cwd, capture_output=True)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    repeat = ap.parse_args().repeat
    print(f"{'job':<55} {'off':>8} {'cold':>8} {'warm':>8}  (median of {repeat}, seconds)")
    with tempfile.TemporaryDirectory() as root:
        for name, args in JOBS.items():
            off = [_time(args, "off", root) for _ in range(repeat)]
            cold = [_time(args, tempfile.mkdtemp(dir=root), root) for _ in range(repeat)]
            warm_dir = tempfile.mkdtemp(dir=root)
            _time(args, warm_dir, root)
            warm = [_time(args, warm_dir, root) for _ in range(repeat)]
            med = [statistics.median(v) for v in (off, cold, warm)]
            print(f"{name:<55} {med[0]:8.2f} {med[1]:8.2f} {med[2]:8.2f}")


if __name__ == "__main__":
    main()

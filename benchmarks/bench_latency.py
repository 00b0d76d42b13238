"""First-call latency in a fresh interpreter, with the kernel cache cold (empty)
and warm (filled by an earlier process): what a user waits for from typing the
command to the answer. Each timed call is a new process; ``FASTPROP_CACHE_DIR``
points at a directory of the benchmark's own. Numba's cache of fastprop's
module-level helpers (φ of the built-ins, the random streams) is warm in both."""

import os
import shutil
import subprocess
import sys
import tempfile

JOBS = {
    "grid_2x2": "import fastprop as fp; fp.meanfield_grid('tanh', [1.0, 2.0], [0.0, 0.5], target='cpu')",
    "chains_1e4": (
        "import fastprop as fp; fp.simulate_chains(10, 100, 10**4, activation='tanh', sigma_w=1.5, sigma_b=0.3)"
    ),
    "cli_grid": "import sys; from fastprop.cli import main; sys.exit(main(['grid', '-q', '--out', 'g.npz']))",
}


class FirstCall:
    params = (list(JOBS), ["cold", "warm"])
    param_names = ["job", "cache"]
    number = 1
    repeat = 3
    timeout = 600

    def setup(self, job, cache):
        self.root = tempfile.mkdtemp(prefix="fastprop-latency-")
        self.warm = os.path.join(self.root, "warm")
        if cache == "warm":
            self._run(job, self.warm)

    def teardown(self, job, cache):
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, job, cache_dir):
        env = dict(os.environ, FASTPROP_CACHE_DIR=cache_dir)
        subprocess.run([sys.executable, "-c", JOBS[job]], check=True, env=env, cwd=self.root, capture_output=True)

    def time_first_call(self, job, cache):
        self._run(job, self.warm if cache == "warm" else tempfile.mkdtemp(dir=self.root))

"""The console script, through a real subprocess."""

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fastprop as fp

# the real console script installed beside this interpreter (or on PATH)
_here = Path(sys.executable).with_name("fastprop")
EXE = str(_here) if _here.exists() else shutil.which("fastprop")
CMD = [EXE] if EXE else [sys.executable, "-m", "fastprop.cli"]


def run(*args, cwd=None):
    return subprocess.run([*CMD, *args], capture_output=True, text=True, cwd=cwd)


def test_grid_writes_a_loadable_file(tmp_path):
    out = tmp_path / "g.npz"
    r = run("grid", "--sigma-w", "0.5:3:6", "--sigma-b", "0:1:4", "--out", str(out), "--target", "cpu")
    assert r.returncode == 0, r.stderr
    assert "6 x 4 grid" in r.stdout
    g = fp.MeanFieldGrid.load(out)
    ref = fp.meanfield_grid("tanh", np.linspace(0.5, 3, 6), np.linspace(0, 1, 4), target="cpu")
    np.testing.assert_array_equal(g.q_star, ref.q_star)


def test_edge_table_and_csv(tmp_path):
    out = tmp_path / "e.csv"
    r = run("edge", "--activation", "relu", "tanh", "--sigma-b", "0,0.5", "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "sigma_b,relu,tanh"
    assert float(lines[1].split(",")[1]) == pytest.approx(2**0.5, rel=1e-12)


def test_info():
    r = run("info")
    assert r.returncode == 0 and fp.__version__ in r.stdout and "parallel" in r.stdout


@pytest.mark.parametrize(
    "args, text",
    [
        (("grid", "--sigma-w", "1:2"), "invalid axis"),
        (("grid", "--activation", "nope", "--sigma-w", "1:2:2", "--sigma-b", "0:1:2"), "unknown activation"),
        (("grid", "--target", "gpu", "--sigma-w", "1:2:2", "--sigma-b", "0:1:2"), "unknown target"),
        (("grid", "--sigma-w=-1:2:2", "--sigma-b", "0:1:2"), "sigma_w must be"),
        (("grid", "--out", "/nonexistent/dir/g.npz"), "cannot write"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, text):
    r = run(*args)
    assert r.returncode == 2
    assert text in r.stderr and "Traceback" not in r.stderr

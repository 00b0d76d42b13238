"""Grid driver: same answer on every target, thread count and tiling; files; bad input."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastprop as fp

SW = np.linspace(0.2, 4.5, 9)
SB = np.linspace(0.0, 2.5, 7)
FIELDS = ("q_star", "chi_1", "c_star", "chi_c", "chi_q", "xi_q", "xi_c", "status")


def _same(a, b):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


@pytest.mark.parametrize("name", ["tanh", "relu", "hard_tanh", "softplus"])
def test_cpu_and_parallel_bit_identical(name):
    _same(fp.meanfield_grid(name, SW, SB, target="cpu"), fp.meanfield_grid(name, SW, SB, target="parallel"))


def test_tiles_equal_the_whole_grid():
    whole = fp.meanfield_grid("tanh", SW, SB, target="parallel")
    tile = fp.meanfield_grid("tanh", SW[3:7], SB[2:5], target="cpu")
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(tile, f), getattr(whole, f)[3:7, 2:5], err_msg=f)


_THREAD_SCRIPT = """
import sys, numpy as np, fastprop as fp
g = fp.meanfield_grid("tanh", np.linspace(0.2, 4.5, 9), np.linspace(0, 2.5, 7), target="parallel")
np.save(sys.argv[1], np.stack([g.q_star, g.c_star, g.chi_c, g.xi_c]))
"""


def test_thread_count_does_not_change_results(tmp_path):
    outs = []
    for n in ("1", "2"):
        path = tmp_path / f"t{n}.npy"
        env = {**os.environ, "NUMBA_NUM_THREADS": n}
        subprocess.run([sys.executable, "-c", _THREAD_SCRIPT, str(path)], check=True, env=env)
        outs.append(np.load(path))
    np.testing.assert_array_equal(outs[0], outs[1])


def test_save_load_round_trip_is_exact(tmp_path):
    g = fp.meanfield_grid("gelu", SW, SB, target="cpu")
    path = tmp_path / "g.npz"
    assert g.save(path) == str(path)
    h = fp.MeanFieldGrid.load(path)
    _same(g, h)
    np.testing.assert_array_equal(h.sigma_w, SW)
    assert h.activation == "gelu" and h.target == "cpu" and h.meta["fastprop_version"] == fp.__version__
    assert [p.name for p in tmp_path.iterdir()] == ["g.npz"]  # no temporary file left behind


def test_save_to_missing_directory_leaves_nothing(tmp_path):
    g = fp.meanfield_grid("relu", [1.0], [0.1], target="cpu")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        g.save(tmp_path / "missing" / "g.npz")
    assert list(tmp_path.iterdir()) == []


def test_load_rejects_foreign_file(tmp_path):
    np.savez(tmp_path / "x.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not a fastprop MeanFieldGrid"):
        fp.MeanFieldGrid.load(tmp_path / "x.npz")


def test_to_xarray():
    g = fp.meanfield_grid("tanh", SW, SB, target="cpu")
    ds = g.to_xarray()
    assert ds["q_star"].dims == ("sigma_w", "sigma_b")
    np.testing.assert_array_equal(ds["chi_1"].values, g.chi_1)
    np.testing.assert_array_equal(ds.coords["sigma_b"].values, SB)
    assert ds.attrs["activation"] == "tanh"
    assert "tanh" in repr(g) and "Q_ZERO" in repr(g)
    json.dumps(g.meta)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(sigma_w=[[1.0, 2.0]]), ValueError, "1-D axis"),
        (dict(sigma_w=[]), ValueError, "must not be empty"),
        (dict(sigma_b=[-0.1]), ValueError, "sigma_b must be ≥ 0"),
        (dict(sigma_w=[np.inf]), ValueError, "finite"),
        (dict(sigma_w="abc"), TypeError, "sigma_w must be a real"),
        (dict(target="gpu"), ValueError, "unknown target 'gpu'"),
        (dict(target="cuda"), ValueError, "cuda"),
        (dict(target=1), TypeError, "target must be a str"),
        (dict(client=object()), TypeError, "client must be"),
        (dict(activation="nope"), ValueError, "unknown activation"),
    ],
)
def test_grid_bad_input(kwargs, exc, match):
    args = dict(activation="tanh", sigma_w=[1.0], sigma_b=[0.0], target="cpu") | kwargs
    with pytest.raises(exc, match=match):
        fp.meanfield_grid(**args)


def test_client_without_dask_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask were not installed
    with pytest.raises(ImportError, match=r"pip install 'fastprop\[dask\]'"):
        fp.meanfield_grid("relu", [1.0], [0.0], client="tcp://127.0.0.1:8786")
    with pytest.raises(ImportError, match="fastprop"):
        fp.simulate_chains(3, 2, 10, client="tcp://127.0.0.1:8786")

"""Resumable chain runs, progress bars and result files (npz and netCDF)."""

import io
import sys

import numpy as np
import pytest
from tqdm import tqdm

import fastprop as fp
from fastprop import checkpoint

KW = {"width": 4, "depth": 6, "layers": [3, 6], "thresholds": (0.1, 3.0), "seed": 9, "method": "dense"}


class _InterruptAfter:
    """A progress bar that raises KeyboardInterrupt after ``k`` blocks, like Ctrl-C would."""

    def __init__(self, k):
        self.k = k
        self.calls = 0

    def update(self, n):
        self.calls += 1
        if self.calls == self.k:
            raise KeyboardInterrupt


def test_block_schedule_doubles_then_caps():
    sizes, done = [], 0
    while done < 5 * checkpoint.MAX_BLOCK:
        sizes.append(checkpoint.block_size(done))
        done += sizes[-1]
    assert sizes[:5] == [2**16, 2**16, 2**17, 2**18, 2**19]
    assert set(sizes[5:]) == {2**20}


@pytest.mark.parametrize("ext", ["npz", "nc"])
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, ext):
    path = tmp_path / f"run.{ext}"
    n = 300_000
    with pytest.raises(KeyboardInterrupt):
        checkpoint.run_chains(path, n, progress=_InterruptAfter(3), checkpoint_every=1e9, target="cpu", **KW)
    part = fp.ChainResult.load(path)
    # the three finished pieces were kept (not the checkpoint interval's): a prefix [0, n) of the run
    assert 0 < part.n < n and part.chain_ranges == [(0, part.n)]
    assert part.meta["run"]["complete"] is False
    done = checkpoint.resume_chains(path, target="parallel")
    ref = fp.simulate_chains(n_chains=n, target="cpu", **KW)
    assert done.identical(ref)
    again = fp.ChainResult.load(path)
    assert again.identical(ref) and again.meta["run"]["complete"] is True
    # resuming a complete run changes nothing
    assert checkpoint.resume_chains(path).identical(ref)


def test_a_target_rel_error_run_interrupted_inside_a_block_stops_where_an_uninterrupted_one_does(tmp_path):
    """The goal is checked only at block boundaries, so an interruption (which keeps
    the chains of a part of a block) never moves the stopping point."""
    kw = dict(target_rel_error=0.15, tail=("upper", 3.0), max_chains=10**7, target="cpu", **KW)
    ref = checkpoint.run_chains(tmp_path / "ref.npz", **kw)
    path = tmp_path / "r.npz"
    with pytest.raises(KeyboardInterrupt):
        checkpoint.run_chains(path, progress=_InterruptAfter(2), checkpoint_every=1e9, **kw)
    part = fp.ChainResult.load(path)
    assert part.n not in (0, ref.n)
    assert checkpoint.resume_chains(path, target="parallel").identical(ref)


def test_target_rel_error_run(tmp_path):
    r = checkpoint.run_chains(
        tmp_path / "r.npz", target_rel_error=0.2, tail=("upper", 3.0), max_chains=10**7, target="cpu", **KW
    )
    est = r.tail_probability(3.0, "upper")
    assert est.rel_error <= 0.2
    assert r.meta["run"]["target_rel_error"] == 0.2 and r.meta["run"]["complete"]


@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({"n_chains": 10, "target_rel_error": 0.1}, "exactly one"),
        ({}, "exactly one"),
        ({"n_chains": 0}, "n_chains"),
        ({"target_rel_error": 1.5}, "target_rel_error"),
        ({"target_rel_error": 0.1, "max_chains": 0}, "max_chains"),
        ({"n_chains": 10, "tail": ("middle", 3.0)}, "side"),
        ({"n_chains": 10, "tail": ("upper", 5.0)}, "must be one of the thresholds"),
        ({"n_chains": 10, "checkpoint_every": -1.0}, "checkpoint_every"),
        ({"n_chains": 10, "checkpoint_every": "often"}, "checkpoint_every"),
    ],
)
def test_bad_run_requests(tmp_path, kwargs, err):
    with pytest.raises(ValueError, match=err):
        checkpoint.run_chains(tmp_path / "x.npz", **kwargs, **KW)
    assert not (tmp_path / "x.npz").exists()


def test_resume_needs_a_run_record(tmp_path):
    path = tmp_path / "plain.npz"
    fp.simulate_chains(n_chains=100, **KW).save(path)
    with pytest.raises(ValueError, match="not a checkpoint"):
        checkpoint.resume_chains(path)


def test_start_must_cover_chains_from_zero(tmp_path):
    later = fp.simulate_chains(n_chains=100, first_chain=50, **KW)
    with pytest.raises(ValueError, match=r"\[0, n\)"):
        checkpoint.run_chains(tmp_path / "x.npz", 200, start=later, **KW)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_true_draws_a_tqdm_bar_on_a_terminal(monkeypatch, tmp_path):
    s = _Tty()
    monkeypatch.setattr(sys, "stderr", s)
    checkpoint.run_chains(tmp_path / "r.npz", 3000, target_rel_error=None, progress=True, target="cpu", **KW)
    text = s.getvalue()
    assert "chains" in text and "100%" in text and "3.00k/3.00k" in text and "it/s" not in text


def test_progress_true_is_silent_in_pipes_and_logs(monkeypatch):
    s = io.StringIO()
    monkeypatch.setattr(sys, "stderr", s)
    fp.simulate_chains(n_chains=1000, progress=True, **KW)
    fp.meanfield_grid("tanh", [1.0, 2.0], [0.0], progress=True)
    assert s.getvalue() == ""
    for bad in ("yes", 1, object()):
        with pytest.raises(TypeError, match="progress"):
            fp.simulate_chains(n_chains=10, progress=bad, **KW)


def test_a_tqdm_bar_passed_in_is_advanced_with_notes_and_left_open(tmp_path):
    s = io.StringIO()
    bar = tqdm(total=None, file=s, mininterval=0)
    r = checkpoint.run_chains(tmp_path / "r.npz", target_rel_error=0.3, tail=("upper", 3.0), progress=bar, **KW)
    assert bar.n == r.n and not bar.disable and "rel. error" in s.getvalue()
    bar.update(0)  # still open: the caller closes it
    bar.close()


def test_progress_does_not_change_results():
    s = io.StringIO()
    bar = tqdm(total=36, file=s, mininterval=0)
    g = fp.meanfield_grid("tanh", np.linspace(0.5, 3, 6), np.linspace(0, 1, 6), target="cpu", progress=bar)
    ref = fp.meanfield_grid("tanh", np.linspace(0.5, 3, 6), np.linspace(0, 1, 6), target="cpu")
    np.testing.assert_array_equal(g.c_star, ref.c_star)
    assert bar.n == 36
    a = fp.simulate_chains(n_chains=5000, batch_size=1000, progress=tqdm(total=5000, file=s), **KW)
    assert a.identical(fp.simulate_chains(n_chains=5000, **KW))


def test_grid_netcdf_round_trip_is_exact(tmp_path):
    g = fp.meanfield_grid("relu", [0.5, 1.0, 1.5, 2.0], [0.0, 0.3])  # includes Q_ZERO and Q_INFINITE points
    g.save(tmp_path / "g.nc")
    h = fp.MeanFieldGrid.load(tmp_path / "g.nc")
    for k in ("sigma_w", "sigma_b", "q_star", "chi_1", "c_star", "chi_c", "chi_q", "xi_q", "xi_c", "status"):
        a, b = getattr(g, k), getattr(h, k)
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert h.meta == g.meta and h.activation == "relu"


def test_chain_netcdf_round_trip_is_exact(tmp_path):
    r = fp.simulate_chains(n_chains=2000, keep_norms=True, **KW)
    r.save(tmp_path / "r.nc")
    s = fp.ChainResult.load(tmp_path / "r.nc")
    assert s.identical(r) and s.meta == r.meta
    ds = r.to_xarray()
    assert ds["hist"].dims == ("layer", "bin") and ds["sums"].dims == ("layer", "moment", "limb")
    assert int(ds["above"].sum()) == int(r.above.sum())


def test_not_a_fastprop_file(tmp_path):
    import xarray as xr

    xr.Dataset({"a": ("x", [1, 2])}).to_netcdf(tmp_path / "other.nc")
    with pytest.raises(ValueError, match="not a fastprop"):
        fp.ChainResult.load(tmp_path / "other.nc")
    g = tmp_path / "g.npz"
    fp.meanfield_grid("relu", [1.0], [0.0]).save(g)
    with pytest.raises(ValueError, match="not a fastprop ChainResult"):
        fp.ChainResult.load(g)


@pytest.mark.parametrize("name", ["g.npz", "g.nc"])
def test_result_files_get_ordinary_permissions(tmp_path, name):
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    fp.meanfield_grid("relu", [1.0], [0.0]).save(tmp_path / name)
    assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no temporary file left behind

"""The console script, through a real subprocess."""

import os
import shutil
import signal
import subprocess
import sys
import time
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


def assert_png(path):
    """A readable PNG image with some content."""
    import matplotlib.image as mpimg

    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    assert img[..., :3].std() > 0.05  # not a blank canvas


def test_grid_writes_a_loadable_file_and_the_phase_diagram(tmp_path):
    r = run("grid", "--sigma-w", "0.5:3:6", "--sigma-b", "0:1:4", "--target", "cpu", "--seed", "7", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "6 x 4 grid" in r.stdout
    assert r.stderr == ""  # no progress bar when stderr is not a terminal
    g = fp.MeanFieldGrid.load(tmp_path / "fastprop_grid.npz")
    ref = fp.meanfield_grid("tanh", np.linspace(0.5, 3, 6), np.linspace(0, 1, 4), target="cpu")
    for k in ("q_star", "chi_1", "c_star", "chi_c", "xi_q", "xi_c", "status"):
        np.testing.assert_array_equal(getattr(g, k), getattr(ref, k))
    assert g.meta["seed"] == 7 and g.meta["fastprop_version"] == fp.__version__ and g.target == "cpu"
    assert_png(tmp_path / "fastprop_grid.png")


def test_grid_netcdf_output(tmp_path):
    out = tmp_path / "g.nc"
    r = run("grid", "--activation", "relu", "--sigma-w", "1,1.5", "--sigma-b", "0,0.2", "--out", str(out), "--png=none")
    assert r.returncode == 0, r.stderr
    g = fp.MeanFieldGrid.load(out)
    np.testing.assert_array_equal(g.q_star, fp.meanfield_grid("relu", [1, 1.5], [0, 0.2]).q_star)
    assert not list(tmp_path.glob("*.png"))


def test_the_figure_goes_beside_the_result_by_default(tmp_path):
    (tmp_path / "results").mkdir()
    out = tmp_path / "results" / "g.npz"
    r = run("grid", "--sigma-w", "1,2", "--sigma-b", "0", "--out", str(out), "--target", "cpu", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert_png(tmp_path / "results" / "g.png")
    assert not list(tmp_path.glob("*.png"))


def test_edge_table_csv_and_png(tmp_path):
    out = tmp_path / "e.csv"
    png = tmp_path / "e.png"
    r = run("edge", "--activation", "relu", "tanh", "--sigma-b", "0,0.5", "--out", str(out), "--png", str(png))
    assert r.returncode == 0, r.stderr
    lines = out.read_text().splitlines()
    assert lines[0].startswith("# fastprop") and lines[1] == "sigma_b,relu,tanh"
    table = np.loadtxt(out, delimiter=",", skiprows=2)
    assert table[0, 1] == pytest.approx(2**0.5, rel=1e-12)
    assert table[1, 2] == pytest.approx(fp.edge_of_chaos("tanh", 0.5), rel=1e-14)
    assert_png(png)
    # the variance of J Jᵀ per layer on the edge at σ_b = 0.05: relu's is exactly 2 (Gaussian) and 1
    # (orthogonal), μ_2/μ_1² = 2; tanh's matches the S-transform series of the spectrum at depth 10
    rows = {line.split()[0]: line.split() for line in r.stdout.splitlines()[-6:] if line.split()}
    assert [float(v) for v in rows["relu"][3:5]] == pytest.approx([2.0, 1.0], rel=1e-12)
    sw = fp.edge_of_chaos("tanh", 0.05)
    for col, weights in ((3, "gaussian"), (4, "orthogonal")):
        series = fp.jacobian_spectrum("tanh", sw, 0.05, 10, weights).variance / 10
        assert float(rows["tanh"][col]) == pytest.approx(series, rel=1e-5)  # printed to 6 digits


TAIL_SMALL = ("--chains", "30000", "--target", "cpu")


def test_tail_defaults_on_a_small_run(tmp_path):
    r = run("tail", *TAIL_SMALL, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = fp.ChainResult.load(tmp_path / "fastprop_tail.npz")
    ref = fp.simulate_chains(10, 100, 30000, layers=[1, 20, 100], thresholds=(0.01, 10.0), seed=0, target="cpu")
    assert res.identical(ref)
    assert res.meta["run"]["complete"] and res.meta["fastprop_version"] == fp.__version__
    # the table: every layer and threshold, with the exact law of the linear Gaussian chain
    law = fp.exact.chain_norm(10, 100)
    row = next(line for line in r.stdout.splitlines() if line.split()[:2] == ["100", "||x||<0.01"])
    assert float(row.split()[-1]) == pytest.approx(float(law.cdf(0.01)), rel=1e-3)
    est = ref.tail_probability(0.01, "lower")
    assert f"{est.hits:>11}/{est.n:<10}".strip() in row
    assert_png(tmp_path / "fastprop_tail.png")


def test_tail_netcdf_and_options(tmp_path):
    out = tmp_path / "t.nc"
    args = ("--width", "4", "--depth", "3", "7", "--activation", "tanh", "--sigma-w", "1.5", "--sigma-b", "0.1")
    args = (*args, "--thresholds", "0.5", "2", "--seed", "11", "--chains", "5000", "--method", "dense")
    r = run("tail", *args, "--dtype", "float32", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    res = fp.ChainResult.load(out)
    ref = fp.simulate_chains(
        4, 7, 5000, "tanh", 1.5, 0.1, method="dense", layers=[3, 7], thresholds=(0.5, 2.0), seed=11, dtype="float32"
    )
    assert res.identical(ref)
    assert "exact" in r.stdout and "||x||>2" in r.stdout and "float32" in r.stdout


def test_tail_rare_estimate_and_curve(tmp_path):
    r = run("tail", "--rare", "upper:1e4", "--width", "4", "--depth", "20", "--rel-error", "0.1", "--seed", "3",
            "--target", "cpu", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    e = fp.RareTailEstimate.load(tmp_path / "fastprop_rare.json")
    assert e == fp.rare_tail(4, 20, 1e4, rel_error=0.1, seed=3, target="cpu")
    assert "speed-up over plain Monte Carlo" in r.stdout and "method tilt" in r.stdout
    exact = float(r.stdout.split("exact: ")[1].split()[0])
    assert exact == pytest.approx(float(fp.exact.chain_norm(4, 20).sf(1e4)), rel=1e-6)
    assert_png(tmp_path / "fastprop_rare.png")


def test_tail_rare_splitting_and_bad_combinations(tmp_path):
    args = ("--rare", "lower:0.2", "--width", "4", "--depth", "6", "--activation", "tanh", "--sigma-w", "1.5",
            "--sigma-b", "0.3", "--rel-error", "0.3", "--png", "none", "--out", "t.json")  # fmt: skip
    r = run("tail", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert fp.RareTailEstimate.load(tmp_path / "t.json").method == "splitting"
    for extra, message in [
        (("--chains", "100"), "--rare does not take --chains"),
        (("--depth", "3", "5"), "one depth"),
        (("--out", "t.npz"), "must end in .json"),
        (("--method", "tilt"), "method='tilt' needs"),
    ]:
        bad = run("tail", *args, *extra, cwd=tmp_path)
        assert bad.returncode == 2 and message in bad.stderr, (extra, bad.stderr)
    r = run("tail", "--rel-error", "0.1", "--chains", "10", cwd=tmp_path)
    assert r.returncode == 2 and "--rel-error only applies with --rare" in r.stderr


def _wait_for(path, proc, timeout=120.0):
    t0 = time.monotonic()
    while not path.exists():
        if proc.poll() is not None or time.monotonic() - t0 > timeout:
            return False
        time.sleep(0.02)
    return True


def _default_sigint():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_tail_resumes_to_the_identical_result(tmp_path, sig):
    """A signal mid-run leaves a checkpoint of the finished blocks; --resume ends exactly
    where an uninterrupted run ends."""
    out = tmp_path / "run.npz"
    # the signal must land before the run ends; on a loaded machine the run can finish
    # first, so a run that did is started again with 8× the chains (not a timing guess)
    for n in (3 * 2**20, 3 * 2**23, 3 * 2**26):
        out.unlink(missing_ok=True)
        args = ("tail", "--width", "3", "--depth", "2", "5", "--method", "dense", "--chains", str(n), "--seed", "5")
        args = (*args, "--target", "cpu", "--out", str(out), "--checkpoint-every", "0", "--png", "none")
        # a child inherits an ignored SIGINT (pytest started in the background by a
        # non-interactive shell), and Python then installs no KeyboardInterrupt handler:
        # give the child the default disposition, as a terminal's Ctrl-C would find it
        proc = subprocess.Popen([*CMD, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                cwd=tmp_path, preexec_fn=_default_sigint)  # fmt: skip
        try:
            assert _wait_for(out, proc), "no checkpoint appeared"
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=600)
        finally:
            proc.kill()
        if proc.returncode != 0 or fp.ChainResult.load(out).n < n:
            break
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    part = fp.ChainResult.load(out)
    assert not part.meta["run"]["complete"] and 0 < part.n < n
    r = run("tail", "--resume", str(out), "--png", "none", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    done = fp.ChainResult.load(out)
    ref = fp.simulate_chains(3, 5, n, layers=[2, 5], method="dense", seed=5, target="parallel")
    assert done.identical(ref) and done.meta["run"]["complete"]


def test_target_rel_error_stops_at_the_first_block_that_reaches_it(tmp_path):
    from fastprop.run.checkpoint import FIRST_BLOCK, block_size

    out = tmp_path / "p.npz"
    args = ("tail", "--depth", "20", "--target-rel-error", "0.25", "--tail", "lower:0.01", "--out", str(out))
    r = run(*args, "--png", "none")
    assert r.returncode == 0, r.stderr
    assert "reached" in r.stdout and "NOT" not in r.stdout
    res = fp.ChainResult.load(out)
    assert res.tail_probability(0.01, "lower").rel_error <= 0.25
    # the block boundary before the stop had not reached it
    edges = [0]
    while edges[-1] < res.n:
        edges.append(edges[-1] + block_size(edges[-1]))
    assert edges[-1] == res.n and res.n >= 2 * FIRST_BLOCK
    prev = fp.simulate_chains(10, 20, edges[-2], thresholds=(0.01, 10.0), seed=0)
    assert prev.tail_probability(0.01, "lower").rel_error > 0.25


def test_target_rel_error_capped_by_max_chains(tmp_path):
    out = tmp_path / "p.npz"
    args = ("tail", "--depth", "5", "--target-rel-error", "0.01", "--max-chains", "70000")
    r = run(*args, "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "NOT reached" in r.stdout
    assert fp.ChainResult.load(out).n == 70000


def test_info():
    r = run("info")
    assert r.returncode == 0, r.stderr
    for text in (fp.__version__, "parallel", "threads:", "GPU:", "numba ", "numba_cuda"):
        assert text in r.stdout


def test_help_for_every_subcommand():
    for sub in ("grid", "edge", "tail", "info"):
        r = run(sub, "--help")
        assert r.returncode == 0 and "usage: fastprop " + sub in r.stdout


@pytest.mark.parametrize(
    "args, text",
    [
        (("grid", "--sigma-w", "1:2"), "invalid axis"),
        (("grid", "--activation", "nope", "--sigma-w", "1:2:2", "--sigma-b", "0:1:2"), "unknown activation"),
        (("grid", "--target", "gpu", "--sigma-w", "1:2:2", "--sigma-b", "0:1:2"), "unknown target"),
        (("grid", "--target", "cuda", "--sigma-w", "1:2:2", "--sigma-b", "0:1:2"), "cuda"),
        (("grid", "--sigma-w=-1:2:2", "--sigma-b", "0:1:2"), "sigma_w must be"),
        (("grid", "--out", "/nonexistent/dir/g.npz"), "cannot write"),
        (("grid", "--png", "/nonexistent/dir/g.png"), "cannot write"),
        (("edge", "--activation", "relu", "nope"), "unknown activation"),
        (("tail", "--chains", "0"), "must be ≥ 1"),
        (("tail", "--chains", "1.5"), "invalid count"),
        (("tail", "--width", "10", "--sigma-w", "-1", "--chains", "10"), "sigma_w must be"),
        (("tail", "--activation", "nope", "--chains", "10"), "unknown activation"),
        (("tail", "--target-rel-error", "2"), "target_rel_error"),
        (("tail", "--target-rel-error", "0.1", "--chains", "10"), "not both"),
        (("tail", "--tail", "sideways:3"), "invalid tail"),
        (("tail", "--resume", "/nonexistent/run.npz"), "no such file"),
        (("tail", "--resume", "x.npz", "--width", "3"), "--width"),
        (("tail", "--depth", "-1"), "≥ 0"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, text, tmp_path):
    (tmp_path / "x.npz").write_bytes(b"")
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert text in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("fastprop_*"))  # nothing written


def test_resume_of_a_file_that_is_not_a_checkpoint(tmp_path):
    g = tmp_path / "g.npz"
    fp.meanfield_grid("relu", [1.0], [0.0]).save(g)
    r = run("tail", "--resume", str(g), cwd=tmp_path)
    assert r.returncode == 2 and "not a fastprop ChainResult file" in r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_directory(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        r = run("tail", "--chains", "10", "--out", str(d / "t.npz"), cwd=tmp_path)
    finally:
        d.chmod(0o700)
    assert r.returncode == 2 and "cannot write" in r.stderr


# ------------------------------------------- outputs checked before any work
@pytest.mark.parametrize(
    "args, text",
    [
        (("grid", "--out", ""), "must name a file"),
        (("grid", "--out", "adir"), "is a directory"),
        (("grid", "--out", "g.txt"), "must end in .npz"),
        (("edge", "--out", "e.nc"), "must end in .csv"),
        (("tail", "--out", "adir", "--chains", "10"), "is a directory"),
        (("tail", "--png", "t.jpg", "--chains", "10"), "must end in .png"),
        (("tail", "--chains", "1e30"), "2^63"),
        (("tail", "--width", "100000", "--method", "dense", "--chains", "10"), "would need"),
        (("tail", "--depth", *map(str, range(0, 200_000, 2)), "--chains", "10"), "would need"),
        (("grid", "--sigma-w", "0:1:1000000000", "--sigma-b", "0:1:1000"), "would need"),
    ],
)
def test_requests_that_cannot_finish_are_refused_before_any_work(args, text, tmp_path):
    (tmp_path / "adir").mkdir()
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert text in r.stderr and "Traceback" not in r.stderr and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1


def test_netcdf_output_without_xarray_is_refused_before_any_work(tmp_path):
    code = (
        "import sys; sys.modules['xarray'] = None; from fastprop.cli import main; "
        "sys.exit(main(['tail', '--chains', '3e6', '--out', 't.nc']))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "xarray" in r.stderr and r.stdout == "", (r.stdout, r.stderr)
    assert not list(tmp_path.iterdir())


def _unfinished(path):
    r = fp.simulate_chains(10, 20, 1000, layers=[1, 20], seed=0, target="cpu")
    r.meta["run"] = {"n_chains": 10**6, "target_rel_error": None, "tail": ["upper", 10.0], "max_chains": None,
                     "max_block": 2**20, "complete": False}  # fmt: skip
    r.save(path)
    return path.read_bytes()


def test_an_unfinished_checkpoint_is_not_overwritten_without_force(tmp_path):
    out = tmp_path / "run.npz"
    before = _unfinished(out)
    r = run("tail", "--depth", "1", "20", "--chains", "2000", "--out", str(out), "--png", "none", cwd=tmp_path)
    assert r.returncode == 2 and f"--resume {out}" in r.stderr and "--force" in r.stderr, r.stderr
    assert out.read_bytes() == before
    r = run("tail", "--depth", "1", "20", "--chains", "2000", "--out", str(out), "--png", "none", "--force")
    assert r.returncode == 0, r.stderr
    assert fp.ChainResult.load(out).n == 2000


def test_an_interrupt_before_any_chain_leaves_another_run_alone(tmp_path, monkeypatch, capsys):
    from fastprop import cli
    from fastprop.run import checkpoint

    out = tmp_path / "done.npz"
    fp.simulate_chains(3, 2, 10, target="cpu").save(out)
    before = out.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint, "run_chains", interrupted)
    assert cli.main(["tail", "--chains", "10", "--out", str(out), "--png", "none", "--quiet"]) == 130
    err = capsys.readouterr().err
    assert "nothing was saved" in err and "--resume" not in err
    assert out.read_bytes() == before


def test_unexpected_errors_are_one_line(tmp_path, monkeypatch, capsys):
    import fastprop
    from fastprop import cli

    def broken(*args, **kwargs):
        raise ZeroDivisionError("deep inside\nwith a second line")

    monkeypatch.setattr(fastprop, "meanfield_grid", broken)
    assert cli.main(["grid", "--png", "none", "--out", str(tmp_path / "g.npz")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ZeroDivisionError: deep inside with a second line" in err


def test_signals_take_effect_within_a_piece_of_a_slow_block(tmp_path):
    """A block of 65,536 wide dense chains takes minutes; the run works in pieces of a
    few seconds, so SIGTERM stops it soon after the first piece is saved."""
    out = tmp_path / "slow.npz"
    args = ("tail", "--width", "100", "--depth", "200", "--method", "dense", "--chains", "1e6", "--target", "cpu")
    proc = subprocess.Popen([*CMD, *args, "--out", str(out), "--checkpoint-every", "0", "--png", "none"],
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)  # fmt: skip
    try:
        assert _wait_for(out, proc, timeout=600), "no checkpoint appeared"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=600)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    part = fp.ChainResult.load(out)
    assert 0 < part.n < 65_536 and not part.meta["run"]["complete"]


def test_spectrum_writes_curves_that_match_the_api_and_a_figure(tmp_path):
    out = tmp_path / "s.npz"
    args = ("--activation", "tanh", "relu", "--depth", "3", "--weights", "orthogonal", "--sigma-b", "0.1")
    r = run("spectrum", *args, "--width", "60", "--points", "50", "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = np.load(out)
    sw = fp.edge_of_chaos("tanh", 0.1, target="cpu")
    s = fp.jacobian_spectrum("tanh", sw, 0.1, 3, "orthogonal")
    x = data["tanh_orthogonal_L3_log10_s"]
    lam = 10.0 ** (2 * x)
    dens = data["tanh_orthogonal_L3_density"]
    with pytest.warns(UserWarning, match="NaN"):  # the far lower tail is not resolved: NaN there, in both
        rho, err = s.density(lam, return_error=True)
    jac = 2 * np.log(10) * lam
    assert np.array_equal(np.isnan(dens), np.isnan(rho)) and np.isfinite(dens).sum() >= 35
    ok = np.isfinite(rho)  # equal within the error estimates (the march visits other λ in the CLI)
    assert np.all(np.abs(dens[ok] - jac[ok] * rho[ok]) <= jac[ok] * (2 * err[ok] + 1e-10 * rho[ok]))
    assert data["relu_orthogonal_L3_sim_log10_s"].shape == (60,)
    assert "tanh" in r.stdout and "orthogonal" in r.stdout
    assert_png(tmp_path / "s.png")
    bad = run("spectrum", "--depth", "0", "--png", "none", "--out", str(tmp_path / "b.npz"), cwd=tmp_path)
    assert bad.returncode == 2 and "depth" in bad.stderr


def test_kernel_writes_maps_and_finite_width_kernels_that_match_the_api(tmp_path):
    out = tmp_path / "k.npz"
    args = ("--activation", "erf", "relu", "--depth", "3", "--widths", "4", "16", "--networks", "300", "--inputs", "5")
    r = run("kernel", *args, "--out", str(out), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = np.load(out)
    sw = fp.edge_of_chaos("erf", 0.1, target="cpu")
    # the correlation map: c³ of two unit inputs at the 201 angles against fp.nngp
    theta = np.linspace(0, np.pi, 201)[[0, 70, 200]]
    x = np.stack([np.cos(theta), np.sin(theta)], axis=1) * np.sqrt(2)
    k = fp.nngp(x, 3, "erf", sw, 0.1).nngp
    c = k[:, 0, :] / np.sqrt(k[:, 0, :1] * np.diagonal(k, axis1=1, axis2=2))
    np.testing.assert_allclose(data["erf_c0"][[0, 70, 200]], c[0], rtol=0, atol=1e-14)
    np.testing.assert_allclose(data["erf_c"][-1][[0, 70, 200]], c[3], rtol=0, atol=1e-14)
    assert data["relu_c"].shape == (3, 201)  # depths 1, 2, 3
    e = fp.simulate_kernels(np.stack([np.cos(np.linspace(0, np.pi, 5)), np.sin(np.linspace(0, np.pi, 5))], 1)
                            * np.sqrt(2), 16, 3, 300, "erf", sw, 0.1, layers=[3])  # fmt: skip
    assert np.array_equal(data["w16_ntk_mean"], e.ntk_mean[0]) and np.array_equal(data["w4_nngp_std"].shape, (5, 5))
    assert "erf" in r.stdout and "E K^ - K" in r.stdout
    assert_png(tmp_path / "k.png")
    bad = run("kernel", "--depth", "0", "--png", "none", "--out", str(tmp_path / "b.npz"), cwd=tmp_path)
    assert bad.returncode == 2 and "--depth" in bad.stderr


def test_jacobian_writes_laws_and_lyapunov_spectra_that_match_the_api(tmp_path):
    out = tmp_path / "j.npz"
    args = ("--activation", "tanh", "relu", "--width", "3", "--depth", "12", "--chains", "300")
    r = run("jacobian", *args, "--out", str(out), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    data = np.load(out)
    sw = fp.edge_of_chaos("relu", 0.05, target="cpu")
    layers = data["layers"]
    assert layers[0] == 0 and layers[-1] == 12
    api = fp.simulate_jacobians(3, 12, 300, "relu", sw, 0.05, layers=layers.tolist())
    lam, lo, hi = api.lyapunov(nonzero=True)
    np.testing.assert_array_equal(data["relu_lyapunov"], lam)
    np.testing.assert_array_equal(data["relu_lyapunov_ci"], np.stack([lo, hi]))
    q = data["tanh_singular_value_quantiles"]
    assert q.shape == (3, layers.size, 3) and np.allclose(q[:, 0, :], 1.0, rtol=0.05)  # J_0 = I (histogram bins)
    assert np.all(np.diff(q[:, -1, 1]) < 0)  # medians of s_1 > s_2 > s_3
    assert data["tanh_s2_over_s1_quantiles_rms"].shape == (layers.size, 3)
    assert "tanh" in r.stdout and "relu" in r.stdout and "s_2/s_1" in r.stdout
    assert_png(tmp_path / "j.png")
    bad = run("jacobian", "--width", "1", "--png", "none", "--out", str(tmp_path / "b.npz"), cwd=tmp_path)
    assert bad.returncode == 2 and "--width" in bad.stderr

"""The CUDA target of the chain engine.

Run on a real GPU when one is present, and in CI under the simulator:

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/test_cuda.py

Without either, the CUDA tests are skipped (the error tests still run).
"""

import math

import numpy as np
import pytest
from numba import config, cuda, uint64

import fastprop as fp
from fastprop import rng
from fastprop.chains import hist_edges
from fastprop.targets import cuda_status

USABLE, WHY = cuda_status()
SIMULATED = bool(config.ENABLE_CUDASIM)
needs_cuda = pytest.mark.skipif(not USABLE, reason=f"no CUDA GPU and not under NUMBA_ENABLE_CUDASIM=1 ({WHY})")


@needs_cuda
def test_integer_streams_are_those_of_the_cpu():
    n_chains, n_words = 37, 150  # crosses the 64-word buffer refill twice

    @cuda.jit
    def words(out, seed, first):
        i = cuda.grid(1)
        if i < out.shape[0]:
            st = cuda.local.array(72, uint64)
            rng.stream_init(st, seed, first + i)
            for k in range(out.shape[1]):
                out[i, k] = rng.next_word(st)

    seed, first = np.uint64(2**63 + 12345), 10**12
    d_out = cuda.device_array((n_chains, n_words), np.uint64)
    words[2, 32](d_out, seed, first)
    got = d_out.copy_to_host()
    st = np.empty(rng.STREAM_SIZE, np.uint64)
    for i in range(n_chains):
        rng.stream_init(st, seed, first + i)
        expected = [rng.next_word(st) for _ in range(n_words)]
        np.testing.assert_array_equal(got[i], np.array(expected, np.uint64))


def _near_an_edge(logn, thresholds, rel=1e-12):
    """Chains whose log-norm is within rounding of a threshold or a histogram bin edge."""
    v = logn[np.isfinite(logn)]
    edges = np.concatenate([np.log(thresholds), hist_edges() * math.log(10)])
    idx = np.clip(np.searchsorted(edges, v), 1, edges.size - 1)
    gap = np.minimum(np.abs(v - edges[idx - 1]), np.abs(v - edges[idx]))
    return int(np.count_nonzero(gap <= rel * np.maximum(1.0, np.abs(v))))


def assert_same_statistics(gpu, cpu):
    """DESIGN §4 for GPU math: counts equal except chains within rounding of a
    threshold or bin edge; sums equal to rounding. Under the simulator: bit for bit."""
    if SIMULATED:
        assert gpu.identical(cpu)
        return
    slack = sum(_near_an_edge(cpu.norms[s], cpu.thresholds) for s in range(cpu.layers.size))
    for k in ("zeros", "n_inf", "n_nan", "sq_inf"):
        np.testing.assert_array_equal(getattr(gpu, k), getattr(cpu, k))
    for k in ("hist", "above", "below"):
        assert np.abs(getattr(gpu, k) - getattr(cpu, k)).sum() <= 2 * slack, k
    for ell in cpu.layers:
        assert gpu.mean_log_norm(int(ell)) == pytest.approx(cpu.mean_log_norm(int(ell)), rel=1e-12, abs=1e-12)
        assert gpu.mean_sq_norm(int(ell)) == pytest.approx(cpu.mean_sq_norm(int(ell)), rel=1e-12)


CASES = [
    {"width": 4, "depth": 5, "layers": [0, 2, 5]},  # linear: chi-square gains, log-tracked
    {"width": 5, "depth": 6, "activation": "relu", "sigma_w": 1.4},  # binomial + chi-square, zero atoms
    {"width": 4, "depth": 5, "method": "dense", "activation": "tanh", "sigma_b": 0.3},
    {"width": 3, "depth": 4, "method": "dense", "weights": "orthogonal", "activation": "relu", "sigma_w": 1.4},
    {"width": 3, "depth": 3, "activation": "erf", "sigma_b": 0.5, "weights": "orthogonal"},
    {"width": 4, "depth": 4, "method": "dense", "activation": "linear", "rms_norm": True},
]


@needs_cuda
@pytest.mark.parametrize("kwargs", CASES)
def test_chain_statistics_agree_with_the_cpu(kwargs):
    common = {"n_chains": 300, "first_chain": 5, "seed": 7, "thresholds": (0.3, 1.0, 3.0), "keep_norms": True}
    gpu = fp.simulate_chains(target="cuda", batch_size=128, **common, **kwargs)  # 3 batches, the last one short
    cpu = fp.simulate_chains(target="cpu", **common, **kwargs)
    assert gpu.meta["target"] == "cuda"
    assert_same_statistics(gpu, cpu)


@needs_cuda
def test_cuda_halves_merge_to_the_whole():
    kw = {"width": 4, "depth": 8, "seed": 3, "target": "cuda"}
    a = fp.simulate_chains(n_chains=150, **kw)
    b = fp.simulate_chains(n_chains=170, first_chain=150, **kw)
    whole = fp.simulate_chains(n_chains=320, **kw)
    assert a.merge(b).identical(whole)


def test_auto_never_picks_the_simulator_and_grids_have_no_cuda_yet():
    from fastprop.targets import resolve_target

    if SIMULATED:
        assert resolve_target("auto", cuda_kernels=True) == "parallel"
    with pytest.raises(ValueError, match="mean-field drivers"):
        fp.meanfield_grid("relu", [1.0], [0.0], target="cuda")
    with pytest.raises(ValueError, match="mean-field drivers"):
        fp.edge_of_chaos("relu", [0.0], target="cuda")


@pytest.mark.skipif(USABLE, reason="a CUDA device (or the simulator) is usable here")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a usable NVIDIA GPU"):
        fp.simulate_chains(3, 2, 10, target="cuda")


@pytest.mark.skipif(USABLE, reason="a CUDA device (or the simulator) is usable here")
def test_cli_cuda_without_a_gpu_is_exit_2(tmp_path, capsys):
    from fastprop.cli import main

    assert main(["tail", "--chains", "10", "--target", "cuda", "--out", str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err
    assert "needs a usable NVIDIA GPU" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.npz").exists()


@needs_cuda
def test_cli_tail_on_cuda(tmp_path):
    from fastprop.cli import main

    out = tmp_path / "t.npz"
    args = ["tail", "--chains", "200", "--width", "3", "--depth", "2", "4", "--target", "cuda"]
    assert main([*args, "--out", str(out), "--png", "none", "--quiet"]) == 0
    res = fp.ChainResult.load(out)
    ref = fp.simulate_chains(3, 4, 200, layers=[2, 4], target="cpu", keep_norms=False)
    assert res.meta["target"] == "cuda" and res.n == 200
    if SIMULATED:
        assert res.identical(ref)

"""The CUDA target: the chain engine and the mean-field drivers.

Run on a real GPU when one is present, and in CI under the simulator:

    NUMBA_ENABLE_CUDASIM=1 python -m pytest -q tests/test_cuda.py

Without either, the CUDA tests are skipped (the error tests still run).
"""

import math
import os

import numpy as np
import pytest
from numba import config, cuda, uint8, uint64

import fastprop as fp
from fastprop.chains import rng
from fastprop.chains.common import hist_edges
from fastprop.run.targets import cuda_status, numba_cuda_installed

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
    {"width": 4, "depth": 5, "method": "dense", "activation": "tanh", "sigma_w": 1.5, "dtype": "float32"},
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


def test_auto_never_picks_the_simulator():
    from fastprop.run.targets import resolve_target

    if SIMULATED:
        assert resolve_target("auto") == "parallel"
        assert fp.meanfield_grid("relu", [1.0], [0.0]).target == "parallel"


def assert_same_values(gpu, cpu, rel=1e-12):
    """Grid values: bit for bit under the simulator (the same CPU code runs), else
    to ``rel`` (libdevice and the CPU's libm may differ in the last ulp)."""
    if SIMULATED:
        np.testing.assert_array_equal(gpu, cpu)
    else:
        np.testing.assert_allclose(gpu, cpu, rtol=rel, atol=0.0, equal_nan=True)


# every path of the scalar maths: chaotic tanh (Mehler-exact, the lattice rule, and
# the Gauss–Legendre rule past the work space at large q*), the ordered phase and
# q* = 0; relu's closed-form kernel, q* = 0 and q* = ∞; hard_tanh's kinks; swish's
# lattice rule for a non-odd φ
GRIDS = {
    "tanh": ([0.5, 1.0, 1.6, 3.0, 12.0], [0.0, 0.3, 1.0, 7.0]),
    "relu": ([0.8, 1.2, 1.5], [0.0, 0.5]),
    "hard_tanh": ([0.7, 1.4, 3.0], [0.0, 0.4]),
    "swish": ([1.0, 2.5, 4.0], [0.0, 0.8]),
}


@needs_cuda
@pytest.mark.parametrize("name", sorted(GRIDS))
def test_grid_values_agree_with_the_cpu(name):
    sw, sb = GRIDS[name]
    gpu = fp.meanfield_grid(name, sw, sb, target="cuda")
    cpu = fp.meanfield_grid(name, sw, sb, target="cpu")
    assert gpu.target == "cuda"
    np.testing.assert_array_equal(gpu.status, cpu.status)
    for f in ("q_star", "chi_1", "c_star", "chi_c", "chi_q"):
        assert_same_values(getattr(gpu, f), getattr(cpu, f))
    for f in ("xi_q", "xi_c"):  # compared as 1/ξ = −ln χ, finite at criticality
        assert_same_values(1.0 / getattr(gpu, f), 1.0 / getattr(cpu, f))


@needs_cuda
def test_points_beyond_the_tables_are_finished_on_the_cpu():
    # just above the edge of chaos c* > C_HI (outside the pair table): the GPU flags
    # the point and the host computes it by the exact path, as a CPU run does
    from fastprop.meanfield import interpolants

    edge = fp.edge_of_chaos("tanh", 0.3, target="cpu")
    # 1 − c* ≈ 36 (χ_1 − 1) here, and c* is known to about 1e-16/(χ_1 − 1) only, so
    # which offsets land beyond C_HI = 1 − 5e-8 is decided by rounding: take several
    sw = np.concatenate([edge * (1 + np.geomspace(1e-9, 3e-9, 6)), [edge * 1.001, 2.0]])
    gpu = fp.meanfield_grid("tanh", sw, [0.3], target="cuda")
    cpu = fp.meanfield_grid("tanh", sw, [0.3], target="cpu")
    assert np.any(cpu.c_star[:6, 0] > interpolants.C_HI)
    assert np.all(cpu.c_star[6:, 0] < interpolants.C_HI) and np.all(cpu.c_star <= 1.0)
    np.testing.assert_array_equal(gpu.status, cpu.status)
    for f in ("q_star", "chi_1", "c_star", "chi_c"):
        assert_same_values(getattr(gpu, f), getattr(cpu, f))


@needs_cuda
@pytest.mark.parametrize("name", ["tanh", "relu", "selu"])
def test_edge_of_chaos_agrees_with_the_cpu(name):
    sb = np.array([0.0, 0.05, 0.5, 1.5])
    w_gpu, st_gpu = fp.edge_of_chaos(name, sb, target="cuda", full_output=True)
    w_cpu, st_cpu = fp.edge_of_chaos(name, sb, target="cpu", full_output=True)
    np.testing.assert_array_equal(st_gpu, st_cpu)
    assert_same_values(w_gpu, w_cpu, rel=1e-13)


@needs_cuda
@pytest.mark.parametrize(
    "method, act, weights, rms",
    [("rotated", "tanh", "gaussian", False), ("dense", "relu", "orthogonal", False),
     ("triangular", "linear", "gaussian", False), ("rotated", "linear", "gaussian", True),
     ("triangular", "relu", "gaussian", False)],  # fmt: skip
)
def test_jacobians_on_the_gpu_are_the_cpu_result(method, act, weights, rms):
    sb = 0.0 if act == "linear" or method == "triangular" else 0.1
    kw = dict(width=4, depth=6, n_chains=70, activation=act, sigma_w=1.3, sigma_b=sb,
              weights=weights, method=method, rms_norm=rms, layers=[0, 3, 6], seed=5, keep_values=True,
              batch_size=32)  # fmt: skip
    gpu = fp.simulate_jacobians(target="cuda", **kw)
    cpu = fp.simulate_jacobians(target="cpu", **kw)
    if SIMULATED:
        assert gpu.identical(cpu)
    else:  # libdevice's log, exp and sqrt may differ from the CPU's in the last ulp
        np.testing.assert_allclose(gpu.stats.norms, cpu.stats.norms, rtol=1e-9, atol=1e-9)


@needs_cuda
@pytest.mark.parametrize(
    "kw",
    [dict(width=4, depth=12, threshold=30.0),
     dict(width=30, depth=3, threshold=0.05, side="lower", activation="relu", sigma_w=2**0.5)],  # fmt: skip
)
def test_rare_tilt_on_the_gpu_is_the_cpu_estimate(kw):
    """The tilted chains (the one-tilt and the mixture proposal) run on the GPU give the CPU's estimate."""
    gpu = fp.rare_tail(target="cuda", rel_error=0.2, max_chains=600, seed=4, **kw)
    cpu = fp.rare_tail(target="cpu", rel_error=0.2, max_chains=600, seed=4, **kw)
    assert gpu.n == cpu.n == 600
    if SIMULATED:
        assert gpu == cpu
    else:  # libdevice's log, exp and lgamma may differ from the CPU's in the last ulps
        assert gpu.p == pytest.approx(cpu.p, rel=1e-9)


@pytest.mark.skipif(USABLE, reason="a CUDA device (or the simulator) is usable here")
def test_cuda_without_a_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="needs a usable NVIDIA GPU"):
        fp.simulate_chains(3, 2, 10, target="cuda")


@pytest.mark.skipif(SIMULATED or numba_cuda_installed(), reason="numba-cuda is installed (or simulated)")
def test_without_numba_cuda_the_error_names_the_extra():
    # numba's own deprecated numba.cuda cannot compile these kernels even with a GPU
    for run in (
        lambda: fp.meanfield_grid("tanh", [1.0], [0.0], target="cuda"),
        lambda: fp.edge_of_chaos("tanh", 0.0, target="cuda"),
        lambda: fp.simulate_chains(3, 2, 10, target="cuda"),
    ):
        with pytest.raises(ValueError, match=r"numba-cuda is not installed \(pip install 'fastprop\[cuda12\]'"):
            run()
    assert fp.run.targets.resolve_target("auto") == "parallel"


@pytest.mark.skipif(USABLE, reason="a CUDA device (or the simulator) is usable here")
def test_cli_cuda_without_a_gpu_is_exit_2(tmp_path, capsys):
    from fastprop.cli import main

    assert main(["tail", "--chains", "10", "--target", "cuda", "--out", str(tmp_path / "t.npz")]) == 2
    err = capsys.readouterr().err
    assert "needs a usable NVIDIA GPU" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "t.npz").exists()


@needs_cuda
def test_a_run_started_on_the_gpu_records_larger_blocks(tmp_path):
    from fastprop.run.checkpoint import GPU_MAX_BLOCK, resume_chains, run_chains

    kw = {"width": 3, "depth": 4, "seed": 5, "keep_norms": True}
    r = run_chains(tmp_path / "r.npz", 300, target="cuda", **kw)
    assert r.meta["run"]["max_block"] == GPU_MAX_BLOCK and r.meta["target"] == "cuda"
    assert_same_statistics(r, fp.simulate_chains(n_chains=300, target="cpu", **kw))
    assert resume_chains(tmp_path / "r.npz", target="cpu").meta["run"]["max_block"] == GPU_MAX_BLOCK


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


@needs_cuda
@pytest.mark.parametrize("name", ["tanh", "relu"])
def test_nngp_on_the_gpu_is_the_cpu_result(name):
    # inputs of norms 0.05 … 20 with correlations exactly 1 and within 1e-12 of it (pairs whose
    # series is not certified: the GPU leaves them to the CPU) and moderate ones (the series)
    rng = np.random.default_rng(4)
    X = rng.normal(size=(12, 3)) * np.exp(rng.uniform(-3, 3, size=(12, 1)))
    X[1] = 2 * X[0]
    X[2] = X[0] + 1e-6 * np.linalg.norm(X[0]) * np.array([0.0, 1.0, 0.0])
    cpu = fp.nngp(X, 4, name, 1.5, 0.3, layers=[0, 1, 4], target="cpu")
    gpu = fp.nngp(X, 4, name, 1.5, 0.3, layers=[0, 1, 4], target="cuda")
    assert gpu.meta["target"] == "cuda" and cpu.exact_pairs[1:].min() > 0
    if SIMULATED:
        assert gpu.identical(cpu) and np.array_equal(gpu.exact_pairs, cpu.exact_pairs)
    else:  # libdevice's tanh, exp … may differ from the CPU's in the last ulp
        np.testing.assert_allclose(gpu.nngp, cpu.nngp, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(gpu.ntk, cpu.ntk, rtol=1e-13, atol=1e-15)


def _compiler_status():
    """Whether numba-cuda can compile kernels here (its NVVM from the CUDA toolkit
    wheels of the cuda12/cuda13 extras); a GPU is not needed for that."""
    if SIMULATED:
        return False, "under the simulator nothing is compiled"
    if not numba_cuda_installed():
        return False, "numba-cuda is not installed (pip install 'fastprop[cuda12]')"
    try:
        from numba.cuda.cudadrv.nvvm import NVVM

        NVVM()
    except Exception as exc:
        return False, f"no NVVM to compile CUDA kernels (pip install 'fastprop[cuda12]'): {type(exc).__name__}"
    return True, ""


COMPILER, NO_COMPILER = _compiler_status()


@pytest.mark.skipif(not COMPILER and not os.environ.get("FASTPROP_REQUIRE_NVVM"), reason=NO_COMPILER)
@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_every_kernel_compiles_for_a_gpu(name, monkeypatch):
    """What the simulator only interprets, compiled to PTX for an H100 (sm_90):
    the grid and edge kernels, the chain kernels (float64 and float32), the Jacobian chain kernel
    and the NNGP kernel of every built-in activation, the statistics kernels and the tilted chains. Runs wherever
    numba-cuda and its NVVM are installed, with or without a GPU; CI sets FASTPROP_REQUIRE_NVVM=1 so that it
    cannot pass by skipping."""
    if not COMPILER:
        pytest.fail(NO_COMPILER)
    from types import SimpleNamespace

    import numba.cuda.dispatcher as dispatcher
    from numba import boolean, float64, int8, int64

    from fastprop.chains import cuda as chains_cuda
    from fastprop.jacobians import cuda as jacobians_cuda
    from fastprop.kernels import cuda as kernels_cuda
    from fastprop.kernels.nngp import layer_kernels
    from fastprop.meanfield import cuda as meanfield_cuda

    if not cuda.is_available():  # numba-cuda asks the device only for its compute capability
        monkeypatch.setattr(dispatcher, "get_current_device", lambda: SimpleNamespace(compute_capability=(9, 0)))
    act = fp.activation(name)
    grid, edge = meanfield_cuda._kernels(act)
    a1, a2, i64 = float64[:], float64[:, :], int64
    tab = (float64[:, :, :], int8[:, :], float64[:, :, :, :, :], int8[:, :], a1, float64[:, :, :], a1,
           float64[:, :, :, :, :], int8[:, :], float64[:, :, :, :], int8[:, :],
           int8[:, :, :])  # the tables
    kernels = [
        (grid, (a1, a1, i64, i64, i64, *tab, a2, a2, a2, a2, a2, a2, a2, int8[:, :])),
        (edge, (a1, float64, float64, i64, *tab, a1, int8[:])),
    ]
    flags = (boolean, boolean, boolean)
    chain_sig = (a2, i64[:], i64, i64, uint64, i64, float64, float64, a1, i64, *flags, float64, float64)
    for dtype in ("float64", "float32"):
        kernels.append((chains_cuda._chain_kernel(act, 10, True, False, dtype), chain_sig))
    jac_sig = (a2, i64[:], i64, i64, uint64, i64, float64, float64, a1, i64, *flags, a1, a1, boolean)
    kernels.append((jacobians_cuda._kernel(act, 6, name == "linear"), jac_sig))
    a3 = float64[:, :, :]
    kernels.append((kernels_cuda._kernel(layer_kernels(act, "cpu")),
                    (i64, i64, a2, a2, a3, float64, float64, boolean, i64[:], a3, a3, uint8[:])))  # fmt: skip
    if name == "linear":
        from fastprop.rare import cuda as rare_cuda

        rare_sig = (a1, i64, i64, uint64, i64, a3, i64[:], a1, a1, float64, float64, boolean)
        kernels.append((rare_cuda._kernel(), rare_sig))
        update, normalize = chains_cuda.stats_kernels()
        i2 = i64[:, :]
        kernels += [
            (update, (a2, i64, a1, i2, i64[:], i64[:], i64[:], i2, i2, i64[:, :, :], i64[:])),
            (normalize, (i64[:, :, :],)),
        ]
    for kernel, sig in kernels:
        ptx, _ = cuda.compile_ptx(kernel.py_func, sig, cc=(9, 0))
        assert ".entry" in ptx

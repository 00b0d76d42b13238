"""Empirical kernels of finite-width networks (fp.simulate_kernels): against a plain complex-step
reference network by network, the chains' streams, exact laws of linear networks, and the
approach to the NNGP as the width grows."""

import math

import numpy as np
import pytest
import reference as R

import fastprop as fp
from fastprop.kernels import simulate as S

X3 = np.array([[1.0, 0.0, 0.5], [0.3, -1.0, 0.2], [0.0, 0.7, -0.9]])


@pytest.mark.parametrize("sb, layers", [(0.0, [0, 1, 2, 3]), (0.4, [0, 1, 2, 3]), (0.4, [2])])
@pytest.mark.parametrize("target", ["cpu", "parallel"])
def test_each_network_equals_a_plain_reference_with_complex_step_ntk(sb, layers, target):
    x = X3[:, :2]
    for k in (0, 5):
        r = fp.simulate_kernels(x, width=3, depth=3, n_networks=1, first_network=k, activation="tanh", sigma_w=1.3,
                                sigma_b=sb, seed=7, layers=layers, target=target)  # fmt: skip
        K, T = R.empirical_kernels(np.tanh, x, 3, max(layers), 1.3, sb, 7, k, layers)
        assert list(r.layers) == layers
        np.testing.assert_allclose(r.nngp_mean, K, rtol=0, atol=1e-14)
        np.testing.assert_allclose(r.ntk_mean, T, rtol=0, atol=2e-14)
        assert np.isnan(r.nngp_std).all()  # one network: no spread


@pytest.mark.parametrize("name, sb", [("tanh", 0.3), ("relu", 0.0)])
def test_a_network_of_one_input_is_the_chain_of_the_same_index(name, sb):
    d = 12
    x0 = np.random.default_rng(0).normal(size=d)
    r = fp.simulate_kernels(x0[None, :], width=d, depth=5, n_networks=1, first_network=17, activation=name,
                            sigma_w=1.4, sigma_b=sb, seed=5, ntk=False)  # fmt: skip
    ch = fp.simulate_chains(width=d, depth=5, n_chains=1, first_chain=17, activation=name, sigma_w=1.4, sigma_b=sb,
                            seed=5, method="dense", layers=range(1, 6), x0=x0)  # fmt: skip
    log_norms = np.array([ch.mean_log_norm(layer=ell) for ell in range(1, 6)])
    np.testing.assert_allclose(r.nngp_mean[1:, 0, 0], 1.4**2 * np.exp(2 * log_norms) / d + sb * sb, rtol=1e-14)


def test_results_do_not_depend_on_threads_batches_splits_or_the_ntk(monkeypatch):
    kw = dict(width=6, depth=4, activation="tanh", sigma_w=1.5, sigma_b=0.2, seed=11)
    whole = fp.simulate_kernels(X3, n_networks=70, target="parallel", **kw)
    assert whole.identical(fp.simulate_kernels(X3, n_networks=70, target="cpu", **kw))
    halves = fp.simulate_kernels(X3, n_networks=30, **kw).merge(
        fp.simulate_kernels(X3, n_networks=40, first_network=30, **kw))
    assert halves.identical(whole) and np.array_equal(halves.nngp_std, whole.nngp_std)
    monkeypatch.setattr(S, "BATCH_BYTES", 1)  # one network a batch
    small = fp.simulate_kernels(X3, n_networks=70, **kw)
    assert small.identical(whole) and np.array_equal(small.ntk_mean, whole.ntk_mean)
    no_ntk = fp.simulate_kernels(X3, n_networks=70, ntk=False, **kw)
    assert no_ntk.ntk_mean is None and np.array_equal(no_ntk.nngp_mean, whole.nngp_mean)
    with pytest.raises(ValueError, match="adjacent"):
        whole.merge(whole)
    with pytest.raises(ValueError, match="different jobs"):
        whole.merge(fp.simulate_kernels(X3, n_networks=5, first_network=70, **{**kw, "seed": 12}))


def test_save_load_round_trip(tmp_path):
    r = fp.simulate_kernels(X3, width=5, depth=2, n_networks=9, activation="erf", sigma_w=1.2, seed=3)
    r.save(tmp_path / "k.npz")
    back = fp.EmpiricalKernels.load(tmp_path / "k.npz")
    assert back.identical(r) and np.array_equal(back.ntk_std, r.ntk_std) and back.n_networks == 9
    nxt = fp.simulate_kernels(X3, width=5, depth=2, n_networks=4, first_network=9, activation="erf", sigma_w=1.2,
                              seed=3)  # fmt: skip
    assert back.merge(nxt).identical(r.merge(nxt))


def test_linear_networks_are_unbiased_at_any_width():
    # E K̂^ℓ = K^ℓ and E Θ̂^ℓ = Θ^ℓ exactly for linear φ (the recursions are linear in the kernel;
    # the gradients above layer m are independent of K̂^{m−1})
    sw, sb = 1.2, 0.5
    r = fp.simulate_kernels(X3, width=4, depth=3, n_networks=20000, activation="linear", sigma_w=sw, sigma_b=sb,
                            seed=1)  # fmt: skip
    k = fp.nngp(X3, depth=3, activation="linear", sigma_w=sw, sigma_b=sb)
    assert np.array_equal(r.nngp_mean[0], k.nngp[0]) and np.all(r.nngp_std[0] == 0)
    for kernel, exact in (("nngp", k.nngp), ("ntk", k.ntk)):
        z = (getattr(r, f"{kernel}_mean")[1:] - exact[1:]) / r.stderr(kernel)[1:]
        assert np.max(np.abs(z)) < 4.5, (kernel, z)


def test_linear_spread_is_the_chi_square_product_law():
    # σ_b = 0: K̂^ℓ_aa = K⁰_aa σ_w^{2ℓ} Π χ²_N/N, so Var K̂^ℓ_aa / (K^ℓ_aa)² = (1 + 2/N)^ℓ − 1 exactly.
    # The sample variance of 20000 networks has a relative standard error ≤ 3 % here (kurtosis
    # ≤ 20 at N = 8, ℓ = 3), so 15 % is five of them.
    n_w, sw = 8, 0.9
    r = fp.simulate_kernels(X3, width=n_w, depth=3, n_networks=20000, activation="linear", sigma_w=sw, seed=2,
                            ntk=False)  # fmt: skip
    k = fp.nngp(X3, depth=3, activation="linear", sigma_w=sw)
    for ell in (1, 2, 3):
        got = np.diag(r.nngp_std[ell]) ** 2 / np.diag(k.nngp[ell]) ** 2
        np.testing.assert_allclose(got, (1 + 2 / n_w) ** ell - 1, rtol=0.15)


def test_wide_networks_approach_the_nngp():
    # width 2000: the 1/width bias (≈ 1e-4 here) is far below the standard error of 20 networks
    r = fp.simulate_kernels(X3, width=2000, depth=3, n_networks=20, activation="tanh", sigma_w=1.5, sigma_b=0.3,
                            seed=4)  # fmt: skip
    k = fp.nngp(X3, depth=3, activation="tanh", sigma_w=1.5, sigma_b=0.3)
    for kernel, exact in (("nngp", k.nngp), ("ntk", k.ntk)):
        z = (getattr(r, f"{kernel}_mean")[1:] - exact[1:]) / r.stderr(kernel)[1:]
        assert np.max(np.abs(z)) < 4.5, (kernel, z)


def test_the_finite_width_correction_is_of_order_one_over_width():
    # tanh with bias: E K̂³ − K³ is visible at width 8 (many standard errors) and width × bias is
    # the same at width 32 within their combined standard errors (a 1/√width law would double it)
    k = fp.nngp(X3, depth=3, activation="tanh", sigma_w=1.5, sigma_b=0.3, ntk=False)
    scaled = []
    for w in (8, 32):
        r = fp.simulate_kernels(X3, width=w, depth=3, n_networks=50000, activation="tanh", sigma_w=1.5,
                                sigma_b=0.3, seed=2, layers=[3], ntk=False)  # fmt: skip
        bias, se = np.diag(r.nngp_mean[0] - k.nngp[3]), np.diag(r.stderr()[0])
        scaled.append((w * bias, w * se))
        if w == 8:
            assert np.all(np.abs(bias) > 8 * se), bias / se
    (b8, s8), (b32, s32) = scaled
    assert np.all(np.abs(b8 - b32) < 4 * np.hypot(s8, s32)), (b8, b32, s8, s32)


def test_bad_input():
    with pytest.raises(TypeError, match="inputs X"):
        fp.simulate_kernels(None)
    with pytest.raises(ValueError, match="width"):
        fp.simulate_kernels(X3, width=0)
    with pytest.raises(ValueError, match="n_networks"):
        fp.simulate_kernels(X3, n_networks=0)
    with pytest.raises(ValueError, match="layers"):
        fp.simulate_kernels(X3, depth=2, layers=[3])
    with pytest.raises(ValueError, match="target"):
        fp.simulate_kernels(X3, target="gpu")
    with pytest.raises(ValueError, match="2⁶³"):
        fp.simulate_kernels(X3, n_networks=2, first_network=(1 << 63) - 1)
    with pytest.raises(ValueError, match="X"):
        fp.simulate_kernels(np.ones(3))
    with pytest.raises(MemoryError):
        fp.simulate_kernels(np.ones((200000, 2)), n_networks=1)
    with pytest.raises(FloatingPointError, match="overflow"):  # K̂ (or its square) beyond the doubles
        fp.simulate_kernels(X3 * 1e160, 2, 1, 10, "linear")
    with pytest.raises(FloatingPointError, match="overflow"):
        fp.simulate_kernels(X3, 3, 70, 5, "linear", 30.0, layers=[70], ntk=False)
    with pytest.raises(TypeError, match="real"):
        fp.simulate_kernels(X3.astype(complex))
    r = fp.simulate_kernels(X3, width=3, depth=1, n_networks=2, ntk=False)
    assert np.all(r.nngp_std[0] == 0)  # K̂⁰ = K⁰ in every network: exact sums of exact squares
    with pytest.raises(ValueError, match="no NTK"):
        r.stderr("ntk")
    assert math.isfinite(r.stderr()[1, 0, 0])

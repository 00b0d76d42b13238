"""simulate_jacobians: the Jacobians of finite-width random networks, against independent truth."""

import math

import numpy as np
import pytest
from reference import network_log_singular_values
from scipy.special import digamma

import fastprop as fp
from fastprop.jacobians import linalg, quantities


def newman(d, sw):
    """Lyapunov exponents of products of d × d Gaussian matrices with entries N(0, σ_w²/d) (Newman
    1986): λ_i = ½[ln(2σ_w²/d) + ψ((d − i + 1)/2)]."""
    return np.array([0.5 * (math.log(2 * sw * sw / d) + digamma((d - i + 1) / 2)) for i in range(1, d + 1)])


def values(r, name, layer=-1):
    """Every chain's recorded log-value of a quantity at a layer (keep_values=True)."""
    q = quantities(r.width).index(name)
    return r.stats.norms[q * r.layers.size + r._slot(layer)]


@pytest.mark.parametrize("method", ["triangular", "rotated", "dense"])
def test_lyapunov_exponents_of_gaussian_products(method):
    # for Gaussian products |T_ii(J_L)| is exactly a product of L independent (σ_w/√d) χ_{d−i+1}:
    # E log|T_ii| / L is Newman's exponent at every depth, so the estimate is unbiased
    d, L, n, sw = 4, 30, 3000, 1.3
    r = fp.simulate_jacobians(d, L, n, "linear", sw, method=method, layers=[L], seed=3)
    assert r.params["method"] == method
    lam, lo, hi = r.lyapunov(level=0.9999)  # ±3.9 SE
    exact = newman(d, sw)
    assert np.all(lo < exact) and np.all(exact < hi), (lam, exact)
    assert np.all(hi - lo < 0.04)


def relu_lyapunov(d, sw):
    """ReLU, Gaussian weights, σ_b = 0, in the frame whose first vector is x̂_0: log|T_ii| is a sum
    over layers of independent ½ log((σ_w²/d) χ²_{K−i+1}) (i = 1 … d), K ~ Binomial(d, ½) the
    number of units on, so the exponent conditioned on |T_ii| > 0 (K ≥ i in every layer) is
    ½[ln(2σ_w²/d) + E(ψ((K − i + 1)/2) | K ≥ i)] at every depth."""
    k = np.arange(d + 1)
    pk = np.array([math.comb(d, int(j)) for j in k]) / 2.0**d
    lam = []
    for i in range(1, d + 1):
        on = k >= i
        lam.append(0.5 * (math.log(2 * sw * sw / d) + np.sum(pk[on] * digamma((k[on] - i + 1) / 2)) / pk[on].sum()))
    return np.array(lam)


@pytest.mark.parametrize("method", ["triangular", "rotated", "dense"])
def test_lyapunov_exponents_of_relu_networks_in_closed_form(method):
    d, L, n, sw = 5, 3, 4000, 1.4
    r = fp.simulate_jacobians(d, L, n, "relu", sw, method=method, layers=[L], seed=8)
    lam, lo, hi = r.lyapunov(level=0.9999, nonzero=True)  # ±3.9 SE
    exact = relu_lyapunov(d, sw)
    kept = np.array([r.law(f"r{i + 1}").zeros[-1] < n for i in range(d)])
    assert kept[:3].all()  # (all 5 units on in all 3 layers: 1 chain in 30 000)
    assert np.all(lo[kept] < exact[kept]) and np.all(exact[kept] < hi[kept]), (lam, exact)
    # abs: |φ'| = 1, so T (not Q: its first column is |g|/‖g‖ ≥ 0) has the law of the linear chain's
    a = fp.simulate_jacobians(d, L, n, "abs", sw, method=method, layers=[L], seed=8)
    lam, lo, hi = a.lyapunov(level=0.9999)
    assert np.all(lo < newman(d, sw)) and np.all(newman(d, sw) < hi), lam


def test_wide_triangular_layers_draw_their_chi_variates_exactly():
    # past 32 degrees of freedom the χ² variates are gamma variates: ReLU at width 70 (K ≈ 35 units
    # on) and abs at width 40 against their closed forms
    r = fp.simulate_jacobians(70, 2, 600, "relu", 1.3, layers=[2], seed=4)
    assert r.params["method"] == "triangular"
    lam, lo, hi = r.lyapunov(level=0.9999, nonzero=True)
    exact = relu_lyapunov(70, 1.3)
    assert np.all(lo[:30] < exact[:30]) and np.all(exact[:30] < hi[:30]), (lam[:30], exact[:30])
    a = fp.simulate_jacobians(40, 2, 600, "abs", 1.3, layers=[2], seed=4)
    lam, lo, hi = a.lyapunov(level=0.9999)
    assert np.all(lo < newman(40, 1.3)) and np.all(newman(40, 1.3) < hi), lam


def test_triangular_relu_sampler_agrees_with_dense_networks_in_law():
    # no QR: the R factor of each ReLU layer drawn directly; every recorded quantity has the law of
    # the dense sampler's (the networks of simulate_chains)
    d, L, n = 6, 8, 6000
    kw = dict(activation="relu", sigma_w=1.5, layers=[2, L], keep_values=True)
    a = fp.simulate_jacobians(d, L, n, method="triangular", seed=1, **kw)
    b = fp.simulate_jacobians(d, L, n, method="dense", seed=2, **kw)
    assert fp.simulate_jacobians(d, 2, 10, "relu").params["method"] == "triangular"  # the default here
    for ell in (2, L):
        for q in ("s1", "s2", "s3", "r1", "r2", "backward", "forward", "s2/s1", "effective_rank"):
            x, y = values(a, q, ell), values(b, q, ell)
            p, pb = np.isfinite(x).mean(), np.isfinite(y).mean()  # J's rank: the same law
            assert abs(p - pb) < 4.5 * math.sqrt(2 * p * (1 - p) / n) + 1e-12, (q, ell, p, pb)
            x, y = x[np.isfinite(x)], y[np.isfinite(y)]
            se = math.hypot(x.std() / math.sqrt(x.size), y.std() / math.sqrt(y.size))
            assert abs(x.mean() - y.mean()) < 4.5 * se, (q, ell, x.mean(), y.mean())


def test_orthogonal_linear_singular_values_are_exact():
    d, L, sw = 5, 40, 1.1
    for method in ("triangular", "rotated", "dense"):
        r = fp.simulate_jacobians(d, L, 50, "linear", sw, weights="orthogonal", method=method, layers=[0, 7, L],
                                  keep_values=True, seed=1)  # fmt: skip
        for ell in (0, 7, L):
            for i in range(d):
                np.testing.assert_allclose(values(r, f"s{i + 1}", ell), ell * math.log(sw), atol=1e-12)
            np.testing.assert_allclose(values(r, "backward", ell), ell * math.log(sw), atol=1e-12)
            np.testing.assert_allclose(values(r, "forward", ell), ell * math.log(sw), atol=1e-12)
            np.testing.assert_allclose(values(r, "effective_rank", ell), math.log(d), atol=1e-12)


@pytest.mark.parametrize("method", ["triangular", "rotated"])
def test_gradient_norms_follow_the_exact_chain_law(method):
    # linear Gaussian: ‖J_L v‖ for a unit v, and ‖J_Lᵀ u‖, have the law of ‖x_L‖ from ‖x_0‖ = 1
    d, L, n = 3, 12, 20000
    t = (0.3, 1.0, 3.0)
    r = fp.simulate_jacobians(d, L, n, "linear", 1.0, method=method, thresholds=t, seed=5)
    law = fp.exact.chain_norm(d, L)
    for q in ("forward", "backward"):
        for tt in t:
            est = r.law(q).tail_probability(tt)
            p = float(law.sf(tt))
            se = math.sqrt(p * (1 - p) / n)
            assert abs(est.p - p) < 4.5 * se, (q, tt, est, p)


def test_width_one_is_a_product_of_scalars():
    # d = 1: J_L = Π σ_w z_ℓ φ'(h_ℓ); linear: log|J_L| has mean L(ln σ_w − (γ + ln 2)/2), variance Lπ²/8
    L, n, sw = 9, 20000, 0.7
    r = fp.simulate_jacobians(1, L, n, "linear", sw, method="rotated", seed=2)
    s1 = r.law("s1")
    mean = L * (math.log(sw) - (np.euler_gamma + math.log(2)) / 2)
    sd = math.sqrt(L * math.pi**2 / 8)
    assert abs(s1.mean_log_norm() - mean) < 4.5 * sd / math.sqrt(n)
    assert abs(s1.std_log_norm() / sd - 1) < 0.03
    assert np.isnan(r.law("s2/s1").mean_log_norm())  # undefined for one unit
    lam, _, _ = r.lyapunov()
    assert abs(lam[0] - s1.mean_log_norm() / L) < 1e-12  # T = J for d = 1


def test_relu_jacobian_maps_the_input_to_the_output():
    # ReLU, σ_b = 0: φ(h) = φ'(h) h, so x_L = J_L x_0 chain by chain
    d, L, n = 6, 25, 400
    x0 = np.linspace(-1.0, 2.0, d)
    chains = fp.simulate_chains(d, L, n, "relu", 1.4, method="dense", x0=x0, layers=[5, L], keep_norms=True, seed=9)
    r = fp.simulate_jacobians(d, L, n, "relu", 1.4, method="dense", x0=x0, v=x0, layers=[5, L], keep_values=True,
                              seed=9)  # fmt: skip
    for ell in (5, L):
        got = values(r, "forward", ell) + math.log(np.linalg.norm(x0))
        want = chains.norms[chains._slot(ell)]
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=1e-11)
        assert np.array_equal(np.isneginf(got), np.isneginf(want))
        # the frame's first vector is x̂_0, so T_11 = ‖J x̂_0‖ = ‖x_ℓ‖/‖x_0‖
        got = values(r, "r1", ell) + math.log(np.linalg.norm(x0))
        np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=1e-11)
        assert np.array_equal(np.isneginf(got), np.isneginf(want))
    # rank collapse: at width 6 some units are always off, so J is singular and s_6 = 0 exactly
    assert r.law("s6").zeros[-1] == n
    assert 0 < r.law("s1").zeros[-1] < n  # every unit of some layer off: J = 0
    lam, lo, hi = r.lyapunov()
    assert lam[0] == -math.inf and lam[-1] == -math.inf
    lam, lo, hi = r.lyapunov(nonzero=True)  # over the chains that kept a direction
    kept = values(r, "r1", L)
    np.testing.assert_allclose(lam[0], kept[np.isfinite(kept)].mean() / L, rtol=1e-12)
    assert lo[0] < lam[0] < hi[0] and np.isnan(lam[-1])


@pytest.mark.parametrize(
    "act, sw, sb, rms, L, d",
    [("linear", 1.0, 0.0, False, 60, 6), ("tanh", 1.6, 0.2, False, 40, 5), ("tanh", 1.2, 0.0, True, 30, 4),
     ("relu", 1.5, 0.1, False, 20, 6), ("erf", 3.0, 0.0, False, 10, 4), ("tanh", 50.0, 0.0, False, 2, 3)],  # fmt: skip
)
def test_singular_values_are_accurate_across_hundreds_of_decades(act, sw, sb, rms, L, d):
    # against the explicit product in 160-digit arithmetic: the smallest singular values, ~1e-40
    # of the largest for the linear chain, are as accurate as the largest; with erf at σ_w = 3 or
    # tanh at σ_w = 50, φ' spans tens of decades within a layer (rows sorted before each QR)
    from scipy.special import erf

    phi = {"linear": lambda h: h, "tanh": np.tanh, "relu": lambda h: np.maximum(h, 0.0),
           "erf": lambda h: erf(math.sqrt(math.pi) / 2 * h)}[act]  # fmt: skip
    dphi = {"linear": np.ones_like, "tanh": lambda h: 1 / np.cosh(h) ** 2, "relu": lambda h: (h > 0) * 1.0,
            "erf": lambda h: np.exp(-math.pi * h * h / 4)}[act]  # fmt: skip
    x0 = np.cos(np.arange(d) + 0.5)
    layers = sorted({1, L // 2, L})
    r = fp.simulate_jacobians(d, L, 3, act, sw, sb, method="dense", rms_norm=rms, x0=x0, layers=layers,
                              keep_values=True, seed=4, first_chain=11)  # fmt: skip
    for k in range(3):
        ref = network_log_singular_values(phi, dphi, d, L, sw, sb, 4, 11 + k, x0, layers, rms, dps=160)
        for ell in layers:
            got = np.array([values(r, f"s{i + 1}", ell)[k] for i in range(d)])
            want = np.array(ref[ell])
            assert np.array_equal(np.isneginf(got), np.isneginf(want)), (ell, got, want)
            fin = np.isfinite(want)
            np.testing.assert_allclose(got[fin], want[fin], rtol=0, atol=1e-10 * max(1.0, ell / 10))
            if act == "linear" and ell == L:
                assert want[0] - want[-1] > 80  # e^80 ≈ 1e35 between the largest and the smallest
    if rms:
        assert r.law(f"s{d}").zeros[-1] == 3  # the normalisation removes one direction exactly


def test_rank_collapse_with_and_without_rms_norm():
    # the thesis chapter's picture: a product of Gaussian matrices collapses towards rank one,
    # log(s_2/s_1) falling like L(λ_2 − λ_1); RMS normalisation of the forward signal does not stop it
    d = 8
    r = fp.simulate_jacobians(d, 60, 300, "linear", 1.0, layers=[10, 60], seed=1)
    rr = fp.simulate_jacobians(d, 60, 300, "linear", 1.0, rms_norm=True, layers=[10, 60], seed=1)
    assert rr.params["method"] == "rotated"
    lam = newman(d, 1.0)
    drop = r.law("s2/s1").mean_log_norm(layer=60) - r.law("s2/s1").mean_log_norm(layer=10)
    assert abs(drop - 50 * (lam[1] - lam[0])) < 0.6
    assert rr.law("s2/s1").mean_log_norm(layer=60) < rr.law("s2/s1").mean_log_norm(layer=10) - 3
    assert rr.law(f"s{d}").zeros[-1] == 300


def test_dense_and_rotated_samplers_agree_in_law():
    d, L, n = 5, 20, 4000
    kw = dict(activation="tanh", sigma_w=1.8, sigma_b=0.3, layers=[L], seed=21)
    a = fp.simulate_jacobians(d, L, n, method="dense", **kw)
    b = fp.simulate_jacobians(d, L, n, method="rotated", **kw)
    for q in ("s1", "s3", "s5", "backward", "forward", "s2/s1", "effective_rank"):
        la, lb = a.law(q), b.law(q)
        se = math.hypot(la.std_log_norm(), lb.std_log_norm()) / math.sqrt(n)
        assert abs(la.mean_log_norm() - lb.mean_log_norm()) < 4.5 * se, q


def test_bit_identical_across_targets_batches_and_merges():
    kw = dict(width=4, depth=15, activation="tanh", sigma_w=1.5, sigma_b=0.2, method="rotated", layers=[3, 15],
              seed=7, keep_values=True)  # fmt: skip
    whole = fp.simulate_jacobians(n_chains=90, target="parallel", **kw)
    serial = fp.simulate_jacobians(n_chains=90, target="cpu", batch_size=7, **kw)
    assert whole.identical(serial)
    halves = fp.simulate_jacobians(n_chains=40, target="parallel", **kw).merge(
        fp.simulate_jacobians(n_chains=50, first_chain=40, target="parallel", **kw))  # fmt: skip
    assert whole.identical(halves)
    np.testing.assert_array_equal(whole.stats.norms, halves.stats.norms)


def test_save_load_and_laws(tmp_path):
    r = fp.simulate_jacobians(3, 10, 200, "tanh", 1.2, layers=[0, 10], thresholds=(0.5, 2.0), seed=1)
    path = r.save(tmp_path / "j.npz")
    back = fp.JacobianResult.load(path)
    assert back.identical(r)
    np.testing.assert_array_equal(back.mean_log_singular_values(), r.mean_log_singular_values())
    np.testing.assert_allclose(r.mean_log_singular_values(0), 0.0, atol=1e-15)  # J_0 = I
    assert r.law("effective_rank").quantile(0.5, layer=0) == pytest.approx(3.0, rel=0.05)
    t = r.law("backward").tail_probability(2.0)
    assert 0 <= t.ci_low <= t.p <= t.ci_high <= 1
    with pytest.raises(ValueError, match="unknown quantity"):
        r.law("s4")
    with pytest.raises(ValueError, match="ℓ ≥ 1"):
        r.lyapunov(layer=0)
    with pytest.raises(ValueError, match="different simulations"):
        r.merge(fp.simulate_jacobians(3, 10, 200, "tanh", 1.3, layers=[0, 10], thresholds=(0.5, 2.0), seed=1))


def test_bad_input():
    with pytest.raises(ValueError, match="triangular"):
        fp.simulate_jacobians(4, 5, 10, "tanh", method="triangular")
    with pytest.raises(ValueError, match="triangular"):
        fp.simulate_jacobians(4, 5, 10, "linear", method="triangular", rms_norm=True)
    for kw in (dict(activation="relu", sigma_b=0.1), dict(activation="leaky_relu"),
               dict(activation="relu", weights="orthogonal"), dict(activation="abs", x0=np.zeros(4))):  # fmt: skip
        with pytest.raises(ValueError, match="triangular"):
            fp.simulate_jacobians(4, 5, 10, method="triangular", **kw)
    with pytest.raises(ValueError, match="shape"):
        fp.simulate_jacobians(4, 5, 10, u=np.ones(3))
    with pytest.raises(ValueError, match="non-zero"):
        fp.simulate_jacobians(4, 5, 10, v=np.zeros(4))
    with pytest.raises(ValueError, match="method"):
        fp.simulate_jacobians(4, 5, 10, method="qr")
    with pytest.raises(ValueError):
        fp.simulate_jacobians(0, 5, 10)


def test_graded_jacobi_against_numpy_where_numpy_is_accurate():
    # a well-conditioned case where LAPACK's SVD is accurate for every value, in scaled form with
    # row scales 2^±600 folded in and out exactly
    rng = np.random.default_rng(0)
    d = 7
    for trial in range(20):
        A = np.triu(rng.standard_normal((d, d))) + 3 * np.eye(d)
        That = A.copy()
        e = np.zeros(d, np.int64)
        for i in range(d):
            e[i] = linalg.normalise_row(That[i], d)
        shift = 600 if trial % 2 else -600
        e += shift
        live = np.ones(d, np.int64)
        out = np.empty(d)
        sweeps = linalg.log_singular_values(That, e, live, d, np.empty((d, d)), np.empty(d, np.int64), out)
        assert 0 < sweeps < 20
        want = np.log(np.linalg.svd(A, compute_uv=False)) + shift * math.log(2)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-13 * abs(shift))


def test_homogeneous_networks_do_not_depend_on_the_input_scale():
    # positively homogeneous φ, σ_b = 0: x is carried as a unit direction, so an input of norm
    # 1e-200 (or tiny weights that would underflow x within 100 layers) changes nothing
    x0 = np.cos(np.arange(8.0))
    kw = dict(width=8, depth=60, n_chains=200, sigma_w=1e-3, layers=[40, 60], seed=2, method="dense")
    for act in ("relu", "leaky_relu"):
        a = fp.simulate_jacobians(activation=act, x0=x0, **kw)
        b = fp.simulate_jacobians(activation=act, x0=x0 * 1e-200, **kw)
        assert np.array_equal(a.law("s1").zeros, b.law("s1").zeros)
        np.testing.assert_allclose(a.mean_log_singular_values(), b.mean_log_singular_values(), rtol=1e-12)
    assert a.mean_log_singular_values()[0] < -400  # far below the smallest double, without underflow
    # weights so large that ‖h‖² leaves the doubles: J scales by σ_w^ℓ, the same networks otherwise
    kw = dict(width=5, depth=4, n_chains=300, layers=[4], seed=2, method="dense", keep_values=True)
    ref = fp.simulate_jacobians(activation="relu", sigma_w=1.0, **kw)
    for sw in (1e200, 1e-200):
        big = fp.simulate_jacobians(activation="relu", sigma_w=sw, **kw)
        for q in ("s1", "s3", "backward"):
            want, got = values(ref, q), values(big, q) - 4 * math.log(sw)
            assert np.array_equal(np.isfinite(got), np.isfinite(want)) and np.isfinite(want).sum() > 10
            np.testing.assert_allclose(got[np.isfinite(want)], want[np.isfinite(want)], rtol=0, atol=1e-9)


def test_extreme_inputs_give_values_not_crashes():
    # a huge input saturates tanh (φ' = 0: J = 0); tiny norms under RMS normalisation; directions
    # given with huge or tiny entries are the same directions
    r = fp.simulate_jacobians(3, 3, 20, "tanh", x0=[1e308, -1e308, 1e308], target="cpu", seed=1)
    assert r.law("s1").zeros[-1] == 20
    r = fp.simulate_jacobians(4, 3, 20, "tanh", rms_norm=True, x0=np.full(4, 1e-310), seed=1)
    assert r.law("s4").zeros[-1] == 20 and np.isfinite(r.mean_log_singular_values()[0])
    a = fp.simulate_jacobians(3, 4, 5, "tanh", u=[1e300, 1e300, 0], v=[1e-170, 2e-170, 0], keep_values=True)
    b = fp.simulate_jacobians(3, 4, 5, "tanh", u=[1, 1, 0], v=[1, 2, 0], keep_values=True)
    assert a.identical(b)
    _, beta = linalg.reflector(np.array([0.0, 1e-170, 1e-170]), 0, 3, np.zeros(3))
    assert abs(abs(beta) / 1e-170 - math.sqrt(2)) < 1e-15

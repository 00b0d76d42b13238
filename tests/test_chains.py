"""simulate_chains: Monte Carlo against exact laws, samplers in law, bit-identity, statistics, errors."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import fastprop as fp

SQRT2 = math.sqrt(2.0)


def _within(est, exact, k=4.0):
    """|p̂ − p| within k binomial standard errors of the exact p."""
    se = math.sqrt(exact * (1 - exact) / est.n)
    assert abs(est.p - exact) <= k * se + 1e-300, (est, exact)


# ---------------------------------------------------------------- exact laws
@pytest.mark.parametrize("depth", [1, 20, 100])
def test_linear_auto_against_exact_law(depth):
    n = 400_000
    r = fp.simulate_chains(10, depth, n, seed=11, thresholds=(0.01, 10.0), target="parallel")
    law = fp.exact.chain_norm(10, depth)
    _within(r.tail_probability(10.0), float(law.sf(10.0)))
    _within(r.tail_probability(0.01, "lower"), float(law.cdf(0.01)))
    se = law.std_log() / math.sqrt(n)
    assert abs(r.mean_log_norm() - law.mean_log()) < 4 * se
    assert r.std_log_norm() == pytest.approx(law.std_log(), rel=0.01)
    # the median: the histogram's estimate is within a bin of the exact median
    med = law.median()
    assert abs(math.log10(r.quantile(0.5)) - math.log10(med)) < 1.5 / 50 + 4 * se / math.log(10) * 2.5


def test_median_through_an_exact_threshold():
    """P(‖x‖ < exact median) is ½ within a few standard errors."""
    law = fp.exact.chain_norm(10, 20)
    med = law.median()
    r = fp.simulate_chains(10, 20, 200_000, seed=3, thresholds=(med,))
    _within(r.tail_probability(med, "lower"), 0.5)


def test_dense_against_exact_law():
    r = fp.simulate_chains(10, 20, 20_000, method="dense", seed=5, thresholds=(0.01, 0.1, 3.0))
    law = fp.exact.chain_norm(10, 20)
    _within(r.tail_probability(3.0), float(law.sf(3.0)))
    _within(r.tail_probability(0.1, "lower"), float(law.cdf(0.1)))
    assert abs(r.mean_log_norm() - law.mean_log()) < 4 * law.std_log() / math.sqrt(r.n)


@pytest.mark.parametrize("method", ["invariant", "dense"])
def test_relu_against_exact_law_with_zero_atom(method):
    n = 200_000 if method == "invariant" else 20_000
    d, depth = 6, 20
    r = fp.simulate_chains(d, depth, n, "relu", sigma_w=SQRT2, method=method, seed=8, thresholds=(0.01, 3.0))
    law = fp.exact.chain_norm(d, depth, "relu", sigma_w=SQRT2)
    _within(r.zero_probability(), law.atom)
    _within(r.tail_probability(3.0), float(law.sf(3.0)))
    _within(r.tail_probability(0.01, "lower"), float(law.cdf(0.01)))
    m = r.n - int(r.zeros[-1])
    assert abs(r.mean_log_norm(nonzero=True) - law.mean_log()) < 4 * law.std_log() / math.sqrt(m)
    assert r.mean_log_norm() == -math.inf


def test_depth_ten_thousand_tracks_log_norms():
    n = 4000
    r = fp.simulate_chains(10, 10_000, n, seed=2)
    law = fp.exact.chain_norm(10, 10_000)
    assert r.n_inf[-1] == 0 and r.n_nan[-1] == 0 and r.zeros[-1] == 0
    assert abs(r.mean_log_norm() - law.mean_log()) < 4 * law.std_log() / math.sqrt(n)
    assert law.mean_log() / math.log(10) < -200  # far below the double range: only logs survive


def test_non_finite_values_are_counted():
    # ‖x‖² grows ~4.5× a layer: past 1e308 (not just ‖x‖² past the float range) by depth 2000
    r = fp.simulate_chains(32, 2000, 200, "relu", sigma_w=3.0, sigma_b=1.0, seed=1)
    assert r.n_inf[-1] + r.n_nan[-1] == 200
    assert r.tail_probability(10.0).hits == r.n_inf[-1]
    assert math.isnan(r.mean_sq_norm()) or r.mean_sq_norm() == math.inf


# ------------------------------------------------------------ samplers in law
def _same_law(a, b):
    assert stats.ks_2samp(a.norms[-1], b.norms[-1]).pvalue > 1e-3


@pytest.mark.parametrize(
    "kw",
    [
        {"activation": "tanh", "sigma_w": 1.5, "sigma_b": 0.5},
        {"activation": "tanh", "sigma_w": 1.5, "sigma_b": 0.5, "weights": "orthogonal"},
        {"activation": "relu", "sigma_w": SQRT2, "weights": "orthogonal"},
        {"activation": "linear", "sigma_w": 1.0, "sigma_b": 0.2, "weights": "orthogonal"},
        {"activation": "tanh", "sigma_w": 2.0, "sigma_b": 0.1, "rms_norm": True},
        {"activation": "relu", "sigma_w": SQRT2, "rms_norm": True},
        {"activation": "leaky_relu", "sigma_w": SQRT2},
    ],
)
def test_dense_and_invariant_agree_in_law(kw):
    common = dict(width=6, depth=8, n_chains=20_000, keep_norms=True, **kw)
    dense = fp.simulate_chains(method="dense", seed=1, **common)
    inv = fp.simulate_chains(method="invariant", seed=2, **common)
    _same_law(dense, inv)


def test_orthogonal_linear_preserves_norm_exactly():
    r = fp.simulate_chains(7, 50, 1000, sigma_w=1.0, weights="orthogonal", method="dense", keep_norms=True)
    np.testing.assert_allclose(r.norms[-1], 0.0, atol=1e-12)


def test_meanfield_agreement_at_large_width():
    """‖x_ℓ‖²/d at d = 1000 follows E φ(√q^ℓ z)² with q^{ℓ+1} = V(q^ℓ) (Poole et al. 2016)."""
    d, sw, sb = 1000, 1.5, 0.3
    r = fp.simulate_chains(d, 5, 400, "tanh", sigma_w=sw, sigma_b=sb, layers=range(1, 6), seed=4)
    q = sw**2 * 1.0 / d + sb**2  # ‖x0‖ = 1
    for ell in range(1, 6):
        expect_x2 = (fp.length_map(q, sw, sb, "tanh") - sb**2) / sw**2
        assert r.mean_sq_norm(ell) / d == pytest.approx(expect_x2, rel=5e-3)
        q = fp.length_map(q, sw, sb, "tanh")


# --------------------------------------------------------- bit-identical runs
KW = dict(width=5, depth=12, activation="tanh", sigma_w=1.3, sigma_b=0.2, layers=(0, 3, 12), keep_norms=True)


@pytest.mark.parametrize("method", ["dense", "invariant"])
def test_merge_of_halves_equals_the_whole(method):
    n = 3000
    whole = fp.simulate_chains(n_chains=n, method=method, seed=9, **KW)
    a = fp.simulate_chains(n_chains=n // 2, first_chain=0, method=method, seed=9, **KW)
    b = fp.simulate_chains(n_chains=n - n // 2, first_chain=n // 2, method=method, seed=9, **KW)
    assert b.merge(a).identical(whole)
    assert a.merge(b).identical(whole)


@pytest.mark.parametrize("kw", [KW, dict(width=10, depth=30, activation="relu", sigma_w=SQRT2)])
def test_batch_size_and_target_do_not_matter(kw):
    ref = fp.simulate_chains(n_chains=2500, seed=4, target="cpu", **kw)
    for bs in (1, 7, 1000):
        assert fp.simulate_chains(n_chains=2500, seed=4, batch_size=bs, target="parallel", **kw).identical(ref)


def test_float32_does_not_depend_on_target_or_batches():
    kw = dict(KW, method="dense", dtype="float32")
    ref = fp.simulate_chains(n_chains=1500, seed=4, target="cpu", **kw)
    assert ref.params["dtype"] == "float32"
    for bs in (7, 1000):
        assert fp.simulate_chains(n_chains=1500, seed=4, batch_size=bs, target="parallel", **kw).identical(ref)


def test_thread_count_does_not_matter(tmp_path):
    code = (
        "import fastprop as fp, sys;"
        "r = fp.simulate_chains(10, 50, 20000, 'tanh', sigma_w=1.2, sigma_b=0.1, layers=(10, 50), target='parallel');"
        "r.save(sys.argv[1])"
    )
    paths = []
    for threads in ("1", "2"):
        p = tmp_path / f"r{threads}.npz"
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        subprocess.run([sys.executable, "-c", code, str(p)], check=True, env=env)
        paths.append(p)
    assert fp.ChainResult.load(paths[0]).identical(fp.ChainResult.load(paths[1]))


def test_different_seeds_and_chains_differ():
    a = fp.simulate_chains(n_chains=100, seed=1, **KW)
    b = fp.simulate_chains(n_chains=100, seed=2, **KW)
    c = fp.simulate_chains(n_chains=100, seed=1, first_chain=100, **KW)
    assert not np.array_equal(a.norms, b.norms) and not np.array_equal(a.norms, c.norms)


# ------------------------------------------------------------- the result API
def test_statistics_agree_with_raw_norms():
    r = fp.simulate_chains(n_chains=5000, seed=3, thresholds=(0.5, 1.0, 2.0), **KW)
    v = r.norms[-1]
    for t in (0.5, 1.0, 2.0):
        assert r.tail_probability(t).hits == np.count_nonzero(v > math.log(t))
        assert r.tail_probability(t, "lower").hits == np.count_nonzero(v < math.log(t))
    assert r.mean_log_norm() == pytest.approx(v.mean(), rel=1e-12)
    assert r.mean_sq_norm() == pytest.approx(np.exp(2 * v).mean(), rel=1e-12)
    assert r.std_log_norm() == pytest.approx(v.std(ddof=1), rel=1e-9)
    counts, edges = r.histogram()
    ref, _ = np.histogram(v / math.log(10), bins=edges)
    assert counts.sum() == r.n and np.abs(counts - ref).sum() <= 2  # edge rounding only
    assert r.tail_probability(1.7).hits == np.count_nonzero(v > math.log(1.7))  # undeclared: raw norms
    qs = r.quantile([0.1, 0.5, 0.9])
    np.testing.assert_allclose(qs, np.exp(np.quantile(v, [0.1, 0.5, 0.9])))


def test_histogram_quantile_resolution():
    r = fp.simulate_chains(n_chains=20000, seed=3, **{**KW, "keep_norms": False})
    exact = fp.simulate_chains(n_chains=20000, seed=3, **KW).quantile([0.1, 0.5, 0.9])
    approx = r.quantile([0.1, 0.5, 0.9])
    assert np.all(np.abs(np.log10(approx / exact)) <= 1 / 50)


@pytest.mark.parametrize("hits,n", [(0, 100), (3, 1000), (584, 1_000_000), (500, 1000)])
def test_confidence_intervals_match_scipy(hits, n):
    r = fp.chains.result
    lo, hi = r.binomial_interval(hits, n, 0.95, "wilson")
    ci = stats.binomtest(hits, n).proportion_ci(0.95, method="wilson")
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-12, abs=1e-15)
    lo, hi = r.binomial_interval(hits, n, 0.9, "clopper-pearson")
    ci = stats.binomtest(hits, n).proportion_ci(0.9, method="exact")
    assert (lo, hi) == pytest.approx((ci.low, ci.high), rel=1e-10, abs=1e-15)


def test_save_load_round_trip(tmp_path):
    r = fp.simulate_chains(n_chains=500, seed=1, **KW)
    r.save(tmp_path / "r.npz")
    assert fp.ChainResult.load(tmp_path / "r.npz").identical(r)
    plain = fp.simulate_chains(n_chains=500, seed=1, **{**KW, "keep_norms": False})
    plain.save(tmp_path / "p.npz")
    assert fp.ChainResult.load(tmp_path / "p.npz").identical(plain)


def test_merge_rejects_overlap_and_mismatch():
    a = fp.simulate_chains(n_chains=100, seed=1, **KW)
    with pytest.raises(ValueError, match="overlap"):
        a.merge(fp.simulate_chains(n_chains=100, first_chain=50, seed=1, **KW))
    with pytest.raises(ValueError, match="seed"):
        a.merge(fp.simulate_chains(n_chains=100, first_chain=100, seed=2, **KW))


def test_result_queries_validate():
    r = fp.simulate_chains(n_chains=100, seed=1, **{**KW, "keep_norms": False})
    with pytest.raises(ValueError, match="not a declared threshold"):
        r.tail_probability(3.3)
    with pytest.raises(ValueError, match="not recorded"):
        r.tail_probability(10.0, layer=5)
    with pytest.raises(ValueError, match="side"):
        r.tail_probability(10.0, side="both")
    assert r.tail_probability(10.0, layer=3).n == 100
    with pytest.raises(ValueError, match="interval"):
        r.tail_probability(10.0, interval="jeffreys")


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        ({"width": 0}, ValueError, "width"),
        ({"depth": -1}, ValueError, "depth"),
        ({"n_chains": 0}, ValueError, "n_chains"),
        ({"thresholds": (0.0, 1.0)}, ValueError, "thresholds"),
        ({"thresholds": (-1.0,)}, ValueError, "thresholds"),
        ({"weights": "uniform"}, ValueError, "weights"),
        ({"method": "fast"}, ValueError, "method"),
        ({"target": "gpu"}, ValueError, "target"),
        ({"x0": np.ones(3)}, ValueError, "x0"),
        ({"sigma_w": -1.0}, ValueError, "sigma_w"),
        ({"activation": "nope"}, ValueError, "activation"),
        ({"layers": (11,)}, ValueError, "layers"),
        ({"seed": -1}, ValueError, "seed"),
        ({"width": 2.5}, TypeError, "width"),
        ({"dtype": "float16"}, ValueError, "dtype"),
        ({"dtype": "int64"}, ValueError, "dtype"),
        ({"dtype": object()}, TypeError, "dtype"),
    ],
)
def test_bad_input(kwargs, err, match):
    base = dict(width=4, depth=10, n_chains=10)
    with pytest.raises(err, match=match):
        fp.simulate_chains(**{**base, **kwargs})


# ------------------------------------------------------------------- float32
ULP32 = 2.0**-24


@pytest.mark.parametrize(
    "kw",
    [
        dict(width=10, activation="linear", method="dense"),
        dict(width=40, activation="linear", method="dense"),
        dict(width=10, activation="relu", sigma_w=SQRT2, method="dense"),
        dict(width=10, activation="tanh", sigma_w=1.0, sigma_b=0.3, method="dense"),
        dict(width=10, activation="tanh", sigma_w=1.0, sigma_b=0.3, method="invariant"),
        dict(width=6, activation="tanh", sigma_w=1.2, sigma_b=0.2, weights="orthogonal", method="dense"),
    ],
)
def test_float32_rounding_stays_within_its_stated_bound(kw):
    # the docstring's accuracy statement, chain by chain against the float64 twin
    # (same streams): median |Δ log‖x_ℓ‖| ≤ ℓ·√d·2⁻²⁴, 99 % of chains within 4×
    layers = (1, 10, 40)
    common = dict(depth=40, n_chains=3000, layers=layers, keep_norms=True, seed=4, target="parallel", **kw)
    a = fp.simulate_chains(**common)
    b = fp.simulate_chains(dtype="float32", **common)
    fin = np.isfinite(a.norms)
    np.testing.assert_array_equal(fin, np.isfinite(b.norms))
    np.testing.assert_array_equal(a.norms[~fin], b.norms[~fin])  # the same exact zeros
    for s, ell in enumerate(layers):
        diff = np.abs(a.norms[s][fin[s]] - b.norms[s][fin[s]])
        bound = ell * math.sqrt(kw["width"]) * ULP32
        assert np.median(diff) <= bound, (ell, np.median(diff), bound)
        assert np.percentile(diff, 99) <= 4 * bound, (ell, np.percentile(diff, 99), bound)
        assert diff.max() > 0  # float32 really ran


def test_float32_tail_counts_differ_only_near_thresholds():
    # a count may change only for a chain whose float64 log-norm lies within the
    # largest float32 deviation of a threshold: chaotic tanh, where single chains
    # drift apart (rounding is amplified like any perturbation) but the law does not
    kw = dict(width=10, depth=30, n_chains=4000, activation="tanh", sigma_w=2.0, sigma_b=0.3, method="dense")
    kw.update(thresholds=(1.5, 3.0, 4.5), layers=(5, 30), keep_norms=True, seed=12)
    a = fp.simulate_chains(**kw)
    b = fp.simulate_chains(dtype="float32", **kw)
    tlog = np.log(a.thresholds)
    for s in range(2):
        dev = np.abs(a.norms[s] - b.norms[s]).max()
        near = np.abs(a.norms[s][:, None] - tlog[None, :]) <= dev
        changed = np.abs(a.above[s] - b.above[s]) + np.abs(a.below[s] - b.below[s])
        assert np.all(changed <= 2 * near.sum(axis=0))
        for t in a.thresholds:  # and the estimates agree well inside their intervals
            ea, eb = a.tail_probability(t, layer=int(a.layers[s])), b.tail_probability(t, layer=int(a.layers[s]))
            assert abs(ea.p - eb.p) <= 0.1 * (ea.ci_high - ea.ci_low) + 1e-12


def test_float32_and_float64_runs_do_not_merge(tmp_path):
    a = fp.simulate_chains(4, 5, 100, method="dense", dtype="float32")
    b = fp.simulate_chains(4, 5, 100, first_chain=100, method="dense")
    with pytest.raises(ValueError, match="dtype"):
        a.merge(b)
    a.save(tmp_path / "a.npz")
    assert fp.ChainResult.load(tmp_path / "a.npz").params["dtype"] == "float32"


# ------------------------------------------- samplers agree beyond float range
# (σ_w, σ_b, depth) per activation such that log10‖x_L‖ lies far beyond ±154 —
# where ‖x‖² leaves the float range although ‖x‖ does not — for every activation
# that can get there: growth for the unbounded ones (σ_b > 0 keeps the
# homogeneous ones off the log-tracked path), decay to 1e-200 and below for the
# odd bounded ones. sigmoid (φ ≥ 0, φ(0) = ½) keeps ‖x‖ in [0, √d]: a check that
# nothing goes wrong there either.
_FAR = {
    "linear": (3.0, 0.1, 450),
    "relu": (3.0, 0.1, 600),
    "leaky_relu": (3.0, 0.1, 600),
    "abs": (3.0, 0.1, 450),
    "elu": (3.0, 0.1, 600),
    "selu": (3.0, 0.1, 600),
    "gelu": (3.0, 0.1, 600),
    "softplus": (3.0, 0.1, 600),
    "swish": (3.0, 0.1, 600),
    "tanh": (0.5, 0.0, 700),
    "hard_tanh": (0.5, 0.0, 700),
    "erf": (0.5, 0.0, 700),
    "sigmoid": (3.0, 0.1, 200),
}


@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_invariant_and_dense_agree_in_law_where_norms_leave_the_float_range(name):
    """The invariant sampler carries log‖x‖, so ‖x‖² overflowing (or underflowing)
    changes nothing: its law of log‖x_L‖ is the dense sampler's (two-sample KS),
    with no infinite, NaN or zero norm that dense does not also have."""
    assert set(_FAR) == set(fp.ACTIVATIONS)
    sw, sb, depth = _FAR[name]
    bounded = sw < 1.0 or name == "sigmoid"  # width 16 keeps relu-like layers from dying (2⁻¹⁶ a layer)
    kw = dict(width=4 if bounded else 16, depth=depth, n_chains=1500 if bounded else 800, activation=name,
              sigma_w=sw, sigma_b=sb, keep_norms=True, target="cpu")  # fmt: skip
    inv = fp.simulate_chains(method="invariant", seed=21, **kw)
    den = fp.simulate_chains(method="dense", seed=22, **kw)
    a, b = inv.norms[0] / math.log(10), den.norms[0] / math.log(10)
    for r in (inv, den):
        assert r.n_inf[0] == 0 and r.n_nan[0] == 0 and r.zeros[0] <= 2, (name, r.n_inf, r.n_nan, r.zeros)
    if name != "sigmoid":
        assert min(np.median(np.abs(a)), np.median(np.abs(b))) > 160, (name, np.median(a), np.median(b))
    assert stats.ks_2samp(a, b).pvalue > 1e-3, (name, np.median(a), np.median(b))


def test_a_nan_activation_is_counted_as_nan_by_every_sampler():
    """A φ that returns NaN (here beyond |h| = 10) gives NaN norms (never a zero
    norm), on both samplers, and NaN stays NaN in every later layer."""
    fp.register_activation(
        "nan_beyond_10",
        lambda h: h if abs(h) < 10.0 else math.nan,
        lambda h: 1.0 if abs(h) < 10.0 else math.nan,
        lambda h: 0.0 if abs(h) < 10.0 else math.nan,
        overwrite=True,
    )
    for method, rms in (("invariant", False), ("dense", False), ("invariant", True)):
        r = fp.simulate_chains(3, 5, 100, "nan_beyond_10", sigma_w=1e4, method=method, target="cpu", layers=[1, 5],
                               rms_norm=rms, x0=[1.0, 1.0, 1.0], sigma_b=0.5)  # fmt: skip
        assert r.n_nan.tolist() == [100, 100] and r.zeros.tolist() == [0, 0], (method, r.n_nan, r.zeros)


# ------------------------------------------------ interruptible, sized up front
def test_default_batches_start_small_so_an_interrupt_takes_effect_soon():
    """Without batch_size the first batch has one chain per thread and later ones
    about BATCH_SECONDS of work (at most 8× the previous), whatever the request."""
    sizes = []

    class Recorder:
        def update(self, n):
            sizes.append(n)

    ref = fp.simulate_chains(4, 3, 5000, target="cpu", seed=2, batch_size=5000)
    r = fp.simulate_chains(4, 3, 5000, target="cpu", seed=2, progress=Recorder())
    assert sizes[0] == 1 and sum(sizes) == 5000
    assert all(b <= 8 * a for a, b in zip(sizes, sizes[1:-1], strict=False))
    assert r.identical(ref)


def test_a_request_that_cannot_fit_is_refused_before_any_work():
    from fastprop.run.resources import ResourceError

    with pytest.raises(ResourceError, match=r"would need .*GiB") as info:
        fp.simulate_chains(100_000, 2, 10, method="dense", target="cpu")
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)
    with pytest.raises(ResourceError, match="keep_norms"):
        fp.simulate_chains(3, 2, 10**12, keep_norms=True, target="cpu")
    with pytest.raises(ResourceError, match="grid"):
        fp.meanfield_grid("tanh", np.linspace(0, 1, 10**6), np.linspace(0, 1, 10**6))
    # depth alone costs nothing: no table of layers
    r = fp.simulate_chains(2, 10**6, 1, target="cpu", layers=[0, -1])
    assert r.n == 1


@pytest.mark.parametrize("kw", [{"sigma_b": 1e160}, {"sigma_w": 1e80, "sigma_b": 0.1}])
def test_invariant_overflows_where_dense_does_at_huge_sigma(kw):
    """The pre-activation variance σ_w²‖x‖²/d + σ_b² can overflow while ‖x‖ does not."""
    counts = {}
    for m in ("invariant", "dense"):
        r = fp.simulate_chains(16, 4, 300, "relu", method=m, target="cpu", layers=[1, 2, 3, 4], seed=3, **kw)
        counts[m] = r.n_inf.tolist()
    assert counts["invariant"][:3] == counts["dense"][:3] == [0, 0, 0], counts


@pytest.mark.parametrize("method, weights, act", [("dense", "gaussian", "relu"), ("dense", "orthogonal", "leaky_relu"),
                                                  ("invariant", "gaussian", "relu"),
                                                  ("invariant", "orthogonal", "leaky_relu"),
                                                  ("invariant", "orthogonal", "linear")])  # fmt: skip
def test_homogeneous_chains_carry_any_scale_of_sigma_w(method, weights, act):
    # σ_b = 0, φ positively homogeneous: log‖x_L‖ = L log σ_w + (the σ_w = 1 chain), even where
    # ‖x‖² or the gain σ_w² χ² leave the doubles (σ_w = 1e±200: once −inf or +inf)
    kw = dict(method=method, weights=weights, target="cpu", seed=5, keep_norms=True)
    ref = fp.simulate_chains(5, 3, 400, act, 1.0, **kw).norms[-1]
    for sw in (1e200, 1e-200):
        got = fp.simulate_chains(5, 3, 400, act, sw, **kw).norms[-1] - 3 * math.log(sw)
        assert np.array_equal(np.isfinite(got), np.isfinite(ref))
        np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=0, atol=1e-9)


def test_a_result_from_before_fingerprints_merges_with_a_new_one():
    a = fp.simulate_chains(3, 2, 10, target="cpu")
    b = fp.simulate_chains(3, 2, 10, target="cpu", first_chain=10)
    a.params["activation_fingerprint"] = None  # as ChainResult.load fills in for older files
    assert a.merge(b).n == 20

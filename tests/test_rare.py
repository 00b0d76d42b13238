"""Rare-event tails (fastprop.rare_tail) against exact laws and plain Monte Carlo."""

import math

import numpy as np
import pytest
from scipy import optimize

import fastprop as fp
from fastprop.rare import estimate

Z = 4.0  # a check at Z standard errors fails by chance with probability 6e-5


def threshold(law, log_p, upper=True):
    """t with log P(‖x_L‖ > t) (or < t) = log_p, from the exact law."""
    tail = law.logsf if upper else law.logcdf

    def f(u):
        return float(tail(math.exp(u))) - log_p

    mu, sd = law.mean_log(), law.std_log()
    a, b = (mu, mu + 40 * sd) if upper else (mu - 40 * sd, mu)
    return math.exp(optimize.brentq(f, a, b, xtol=1e-12))


def within(e, exact_p, z=Z):
    """The estimate lies within z of its standard errors of the exact value."""
    return abs(e.p - exact_p) <= z * e.rel_std_error * e.p


@pytest.mark.parametrize(
    "act, d, L, sw, side, log10_p",
    [
        ("linear", 10, 100, 1.0, "upper", -3),
        ("linear", 10, 100, 1.0, "upper", -12),
        ("linear", 4, 200, 1.0, "upper", -30),
        ("linear", 6, 50, 1.0, "lower", -15),
        ("abs", 5, 30, 1.2, "upper", -8),
        ("relu", 10, 50, 2**0.5, "upper", -20),
        ("relu", 30, 2, 2**0.5, "lower", -7),
    ],
)
def test_tilt_matches_the_exact_law(act, d, L, sw, side, log10_p):
    law = fp.exact.chain_norm(d, L, act, sw)
    upper = side == "upper"
    t = threshold(law, log10_p * math.log(10), upper)
    exact_p = float(law.sf(t) if upper else law.cdf(t))
    e = fp.rare_tail(d, L, t, side, act, sw, rel_error=0.03, seed=3, target="cpu")
    assert e.method == "tilt" and e.converged and e.rel_error <= 0.03
    assert e.rel_error == pytest.approx(1.96 * e.rel_std_error, rel=1e-3)
    assert within(e, exact_p), (e, exact_p)
    assert e.ci_low < e.p < e.ci_high
    assert e.speedup > 1e-3 / 10.0**log10_p  # far less work than plain Monte Carlo
    assert np.any(np.asarray(e.diagnostics["theta"]) != 0.0)


def test_relu_zero_atom_is_exact():
    """P(‖x_L‖ < t) = P(‖x_L‖ = 0) + P(0 < ‖x_L‖ < t): the atom 1 − (1 − 2^−d)^L exactly
    (here half of p), the rest by the mixture proposal."""
    d, L = 30, 5
    law = fp.exact.chain_norm(d, L, "relu", 2**0.5)
    t = threshold(law, math.log(1e-8), upper=False)
    e = fp.rare_tail(d, L, t, "lower", "relu", 2**0.5, rel_error=0.03, target="cpu")
    assert e.diagnostics["atom"] == -math.expm1(L * math.log1p(-(2.0**-d)))
    assert within(e, float(law.cdf(t)))


def test_relu_at_depth_one_beyond_the_float_range():
    """P(‖x_1‖ > t) near 1e-100 and beyond 1e-308 (p underflows; log10_p carries it)."""
    law = fp.exact.chain_norm(10, 1, "relu", 2**0.5)
    for t in (9.0, 20.0):
        e = fp.rare_tail(10, 1, t, activation="relu", sigma_w=2**0.5, rel_error=0.03, target="cpu")
        exact_log10 = float(law.logsf(t)) / math.log(10)
        assert abs(e.log10_p - exact_log10) <= Z * e.rel_std_error / math.log(10), (e, exact_log10)
    assert e.p == 0.0 and e.log10_p < -400 and math.isfinite(e.log10_p)
    assert e.speedup == math.inf and e.rel_error < 0.1  # computed in logs, not 0/0


def test_tilt_interval_coverage():
    """200 independent estimates of a ~1e-4 tail: their 95 % intervals cover the exact value
    90–98 % of the time."""
    law = fp.exact.chain_norm(4, 10)
    t = threshold(law, math.log(1e-4))
    exact_p = float(law.sf(t))
    hits = 0
    for seed in range(200):
        e = fp.rare_tail(4, 10, t, rel_error=0.3, seed=seed, target="cpu")
        hits += e.ci_low <= exact_p <= e.ci_high
    assert 180 <= hits <= 196, hits


def test_splitting_interval_coverage_on_an_exact_law():
    """Splitting forced on a linear chain (the exact law known): 200 estimates of a ~1e-4
    tail from independent seeds; their intervals cover the exact value 90–98 % of the time."""
    law = fp.exact.chain_norm(2, 3)
    t = threshold(law, math.log(1e-4))
    exact_p = float(law.sf(t))
    hits = 0
    for seed in range(200):
        e = fp.rare_tail(2, 3, t, method="splitting", rel_error=0.9, seed=seed, target="cpu", particles=100, moves=3)
        hits += e.ci_low <= exact_p <= e.ci_high
    assert 180 <= hits <= 196, hits


def test_splitting_matches_the_exact_law_far_out():
    law = fp.exact.chain_norm(4, 10)
    for upper, log10_p in ((True, -10), (False, -8)):
        t = threshold(law, log10_p * math.log(10), upper)
        exact_p = float(law.sf(t) if upper else law.cdf(t))
        e = fp.rare_tail(4, 10, t, "upper" if upper else "lower", method="splitting", rel_error=0.2, seed=1,
                         target="parallel", particles=200)  # fmt: skip
        assert e.method == "splitting" and e.converged
        assert within(e, exact_p), (e, exact_p)


@pytest.mark.parametrize(
    "kw, t, side",
    [
        (dict(activation="tanh", sigma_w=1.5, sigma_b=0.3, width=4, depth=10), 1.95, "upper"),
        (dict(activation="tanh", sigma_w=1.5, sigma_b=0.3, width=4, depth=10), 0.1, "lower"),
        (dict(activation="erf", sigma_w=1.3, sigma_b=0.2, width=4, depth=6, weights="orthogonal"), 1.7, "upper"),
        (dict(activation="leaky_relu", sigma_w=1.4, width=4, depth=10), 1e-12, "lower"),
    ],
)
def test_splitting_agrees_with_plain_monte_carlo(kw, t, side):
    """Tails near 1e-4…1e-5 of networks without an exact law: splitting against 4·10⁶ plain chains."""
    mc = fp.simulate_chains(n_chains=4 * 10**6, thresholds=(t,), seed=11, target="parallel", **kw)
    ref = mc.tail_probability(t, side)
    e = fp.rare_tail(threshold=t, side=side, rel_error=0.1, seed=2, target="parallel", particles=300, **kw)
    assert e.method == "splitting" and e.converged
    assert 1e-6 < ref.p < 1e-3
    se_mc = math.sqrt(ref.p * (1 - ref.p) / ref.n)
    assert abs(e.p - ref.p) <= Z * math.hypot(se_mc, e.rel_std_error * e.p), (e, ref)


@pytest.mark.parametrize("method", ["tilt", "splitting"])
def test_the_estimate_does_not_depend_on_the_target(method):
    kw = dict(width=3, depth=8, threshold=30.0, method=method, rel_error=0.2, seed=9, particles=40, moves=2)
    assert fp.rare_tail(target="cpu", **kw) == fp.rare_tail(target="parallel", **kw)


def test_stages_are_fixed_by_the_statistics():
    """A run that stops at a larger size repeats the smaller run's stages: its estimate after
    the same stages is the same, and the work is whole blocks."""
    kw = dict(width=4, depth=20, threshold=1e3, seed=5, target="parallel")
    a = fp.rare_tail(rel_error=0.2, **kw)
    b = fp.rare_tail(rel_error=0.2, max_chains=10**6, **kw)
    assert a == b or a.params != b.params and a.p == b.p and a.n == b.n
    assert a.n % estimate.TILT_BLOCK == 0
    c = fp.rare_tail(rel_error=1e-4, max_chains=2 * estimate.TILT_BLOCK, **kw)
    assert not c.converged and c.n == 2 * estimate.TILT_BLOCK
    assert "max_chains" in str(c)


def test_deterministic_norms_are_exact():
    e = fp.rare_tail(5, 7, 2.0, weights="orthogonal", sigma_w=1.2)  # ‖x_L‖ = 1.2⁷ ≈ 3.58
    assert (e.method, e.p, e.ci_low, e.ci_high, e.n) == ("exact", 1.0, 1.0, 1.0, 0)
    assert fp.rare_tail(5, 7, 2.0, "lower", weights="orthogonal", sigma_w=1.2).p == 0.0
    assert fp.rare_tail(5, 0, 0.5).p == 1.0  # depth 0: ‖x_0‖ = 1, whatever the method
    assert fp.rare_tail(5, 0, 2.0, method="tilt").p == 0.0
    # ‖x_3‖ = 2³ = 8 exactly (exp(3 log 2) is 7.999999999999998): not below 8
    assert fp.rare_tail(4, 3, 8.0, "lower", weights="orthogonal", sigma_w=2.0).p == 0.0


def test_splitting_when_most_networks_die():
    """Orthogonal relu, σ_b = 0: a layer kills the signal with probability 2^−d, so at width 2 and
    depth 12 most networks are 0 (a first level of −inf). Against plain Monte Carlo."""
    kw = dict(width=2, depth=12, activation="relu", sigma_w=1.5, weights="orthogonal")
    mc = fp.simulate_chains(n_chains=2 * 10**6, thresholds=(20.0,), seed=3, target="parallel", **kw)
    ref = mc.tail_probability(20.0)
    e = fp.rare_tail(threshold=20.0, rel_error=0.1, seed=2, target="parallel", particles=300, **kw)
    assert e.method == "splitting" and e.converged and e.diagnostics["levels"][0] == -math.inf
    se_mc = math.sqrt(ref.p * (1 - ref.p) / ref.n)
    assert abs(e.p - ref.p) <= Z * math.hypot(se_mc, e.rel_std_error * e.p), (e, ref)


def test_an_unreachable_threshold_gives_zero_with_a_note():
    """tanh is bounded by 1, so ‖x_L‖ ≤ √d: P(‖x_L‖ > 2.1) = 0 at width 4."""
    e = fp.rare_tail(4, 6, 2.1, activation="tanh", sigma_w=1.5, sigma_b=0.3, particles=50, moves=2, target="cpu")
    assert e.p == 0.0 and e.ci_low == 0.0 and not e.converged
    assert "stopped rising" in e.diagnostics["note"] and "stopped rising" in str(e)


def test_save_and_load(tmp_path):
    e = fp.rare_tail(4, 10, 50.0, rel_error=0.2, target="cpu")
    path = tmp_path / "tail.json"
    e.save(path)
    assert fp.RareTailEstimate.load(path) == e
    (tmp_path / "bad.json").write_text('{"p": 1}')
    with pytest.raises(ValueError, match="not a saved RareTailEstimate"):
        fp.RareTailEstimate.load(tmp_path / "bad.json")


@pytest.mark.parametrize(
    "kw, err, match",
    [
        (dict(threshold=0.0), ValueError, "threshold"),
        (dict(threshold=math.inf), ValueError, "threshold"),
        (dict(side="both"), ValueError, "side"),
        (dict(method="cem"), ValueError, "method"),
        (dict(rel_error=0.0), ValueError, "rel_error"),
        (dict(rel_error=1.5), ValueError, "rel_error"),
        (dict(rel_error=1.0), ValueError, "rel_error"),
        (dict(particles=5), ValueError, "particles"),
        (dict(activation="tanh", width=10**4, depth=10**4, particles=10**4), Exception, "memory"),
        (dict(max_chains=0), ValueError, "max_chains"),
        (dict(width=0), ValueError, "width"),
        (dict(depth=-1), ValueError, "depth"),
        (dict(sigma_w=-1.0), ValueError, "sigma_w"),
        (dict(activation="tanh", method="tilt"), ValueError, "method='tilt' needs"),
        (dict(sigma_b=0.1, method="tilt"), ValueError, "method='tilt' needs"),
        (dict(activation="tanh", target="cuda"), ValueError, "splitting runs on CPU threads"),
        (dict(activation="tanh", particles=5), ValueError, "particles"),
        (dict(activation="tanh", moves=0), ValueError, "moves"),
        (dict(target="gpu"), ValueError, "target"),
        (dict(seed=-1), ValueError, "seed"),
    ],
)
def test_bad_input(kw, err, match):
    with pytest.raises(err, match=match):
        fp.rare_tail(**kw)

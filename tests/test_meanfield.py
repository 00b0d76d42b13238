"""q*, χ_1, c*, χ_c, χ_q, ξ against independent references over σ_w ∈ [0.1, 5], σ_b ∈ [0, 3]."""

import math

import mpmath as mp
import numpy as np
import pytest
import reference as R
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

import fastprop as fp
from fastprop import Status

POINTS = [(0.1, 3.0), (0.5, 0.0), (1.3, 0.2), (2.5, 1.0), (3.0, 0.05), (4.5, 2.8), (5.0, 0.0)]


def _grid(name, sw, sb):
    return fp.meanfield_grid(name, np.atleast_1d(sw), np.atleast_1d(sb), target="cpu")


@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_against_reference(name):
    sws = np.array(sorted({p[0] for p in POINTS}))
    sbs = np.array(sorted({p[1] for p in POINTS}))
    g = _grid(name, sws, sbs)
    for sw, sb in POINTS:
        i, j = int(np.searchsorted(sws, sw)), int(np.searchsorted(sbs, sb))
        q, chi1, c, chic, chiq = (float(getattr(g, f)[i, j]) for f in ("q_star", "chi_1", "c_star", "chi_c", "chi_q"))
        status = int(g.status[i, j])
        where = (name, sw, sb)
        assert not status & Status.NOT_CONVERGED, where
        if status & Status.Q_INFINITE:
            assert q == math.inf and math.isnan(c) and math.isnan(chic), where
            for qq in (1e3, 1e6):  # the length map really runs away
                assert float(R.length_map(name, qq, sw, sb)) > qq, where
            continue
        if status & Status.Q_ZERO:
            assert q == 0.0 and sb == 0.0 and c == 1.0 and chic == chi1, where
            assert chiq <= 1.0 + 1e-12
            assert chi1 == pytest.approx(float(sw**2 * R.expect(name, 1e-30, "dphi2")), rel=1e-12), where
            continue
        # q*: one Newton step of the 30-digit length map from our q* moves it by < 1e-10 q*
        assert abs(R.q_star_newton_residual(name, q, sw, sb)) <= 1e-10 * q, where
        assert chi1 == pytest.approx(float(sw**2 * R.expect(name, q, "dphi2")), rel=1e-10), where
        ref_chiq = float(R.chi_q(name, q, sw))
        assert chiq == pytest.approx(ref_chiq, rel=1e-9), where
        assert -math.log(chiq) == pytest.approx(-math.log(ref_chiq), abs=1e-9), where
        assert 1 / g.xi_q[i, j] == pytest.approx(-math.log(chiq), abs=1e-15), where
        if chi1 <= 1.0:
            assert c == 1.0 and chic == chi1, where
        else:
            rn, rm = R.pair(name, q, c)
            ref_c = (sw**2 * rn + sb**2) / q
            assert abs(ref_c - c) / (1 - sw**2 * rm) <= 1e-9 * max(c, 1e-2), where
            assert chic == pytest.approx(sw**2 * rm, rel=1e-9), where
            assert -math.log(chic) == pytest.approx(-math.log(sw**2 * rm), abs=1e-9), where
        assert 1 / g.xi_c[i, j] == pytest.approx(-math.log(chic), abs=1e-15), where


def test_relu_and_linear_closed_forms():
    sw = np.array([0.3, 0.9, 1.2, 1.4])
    sb = np.array([0.0, 0.5, 2.0])
    g = _grid("relu", sw, sb)
    S, B = np.meshgrid(sw, sb, indexing="ij")
    fin = B > 0
    np.testing.assert_allclose(g.q_star[fin], (B**2 / (1 - S**2 / 2))[fin], rtol=1e-13)
    np.testing.assert_allclose(g.chi_1, S**2 / 2, rtol=1e-13)
    np.testing.assert_allclose(g.chi_q, S**2 / 2, rtol=1e-13)
    assert np.all(g.c_star == 1.0) and np.all(g.q_star[~fin] == 0)
    np.testing.assert_array_equal(g.status[~fin], Status.Q_ZERO)
    gl = _grid("linear", [0.5, 0.99], [0.1, 1.0])
    np.testing.assert_allclose(gl.q_star, np.array([[0.1, 1.0]]) ** 2 / (1 - np.array([[0.25], [0.99**2]])), rtol=1e-13)
    np.testing.assert_allclose(gl.chi_1, [[0.25, 0.25], [0.99**2, 0.99**2]], rtol=1e-13)


def test_relu_diverges_above_sqrt2_with_bias():
    g = _grid("relu", [1.5, 3.0], [0.5])
    assert np.all(g.q_star == np.inf)
    assert np.all(g.status & Status.Q_INFINITE)
    np.testing.assert_allclose(g.chi_1[:, 0], [1.125, 4.5], rtol=1e-13)  # χ_1 = σ_w²/2 for every q
    assert np.all(np.isnan(g.c_star))


def _erf_V(q, sw, sb):
    k = math.pi * q / 2
    return sw**2 * (2 / math.pi) * math.asin(k / (1 + k)) + sb**2


@pytest.mark.parametrize("sw,sb", [(1.5, 0.3), (3.0, 0.1), (4.0, 2.0), (0.8, 0.5)])
def test_erf_against_arcsine_kernel(sw, sb):
    q = optimize.brentq(lambda x: _erf_V(x, sw, sb) - x, 1e-9, 1e4, xtol=1e-15, rtol=1e-15)
    g = _grid("erf", sw, sb)
    assert g.q_star[0, 0] == pytest.approx(q, rel=1e-12)
    assert g.chi_1[0, 0] == pytest.approx(sw**2 / math.sqrt(1 + math.pi * q), rel=1e-12)
    chi1 = sw**2 / math.sqrt(1 + math.pi * q)
    if chi1 > 1:
        C = lambda c: (sw**2 * R.erf_pair(q, c)[0] + sb**2) / q - c  # noqa: E731
        c = optimize.brentq(C, 0.0, 1 - 1e-9, xtol=1e-15, rtol=1e-15)
        assert g.c_star[0, 0] == pytest.approx(c, rel=1e-10, abs=1e-12)
        assert g.chi_c[0, 0] == pytest.approx(sw**2 * R.erf_pair(q, c)[1], rel=1e-10)
    else:
        assert g.c_star[0, 0] == 1.0


def test_degenerate_cases_have_documented_values():
    g = _grid("tanh", [0.5, 1.0, 2.0], [0.0])
    assert g.q_star[0, 0] == 0 and g.q_star[1, 0] == 0  # V'(0) = σ_w² ≤ 1
    assert g.status[0, 0] == Status.Q_ZERO and g.status[1, 0] & Status.Q_ZERO
    assert g.chi_1[0, 0] == pytest.approx(0.25, rel=1e-13) and g.c_star[0, 0] == 1.0
    assert g.xi_c[1, 0] == math.inf and g.status[1, 0] & Status.CRITICAL  # χ = 1 exactly at σ_w = 1
    assert g.q_star[2, 0] > 0 and abs(g.c_star[2, 0]) < 1e-14  # odd φ, no bias: c* = 0
    for f in ("q_star", "chi_1", "c_star", "chi_c", "chi_q", "xi_q", "xi_c"):
        assert not np.any(np.isnan(getattr(g, f)))
    z = _grid("tanh", [0.0], [0.0, 1.0])  # σ_w = 0: V ≡ σ_b²
    assert z.q_star[0, 0] == 0 and z.q_star[0, 1] == pytest.approx(1.0, rel=1e-15)
    assert z.xi_q[0, 1] == 0.0 and z.c_star[0, 1] == 1.0


def test_edge_of_chaos_known_values():
    assert fp.edge_of_chaos("relu", 0.0) == pytest.approx(math.sqrt(2), rel=1e-13)
    # χ_1 − 1 vanishes quadratically on the chaotic side at σ_b = 0, so the root is only
    # determined to ~√eps there
    assert fp.edge_of_chaos("tanh", 0.0) == pytest.approx(1.0, rel=1e-7)
    assert fp.edge_of_chaos("erf", 0.0) == pytest.approx(1.0, rel=1e-7)
    sb = np.array([0.3, 1.0, 2.0])
    e, status = fp.edge_of_chaos("tanh", sb, full_output=True)
    assert np.all(status == 0) and np.all(np.diff(e) > 0)
    for s, b in zip(e, sb, strict=True):
        q = float(_grid("tanh", s, b).q_star[0, 0])
        assert float(s**2 * R.expect("tanh", q, "dphi2")) == pytest.approx(1.0, abs=1e-10)
    e, st_ = fp.edge_of_chaos("tanh", 1.0, sigma_w_range=(0.1, 0.5), full_output=True)
    assert math.isnan(e) and st_ == Status.NO_EDGE


@settings(max_examples=30, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(fp.ACTIVATIONS),
    sw=st.floats(0.1, 5.0),
    sb=st.floats(0.0, 3.0),
    c1=st.floats(0.0, 1.0),
    c2=st.floats(0.0, 1.0),
)
def test_fixed_point_identities(name, sw, sb, c1, c2):
    g = _grid(name, sw, sb)
    q, c = float(g.q_star[0, 0]), float(g.c_star[0, 0])
    if not 0 < q < math.inf:
        return
    assert fp.length_map(q, sw, sb, name) == pytest.approx(q, rel=1e-12)
    assert fp.correlation_map(1.0, sw, sb, name) == pytest.approx(1.0, rel=1e-12)
    if c < 1.0:
        assert fp.correlation_map(c, sw, sb, name) == pytest.approx(c, abs=1e-12)
    lo, hi = sorted((c1, c2))
    C = fp.correlation_map(np.array([lo, hi]), sw, sb, name)
    assert C[0] <= C[1] + 1e-13  # C is non-decreasing on [0, 1]


def test_length_map_broadcasts_and_is_increasing():
    q = np.linspace(0.01, 10, 7)[:, None]
    v = fp.length_map(q, np.array([0.5, 2.0]), 0.3, "tanh")
    assert v.shape == (7, 2) and np.all(np.diff(v, axis=0) > 0)
    assert isinstance(fp.length_map(1.0, 1.0, 0.0), float)
    assert fp.length_map(2.0, 1.5, 0.0, "relu") == pytest.approx(1.5**2 * 2.0 / 2, rel=1e-14)
    assert fp.correlation_map(0.3, 1.0, 0.0, "relu", q=2.0) == pytest.approx(R.relu_pair(2.0, 0.3)[0] / 2.0, rel=1e-14)
    assert math.isnan(fp.correlation_map(0.3, 0.5, 0.0, "tanh"))  # q* = 0: undefined


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: fp.length_map(-1.0, 1.0, 0.0), "q must be ≥ 0"),
        (lambda: fp.length_map(1.0, -1.0, 0.0), "sigma_w must be ≥ 0"),
        (lambda: fp.length_map(1.0, 1.0, float("nan")), "sigma_b must be finite"),
        (lambda: fp.length_map("a", 1.0, 0.0), "q must be a real number"),
        (lambda: fp.correlation_map(1.5, 1.0, 0.0), "c must be ≤ 1"),
        (lambda: fp.correlation_map(-1.5, 1.0, 0.0), "c must be ≥ -1"),
        (lambda: fp.correlation_map(0.5, 1.0, 0.0, q=0.0), "q must be > 0"),
        (lambda: fp.length_map(1.0, 1.0, 0.0, activation="nope"), "unknown activation"),
        (lambda: fp.edge_of_chaos("tanh", -1.0), "sigma_b must be ≥ 0"),
        (lambda: fp.edge_of_chaos("tanh", 0.0, sigma_w_range=(2.0, 1.0)), "sigma_w_range"),
        (lambda: fp.edge_of_chaos("tanh", []), "sigma_b must not be empty"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_mp_precision_untouched():
    assert mp.mp.dps == 30


# ------------------------------------------ kinked φ with c within 1e-12 of ±1
# The conditional mean over z₂ turns φ's corners over a width √(1−c²) that
# collapses at c = ±1; the reference (tests/reference.py) integrates it at 30
# digits with closed-form conditional means.
_NEAR_ONE = (0.9999, 1 - 1e-12, -1 + 1e-12)


@pytest.mark.parametrize("name", R.KINKED)
@pytest.mark.parametrize("q", [0.3, 40.0])
def test_kinked_pair_integrals_near_plus_minus_one(name, q):
    k = fp.meanfield.kernels(name, "cpu")
    scr = np.empty(k.scratch_size)
    for c in _NEAR_ONE:
        n, m, _ = k.pair(q, c, scr)
        rn, rm = (float(v) for v in R.pair_kinked_mp(name, q, c))
        assert n == pytest.approx(rn, rel=1e-12), (name, q, c)
        assert m == pytest.approx(rm, rel=1e-12, abs=1e-15), (name, q, c)


def test_hard_tanh_correlation_map_and_c_star_near_one():
    """The cases of the hostile campaign: C(0.9999) off by 6.4e-7 and c* outside its
    root bracket with status OK, and c* = 1 (NOT_CONVERGED) at large σ_b."""
    ref = float(R.pair_kinked_mp("hard_tanh", 1.0, 0.9999)[0])  # q given: C = (σ_w² E φφ + σ_b²)/q
    assert fp.correlation_map(0.9999, 1.5, 0.5, "hard_tanh", q=1.0) == pytest.approx(1.5**2 * ref + 0.25, rel=1e-12)
    for sw, sb in ((1.45, 1.0), (17.8, 178.0), (100.0, 1000.0)):
        g = _grid("hard_tanh", sw, sb)
        q, c, chic = float(g.q_star[0, 0]), float(g.c_star[0, 0]), float(g.chi_c[0, 0])
        assert g.status[0, 0] == 0 and g.chi_1[0, 0] > 1.0 and c < 1.0, (sw, sb, g)
        rn, rm = (float(v) for v in R.pair_kinked_mp("hard_tanh", q, c))
        # C(c*) = c*: the residual over (1 − χ_c) is c*'s error to first order
        assert abs((sw**2 * rn + sb**2) / q - c) / (1 - sw**2 * rm) <= 1e-9 * c, (sw, sb)
        assert chic == pytest.approx(sw**2 * rm, rel=1e-9), (sw, sb)
    c = float(_grid("hard_tanh", 1.45, 1.0).c_star[0, 0])
    assert 0.99960 < c < 0.99961


def test_q_star_at_points_is_the_grid_value():
    from fastprop.meanfield import q_star

    sw, sb = np.array([0.5, 1.0, 1.7, 3.0]), np.array([0.0, 0.0, 0.4, 1.2])
    for name in ("tanh", "relu", "erf"):
        g = fp.meanfield_grid(name, sw, sb, target="cpu")
        # the map solves q* without the grid's start table: Newton's answer to rounding
        np.testing.assert_allclose(q_star(sw, sb, name), np.diag(g.q_star), rtol=4e-16, atol=0)
    assert q_star(1.0, 0.0, "tanh") == 0.0  # Q_ZERO: a float for scalars

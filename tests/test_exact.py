"""fp.exact against closed forms and 30-digit mpmath convolutions computed here."""

import math

import mpmath as mp
import numpy as np
import pytest
from scipy import special

import fastprop as fp

mp.mp.dps = 30


def _chi2_sf(k, y):
    return mp.gammainc(mp.mpf(k) / 2, mp.mpf(y) / 2, mp.inf, regularized=True)


def _chi2_cdf(k, y):
    return mp.gammainc(mp.mpf(k) / 2, 0, mp.mpf(y) / 2, regularized=True)


def _rel(a, b):
    return abs(mp.mpf(float(a)) / b - 1)


@pytest.mark.parametrize("d", [1, 3, 10])
@pytest.mark.parametrize("t", [1e-8, 1e-3, 0.01, 0.3, 1.0, 2.0, 5.0, 10.0])
def test_depth_one_linear_is_chi2(d, t):
    law = fp.exact.chain_norm(d, 1, sigma_w=1.3, x0_norm=0.7)
    y = d * (t / (1.3 * 0.7)) ** 2  # ‖x_1‖² = (σ_w‖x0‖)² χ²_d / d
    assert _rel(law.sf(t), _chi2_sf(d, y)) < 1e-10
    assert _rel(law.cdf(t), _chi2_cdf(d, y)) < 1e-10


def test_far_tails_in_log():
    law = fp.exact.chain_norm(10, 1)
    for t in (30.0, 100.0):
        ref = mp.log(_chi2_sf(10, 10 * t * t))
        assert abs(law.logsf(t) / float(ref) - 1) < 1e-10
    for t in (1e-20, 1e-40):  # P ≈ e^-457, e^-918
        ref = mp.log(_chi2_cdf(10, 10 * t * t))
        assert abs(law.logcdf(t) / float(ref) - 1) < 1e-10


def _two_layer_sf(d, y, weights):
    """P(G1 G2 > y) with G_l a mixture Σ w_k χ²_k (k ≥ 1), by 30-digit quadrature."""

    def dens(k, g):
        a = mp.mpf(k) / 2
        return mp.exp((a - 1) * mp.log(g) - g / 2 - a * mp.log(2) - mp.loggamma(a))

    total = mp.mpf(0)
    for k1, w1 in weights.items():
        for k2, w2 in weights.items():
            f = lambda g, k1=k1, k2=k2: dens(k1, g) * _chi2_sf(k2, y / g)  # noqa: E731
            total += w1 * w2 * mp.quad(f, [0, mp.mpf(k1), 4 * mp.mpf(k1) + 20, mp.inf])
    return total


@pytest.mark.parametrize("t", [0.05, 1.0, 4.0])
def test_two_layers_linear_against_convolution(t):
    d = 4
    law = fp.exact.chain_norm(d, 2)
    y = (t * t) * d * d
    ref = _two_layer_sf(d, y, {d: mp.mpf(1)})
    assert _rel(law.sf(t), ref) < 1e-10
    assert _rel(law.cdf(t), 1 - ref) < 1e-10


@pytest.mark.parametrize("t", [0.05, 1.0, 4.0])
def test_two_layers_relu_against_convolution(t):
    d = 3
    sw = math.sqrt(2)
    law = fp.exact.chain_norm(d, 2, "relu", sigma_w=sw)
    p0 = mp.mpf(2) ** -d
    w = {k: mp.binomial(d, k) * mp.mpf(2) ** -d / (1 - p0) for k in range(1, d + 1)}
    y = t * t * (d / mp.mpf(2)) ** 2
    ref = (1 - p0) ** 2 * _two_layer_sf(d, y, w)
    assert _rel(law.sf(t), ref) < 1e-10
    assert _rel(law.cdf(t), 1 - ref) < 1e-10
    assert law.atom == pytest.approx(float(1 - (1 - p0) ** 2), rel=1e-14)


@pytest.mark.parametrize("t", [0.2, 0.1, 0.01, 1e-4])
def test_wide_relu_lower_tails_near_the_pole(t):
    """Width 30, depth 1: P(‖x_1‖ < t) = 2^−30 + Σ_k w_k P(χ²_k < t² d/σ_w²) in closed form.
    The saddle point lies within 1e-4 of the pole of M(s) at −½ (the χ²_1 component): the
    line once crossed that pole (1–54 % errors, silently); now 1e-9 (off the saddle, by cancellation)."""
    d, sw = 30, math.sqrt(2)
    law = fp.exact.chain_norm(d, 1, "relu", sigma_w=sw)
    y = mp.mpf(t) ** 2 * d / 2
    ref = mp.mpf(2) ** -d + sum(mp.binomial(d, k) * mp.mpf(2) ** -d * _chi2_cdf(k, y) for k in range(1, d + 1))
    assert _rel(law.cdf(t), ref) < 1e-9


@pytest.mark.parametrize("d, L", [(10, 100), (10, 300), (2, 100)])
def test_deep_lower_tails_against_the_saddlepoint_approximation(d, L):
    """Lower tails with the saddle at 0.9·smin (P ~ 1e-300 … 1e-1650): within 1 % of the
    Lugannani–Rice approximation (relative error O(1/L) here). A line moved off this saddle
    once cost ×900 silently."""
    law = fp.exact.chain_norm(d, L)
    s = 0.9 * law._smin
    y = law._dkappa(s)  # log‖x_L‖² whose saddle point is s
    w = -mp.sqrt(2 * (s * y - law.cgf(s)))
    u = s * mp.sqrt(law._d2kappa(s))
    approx = mp.ncdf(w) + mp.npdf(w) * (1 / w - 1 / u)
    assert abs(float(law.logcdf(math.exp(y / 2))) - float(mp.log(approx))) < 0.01


def test_moments_and_log_moments():
    law = fp.exact.chain_norm(10, 100, sigma_w=1.1, x0_norm=2.0)
    assert law.moment(2) == pytest.approx(4.0 * 1.1**200, rel=1e-12)  # E‖x_L‖² = σ_w^{2L}‖x0‖²
    # E log‖x_L‖ = log‖x0‖ + L/2 (log(σ_w²/d) + ψ(d/2) + log 2)
    ref = math.log(2.0) + 50 * (math.log(1.21 / 10) + special.digamma(5) + math.log(2))
    assert law.mean_log() == pytest.approx(ref, rel=1e-13)
    assert law.std_log() == pytest.approx(0.5 * math.sqrt(100 * special.polygamma(1, 5)), rel=1e-13)
    relu = fp.exact.chain_norm(10, 50, "relu", sigma_w=math.sqrt(2))
    assert relu.moment(2) == pytest.approx(1.0, rel=1e-12)  # He initialisation preserves E‖x‖²


def test_quantiles_invert_cdf_and_tails_add_to_one():
    law = fp.exact.chain_norm(10, 100)
    for p in (1e-6, 0.01, 0.5, 0.99, 1 - 1e-6):
        q = law.quantile(p)
        assert law.cdf(q) == pytest.approx(p, rel=1e-9)
    t = np.array([1e-6, 0.01, 1.0, 10.0, 1e4])
    np.testing.assert_allclose(law.cdf(t) + law.sf(t), 1.0, rtol=1e-13)
    relu = fp.exact.chain_norm(10, 20, "relu", sigma_w=math.sqrt(2))
    assert relu.quantile(relu.atom / 2) == 0.0
    assert relu.cdf(0.0) == pytest.approx(relu.atom, rel=1e-14)


def test_thesis_figure_numbers():
    """Width 10, depth 100, He init: most chains below 0.01, about 1 in 1,700 above 10."""
    law = fp.exact.chain_norm(10, 100)
    assert law.cdf(0.01) > 0.5
    assert 1600 < 1 / law.sf(10.0) < 1800


def test_depth_zero_is_a_point_mass():
    law = fp.exact.chain_norm(5, 0, x0_norm=2.0)
    assert law.sf(1.9) == 1.0 and law.sf(2.1) == 0.0 and law.cdf(2.1) == 1.0


@pytest.mark.parametrize(
    "kwargs,err",
    [
        ({"width": 0, "depth": 1}, ValueError),
        ({"width": 10, "depth": -1}, ValueError),
        ({"width": 10, "depth": 3, "activation": "tanh"}, ValueError),
        ({"width": 10, "depth": 3, "sigma_w": 0.0}, ValueError),
        ({"width": 10.5, "depth": 3}, TypeError),
    ],
)
def test_bad_input(kwargs, err):
    with pytest.raises(err):
        fp.exact.chain_norm(**kwargs)

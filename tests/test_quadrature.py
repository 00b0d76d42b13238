"""One-dimensional Gaussian moments against 30-digit mpmath quadrature."""

import math

import mpmath as mp
import numpy as np
import pytest
import reference as R

import fastprop as fp
from fastprop.meanfield import kernels

QS = [1e-8, 0.01, 0.3, 1.0, 5.0, 34.0, 300.0, 1e4, 1e8]


def pair(k, q, c):
    return k.pair(q, c, np.empty(k.scratch_size))


@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_moments_match_mpmath(name):
    k = kernels(name)
    for q in QS:
        m = k.moments(q)
        phi2 = float(R.expect(name, q, "phi2"))
        dphi2 = float(R.expect(name, q, "dphi2"))
        assert m[2] == pytest.approx(phi2, rel=1e-13, abs=1e-300), q
        assert m[3] == pytest.approx(dphi2, rel=1e-13, abs=1e-300), q
        # first moments: relative to the natural scale √E φ²
        assert abs(m[0] - float(R.expect(name, q, "phi"))) <= 1e-13 * np.sqrt(phi2), q
        assert abs(m[1] - float(R.expect(name, q, "dphi"))) <= 1e-13 * np.sqrt(dphi2) + 1e-300, q


@pytest.mark.parametrize("name", ["tanh", "relu", "hard_tanh", "selu", "softplus", "gelu"])
def test_q_derivative_equals_derivative_of_length_map(name):
    # moments()[4] = E[φφ'z]/√q = d/dq E φ(√q z)² (= E φ'² + E φφ'' with Dirac masses at kinks)
    k = kernels(name)
    for q in [0.05, 0.9, 7.0, 60.0]:
        m = k.moments(q)
        h = mp.mpf(q) * mp.mpf("1e-8")  # in mpf: q ± h must not round
        fd = float((R.expect(name, q + h, "phi2") - R.expect(name, q - h, "phi2")) / (2 * h))
        assert m[4] == pytest.approx(fd, rel=1e-11, abs=1e-14), q


def test_fixed_gauss_hermite_fails_where_we_do_not():
    # the motivating failure: tanh at q = 100 with a 100-node Gauss–Hermite rule
    x, w = np.polynomial.hermite_e.hermegauss(100)
    w = w / w.sum()
    gh = float(np.sum(w * (1 - np.tanh(10 * x) ** 2) ** 2))
    ref = float(R.expect("tanh", 100.0, "dphi2"))
    assert abs(gh - ref) / ref > 1e-3
    assert kernels("tanh").moments(100.0)[3] == pytest.approx(ref, rel=1e-13)


@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_pair_matches_nested_adaptive_quadrature(name):
    k = kernels(name)
    for q, c in [(0.7, 0.35), (6.0, 0.8), (25.0, 0.1), (3.0, -0.5)]:
        n, m, _ = pair(k, q, c)
        rn, rm = R.pair(name, q, c)
        assert n == pytest.approx(rn, rel=1e-11, abs=1e-13 * q), (q, c)
        assert m == pytest.approx(rm, rel=1e-11, abs=1e-13), (q, c)


def test_closed_form_kernels_match_literature():
    for q, c in [(0.3, 0.2), (2.0, -0.7), (40.0, 0.99), (1.0, 1.0), (1.0, -1.0)]:
        assert pair(kernels("relu"), q, c)[:2] == pytest.approx(R.relu_pair(q, c), rel=1e-14, abs=1e-15)
        assert pair(kernels("erf"), q, c)[:2] == pytest.approx(R.erf_pair(q, c), rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("name", sorted(R.NP_PHI))
def test_pair_at_large_q_matches_trapezoid(name):
    # large q and moderate c: the inner integrand's graded features are centred far
    # from z₂ = 0 (a regression test for thinning relative to the wrong centre)
    k = kernels(name)
    for q, c in [(300.0, 0.5), (80.0, 0.9), (40.0, -0.3), (30.0, 0.2)]:
        n, m, _ = pair(k, q, c)
        rn, rm = R.pair_trapezoid(name, q, c)
        assert n == pytest.approx(rn, rel=1e-12, abs=1e-13 * q), (q, c)
        assert m == pytest.approx(rm, rel=1e-11, abs=1e-14), (q, c)


LATTICE = [n for n in fp.ACTIVATIONS if fp.activation(n).strip > 0]


@pytest.mark.parametrize("name", LATTICE)
def test_lattice_rule_matches_trapezoid_in_rotated_coordinates(name):
    # the lattice rule over its whole range: both signs of c, m = 1 and m > 1
    # (c near 1), tiny and large q; the reference shares no code with it
    k = kernels(name)
    for q in (0.01, 1.0, 10.0, 60.0):
        for c in (-0.95, -0.5, 0.2, 0.6, 0.97, 0.9995):
            n, m, _ = pair(k, q, c)
            rn, rm = R.pair_trapezoid(name, q, c, n=2001)
            assert n == pytest.approx(rn, rel=1e-11, abs=1e-14 * (1 + q)), (q, c)
            assert m == pytest.approx(rm, rel=1e-11, abs=1e-14), (q, c)


@pytest.mark.parametrize("name", LATTICE)
def test_lattice_curvature_is_the_c_derivative_of_the_slope_integral(name):
    # Price's theorem: d/dc E φ'(u₁)φ'(u₂) = q E φ''(u₁)φ''(u₂), the third output
    k = kernels(name)
    h = 1e-4
    for q, c in [(0.5, 0.4), (4.0, 0.7), (20.0, -0.6), (3.0, 0.99)]:
        ll = pair(k, q, c)[2]
        up = R.pair_trapezoid(name, q, c + h, n=2001)[1]
        down = R.pair_trapezoid(name, q, c - h, n=2001)[1]
        assert ll == pytest.approx((up - down) / (2 * h * q), rel=1e-6, abs=1e-12), (q, c)


def test_lattice_step_meets_its_error_target():
    from fastprop.quadrature import LATTICE_T, lattice_step

    # tanh's poles at ±iπ/2: exponent a²/(2σ²) − 2πa/Δ with a = 0.9·π/2 is ≤ −T,
    # or the Gaussian alone decides (−2π²σ²/Δ² ≤ −T)
    for sigma in (1e-3, 0.05, 0.3, 1.0, 10.0, 1e3):
        d = lattice_step(sigma, math.pi / 2)
        a = 0.9 * math.pi / 2
        pole = a * a / (2 * sigma**2) - 2 * math.pi * a / d
        gauss = -2 * math.pi**2 * sigma**2 / d**2 if 2 * math.pi * sigma**2 / d <= a else math.inf
        assert min(pole, gauss) <= -LATTICE_T + 1e-9


def test_lattice_rule_runs_only_where_its_tables_fit_the_work_space():
    # the decision every target makes alike: at tanh q = 120, c = 0.5 the tables
    # take 7507 values, at q = 150 they would take 8387 > SCRATCH = 8192, and the
    # Gauss–Legendre rule (no curvature output) runs instead, as accurately
    from fastprop.meanfield.common import SCRATCH

    assert SCRATCH == 8192
    k = kernels("tanh")
    for q, lattice in [(120.0, True), (150.0, False)]:
        n, m, ll = pair(k, q, 0.5)
        assert math.isfinite(ll) == lattice, q
        rn, rm = R.pair_trapezoid("tanh", q, 0.5)
        assert n == pytest.approx(rn, rel=1e-12), q
        assert m == pytest.approx(rm, rel=1e-11), q

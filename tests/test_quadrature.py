"""One-dimensional Gaussian moments against 30-digit mpmath quadrature."""

import mpmath as mp
import numpy as np
import pytest
import reference as R

import fastprop as fp
from fastprop.meanfield import kernels

QS = [1e-8, 0.01, 0.3, 1.0, 5.0, 34.0, 300.0, 1e4, 1e8]


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
def test_stein_term_equals_derivative_of_length_map(name):
    # d/dq E φ(√q z)² = E φ'² + E φφ'' (Dirac masses at kinks included)
    k = kernels(name)
    for q in [0.05, 0.9, 7.0, 60.0]:
        m = k.moments(q)
        h = mp.mpf(q) * mp.mpf("1e-8")  # in mpf: q ± h must not round
        fd = float((R.expect(name, q + h, "phi2") - R.expect(name, q - h, "phi2")) / (2 * h))
        assert m[3] + m[4] == pytest.approx(fd, rel=1e-11, abs=1e-14), q


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
        n, m = k.pair(q, c)
        rn, rm = R.pair(name, q, c)
        assert n == pytest.approx(rn, rel=1e-11, abs=1e-13 * q), (q, c)
        assert m == pytest.approx(rm, rel=1e-11, abs=1e-13), (q, c)


def test_closed_form_kernels_match_literature():
    for q, c in [(0.3, 0.2), (2.0, -0.7), (40.0, 0.99), (1.0, 1.0), (1.0, -1.0)]:
        assert kernels("relu").pair(q, c) == pytest.approx(R.relu_pair(q, c), rel=1e-14, abs=1e-15)
        assert kernels("erf").pair(q, c) == pytest.approx(R.erf_pair(q, c), rel=1e-14, abs=1e-15)


@pytest.mark.parametrize("name", sorted(R.NP_PHI))
def test_pair_at_large_q_matches_trapezoid(name):
    # large q and moderate c: the inner integrand's graded features are centred far
    # from z₂ = 0 (a regression test for thinning relative to the wrong centre)
    k = kernels(name)
    for q, c in [(300.0, 0.5), (80.0, 0.9), (40.0, -0.3), (30.0, 0.2)]:
        n, m = k.pair(q, c)
        rn, rm = R.pair_trapezoid(name, q, c)
        assert n == pytest.approx(rn, rel=1e-12, abs=1e-13 * q), (q, c)
        assert m == pytest.approx(rm, rel=1e-11, abs=1e-14), (q, c)

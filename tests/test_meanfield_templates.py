"""Each mean-field template on its own (fastprop.meanfield.compiled): moments, the
Mehler model, pair integrals, fixed points and the edge, against closed forms and
an independent product rule, each built without the concerns above it."""

import math

import numpy as np
import pytest
from scipy import optimize

from fastprop.meanfield import Status, compiled
from fastprop.meanfield.tables import exact_tables, tables

A2 = math.pi / 4  # erf's a², φ(h) = erf(√π h / 2)


def test_moments_alone_match_closed_forms():
    for q in (1e-6, 0.3, 1.0, 7.5, 1e6):
        e0, e1, e2, e3, dq = compiled.moments_module("linear").moments(q)
        assert abs(e0) <= 1e-15 * (1 + math.sqrt(q)) and e2 == pytest.approx(q, rel=1e-14)
        assert (e1, e3) == pytest.approx((1.0, 1.0), rel=1e-14)
        assert dq == pytest.approx(1.0, rel=1e-14)
        e0, e1, e2, e3, dq = compiled.moments_module("relu").moments(q)  # E relu(√q z)² = q/2
        assert e0 == pytest.approx(math.sqrt(q / (2 * math.pi)), rel=1e-14)
        assert (e1, e2 / q, e3, dq) == pytest.approx((0.5, 0.5, 0.5, 0.5), rel=1e-14)


def _erf_q_star(sw, sb):
    v = lambda q: sw * sw * 2 / math.pi * math.asin(2 * A2 * q / (1 + 2 * A2 * q)) + sb * sb  # noqa: E731
    return optimize.brentq(lambda q: v(q) - q, 1e-12, 1e6, xtol=1e-15, rtol=1e-15)


def test_mehler_alone_is_a_lower_bound_and_exact_when_it_says_so():
    mehler = compiled.mehler_module("erf").mehler
    moments = compiled.moments_module("erf").moments
    scr = np.empty(4096)
    for sw, sb, expect_exact in ((2.0, 0.05, True), (1.6, 0.6, False)):
        q = _erf_q_star(sw, sb)
        k = 2 * A2 * q

        def gap(c, sw=sw, sb=sb, q=q, k=k):
            return (sw * sw * 2 / math.pi * math.asin(k * c / (1 + k)) + sb * sb) / q - c

        c_exact = optimize.brentq(gap, 0.0, 1 - 1e-9, xtol=1e-15)
        c_m, slope, exact = mehler(q, sw, sb, moments(q)[2], scr)
        assert exact == expect_exact
        assert c_m <= c_exact + 1e-14
        if exact:
            assert c_m == pytest.approx(c_exact, abs=1e-13)
            assert slope == pytest.approx(sw * sw / math.sqrt((1 + k) ** 2 - (k * c_m) ** 2), rel=1e-12)


def test_pairs_alone_match_an_independent_product_rule():
    pair = compiled.pairs_module("tanh").pair
    z, w = np.polynomial.hermite_e.hermegauss(300)  # 120 nodes still err by 3e-13 here
    w = w / w.sum()
    scr = np.empty(8192)
    for q, c in ((1.0, 0.5), (2.5, -0.3), (0.7, 0.95)):
        u1 = math.sqrt(q) * z[:, None]
        u2 = math.sqrt(q) * (c * z[:, None] + math.sqrt(1 - c * c) * z[None, :])
        ww = w[:, None] * w[None, :]
        n_ref = float(np.sum(ww * np.tanh(u1) * np.tanh(u2)))
        m_ref = float(np.sum(ww / np.cosh(u1) ** 2 / np.cosh(u2) ** 2))
        n, m, _ = pair(q, c, scr)
        assert n == pytest.approx(n_ref, abs=1e-13) and m == pytest.approx(m_ref, abs=1e-13)


@pytest.mark.parametrize("use_tables", [False, True])
def test_fixed_points_alone_for_relu(use_tables):
    point = compiled.fixed_points_module("relu").point
    tab = (tables if use_tables else exact_tables)("relu").arrays
    scr = np.empty(8192)
    for sw, sb in ((1.0, 0.3), (1.3, 1.0)):
        q, chi1, c, chic, chiq, xiq, xic, status = point(sw, sb, scr, tab, True)
        assert q == pytest.approx(sb * sb / (1 - sw * sw / 2), rel=1e-13)  # V(q) = σ_w² q/2 + σ_b²
        assert chi1 == pytest.approx(sw * sw / 2, rel=1e-13) and (c, chic) == (1.0, chi1) and status == 0


@pytest.mark.parametrize("use_tables", [False, True])
def test_edge_alone_for_relu(use_tables):
    edge = compiled.edge_module("relu").edge
    tab = (tables if use_tables else exact_tables)("relu").arrays
    sw, status = edge(0.0, 0.01, 100.0, 64, tab, True)
    # q* = 0 at σ_b = 0; the edge is the transition itself, returned exactly
    assert sw == pytest.approx(math.sqrt(2), rel=3e-16) and status == int(Status.Q_ZERO)

"""Mean-field Jacobian spectra: μ_k, the moments and the density of J Jᵀ."""

import math

import mpmath
import numpy as np
import pytest

import fastprop as fp


@pytest.mark.parametrize("q", [1e-3, 0.5, 1.0, 30.0, 1e3])
def test_mu_k_closed_forms(q):
    k = np.arange(1, 5)
    erf = fp.jacobian_moments("erf", k, q=q)
    np.testing.assert_allclose(erf, (1 + np.pi * k * q) ** -0.5, rtol=1e-12)
    ht = fp.jacobian_moments("hard_tanh", k, q=q)
    np.testing.assert_allclose(ht, math.erf(1 / math.sqrt(2 * q)), rtol=1e-12)
    np.testing.assert_allclose(fp.jacobian_moments("relu", k, q=q), 0.5, rtol=1e-14)


@pytest.mark.parametrize("q,k", [(0.3, 1), (2.0, 2), (50.0, 3)])
def test_mu_k_tanh_against_mpmath(q, k):
    mpmath.mp.dps = 30
    s = mpmath.sqrt(q)
    f = lambda z: mpmath.sech(s * z) ** (4 * k) * mpmath.exp(-z * z / 2) / mpmath.sqrt(2 * mpmath.pi)  # noqa: E731
    cuts = [-mpmath.inf, -8 / s, -2 / s, 0, 2 / s, 8 / s, mpmath.inf]
    exact = float(mpmath.quad(f, cuts))
    assert fp.jacobian_moments("tanh", k, q=q) == pytest.approx(exact, rel=1e-13)


def test_mu_k_at_infinite_q_is_the_limit():
    np.testing.assert_allclose(fp.jacobian_moments("relu", [1, 3], q=np.inf), [0.5, 0.5], rtol=1e-15)
    assert fp.jacobian_moments("erf", 2, q=np.inf) < 1e-140  # (1 + 2πq)^(-1/2) → 0 (evaluated at q = 1e300)
    with pytest.raises(ValueError, match="finite"):
        fp.jacobian_moments("erf", 2, q=[np.nan])
    with pytest.raises(ValueError):
        fp.jacobian_moments("erf", 2, q=-np.inf)


def test_mu_k_at_q_star_broadcasts():
    sw = np.array([[1.2], [2.0]])
    sb = np.array([0.1, 0.5, 1.0])
    mu = fp.jacobian_moments("tanh", 1, sigma_w=sw, sigma_b=sb)
    g = fp.meanfield_grid("tanh", sw.ravel(), sb, target="cpu")
    assert mu.shape == (2, 3)
    np.testing.assert_allclose(sw**2 * mu, g.chi_1, rtol=1e-12)


def test_moments_of_products_of_wishart_and_orthogonal_matrices():
    # linear Gaussian: Fuss–Catalan numbers C(L+1) k choose k / (Lk+1), scaled by σ_w^{2Lk}
    s = fp.jacobian_spectrum("linear", 1.3, 0.0, depth=2)
    fc = np.array([1, 3, 12, 55])
    np.testing.assert_allclose(s.moments([1, 2, 3, 4]), fc * 1.3 ** (4 * np.arange(1, 5)), rtol=1e-13)
    o = fp.jacobian_spectrum("linear", 0.9, 0.0, depth=7, weights="orthogonal")
    np.testing.assert_allclose(o.moments([0, 1, 2, 3]), 0.9 ** (14 * np.arange(4)), rtol=1e-13)


@pytest.mark.parametrize("weights,s1", [("gaussian", -1.0), ("orthogonal", 0.0)])
def test_variance_at_criticality(weights, s1):
    # at χ_1 = 1 the mean is 1 and the variance L(μ_2/μ_1² − 1 − s_1) (Pennington et al. 2017, Table 1)
    sb = 0.2
    sw = fp.edge_of_chaos("tanh", sb, target="cpu")
    depth = 30
    s = fp.jacobian_spectrum("tanh", sw, sb, depth, weights=weights)
    mu1, mu2 = fp.jacobian_moments("tanh", [1, 2], sigma_w=sw, sigma_b=sb)
    assert s.mean == pytest.approx(1.0, rel=1e-12)
    assert s.variance == pytest.approx(depth * (mu2 / mu1**2 - 1 - s1), rel=1e-10)


def test_density_is_marchenko_pastur_for_one_linear_gaussian_layer():
    sw = 1.3
    s = fp.jacobian_spectrum("linear", sw, 0.0, depth=1)
    lo, hi = s.support()
    assert lo == 0.0 and hi == pytest.approx(4 * sw**2, rel=1e-12)
    lam = np.linspace(0.05, 4 * sw**2 - 0.05, 50)
    x = lam / sw**2
    np.testing.assert_allclose(s.density(lam), np.sqrt(4 * x - x * x) / (2 * np.pi * x) / sw**2, rtol=1e-11)


def _integrate(s):
    """Mass, mean and second moment of the density, by the cdf table's panels."""
    e = s._cdf_table()[0]
    gx, gw = np.polynomial.legendre.leggauss(16)
    half = 0.5 * np.diff(e)[:, None]
    nodes = 0.5 * (e[:-1] + e[1:])[:, None] + half * gx
    rho, err, _ = s._density(nodes.ravel())  # best values, also where density() says NaN (unresolved tails)
    rho = rho.reshape(nodes.shape)
    lam = nodes.ravel()  # error of λρ(λ), the density of ln λ, relative to its peak
    return [(rho * nodes**k * gw * half).sum() for k in range(3)], np.max(err * lam) / np.max(rho.ravel() * lam)


@pytest.mark.parametrize(
    "args",
    [("relu", math.sqrt(2), 0.0, 1, "gaussian"), ("relu", 1.5, 0.3, 6, "orthogonal"),
     ("hard_tanh", 1.1, 0.05, 10, "orthogonal"), ("tanh", 1.2, 0.1, 10, "gaussian")],
)  # fmt: skip
def test_density_integrates_back_to_its_moments(args):
    s = fp.jacobian_spectrum(*args)
    (mass, m1, m2), err = _integrate(s)
    assert np.isfinite(err) and err < 1e-10  # the discretisation error estimate, relative to the peak
    assert mass + s.atom == pytest.approx(1.0, abs=1e-12)
    exact = s.moments([1, 2])
    assert m1 == pytest.approx(exact[0], rel=1e-11)
    assert m2 == pytest.approx(exact[1], rel=1e-11)


@pytest.mark.parametrize("depth", [2, 8, 32])
def test_atoms_above_zero_with_the_continuous_part_below_them(depth):
    # hard_tanh with orthogonal weights at small q*: D² is a projection of trace a > 1 − 1/L, so
    # J Jᵀ = σ_w^{2L} × (a product of free projections) has an atom at σ_w^{2L} of mass L a − (L − 1)
    # and its continuous part ends below it (at ζ = L(1 − a) on the real axis)
    sw = fp.edge_of_chaos("hard_tanh", 0.05)
    s = fp.jacobian_spectrum("hard_tanh", sw, 0.05, depth, "orthogonal")
    a = 1.0 - s.atom
    assert a == pytest.approx(math.erf(1 / math.sqrt(2 * s.q_star)), rel=1e-14)
    (at, mass) = s.atoms[-1]
    assert at == pytest.approx(sw ** (2 * depth), rel=1e-14) and mass == pytest.approx(depth * a - depth + 1, rel=1e-14)
    lo, hi = s.support()
    zeta = depth * (1.0 - a)  # the critical point of z(ζ) = σ_w^{2L} a^{L−1} ζ^L (ζ − 1 + a)^{1−L}
    assert hi == pytest.approx(
        sw ** (2 * depth) * a ** (depth - 1) * zeta**depth * (zeta - 1 + a) ** (1 - depth), rel=1e-12
    )
    (cont, m1, m2), err = _integrate(s)
    atoms = np.array(s.atoms)
    # below hi·1e-300 (not representable) ρ ∝ λ^{1/L − 1}: that mass is L λ ρ(λ) there (8e-12 at L = 32)
    below = depth * hi * 1e-300 * s.density(hi * 1e-300)
    assert cont + below + atoms[:, 1].sum() == pytest.approx(1.0, abs=1e-13)
    exact = s.moments([1, 2])
    assert m1 + (atoms[:, 0] * atoms[:, 1]).sum() == pytest.approx(exact[0], rel=1e-12)
    assert m2 + (atoms[:, 0] ** 2 * atoms[:, 1]).sum() == pytest.approx(exact[1], rel=1e-12)
    if depth == 2:  # p q p for free projections of trace a (Voiculescu): √((λ₊ − x) x)/(2π x (1 − x)), λ₊ = 4a(1 − a)
        lam = np.geomspace(hi * 1e-9, hi, 202)[1:-1]
        x = lam / sw**4
        ref = np.sqrt((4 * a * (1 - a) - x) * x) / (2 * np.pi * x * (1 - x)) / sw**4
        np.testing.assert_allclose(s.density(lam), ref, rtol=1e-11)


def test_relu_one_gaussian_layer_has_a_gap_and_an_atom():
    # J Jᵀ = σ_w² D W Wᵀ D: half the rows vanish, the rest is Marchenko–Pastur of ratio 1/2
    s = fp.jacobian_spectrum("relu", math.sqrt(2), 0.0, depth=1)
    lo, hi = s.support()
    assert s.atom == pytest.approx(0.5, abs=1e-15)
    assert lo == pytest.approx((1 - math.sqrt(0.5)) ** 2 * 2, rel=1e-12)
    assert hi == pytest.approx((1 + math.sqrt(0.5)) ** 2 * 2, rel=1e-12)


def test_cdf_and_quantile_are_inverse():
    s = fp.jacobian_spectrum("hard_tanh", 1.1, 0.05, 10, "orthogonal")
    p = np.array([0.2, 0.5, 0.9, 0.99])
    lam = s.quantile(p)
    np.testing.assert_allclose(s.cdf(lam), p, atol=1e-10)
    assert s.cdf(-1.0) == 0.0 and s.cdf(s.support()[1] * 1.01) == 1.0
    assert s.quantile(s.atom / 2) == 0.0


def test_against_a_width_400_simulation():
    # eigenvalues of J Jᵀ of random tanh networks at q*: moments within sampling error
    sw, sb, depth, d = 1.3, 0.2, 5, 400
    s = fp.jacobian_spectrum("tanh", sw, sb, depth, weights="orthogonal")
    rng = np.random.default_rng(1)
    q = s.q_star
    m1 = []
    m2 = []
    for _ in range(3):
        x = rng.standard_normal(d)
        x *= math.sqrt(q * d) / np.linalg.norm(x)  # start at the fixed point: h has variance q*
        j = np.eye(d)
        h = x
        for _ in range(depth):
            o = np.linalg.qr(rng.standard_normal((d, d)))[0]
            w = sw * o
            h = w @ np.tanh(h) + sb * rng.standard_normal(d)
            j = (1 / np.cosh(h) ** 2)[:, None] * (w @ j)
        ev = np.linalg.eigvalsh(j @ j.T)
        m1.append(ev.mean())
        m2.append((ev**2).mean())
    exact = s.moments([1, 2])
    assert np.mean(m1) == pytest.approx(exact[0], rel=0.05)
    assert np.mean(m2) == pytest.approx(exact[1], rel=0.1)


def test_bad_input():
    with pytest.raises(ValueError, match="depth"):
        fp.jacobian_spectrum("tanh", 1.0, 0.1, 0)
    with pytest.raises(ValueError, match="weights"):
        fp.jacobian_spectrum("tanh", 1.0, 0.1, 3, weights="haar")
    with pytest.raises(ValueError, match="orthogonal"):
        fp.jacobian_spectrum("tanh", 1.0, 0.1, 1, weights="orthogonal")
    with pytest.raises(ValueError, match="k"):
        fp.jacobian_moments("tanh", 0, q=1.0)
    with pytest.raises(TypeError, match="either"):
        fp.jacobian_moments("tanh", 1, q=1.0, sigma_w=1.0, sigma_b=0.0)
    with pytest.raises(TypeError):
        fp.jacobian_moments("tanh", 1)
    with pytest.raises(ValueError, match="q"):
        fp.jacobian_moments("tanh", 1, q=-1.0)


def test_spectrum_map_agrees_with_the_spectra_pointwise(tmp_path):
    sw = np.array([0.8, 1.3, 2.5])
    sb = np.array([0.0, 0.3])
    m = fp.spectrum_map("tanh", sw, sb, 12, largest=True, target="cpu")
    g = fp.meanfield_grid("tanh", sw, sb, target="cpu")
    np.testing.assert_allclose(m.chi_1, g.chi_1, rtol=1e-12)
    for i, j in [(0, 1), (1, 0), (2, 1)]:
        for w in ("gaussian", "orthogonal"):
            s = fp.jacobian_spectrum("tanh", sw[i], sb[j], 12, w)
            assert getattr(m, f"variance_{w}")[i, j] == pytest.approx(s.variance, rel=1e-12)
            assert getattr(m, f"s_max_{w}")[i, j] ** 2 == pytest.approx(s.support()[1], rel=1e-10)
    path = m.save(tmp_path / "map.npz")
    back = fp.SpectrumMap.load(path)
    assert back.depth == 12 and back.activation == "tanh"
    for f in ("mu_2", "variance_gaussian", "s_max_orthogonal", "status"):
        np.testing.assert_array_equal(getattr(back, f), getattr(m, f))


@pytest.mark.parametrize("name", ["erf", "gelu"])
def test_spectrum_map_series_in_ln_q_matches_the_quadrature(name):
    # 60 × 50 points: μ_k through the certified series (gelu: q* = +inf on part of the grid)
    sw = np.linspace(0.1, 5, 60)
    sb = np.linspace(0, 3, 50)
    m = fp.spectrum_map(name, sw, sb, 5, target="cpu")
    q = m.q_star.ravel()
    if name == "erf":
        np.testing.assert_allclose(m.mu_2.ravel(), (1 + 2 * np.pi * q) ** -0.5, rtol=2e-12)
    pick = np.random.default_rng(0).choice(q.size, 200)
    exact = fp.jacobian_moments(name, 2, q=np.where(np.isfinite(q[pick]), q[pick], 1e300))
    np.testing.assert_allclose(m.mu_2.ravel()[pick], exact, rtol=2e-12)
    assert not np.any(np.isnan(m.variance_gaussian[np.isfinite(m.q_star)]))


def test_spectrum_map_bad_input():
    with pytest.raises(ValueError, match="depth"):
        fp.spectrum_map("tanh", [1.0], [0.0], 0)
    with pytest.raises(TypeError, match="largest"):
        fp.spectrum_map("tanh", [1.0], [0.0], 3, largest=1)
    with pytest.raises(ValueError, match="sigma_w"):
        fp.spectrum_map("tanh", [-1.0], [0.0], 3)


def test_small_depth_orthogonal_is_refined_until_its_error_estimate_is_small():
    # L = 2, orthogonal: the subordination point nears the real axis, where the 8-fold law
    # is 3.6e-4 off; the density refines the law there (up to 64-fold)
    s = fp.jacobian_spectrum("tanh", 1.2, 0.1, 2, "orthogonal")
    lo, hi = s.support()
    lam = np.linspace(lo, hi, 402)[1:-1]
    rho, err = s.density(lam, return_error=True)
    inner = (lam > lo + 0.02 * (hi - lo)) & (lam < hi - 0.02 * (hi - lo))
    assert np.all(err[inner] <= 1e-8 * rho[inner])
    (mass, m1, m2), _ = _integrate(s)
    exact = s.moments([1, 2])
    assert m1 == pytest.approx(exact[0], rel=1e-9) and m2 == pytest.approx(exact[1], rel=1e-9)
    assert mass == pytest.approx(1.0, abs=1e-6)  # the law of D² stops at |z| = 9: λ below ~lo is not resolved


def test_quantile_finds_atoms_and_deep_tiny_quantiles():
    s = fp.jacobian_spectrum("hard_tanh", 1.0, 0.05, 8, "orthogonal")  # an atom at λ = 1 of mass 0.9255
    (at, mass) = s.atoms[-1]
    assert at == 1.0 and mass > 0.9
    np.testing.assert_array_equal(s.quantile([0.5, 1.0]), [1.0, 1.0])
    below = s.cdf(s.support()[1])  # all but the atom at 1
    assert below == pytest.approx(1.0 - mass, abs=1e-12)
    assert s.quantile(below / 2) < s.support()[1] and s.quantile(0.0) == 0.0
    # relu at depth 1000: the 0.8-quantile lies at 5.7e-222 (found in ln λ, no underflow; below
    # hi·1e-300 ≈ 1e-296, a quarter of the mass, nothing is representable)
    d = fp.jacobian_spectrum("relu", math.sqrt(2), 0.0, 1000)
    q = d.quantile([0.8, 0.9])
    assert 1e-223 < q[0] < 1e-220 and q[1] > q[0]
    np.testing.assert_allclose(d.cdf(q), [0.8, 0.9], atol=1e-9)


def test_high_moments_by_quadrature_stay_inside_the_support():
    # beyond k = 8 the S-transform series is ill-conditioned (orthogonal weights); the density's
    # quadrature keeps m_k log-convex and below max(λ)^k, and the atom dominates when there is one
    s = fp.jacobian_spectrum("hard_tanh", 1.0, 0.05, 8, "orthogonal")
    m = s.moments(np.arange(1, 49))
    atom = s.atoms[-1][1]
    assert np.all(m[15:] >= atom) and np.all(m[15:] <= atom + 1e-6)
    t = fp.jacobian_spectrum("tanh", fp.edge_of_chaos("tanh", 0.05), 0.05, 2, "orthogonal")
    mt = t.moments(np.arange(0, 65))
    assert np.all(mt[1:] <= t.support()[1] ** np.arange(1, 65) * (1 + 1e-9))
    assert np.all(mt[1:-1] ** 2 <= mt[:-2] * mt[2:] * (1 + 1e-9))  # log-convex
    assert t.moments(8) == pytest.approx(t._moment_by_quadrature(8), rel=1e-9)  # the two methods meet


def test_unreliable_density_values_are_nan_with_a_warning():
    s = fp.jacobian_spectrum("tanh", 0.5, 0.3, 5, "orthogonal")
    with pytest.warns(UserWarning, match="NaN"):
        r, err = s.density(1.6541552858609092e-05, return_error=True)
    assert math.isnan(r) and err > 1.0


def test_atoms_only_spectrum():
    s = fp.jacobian_spectrum("linear", 1.1, 0.0, 3, "orthogonal")  # J Jᵀ = 1.1⁶ I
    assert s.atoms == [(pytest.approx(1.1**6, rel=1e-15), pytest.approx(1.0, abs=1e-15))]
    np.testing.assert_array_equal(s.cdf([1.0, 2.0]), [0.0, 1.0])
    assert s.quantile(0.3) == pytest.approx(1.1**6, rel=1e-15)
    assert s.density(0.5) == 0.0
    assert s.moments(9) == pytest.approx(1.1**54, rel=1e-13)

"""The certified mean-field tables (fastprop.meanfield.tables) against the exact
per-point quadrature, the grid through them against the exact path, and the
accuracy fixes they rest on (the graded rule on a dense q scan, the edge at σ_b = 0)."""

import math

import mpmath as mp
import numpy as np
import pytest
import reference as R

import fastprop as fp
from fastprop.activations import erf_kernel
from fastprop.meanfield import interpolants as I
from fastprop.meanfield import kernels
from fastprop.meanfield.tables import Tables, exact_tables, tables

SMOOTH = ("tanh", "sigmoid", "softplus", "swish", "gelu", "elu")
NO_CLOSED_FORM = SMOOTH + ("hard_tanh", "selu", "abs", "leaky_relu")


def _scale(m):
    """The certificate's scales (tables._scales_1d) at one q, from exact moments."""
    return np.array([math.sqrt(m[2]), math.sqrt(m[3]), m[2], m[3], max(abs(m[4]), m[3])])


@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_one_dimensional_table_matches_the_quadrature_at_random_q(name):
    t, k = tables(name), kernels(name)
    assert np.mean(t.OK1[:, 0] == 1) > 0.98  # kinked φ may lose a few panels near their corners
    rng = np.random.default_rng(3)
    qs = np.concatenate([np.exp(rng.uniform(math.log(1e-10), math.log(1e8), 60)), [1e-10, 1e8, 33.0, 134.28]])
    coef = np.empty(I.KMEHLER + 1)
    tk = np.empty(I.DEG_T)
    for q in qs:
        i, _ = I.q_panel(q, I.NQ1)
        ok, m = I.moments_table(q, t.T1, t.OK1)
        assert ok == (t.OK1[i, 0] == 1)
        exact = k.moments(q)
        if ok:
            assert np.all(np.abs(np.array(m) - exact) <= 2 * I.TOL * _scale(exact)), (q, m, exact)
        if I.hermite_table(q, t.T1, t.OK1, coef, tk):
            a = np.empty(I.KMEHLER + 1)
            k.hermite_coefficients(q, np.empty(k.scratch_size), a)
            assert np.max(np.abs(coef - a)) <= 2 * I.TOL * math.sqrt(exact[2]), q


@pytest.mark.parametrize("name", NO_CLOSED_FORM)
def test_pair_table_matches_the_quadrature_at_random_q_and_c(name):
    t, k = tables(name), kernels(name)
    t.ensure_pairs([0.05, 3.0, 400.0])  # three ln q panels: small, middle and large q
    scr = np.empty(k.scratch_size)
    rng = np.random.default_rng(5)
    for lnq in (math.log(0.05), math.log(3.0), math.log(400.0)):
        i = int(math.floor(lnq - I.LNQ_LO))
        if name in SMOOTH or lnq > 0:  # kinked φ at small q: corners far out in z, the exact path
            # the seven widest boxes (c ≤ 0.99995); kinked φ can fail the finest ones at large q
            assert np.mean(t.OK2[i, :7] == 1) >= 5 / 7, (name, t.OK2[i])
        for _ in range(6):
            q = math.exp(I.LNQ_LO + i + rng.uniform())
            c = math.cos(rng.uniform(I.THETA_LO, I.THETA_HI))
            st, n, m = I.pair_table(q, c, t.T2, t.OK2)
            if st != 1:
                continue
            j, _ = I.theta_box(c)
            en, em, _ = k.pair(q, c, scr)
            # the certificate: relative to the largest value on the box, bounded here by E φ², E φ'²
            mq = k.moments(q)
            assert abs(n - en) <= 2 * I.TOL * mq[2] and abs(m - em) <= 2 * I.TOL * max(mq[3], abs(em)), (q, c)


@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_correlation_map_near_plus_and_minus_one_is_the_exact_integral(name):
    # c within 1e-12 of ±1 lies outside the tables: the map falls back to the exact rule
    k = kernels(name)
    scr = np.empty(k.scratch_size)
    for q in (0.05, 3.0, 400.0):  # the panels the test above builds
        for c in (1 - 1e-12, -1 + 1e-12, I.C_HI + 1e-9):
            exact = (2.0**2 * k.pair(q, c, scr)[0] + 0.3**2) / q
            assert fp.correlation_map(c, 2.0, 0.3, name, q=q) == pytest.approx(exact, rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_grid_through_tables_matches_the_exact_path(name):
    rng = np.random.default_rng(11)
    sw = np.sort(rng.uniform(0.1, 5.0, 7))
    sb = np.concatenate([[0.0], np.sort(rng.uniform(0.0, 3.0, 5))])
    a = fp.meanfield_grid(name, sw, sb, target="cpu")
    b = fp.meanfield_grid(name, sw, sb, target="cpu", tables=False)
    np.testing.assert_array_equal(a.status, b.status)
    for f in ("q_star", "chi_1", "chi_q"):
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(a.c_star, b.c_star, rtol=0, atol=1e-11)
    # χ_c = C'(c*) moves by C''·δc*; C'' is large near c* = 1 for kinked φ
    np.testing.assert_allclose(a.chi_c, b.chi_c, rtol=1e-9)
    assert a.meta["tables"] and not b.meta["tables"]


def test_registered_activation_goes_through_the_tables_and_matches_mpmath():
    # the registration of test_activations (same functions: its kernels come from the cache)
    from test_activations import _d2tanh, _dtanh, _tanh

    fp.register_activation(
        "user_tanh", _tanh, _dtanh, _d2tanh, features=(-16, -8, -4, -2, -1, -0.5, 0, 0.5, 1, 2, 4, 8, 16),
        strip=math.pi / 2, odd=True, overwrite=True,
    )  # fmt: skip
    t = tables("user_tanh")
    assert np.all(t.OK1[:, 0] == 1)
    g = fp.meanfield_grid("user_tanh", [1.5, 3.0], [0.2, 1.0], target="cpu")
    assert np.any(t.OK2 == 1)  # the chaotic points built pair boxes
    for i, sw in enumerate(g.sigma_w):
        for j, sb in enumerate(g.sigma_b):
            q = g.q_star[i, j]
            assert abs(R.q_star_newton_residual("tanh", q, sw, sb)) <= 1e-12 * q
            assert g.chi_1[i, j] == pytest.approx(sw * sw * float(R.expect("tanh", q, "dphi2")), rel=1e-12)


def test_tables_load_from_disk_bit_for_bit(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTPROP_CACHE_DIR", str(tmp_path))
    act = fp.activation("sigmoid")
    built = Tables(act)
    built.ensure_pairs([2.0])
    loaded = Tables(act)
    assert loaded.build_seconds == 0.0  # nothing was computed
    for a, b in zip(built.arrays, loaded.arrays, strict=True):
        np.testing.assert_array_equal(a, b)
    assert exact_tables(act).report()["panels_1d"] == 0


# ---------------------------------------------------------------- the rule the tables are built from
def _mp_expect(name, q, f):
    phi, dphi, _, _ = R.PHI[name]
    s = mp.sqrt(mp.mpf(q))
    g = (lambda h: phi(h) ** 2) if f == "phi2" else (lambda h: dphi(h) ** 2)
    with mp.workdps(20):
        return mp.quad(lambda z: g(s * z) * mp.npdf(z), R._zpoints(name, q))


def test_graded_rule_meets_1e13_on_a_dense_scan_of_q():
    # erf in closed form (arcsine kernel at c = 1) on 3000 values of q, where the old
    # asymmetric thinning of make_next_break erred by 5e-12 (q ≈ 33–134)
    k = kernels("erf")
    for q in np.exp(np.linspace(math.log(1e-10), math.log(1e8), 3000)):
        assert k.moments(q)[2] == pytest.approx(erf_kernel(q, 1.0)[0], rel=1e-13), q
    assert fp.length_map(134.2764961137864, 1, 0, "erf") == pytest.approx(0.93813015603314126, rel=1e-15)
    for name, q in (("relu", 77.7), ("linear", 0.3), ("leaky_relu", 55.5), ("abs", 1e6)):
        assert fp.length_map(q, 1, 0, name) == pytest.approx(float(R.expect(name, q, "phi2")), rel=1e-13)


@pytest.mark.parametrize("name", ("tanh", "sigmoid", "softplus", "swish", "gelu", "elu", "selu", "hard_tanh"))
def test_graded_rule_meets_1e13_on_a_scan_of_q_for_activations_without_closed_form(name):
    k = kernels(name)
    rng = np.random.default_rng(17)
    for q in np.concatenate([np.exp(rng.uniform(math.log(20), math.log(200), 3)), [33.0]]):
        m = k.moments(q)
        assert m[2] == pytest.approx(float(_mp_expect(name, q, "phi2")), rel=1e-13), q
        assert m[3] == pytest.approx(float(_mp_expect(name, q, "dphi2")), rel=1e-13), q


def test_edge_of_chaos_at_zero_bias_is_as_accurate_as_elsewhere():
    # erf: χ_1 − 1 grows like (σ_w − 1)² above the transition, so a root finder on
    # χ_1 alone stops √ε away (it returned 1 + 1.7e-8); the transition is exact
    assert fp.edge_of_chaos("erf", 0.0, target="cpu") == pytest.approx(1.0, abs=1e-12)
    assert fp.edge_of_chaos("tanh", 0.0, target="cpu") == pytest.approx(1.0, abs=1e-12)
    assert fp.edge_of_chaos("relu", 0.0, target="cpu") == pytest.approx(math.sqrt(2), rel=1e-15)
    # away from σ_b = 0 the tables and the exact path agree
    sb = np.array([0.1, 0.7, 2.0])
    for name in ("erf", "tanh", "hard_tanh"):
        a = fp.edge_of_chaos(name, sb, target="cpu")
        b = fp.edge_of_chaos(name, sb, target="cpu", tables=False)
        np.testing.assert_allclose(a, b, rtol=1e-11)


def test_points_next_to_the_edge_converge_from_the_tables_start():
    # χ_1 = 1 + 9e-6, c* = 0.999958 (beyond the pair table when it stopped at 0.99995):
    # C' = 1 − 1e-5 makes c* itself uncertain by ~4e-11 on the exact path, which used to
    # dither there until its cap (NOT_CONVERGED); on the pair table (certified to
    # TOL = 1e-13) c* and χ_c are determined to TOL/(1 − χ_c)
    sw, sb = 1.3824582458245827, 0.28472847284728475  # a point of the 10⁴ × 10⁴ benchmark grid
    a = fp.meanfield_grid("tanh", [sw], [sb], target="cpu")
    b = fp.meanfield_grid("tanh", [sw], [sb], target="cpu", tables=False)
    assert a.status[0, 0] == 0 and b.status[0, 0] == 0 and I.C_LO < a.c_star[0, 0] < I.C_HI
    bound = I.TOL / (1.0 - b.chi_c[0, 0])
    assert abs(a.c_star[0, 0] - b.c_star[0, 0]) <= bound and abs(a.chi_c[0, 0] - b.chi_c[0, 0]) <= bound
    # χ_1 = 1 + 2.5e-9, c* = 1 − 5e-8 beyond the pair table: the exact Newton starts from
    # the table's last iterate; c* and χ_c are only determined to ~1e-16/(1 − χ_c) ≈ 5e-9
    sw = 1.3824427409948497
    a = fp.meanfield_grid("tanh", [sw], [sb], target="cpu")
    b = fp.meanfield_grid("tanh", [sw], [sb], target="cpu", tables=False)
    assert a.status[0, 0] == 0 and b.status[0, 0] == 0 and a.c_star[0, 0] > I.C_HI
    bound = 1e-14 / (1.0 - a.chi_c[0, 0])
    assert abs(a.c_star[0, 0] - b.c_star[0, 0]) <= bound and abs(a.chi_c[0, 0] - b.chi_c[0, 0]) <= bound


def test_tables_flag_must_be_a_bool():
    with pytest.raises(TypeError, match="tables must be a bool"):
        fp.meanfield_grid("tanh", [1.0], [0.0], tables="no")
    with pytest.raises(TypeError, match="tables must be a bool"):
        fp.edge_of_chaos("tanh", 0.1, tables=1)


@pytest.mark.parametrize("name", ("tanh", "selu", "hard_tanh", "gelu"))
def test_start_table_is_within_its_error_of_the_exact_c_star(name):
    t, k = tables(name), kernels(name)
    t.ensure_pairs([3.0, 400.0])
    ex = exact_tables(name).arrays
    scr = np.empty(k.scratch_size)
    rng = np.random.default_rng(17)
    for q0 in (3.0, 400.0):
        i, _ = I.q_panel(q0, I.NQ)
        if name in ("tanh", "selu"):
            assert 0.0 < t.SD[i] < 1e-6, t.SD[i]  # the fast path is there, and close
        if t.SD[i] <= 0.0:
            continue
        for _ in range(5):
            q = math.exp(I.LNQ_LO + i + rng.uniform())
            u = rng.uniform()
            m = k.moments(q)
            hat = q * m[3] / m[2]  # χ̂: the largest χ_1 at this q*
            chi1 = 1.0 + u * (hat - 1.0)
            s = 1.0 - chi1 / hat  # σ_b²/q*
            w2 = q * (1.0 - s) / m[2]
            c, _, st = k.c_star(q, math.sqrt(w2), math.sqrt(s * q), m[0], m[1], m[2], chi1, scr, ex, True)
            assert st == 0
            state, est, err = k.modules[3].c_star_start(q, u, t.arrays)
            assert state == 1 and err == t.SD[i]
            assert abs(est - c) <= err, (q, u, est, c, err)


@pytest.mark.parametrize("name", ("tanh", "selu", "hard_tanh", "erf"))
def test_cstar_table_is_within_its_certificate_of_newton(name):
    """The c* table against Newton on the pair table (the path it is built from) at random
    (q, t): c* within the certified tolerance (absolute), χ_c within it relative to χ_c."""
    from fastprop.meanfield.tables import MAX_TOL_C, NOISE_C, TOL_C

    t, k = tables(name), kernels(name)
    t.ensure_pairs([0.02, 3.0, 400.0])
    newton = (*t.arrays[:8], np.full_like(t.OKC, -1), *t.arrays[9:])  # the same tables without the c* table
    scr = np.empty(k.scratch_size)
    rng = np.random.default_rng(23)
    used = 0
    for q0 in (0.02, 3.0, 400.0):
        i, _ = I.q_panel(q0, I.NQ)
        if name == "tanh" and q0 > 1.0:
            assert np.all(t.OKC[i, 6:] == 1), t.OKC[i]  # every t panel from t = 1/16 up is certified
        for p in range(I.NT):
            if t.OKC[i, p] != 1:
                continue
            lo, hi = I.t_panel_edges(p)
            for _ in range(2):
                q = math.exp(I.LNQ_LO + i + rng.uniform())
                u = lo + (hi - lo) * rng.uniform()
                m = k.moments(q)
                hat = q * m[3] / m[2]
                chi1 = 1.0 + u * (hat - 1.0)
                s = max(1.0 - chi1 / hat, 0.0)
                sw, sb = math.sqrt(q * (1.0 - s) / m[2]), math.sqrt(s * q)
                a = k.c_star(q, sw, sb, m[0], m[1], m[2], chi1, scr, t.arrays, True)
                b = k.c_star(q, sw, sb, m[0], m[1], m[2], chi1, scr, newton, True)
                assert a[2] == 0 and b[2] == 0
                tol = min(TOL_C + NOISE_C / (1.0 - b[1]), MAX_TOL_C)
                assert abs(a[0] - b[0]) <= tol and abs(a[1] - b[1]) <= tol * b[1], (q, u, a, b, tol)
                used += 1
    assert used > 0


@pytest.mark.parametrize("name", ("tanh", "gelu", "selu", "sigmoid"))
def test_q_star_from_the_start_table_is_newtons(name):
    """The q* start table only starts Newton: q* is the same (to rounding) with and without
    it, at random points of its range, on both sides of the edge and at σ_b = 0; and where
    it has a start, the start is close."""
    t, k = tables(name), kernels(name)
    t.ensure_q_start()  # (grids and edges build it; maps never use it)
    none = t.arrays_without_q_start
    rng = np.random.default_rng(5)
    sw = np.exp(rng.uniform(-4.5, 4.5, 300))
    sb = np.where(rng.uniform(size=300) < 0.2, 0.0, np.exp(rng.uniform(-9.5, 9.5, 300)))
    starts = 0
    for a, b in zip(sw, sb, strict=True):
        qa, sa = k.q_star(a, b, t.arrays, True)
        qb, sb_ = k.q_star(a, b, none, True)
        # Newton's answer from another start: the same to a few rounding errors over 1 − χ_q
        assert sa == sb_ and qa == pytest.approx(qb, rel=1e-13, abs=1e-300), (a, b, qa, qb)
        est = I.q_start(a * a, b * b, t.QS, t.OKQ)
        if est == est:
            starts += 1
            assert abs(est - qb) <= 0.1 * qb, (a, b, est, qb)
    assert starts > 100


def test_t_panels_tile_the_unit_interval():
    for p in range(I.NT):
        lo, hi = I.t_panel_edges(p)
        for y in (-1.0, -0.3, 0.4, 1.0):
            t = lo + 0.5 * (y + 1.0) * (hi - lo)
            q, yy = I.t_panel(t)
            if y == 1.0 and q == p + 1:  # a shared edge may round into the next panel
                assert yy == pytest.approx(-1.0, abs=1e-14)
            else:
                assert q == p and yy == pytest.approx(y, abs=1e-14), (p, y, q, yy)
    assert I.t_panel(I.T_LO * 0.999)[0] == -1 and I.t_panel(1.0 + 1e-12)[0] == -1
    assert I.t_panel(math.nan)[0] == -1 and I.t_panel(-0.5)[0] == -1


def test_mehler_root_is_the_same_from_any_start():
    name, sw, sb = "tanh", 2.5, 0.3
    k = kernels(name)
    q = k.q_star(sw, sb, tables(name).arrays, True)[0]
    coef = np.empty(I.KMEHLER + 1)
    k.hermite_coefficients(q, np.empty(k.scratch_size), coef)
    e2 = k.moments(q)[2]
    root = k.modules[1].mehler_root
    c0, s0, done = root(coef, e2, q, sw, sb, 1e-15, 0.0)
    assert done and 0.0 < c0 < I.C_LO
    for start in (0.5 * c0, c0 + 0.01, 0.6, 0.9999):  # the last ones are past the model's minimum
        c, s, d = root(coef, e2, q, sw, sb, 1e-15, start)
        assert d and c == pytest.approx(c0, abs=1e-15) and s == pytest.approx(s0, rel=1e-13)


def test_q_start_sum_is_the_two_dimensional_chebyshev_series():
    # cheb2_8 (the q* start table's unrolled sum) against numpy's chebval2d
    rng = np.random.default_rng(8)
    C = rng.normal(size=(2, 3, I.QA, I.QB)) * 0.5 ** np.add.outer(np.arange(I.QA), np.arange(I.QB))
    for _ in range(50):
        a, b = rng.integers(0, 2), rng.integers(0, 3)
        x, y = rng.uniform(-1.0, 1.0, 2)
        ref = np.polynomial.chebyshev.chebval2d(x, y, C[a, b])
        assert I.cheb2_8(C, a, b, x, y) == pytest.approx(ref, rel=1e-14, abs=1e-14)
        assert I.cheb2_box(C[a, b], x, y) == pytest.approx(ref, rel=1e-14, abs=1e-14)

"""NNGP and NTK kernels of a batch of inputs (fp.nngp) against closed forms and quadrature."""

import importlib
import math

import numpy as np
import pytest
import reference as R

import fastprop as fp
from fastprop.kernels.nngp import layer_kernels
from fastprop.meanfield.tables import tables

nngp_module = importlib.import_module("fastprop.kernels.nngp")  # (fastprop.kernels.nngp is the function)


def _inputs():
    """A Gram matrix X Xᵀ/d0 of 7 inputs with squared norms from 1e-3 to 1e3 and correlations
    exactly ±1, within 1e-12 of ±1, and moderate."""
    d = math.sqrt(2e-12)  # cos d = 1 − 1e-12
    rng = np.random.default_rng(5)
    e = np.eye(4)
    x = [e[0], math.cos(d) * e[0] + math.sin(d) * e[1], -e[0], -(math.cos(d) * e[0] + math.sin(d) * e[2]),
         rng.normal(size=4), rng.normal(size=4), 0.3 * e[0] + e[3]]  # fmt: skip
    x = np.array([v / np.linalg.norm(v) for v in x])
    r = np.array([1e-3, 1e3, 0.02, 5.0, 1.0, 300.0, 0.1])
    x *= np.sqrt(4 * r)[:, None]
    return x @ x.T / 4


def _assert_close(got, ref, rtol):
    """|got − ref| ≤ rtol √(ref_aa ref_bb) entrywise (entries near 0 are judged on their scale)."""
    d = np.sqrt(np.abs(np.diag(ref)))
    scale = np.outer(d, d)
    err = np.max(np.abs(got - ref) / scale)
    assert err <= rtol, err


@pytest.mark.parametrize("name, pair_fn", [("relu", R.relu_pair2), ("erf", R.erf_pair2)])
@pytest.mark.parametrize("target", ["cpu", "parallel"])
def test_closed_forms_through_depth_at_any_norm_and_correlation(name, pair_fn, target):
    g = _inputs()
    sw, sb = 1.4, 0.3
    r = fp.nngp(gram=g, depth=3, activation=name, sigma_w=sw, sigma_b=sb, target=target)
    ref = R.kernels_through_depth(g, 3, sw, sb, pair_fn)
    assert list(r.layers) == [0, 1, 2, 3]
    for ell in range(4):
        _assert_close(r.nngp[ell], ref[ell][0], 1e-12)
        _assert_close(r.ntk[ell], ref[ell][1], 1e-12)
        assert np.array_equal(r.nngp[ell], r.nngp[ell].T) and np.array_equal(r.ntk[ell], r.ntk[ell].T)


@pytest.mark.parametrize("name", ["tanh", "gelu"])
def test_against_nested_quadrature_at_unequal_norms(name):
    # one layer: pairs at correlations 0.3 (series), 0.99999 (lattice rule) and 1 − 1e-12 (exact
    # integral), −0.7, between inputs of variances 0.5 … 800
    d = math.sqrt(2e-12)
    cs = [1.0, 0.3, 0.99999, math.cos(d), -0.7]
    x = np.zeros((len(cs), 2))
    for i, c in enumerate(cs):
        x[i] = [c, math.sqrt(max(0.0, 1 - c * c))]
    x *= np.sqrt(2 * np.array([0.5, 3.0, 40.0, 0.05, 800.0]))[:, None]
    g = x @ x.T / 2
    sw, sb = 1.3, 0.2
    r = fp.nngp(gram=g, depth=1, activation=name, sigma_w=sw, sigma_b=sb)
    assert r.exact_pairs[1] > 0  # the pairs near c = 1 took the exact integral
    k0 = sw * sw * g + sb * sb
    for b in range(1, len(cs)):
        qa, qb = k0[0, 0], k0[b, b]
        e0, e1 = R.pair2(name, qa, qb, k0[0, b] / math.sqrt(qa * qb))
        assert r.nngp[1][0, b] == pytest.approx(sw * sw * e0 + sb * sb, rel=1e-11)
        assert r.ntk[1][0, b] == pytest.approx(sw * sw * (e0 + e1 * k0[0, b]) + sb * sb, rel=1e-11)


@pytest.mark.parametrize("name", ["tanh", "gelu", "selu"])
def test_mehler_series_agrees_with_the_exact_pair_integral_where_it_is_used(name):
    act = fp.activation(name)
    mod = layer_kernels(act, "cpu")
    rng = np.random.default_rng(1)
    q = np.exp(rng.uniform(np.log(1e-3), np.log(1e3), 40))
    vals = np.empty((q.size, mod.NF))
    mod.inputs(q, tables(act).arrays_without_q_start, vals)
    scr = np.empty(100_000)
    used = 0
    for i in range(q.size - 1):
        for c in (-0.6, -0.2, 0.05, 0.4, 0.7):
            ok0, s0, ok1, s1 = mod.series(q[i], q[i + 1], c, vals[i], vals[i + 1], True)
            if not (ok0 and ok1):
                continue
            used += 1
            e0, e1 = mod.pair_integrals(q[i], q[i + 1], c, vals[i], vals[i + 1], scr)
            scale = math.sqrt(vals[i, 2] * vals[i + 1, 2])
            dscale = math.sqrt(vals[i, 3] * vals[i + 1, 3])
            assert abs(s0 - e0) <= 1e-12 * scale and abs(s1 - e1) <= 1e-12 * dscale
    assert used > 100  # the series serves most moderate correlations


class _Bar:
    def __init__(self):
        self.n = 0

    def update(self, n):
        self.n += n


def test_targets_and_layers_and_inputs_agree_bitwise(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(9, 5)) * rng.uniform(0.1, 3.0, size=(9, 1))
    a = fp.nngp(X, 4, "tanh", 1.5, 0.3, target="cpu")
    b = fp.nngp(X, 4, "tanh", 1.5, 0.3, target="parallel")
    assert a.identical(b)
    monkeypatch.setattr(nngp_module, "PAIRS_PER_BLOCK", 1)  # one row a block
    bar = _Bar()
    assert fp.nngp(X, 4, "tanh", 1.5, 0.3, progress=bar).identical(a) and bar.n == 9 * 8 // 2
    c = fp.nngp(gram=X @ X.T / 5, depth=4, activation="tanh", sigma_w=1.5, sigma_b=0.3, layers=[4, 2])
    assert list(c.layers) == [2, 4]
    assert np.array_equal(c.nngp, a.nngp[[2, 4]]) and np.array_equal(c.ntk, a.ntk[[2, 4]])
    d = fp.nngp(X, 4, "tanh", 1.5, 0.3, ntk=False)
    assert d.ntk is None and np.array_equal(d.nngp, a.nngp)
    for path in (tmp_path / "k.npz", tmp_path / "k.nc"):
        a.save(path)
        assert fp.KernelResult.load(path).identical(a)
    d.save(tmp_path / "d.npz")
    assert fp.KernelResult.load(tmp_path / "d.npz").identical(d)


@pytest.mark.parametrize("name", ["tanh", "relu", "gelu"])
def test_kernels_are_symmetric_psd_and_their_diagonals_follow_the_length_map(name):
    rng = np.random.default_rng(9)
    X = rng.normal(size=(60, 8)) * np.exp(rng.uniform(-2, 2, size=(60, 1)))
    X[:10] = X[10:20] + 1e-7 * rng.normal(size=(10, 8))  # nearly parallel pairs
    sw, sb = 1.6, 0.2
    r = fp.nngp(X, 6, name, sw, sb)
    q = np.einsum("ij,ij->i", X, X) / 8 * sw * sw + sb * sb
    t = q.copy()
    for ell in range(7):
        for kern in (r.nngp[ell], r.ntk[ell]):
            assert np.array_equal(kern, kern.T)
            assert np.linalg.eigvalsh(kern)[0] >= -1e-12 * np.trace(kern)
        np.testing.assert_allclose(np.diag(r.nngp[ell]), q, rtol=1e-12)
        np.testing.assert_allclose(np.diag(r.ntk[ell]), t, rtol=1e-12)
        chi = sw * sw * fp.jacobian_moments(name, k=1, q=q)  # E φ'(√q z)², from the spectra engine
        q_next = fp.length_map(q, sw, sb, name)
        t = q_next + chi * t  # Θ_aa = K_aa + σ_w² E φ'² Θ_aa
        q = q_next


def test_row_blocks_are_the_rows_of_the_whole_kernel():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(30, 4)) * np.exp(rng.uniform(-2, 2, size=(30, 1)))
    X[5] = -3 * X[4]  # correlation −1
    g = X @ X.T / 4
    g = 0.5 * (g + g.T)
    kw = dict(depth=3, activation="gelu", sigma_w=1.4, sigma_b=0.2, layers=[0, 1, 3])
    whole = fp.nngp(gram=g, **kw)
    blocks = (((0, 7), "cpu"), ((7, 20), "parallel"), ((20, 30), "cpu"))
    parts = [fp.nngp(gram=g, rows=r, target=t, **kw) for r, t in blocks]
    assert parts[1].nngp.shape == (3, 13, 30) and parts[1].meta["rows"] == [7, 20]
    assert np.array_equal(np.concatenate([p.nngp for p in parts], axis=1), whole.nngp)
    assert np.array_equal(np.concatenate([p.ntk for p in parts], axis=1), whole.ntk)
    assert sum(p.exact_pairs for p in parts).tolist() == (2 * whole.exact_pairs).tolist()  # each pair twice
    from_x = fp.nngp(X, rows=(7, 20), **kw)  # K⁰'s rows from X[7:20] Xᵀ: equal up to its rounding
    _assert_close(from_x.nngp[2][:, 7:20], whole.nngp[2][7:20][:, 7:20], 1e-13)
    for bad, err in (((3, 3), ValueError), ((0, 31), ValueError), ((-1, 2), ValueError), (5, TypeError)):
        with pytest.raises(err, match="rows"):
            fp.nngp(gram=g, rows=bad, **kw)


def test_linear_network_is_a_linear_map_of_the_gram_matrix():
    # φ = id: K^ℓ = σ_w² K^{ℓ−1} + σ_b² and Θ^ℓ = K^ℓ + σ_w² Θ^{ℓ−1}, exactly
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 3))
    r = fp.nngp(X, 3, "linear", 0.9, 0.4)
    k = 0.81 * X @ X.T / 3 + 0.16
    t = k.copy()
    for ell in range(1, 4):
        k = 0.81 * k + 0.16
        t = k + 0.81 * t
        _assert_close(r.nngp[ell], k, 1e-14)
        _assert_close(r.ntk[ell], t, 1e-14)


def test_extreme_kernel_values_neither_overflow_nor_divide_by_zero():
    # √(q_a q_b) would overflow past 1.3e154 and underflow below 1e-162: the correlation and the
    # series use √q_a √q_b
    for name in ("relu", "linear", "tanh"):
        r = fp.nngp(gram=np.full((2, 2), 1e160), depth=1, activation=name)
        assert np.all(np.isfinite(r.nngp[1])) and r.nngp[1][0, 1] == pytest.approx(r.nngp[1][0, 0], rel=1e-13)
    X = np.array([[1.0, 0.0], [0.6, 0.8]])
    deep = fp.nngp(X, 515, "relu", 2.0, layers=[510, 515])  # K doubles every layer: 1e156 at the end
    c = deep.nngp[:, 0, 1] / (np.sqrt(deep.nngp[:, 0, 0]) * np.sqrt(deep.nngp[:, 1, 1]))
    assert np.all(np.isfinite(deep.ntk)) and c[1] >= c[0] > 0.99  # correlations keep rising towards 1
    zeros = fp.nngp(np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]]), 3, "tanh")  # two zero inputs, σ_b = 0
    assert np.all(np.isfinite(zeros.ntk)) and np.all(np.abs(zeros.nngp[3][:2]) < 1e-250)


def test_bad_input():
    X = np.ones((3, 2))
    with pytest.raises(TypeError, match="not both"):
        fp.nngp(X, 2, gram=np.eye(3))
    with pytest.raises(TypeError, match="neither"):
        fp.nngp(None, 2)
    with pytest.raises(ValueError, match="2-D"):
        fp.nngp(np.ones(3), 2)
    with pytest.raises(ValueError, match="non-finite"):
        fp.nngp(np.array([[1.0, np.nan]]), 2)
    with pytest.raises(ValueError, match="symmetric"):
        fp.nngp(gram=np.array([[1.0, 0.5], [0.4, 1.0]]), depth=2)
    with pytest.raises(ValueError, match="depth"):
        fp.nngp(X, -1)
    with pytest.raises(ValueError, match="layers"):
        fp.nngp(X, 2, layers=[3])
    with pytest.raises(ValueError, match="target"):
        fp.nngp(X, 2, target="cuda")
    with pytest.raises(ValueError, match="sigma_w"):
        fp.nngp(X, 2, sigma_w=-1.0)
    with pytest.raises(ValueError, match="overflows"):  # finite X, K⁰ beyond the doubles
        fp.nngp(X * 1e155, 2)
    with pytest.raises(ValueError, match="overflow at layer"):  # the length map passes 1.8e308
        fp.nngp(X, 600, "relu", 3.0, 0.1, layers=[460])
    with pytest.raises(TypeError, match="real"):
        fp.nngp(X.astype(complex), 2)
    with pytest.raises(MemoryError, match="would need"):  # 10⁷ inputs: 11 layers of 10¹⁴ entries, refused up front
        fp.nngp(np.broadcast_to(np.ones(2), (10**7, 2)), 10)

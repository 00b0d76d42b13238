"""Activations: φ, φ', φ'' against independent formulas, kinks, registration, bad input."""

import math
import subprocess
import sys

import mpmath as mp
import numpy as np
import pytest
import reference as R

import fastprop as fp

H = np.concatenate([np.linspace(-30, 30, 121), [-1e-9, 1e-9, -1.0 - 1e-9, 1.0 + 1e-9, 0.3, -0.7]])


@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_phi_and_derivatives_match_independent_formulas(name):
    act = fp.activation(name)
    phi, dphi, _, _ = R.PHI[name]
    got = act.phi(H)
    want = np.array([float(phi(mp.mpf(float(h)))) for h in H])
    # 1e-12: libm erfc (gelu) is good to ~1e-13 relative at h = −30
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-300)
    off = ~np.isin(H, act.kinks)  # φ' at a kink itself is a convention (measure zero)
    d = act.dphi(H[off])
    want_d = np.array([float(dphi(mp.mpf(float(h)))) for h in H[off]])
    np.testing.assert_allclose(d, want_d, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("name", fp.ACTIVATIONS)
def test_second_derivative_is_derivative_of_first(name):
    act = fp.activation(name)
    h = np.linspace(-6.3, 6.1, 57)
    h = h[np.all(np.abs(h[:, None] - np.array(act.kinks or [99.0])[None, :]) > 1e-3, axis=1)]
    eps = 1e-6
    fd = (act.dphi(h + eps) - act.dphi(h - eps)) / (2 * eps)
    np.testing.assert_allclose(act.d2phi(h), fd, rtol=1e-6, atol=1e-8)


def test_kinks_and_slope_jumps():
    assert fp.activation("relu").kinks == (0.0,) and fp.activation("relu").slope_jumps == (1.0,)
    assert fp.activation("abs").slope_jumps == (2.0,)
    assert fp.activation("hard_tanh").kinks == (-1.0, 1.0)
    assert fp.activation("hard_tanh").slope_jumps == (1.0, -1.0)
    assert fp.activation("elu").kinks == ()  # α = 1: φ' is continuous at 0
    sl = fp.activation("selu").slope_jumps[0]
    assert sl == pytest.approx(1.0507009873554805 * (1 - 1.6732632423543772))
    assert fp.activation("tanh").kinks == ()


def test_erf_is_pennington_scaling():
    # φ(h) = erf(√π h/2) has slope 1 at the origin
    assert fp.activation("erf").dphi(0.0) == pytest.approx(1.0, abs=1e-15)


def test_builtin_list_covers_design():
    need = {
        "linear",
        "relu",
        "leaky_relu",
        "abs",
        "tanh",
        "hard_tanh",
        "erf",
        "sigmoid",
        "softplus",
        "elu",
        "selu",
        "gelu",
        "swish",
    }
    assert need <= set(fp.ACTIVATIONS)


def test_unknown_activation_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown activation 'tanhh'.*tanh"):
        fp.activation("tanhh")
    with pytest.raises(TypeError, match="activation must be"):
        fp.activation(3)


def _tanh(h):
    return math.tanh(h)


def _dtanh(h):
    return 1.0 - math.tanh(h) ** 2


def _d2tanh(h):
    t = math.tanh(h)
    return -2.0 * t * (1.0 - t * t)


@pytest.mark.parametrize(
    "extra, rtol",
    [
        # Gauss–Legendre in z₁ and z₂ against the built-in's lattice rule: two
        # methods, both well inside the 1e-8 contract
        ({}, 1e-10),
        # the same lattice rule as the built-in, with libm's tanh
        ({"strip": math.pi / 2, "odd": True}, 1e-12),
    ],
)
def test_registered_activation_matches_builtin_everywhere(extra, rtol):
    act = fp.register_activation(
        "user_tanh",
        _tanh,
        _dtanh,
        _d2tanh,
        features=(-16, -8, -4, -2, -1, -0.5, 0, 0.5, 1, 2, 4, 8, 16),
        overwrite=True,
        **extra,
    )
    assert fp.activation("user_tanh") is act
    sw, sb = np.array([0.7, 1.8, 3.5]), np.array([0.0, 0.4, 2.0])
    a = fp.meanfield_grid("user_tanh", sw, sb, target="cpu")
    b = fp.meanfield_grid("tanh", sw, sb, target="cpu")
    for f in ("q_star", "chi_1", "c_star", "chi_c", "chi_q"):
        # c* near 0 (σ_b = 0): the built-in is odd (c* = 0 exactly), the registration is
        # not told so and reads its c* table, certified to 1e-12 absolute
        atol = 1e-12 if f == "c_star" else 1e-14
        np.testing.assert_allclose(getattr(a, f), getattr(b, f), rtol=rtol, atol=atol)
    np.testing.assert_array_equal(a.status, b.status)


def test_registered_kinked_activation_gets_dirac_mass():
    # a shifted hard threshold-linear unit with a kink at 0.5
    act = fp.register_activation(
        "shifted_relu",
        lambda h: max(h - 0.5, 0.0),
        lambda h: 1.0 if h > 0.5 else 0.0,
        lambda h: 0.0,
        kinks=(0.5,),
        overwrite=True,
    )
    assert act.slope_jumps == (1.0,)
    # V'(q) computed with the Dirac mass equals a finite difference of V
    q, sw = 2.0, 1.3
    v = lambda x: fp.length_map(x, sw, 0.5, "shifted_relu")  # noqa: E731
    g = fp.meanfield_grid("shifted_relu", [sw], [0.5], target="cpu")
    assert g.q_star[0, 0] > 0
    qs = g.q_star[0, 0]
    fd = (v(qs * (1 + 1e-6)) - v(qs * (1 - 1e-6))) / (2e-6 * qs)
    assert g.chi_q[0, 0] == pytest.approx(fd, rel=1e-7)
    assert v(q) > 0


def test_register_rejects_bad_input():
    with pytest.raises(ValueError, match="built-in"):
        fp.register_activation("tanh", _tanh, _dtanh, _d2tanh)
    with pytest.raises(TypeError, match="callable"):
        fp.register_activation("bad1", 3, _dtanh, _d2tanh)
    with pytest.raises(TypeError, match="Numba-compilable"):
        fp.register_activation("bad2", lambda h: {"a": h}["b"].foo(), _dtanh, _d2tanh)
    with pytest.raises(ValueError, match="finite"):
        fp.register_activation("bad3", _tanh, _dtanh, _d2tanh, kinks=(float("nan"),))
    with pytest.raises(ValueError, match="strip"):
        fp.register_activation("bad4", _tanh, _dtanh, _d2tanh, strip=-1.0)
    with pytest.raises(ValueError, match="strip"):
        fp.register_activation("bad5", _tanh, _dtanh, _d2tanh, strip=float("inf"))
    with pytest.raises(ValueError, match="kinks"):
        fp.register_activation("bad6", _tanh, _dtanh, _d2tanh, kinks=(0.0,), strip=1.0)
    with pytest.raises(ValueError, match="odd"):
        fp.register_activation("bad7", math.exp, math.exp, math.exp, odd=True)
    fp.register_activation("dup", _tanh, _dtanh, _d2tanh, overwrite=True)
    with pytest.raises(ValueError, match="is registered; pass overwrite=True"):
        fp.register_activation("dup", _tanh, _dtanh, _d2tanh)


def test_register_accepts_builtin_functions():
    # the README's example passes math.tanh itself
    act = fp.register_activation(
        "builtin_tanh", math.tanh, _dtanh, _d2tanh, strip=math.pi / 2, odd=True, overwrite=True
    )
    h = np.array([-3.0, -0.2, 0.0, 0.4, 5.0])
    np.testing.assert_array_equal(act.phi(h), np.tanh(h))
    assert act.strip == math.pi / 2 and act.odd


# ------------------------------------------------- kernels keyed by identity
def test_a_lookalike_named_tanh_does_not_poison_the_builtin():
    """An Activation named "tanh" computing erf gets kernels of its own: the built-in
    tanh keeps its values in every engine afterwards (they were keyed by name)."""
    import dataclasses

    fake = dataclasses.replace(fp.activation("tanh"), eval3=fp.activation("erf").eval3)
    assert fake.fingerprint != fp.activation("tanh").fingerprint
    g_fake = fp.meanfield_grid(fake, [1.5], [0.5], target="cpu")
    g = fp.meanfield_grid("tanh", [1.5], [0.5], target="cpu")
    assert g_fake.chi_1[0, 0] == pytest.approx(0.99599, abs=1e-5)
    assert g.chi_1[0, 0] == pytest.approx(0.96710, abs=1e-5)
    assert fp.length_map(1.0, 1.0, 0.0, fake) != fp.length_map(1.0, 1.0, 0.0, "tanh")
    r_fake = fp.simulate_chains(4, 3, 50, fake, sigma_w=1.5, target="cpu", keep_norms=True, seed=1)
    r = fp.simulate_chains(4, 3, 50, "tanh", sigma_w=1.5, target="cpu", keep_norms=True, seed=1)
    assert not np.array_equal(r_fake.norms, r.norms)
    assert fake.phi(0.7) != fp.activation("tanh").phi(0.7)
    with pytest.raises(ValueError, match="activation_fingerprint"):
        r.merge(fp.simulate_chains(4, 3, 50, fake, sigma_w=1.5, target="cpu", keep_norms=True, first_chain=50))


def test_results_of_a_re_registered_activation_do_not_merge():
    fp.register_activation("rereg", lambda h: h, lambda h: 1.0, lambda h: 0.0)
    a = fp.simulate_chains(3, 2, 20, "rereg", target="cpu")
    fp.register_activation("rereg", lambda h: 2.0 * h, lambda h: 2.0, lambda h: 0.0, overwrite=True)
    b = fp.simulate_chains(3, 2, 20, "rereg", target="cpu", first_chain=20)
    with pytest.raises(ValueError, match="activation_fingerprint"):
        a.merge(b)
    # the same functions registered again are the same activation
    fp.register_activation("rereg", lambda h: 2.0 * h, lambda h: 2.0, lambda h: 0.0, overwrite=True)
    assert b.merge(fp.simulate_chains(3, 2, 20, "rereg", target="cpu", first_chain=40)).n == 40


def test_fingerprints_are_the_same_in_another_process():
    code = "import fastprop as fp; print(' '.join(fp.activation(n).fingerprint for n in fp.ACTIVATIONS))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [fp.activation(n).fingerprint for n in fp.ACTIVATIONS]
    assert len(set(out)) == len(out)


# ------------------------------------------------------------ exact edges
def test_length_map_at_zero_is_exact():
    assert fp.length_map(0.0, 1.0, 0.0, "tanh") == 0.0
    assert fp.length_map(0.0, 1.5, 0.3, "sigmoid") == 1.5**2 * 0.25 + 0.3**2
    assert fp.length_map(0.0, 2.0, 0.0, "relu") == 0.0


@pytest.mark.parametrize("sw", [1e10, 1e50, 1e100])
def test_chi_q_of_erf_at_huge_sigma_w(sw):
    """V(q) = σ_w²(2/π) arcsin(kq/(1 + kq)), k = π/2 (arcsine kernel at c = 1), so
    V'(q) = σ_w²(2/π) k/((1 + kq)√(1 + 2kq)); the two Stein terms E φ'² and E φφ''
    cancel to 1e-16 of their size here, which once gave χ_q = −5.9e87."""
    g = fp.meanfield_grid("erf", [sw], [0.0], target="cpu")
    q = float(g.q_star[0, 0])
    k = math.pi / 2
    ref = sw**2 * (2 / math.pi) * k / ((1 + k * q) * math.sqrt(1 + 2 * k * q))
    assert g.status[0, 0] == 0
    assert g.chi_q[0, 0] == pytest.approx(ref, rel=1e-10)


def test_register_checks_what_the_functions_return_and_their_derivatives():
    with pytest.raises(TypeError, match="phi must return a real number"):
        fp.register_activation("cplx", lambda h: 1j * h, lambda h: 1.0, lambda h: 0.0, overwrite=True)
    with pytest.raises(ValueError, match="dphi is not the derivative of phi"):
        fp.register_activation("swapped", math.tanh, math.tanh, lambda h: 0.0, overwrite=True)
    with pytest.raises(ValueError, match="d2phi is not the derivative of dphi"):
        fp.register_activation("bad2", lambda h: h * h, lambda h: 2 * h, lambda h: 0.0, overwrite=True)
    # a declared kink is not probed across
    act = fp.register_activation(
        "kinked_at_1", lambda h: max(h, 1.0), lambda h: 1.0 if h > 1.0 else 0.0, lambda h: 0.0, kinks=(1.0,),
        overwrite=True,
    )  # fmt: skip
    assert act.kinks == (1.0,)


def test_save_failing_for_lack_of_memory_leaves_no_file(tmp_path, monkeypatch):
    r = fp.simulate_chains(3, 2, 10, target="cpu")

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np, "savez", no_memory)
    with pytest.raises(MemoryError):
        r.save(tmp_path / "r.npz")
    assert not list(tmp_path.iterdir())


def test_fingerprints_see_default_arguments_and_numpy_ufuncs():
    """Factories bind parameters as defaults; those are part of what φ computes."""

    def make(a):
        return (lambda h, a=a: a * h), (lambda h, a=a: a), (lambda h: 0.0)

    one = fp.register_activation("scaled", *make(1.0), overwrite=True)
    three = fp.register_activation("scaled", *make(3.0), overwrite=True)
    assert one.fingerprint != three.fingerprint
    assert fp.length_map(1.0, 1.0, 0.0, three) == pytest.approx(9.0, rel=1e-13)
    code = (
        "import numpy as np, fastprop as fp; print(fp.register_activation('np_tanh', np.tanh, "
        "lambda h: 1 - np.tanh(h) ** 2, lambda h: -2 * np.tanh(h) * (1 - np.tanh(h) ** 2)).fingerprint)"
    )
    prints = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout for _ in range(2)}
    assert len(prints) == 1 and len(prints.pop().strip()) == 16


@pytest.mark.parametrize("name", ["sigmoid", "softplus"])
def test_chi_q_at_tiny_sigma_w_with_phi_of_zero_nonzero(name):
    """q* → 0 with φ(0) ≠ 0: χ_q = σ_w² (φ'(0)² + φ(0)φ''(0)) to first order, and the
    z-form E[φφ'z]/√q would drown in quadrature rounding here (Stein's form is used)."""
    a = fp.activation(name)
    limit = a.dphi(0.0) ** 2 + a.phi(0.0) * a.d2phi(0.0)
    for sw in (1e-30, 1e-8):
        g = fp.meanfield_grid(name, [sw], [0.0], target="cpu")
        assert g.chi_q[0, 0] == pytest.approx(sw**2 * limit, rel=1e-6), sw

"""Slow, obviously-correct references, independent of fastprop's own code.

* Activations are written again here with mpmath (no shared code with
  ``fastprop.activations``).
* One-dimensional Gaussian expectations: ``mpmath.quad`` at 30 digits over the
  z-line split at every kink and at the graded points b/√q.
* Two-dimensional expectations: nested ``scipy.integrate.quad`` (adaptive
  Gauss–Kronrod) conditioning on z₁, with the inner integral split where
  √q(c z₁ + s z₂) hits a kink.
* Closed forms from the literature: arc-cosine (relu) and arcsine (erf) kernels.
"""

from __future__ import annotations

import math
import warnings

import mpmath as mp
import numpy as np
from scipy import integrate

warnings.filterwarnings("ignore", category=integrate.IntegrationWarning)

mp.mp.dps = 30

_LAM = mp.mpf("1.0507009873554804934193349852946")
_ALP = mp.mpf("1.6732632423543772848170429916717")


def _sig(h):
    return 1 / (1 + mp.exp(-h))


# name: (φ, φ', kinks, graded feature scale points)
PHI = {
    "linear": (lambda h: h, lambda h: mp.mpf(1), (), ()),
    "relu": (lambda h: max(h, 0), lambda h: mp.mpf(1 if h > 0 else 0), (0,), ()),
    "leaky_relu": (
        lambda h: h if h > 0 else mp.mpf("0.01") * h,
        lambda h: mp.mpf(1) if h > 0 else mp.mpf("0.01"),
        (0,),
        (),
    ),
    "abs": (lambda h: abs(h), lambda h: mp.mpf(1 if h > 0 else -1), (0,), ()),
    "tanh": (mp.tanh, lambda h: mp.sech(h) ** 2, (), (0.5, 1, 2, 4, 8, 16)),
    "hard_tanh": (lambda h: max(-1, min(1, h)), lambda h: mp.mpf(1 if -1 < h < 1 else 0), (-1, 1), ()),
    "erf": (lambda h: mp.erf(mp.sqrt(mp.pi) * h / 2), lambda h: mp.exp(-mp.pi * h * h / 4), (), (0.5, 1, 2, 4, 8)),
    "sigmoid": (_sig, lambda h: _sig(h) * (1 - _sig(h)), (), (1, 2, 4, 8, 16, 32)),
    "softplus": (lambda h: mp.log(1 + mp.exp(h)), _sig, (), (0.5, 1, 2, 4, 8, 16, 32)),
    "elu": (
        lambda h: h if h > 0 else mp.expm1(h),
        lambda h: mp.mpf(1) if h > 0 else mp.exp(h),
        (0,),
        (1, 2, 4, 8, 16, 32),
    ),
    "selu": (
        lambda h: _LAM * h if h > 0 else _LAM * _ALP * mp.expm1(h),
        lambda h: _LAM if h > 0 else _LAM * _ALP * mp.exp(h),
        (0,),
        (1, 2, 4, 8, 16, 32),
    ),
    "gelu": (lambda h: h * mp.ncdf(h), lambda h: mp.ncdf(h) + h * mp.npdf(h), (), (0.5, 1, 2, 4, 8)),
    "swish": (lambda h: h * _sig(h), lambda h: _sig(h) + h * _sig(h) * (1 - _sig(h)), (), (0.5, 1, 2, 4, 8, 16, 32)),
}


def _zpoints(name, q):
    _, _, kinks, feats = PHI[name]
    s = math.sqrt(float(q))
    pts = {0.0, -12.0, 12.0}
    for b in list(kinks) + list(feats) + [-f for f in feats]:
        z = float(b) / s
        if abs(z) < 12:
            pts.add(z)
    return sorted(pts)


def expect(name, q, which="phi2"):
    """E f(√q z) at 30 digits for f ∈ {phi, dphi, phi2, dphi2}."""
    phi, dphi, _, _ = PHI[name]
    s = mp.sqrt(mp.mpf(q))
    f = {
        "phi": lambda h: phi(h),
        "dphi": lambda h: dphi(h),
        "phi2": lambda h: phi(h) ** 2,
        "dphi2": lambda h: dphi(h) ** 2,
    }[which]
    return mp.quad(lambda z: f(s * z) * mp.npdf(z), _zpoints(name, q))


def length_map(name, q, sw, sb):
    return sw * sw * expect(name, q, "phi2") + sb * sb


def chi_q(name, q, sw):
    """V'(q) by a central difference of the 30-digit length map (step 1e-8·q)."""
    h = mp.mpf(q) * mp.mpf("1e-8")
    return sw * sw * (expect(name, q + h, "phi2") - expect(name, q - h, "phi2")) / (2 * h)


def _fsig(h):
    return 1 / (1 + math.exp(-h)) if h >= 0 else math.exp(h) / (1 + math.exp(h))


_L, _A = float(_LAM), float(_ALP)
_Phi = lambda h: 0.5 * math.erfc(-h / math.sqrt(2))  # noqa: E731
_pdf = lambda h: math.exp(-0.5 * h * h) / math.sqrt(2 * math.pi)  # noqa: E731

# The same activations in double precision, for the nested adaptive quadrature.
FLOAT_PHI = {
    "linear": (lambda h: h, lambda h: 1.0),
    "relu": (lambda h: max(h, 0.0), lambda h: 1.0 if h > 0 else 0.0),
    "leaky_relu": (lambda h: h if h > 0 else 0.01 * h, lambda h: 1.0 if h > 0 else 0.01),
    "abs": (abs, lambda h: 1.0 if h > 0 else -1.0),
    "tanh": (math.tanh, lambda h: 1 / math.cosh(h) ** 2 if abs(h) < 300 else 0.0),
    "hard_tanh": (lambda h: max(-1.0, min(1.0, h)), lambda h: 1.0 if -1 < h < 1 else 0.0),
    "erf": (lambda h: math.erf(math.sqrt(math.pi) * h / 2), lambda h: math.exp(-math.pi * h * h / 4)),
    "sigmoid": (_fsig, lambda h: _fsig(h) * _fsig(-h)),
    "softplus": (lambda h: max(h, 0.0) + math.log1p(math.exp(-abs(h))), _fsig),
    "elu": (lambda h: h if h > 0 else math.expm1(h), lambda h: 1.0 if h > 0 else math.exp(h)),
    "selu": (lambda h: _L * h if h > 0 else _L * _A * math.expm1(h), lambda h: _L if h > 0 else _L * _A * math.exp(h)),
    "gelu": (lambda h: h * _Phi(h), lambda h: _Phi(h) + h * _pdf(h)),
    "swish": (lambda h: h * _fsig(h), lambda h: _fsig(h) + h * _fsig(h) * _fsig(-h)),
}


def pair(name, q, c, tol=1e-13):
    """(E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂)) by nested adaptive quadrature (slow): :func:`pair2` at equal variances."""
    return pair2(name, q, q, c, tol)


def relu_pair(q, c):
    """Arc-cosine kernel (Cho & Saul 2009), independent of fastprop's copy."""
    th = math.acos(c)
    return q / (2 * math.pi) * (math.sin(th) + (math.pi - th) * math.cos(th)), (math.pi - th) / (2 * math.pi)


def erf_pair(q, c):
    """Arcsine kernel (Williams 1998) for erf(√π h/2)."""
    a2 = math.pi / 4
    return (2 / math.pi) * math.asin(2 * a2 * q * c / (1 + 2 * a2 * q)), 1 / math.sqrt(
        (1 + 2 * a2 * q) ** 2 - (2 * a2 * q * c) ** 2
    )


def q_star_newton_residual(name, q, sw, sb):
    """Distance of q from the true fixed point to first order: (V(q) − q)/(1 − V'(q))."""
    v = length_map(name, q, sw, sb)
    d = chi_q(name, q, sw)
    return float((v - q) / (1 - d))


def _expit(h):
    return 0.5 * (1 + np.tanh(0.5 * h))


# vectorised smooth activations (φ, φ') for the trapezoidal 2-D reference
NP_PHI = {
    "tanh": (np.tanh, lambda h: 1 / np.cosh(np.minimum(np.abs(h), 350)) ** 2),
    "sigmoid": (_expit, lambda h: _expit(h) * _expit(-h)),
    "softplus": (lambda h: np.logaddexp(0, h), _expit),
    "swish": (lambda h: h * _expit(h), lambda h: _expit(h) + h * _expit(h) * _expit(-h)),
}


def pair_trapezoid(name, q, c, n=2401):
    """(E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂)) by the trapezoidal rule in u± = (u₁ ± u₂)/2.

    u₊ and u₋ are independent with variances q(1 ± c)/2, and the integrand is
    analytic, so the rule converges exponentially in n (a third method, sharing
    nothing with the nested adaptive quadrature or with fastprop). Its error is
    about e^{−2πa/Δh} for φ analytic in |Im h| < a (a ≥ π/2 here) and spacing Δh in
    h: with n = 2401 on z ∈ [−10, 10] and q(1 ± c)/2 ≤ 300, Δh ≤ 0.15 and the error
    is below e^{−60}.
    """
    phi, dphi = NP_PHI[name]
    z = np.linspace(-10, 10, n)
    w = np.exp(-0.5 * z * z)
    w /= w.sum()
    a = (math.sqrt(q * (1 + c) / 2) * z)[:, None]
    b = (math.sqrt(q * (1 - c) / 2) * z)[None, :]
    W = w[:, None] * w[None, :]
    return float((W * phi(a + b) * phi(a - b)).sum()), float((W * dphi(a + b) * dphi(a - b)).sum())


# ---- kinked activations near c = ±1: closed-form conditional means at 30 digits ----
def _mp_relu_mean(m, s):
    """E (m + sZ)₊ = mΦ(m/s) + sϕ(m/s)."""
    t = m / s
    return m * mp.ncdf(t) + s * mp.npdf(t)


def _mp_exp_lower(m, s):
    """E e^{m+sZ} 1{m + sZ < 0} = e^{m + s²/2} Φ(−m/s − s)."""
    return mp.exp(m + s * s / 2) * mp.ncdf(-m / s - s)


def _mp_conditional(name, m, s):
    """(E φ(m + sZ), E φ'(m + sZ)) in closed form for the kinked activations (30 digits)."""
    if name == "hard_tanh":
        return (-1 + _mp_relu_mean(m + 1, s) - _mp_relu_mean(m - 1, s), mp.ncdf((m + 1) / s) - mp.ncdf((m - 1) / s))
    if name == "abs":
        return 2 * _mp_relu_mean(m, s) - m, 2 * mp.ncdf(m / s) - 1
    if name == "leaky_relu":
        a = mp.mpf("0.01")
        return a * m + (1 - a) * _mp_relu_mean(m, s), a + (1 - a) * mp.ncdf(m / s)
    if name in ("elu", "selu"):
        lam, alp = (mp.mpf(1), mp.mpf(1)) if name == "elu" else (_LAM, _ALP)
        low = _mp_exp_lower(m, s)
        return lam * (_mp_relu_mean(m, s) + alp * (low - mp.ncdf(-m / s))), lam * (mp.ncdf(m / s) + alp * low)
    raise KeyError(name)


KINKED = ("leaky_relu", "abs", "hard_tanh", "elu", "selu")


def pair_kinked_mp(name, q, c):
    """(E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂)) at 30 digits for a kinked activation, any c ∈ (−1, 1).

    Conditions on z₁; the inner mean over z₂ is the closed form above (mpmath),
    and the outer ``mp.quad`` splits z₁ at the kinks of φ(√q z₁) and around the
    kinks of the conditional mean, k/(√q c) ± j·w for w = √(1−c²)/|c| (its
    width), so nothing is missed however close c is to ±1.
    """
    phi, dphi, kinks, _ = PHI[name]
    q, c = mp.mpf(q), mp.mpf(c)
    sq = mp.sqrt(q)
    s = sq * mp.sqrt(1 - c * c)
    w = mp.sqrt(1 - c * c) / abs(c)
    pts = {mp.mpf(-12), mp.mpf(12), mp.mpf(0)}
    for k in kinks:
        pts.add(k / sq)
        centre = k / (sq * c)
        for j in (0, 0.25, 0.5, 1, 2, 4, 8, 16, 32):
            pts.update({centre - j * w, centre + j * w})
    pts = sorted(p for p in pts if -12 <= p <= 12)
    out = []
    for idx, f in enumerate((phi, dphi)):
        g = lambda z, f=f, idx=idx: f(sq * z) * _mp_conditional(name, sq * c * z, s)[idx] * mp.npdf(z)  # noqa: E731
        out.append(mp.quad(g, pts))
    return tuple(out)


# ---------------------------------------------------------------- NNGP / NTK kernels
def relu_pair2(qa, qb, c):
    """Arc-cosine kernels of relu at variances qa, qb (Cho & Saul 2009)."""
    th = math.acos(min(1.0, max(-1.0, c)))
    return (math.sqrt(qa * qb) / (2 * math.pi) * (math.sin(th) + (math.pi - th) * math.cos(th)),
            (math.pi - th) / (2 * math.pi))  # fmt: skip


def erf_pair2(qa, qb, c):
    """Arcsine kernels of erf(√π h/2) at variances qa, qb (Williams 1998); φ'(h) = exp(−π h²/4),
    so E φ'φ' = det(I + 2α² Σ)^{−1/2} with α² = π/4."""
    a2 = math.pi / 4
    kab = c * math.sqrt(qa * qb)
    da, db = 1 + 2 * a2 * qa, 1 + 2 * a2 * qb
    return (2 / math.pi) * math.asin(2 * a2 * kab / math.sqrt(da * db)), 1 / math.sqrt(da * db - (2 * a2 * kab) ** 2)


def pair2(name, qa, qb, c, tol=1e-13):
    """(E φ(u_a)φ(u_b), E φ'(u_a)φ'(u_b)), Var u_a = qa, Var u_b = qb, Corr = c, by nested adaptive
    quadrature (slow): u_a = √qa z₁, u_b = √qb (c z₁ + √(1 − c²) z₂)."""
    phi, dphi = FLOAT_PHI[name]
    _, _, kinks, feats = PHI[name]
    sa, sb = math.sqrt(qa), math.sqrt(qb)
    s = math.sqrt(max(0.0, 1 - c * c))
    marks = [float(k) for k in kinks] + [0.0] + [float(f) for f in feats] + [-float(f) for f in feats]
    rho = lambda z: math.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)  # noqa: E731

    def inner(z1, f):
        m = sb * c * z1
        if s == 0:
            return f(m)
        sig = sb * s
        pts = sorted({(b - m) / sig for b in marks if abs((b - m) / sig) < 12})
        return integrate.quad(
            lambda z2: f(m + sig * z2) * rho(z2), -12, 12, points=pts or None, epsabs=1e-16, epsrel=tol, limit=400
        )[0]

    opts = sorted(
        {b / sa for b in marks if abs(b / sa) < 12} | ({b / (sb * c) for b in marks if c and abs(b / (sb * c)) < 12})
    )
    return tuple(
        integrate.quad(lambda z1, f=f: f(sa * z1) * inner(z1, f) * rho(z1), -12, 12, points=opts or None,
                       epsabs=1e-16, epsrel=tol, limit=400)[0]  # fmt: skip
        for f in (phi, dphi)
    )


def kernels_through_depth(gram, depth, sw, sb, pair_fn):
    """[(K^ℓ, Θ^ℓ) for ℓ = 0 … depth] by the recursion (DESIGN §1), pair by pair in Python;
    ``pair_fn(qa, qb, c)`` → (E φφ, E φ'φ'); K⁰ = σ_w² gram + σ_b²."""
    k = sw * sw * np.asarray(gram, dtype=float) + sb * sb
    t = k.copy()
    out = [(k, t)]
    n = k.shape[0]
    for _ in range(depth):
        k2, t2 = np.empty_like(k), np.empty_like(t)
        for a in range(n):
            for b in range(n):
                qa, qb = k[a, a], k[b, b]
                c = k[a, b] / math.sqrt(qa * qb)
                e0, e1 = pair_fn(qa, qb, c)
                k2[a, b] = sw * sw * e0 + sb * sb
                t2[a, b] = k2[a, b] + sw * sw * e1 * t[a, b]
        k, t = k2, t2
        out.append((k, t))
    return out


def _stream_normals(seed, index):
    """A function n ↦ the next n normals of stream (seed, index) of fastprop.chains.rng."""
    from fastprop.chains import rng

    st = np.empty(rng.STREAM_SIZE, dtype=np.uint64)
    rng.stream_init(st, np.uint64(seed), index)

    def draw(n):
        out = np.empty(n)
        rng.fill_normals(st, out, n)
        return out

    return draw


def empirical_kernels(phi, X, width, depth, sw, sb, seed, index, rec, eps=1e-30):
    """One network's empirical K̂^ℓ and Θ̂^ℓ at the layers ``rec`` (``depth`` = the deepest of them),
    slowly and plainly: every weight matrix drawn whole from stream (seed, index) in the
    documented order, the forward pass by matrix products in complex arithmetic, and the NTK as
    Σ_p ∂f(a)/∂p ∂f(b)/∂p over every parameter p (the standard-normal entries of W_m, b_m and the
    readout v, β) by complex-step differentiation, f(p + iε)'s imaginary part / ε, exact to
    rounding for analytic φ (``phi`` must accept complex arrays)."""
    X = np.asarray(X, dtype=float)
    n, d0 = X.shape
    draw = _stream_normals(seed, index)
    params = []  # (W, b) per layer, standard normal
    n_in = d0
    for _ in range(depth):
        W = draw(width * n_in).reshape(width, n_in)
        b = draw(width) if sb > 0 else np.zeros(width)
        params.append([W.astype(complex), b.astype(complex)])
        n_in = width
    readouts = {ell: [draw(width).astype(complex), np.zeros(1, complex)] for ell in rec if ell >= 1}

    def forward(ps):
        xs = [X.astype(complex)]
        for W, b in ps:
            h = xs[-1] @ W.T * (sw / math.sqrt(xs[-1].shape[1])) + sb * b
            xs.append(phi(h))
        return xs

    xs = forward(params)
    k0 = sw * sw * (X @ X.T) / d0 + sb * sb
    K, T = [], []
    for ell in rec:
        if ell == 0:
            K.append(k0)
            T.append(k0)
            continue
        x = xs[ell].real
        K.append(sw * sw * (x @ x.T) / width + sb * sb)
        v, beta = readouts[ell]

        def readout(ps, v=v, beta=beta, ell=ell):
            return (sw / math.sqrt(width)) * (forward(ps[:ell])[ell] @ v) + sb * beta[0]

        grads = []
        tensors = [t for layer in params[:ell] for t in layer] + [v, beta]
        for tensor in tensors:
            for i in np.ndindex(tensor.shape):
                tensor[i] += 1j * eps
                grads.append(readout(params).imag / eps)
                tensor[i] -= 1j * eps
        G = np.array(grads)  # parameters × inputs
        T.append(G.T @ G)
    return np.array(K), np.array(T)


def network_log_singular_values(phi, dphi, width, depth, sw, sb, seed, index, x0, layers, rms=False, dps=90):
    """log s_i(J_ℓ) (largest first) of chain ``index``'s input–output Jacobian at ``layers``, slowly
    and plainly: every weight matrix drawn whole from stream (seed, index) in the dense order (W_ℓ
    row by row, then b_ℓ when σ_b > 0), the forward pass by NumPy matrix products, and
    J_ℓ = Π (P_ℓ) D_ℓ W_ℓ (P_ℓ the RMS normalisation's derivative) multiplied and decomposed by
    mpmath at ``dps`` digits, so that singular values hundreds of decades apart come out right."""
    import mpmath as mp

    d = width
    draw = _stream_normals(seed, index)
    x = np.array(x0, dtype=float)
    out = {}
    with mp.workdps(dps):
        J = mp.eye(d)
        for ell in range(1, depth + 1):
            W = draw(d * d).reshape(d, d)
            b = sb * draw(d) if sb > 0 else np.zeros(d)
            h = (sw / math.sqrt(d)) * (W @ x) + b
            x = phi(h)
            D = dphi(h)
            A = mp.matrix(d, d)
            for i in range(d):
                for j in range(d):
                    A[i, j] = mp.mpf(float(D[i])) * (mp.mpf(sw) / mp.sqrt(d)) * mp.mpf(float(W[i, j]))
            J = A * J
            if rms:
                nrm = float(np.linalg.norm(x))
                xh = mp.matrix([mp.mpf(float(v)) for v in x]) / mp.sqrt(sum(mp.mpf(float(v)) ** 2 for v in x))
                P = (mp.eye(d) - xh * xh.T) * (mp.sqrt(d) / mp.sqrt(sum(mp.mpf(float(v)) ** 2 for v in x)))
                J = P * J
                x = x * (math.sqrt(d) / nrm)
            if ell in layers:
                s = mp.svd_r(J, compute_uv=False)
                out[ell] = sorted((float(mp.log(v)) if v > mp.mpf(10) ** (-dps + 10) * mp.norm(J) else -math.inf
                                   for v in s), reverse=True)  # fmt: skip
    return out

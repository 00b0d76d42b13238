"""Finite-width check: singular values of input–output Jacobians of random networks (NumPy).

A slow, obviously-correct helper for figures and tests (the finite-width engine is
:func:`fastprop.simulate_jacobians` once it exists): it draws a width-d network at
the fixed point (x_0 = φ(h_0) with h_0 ~ N(0, q*) per unit, so every pre-activation
has variance q*), propagates h and J = D_ℓ W_ℓ ⋯ D_1 W_1
together, rescaling J every layer (the scale is carried as a logarithm), and
returns the logs of the singular values of J. Values below about 1e-13 of the largest are
limited by rounding.
"""

from __future__ import annotations

import math

import numpy as np

from ..activations import activation as _activation


def jacobian_singular_values(activation, sigma_w, sigma_b, depth, width, weights="gaussian", n_networks=1, seed=0,
                             q=None):  # fmt: skip
    """Natural logs of the singular values of J for ``n_networks`` random networks, shape
    (n_networks, width), each row descending (−inf for exact zeros). ``q``: the
    variance of the first pre-activations (default q*)."""
    act = _activation(activation)
    if q is None:
        from ..meanfield.maps import q_star

        q = float(q_star(sigma_w, sigma_b, act))
    rng = np.random.default_rng(seed)
    d = int(width)
    out = np.empty((n_networks, d))
    for n in range(n_networks):
        x = act.phi(rng.standard_normal(d) * math.sqrt(q))  # h_1 = W x + b then has variance q*
        j = np.eye(d)
        log_scale = 0.0
        for _ in range(depth):
            if weights == "orthogonal":
                a, r = np.linalg.qr(rng.standard_normal((d, d)))
                w = sigma_w * a * np.sign(np.diag(r))  # Haar
            else:
                w = rng.standard_normal((d, d)) * (sigma_w / math.sqrt(d))
            h = w @ x + sigma_b * rng.standard_normal(d)
            j = act.dphi(h)[:, None] * (w @ j)
            x = act.phi(h)
            norm = np.linalg.norm(j)
            if norm > 0:
                j /= norm
                log_scale += math.log(norm)
        with np.errstate(divide="ignore"):
            out[n] = np.log(np.linalg.svd(j, compute_uv=False)) + log_scale
    return out

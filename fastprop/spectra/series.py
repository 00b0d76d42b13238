r"""Power-series arithmetic for S-transforms: the moments of J Jᵀ from those of D².

With ψ(w) = Σ_{k≥1} m_k w^k (so M(z) = ψ(1/z)), the S-transform is
S(m) = (1 + m) ψ^{-1}(m)/m. For J Jᵀ, S_{JJᵀ} = (S_{WWᵀ} S_{D²})^L gives

.. math:: ψ_{JJᵀ}^{-1}(m) = \frac{m}{1+m}\Bigl[\frac{r(m)\, g(m)}{σ_w^2}\Bigr]^L,
          \qquad r(m) = ψ_{D^2}^{-1}(m)/m,

g = 1 (Gaussian weights, S_{WWᵀ} = 1/(σ_w²(1+m))) or 1 + m (orthogonal,
S_{WWᵀ} = 1/σ_w²); reverting the series gives the moments m_k = E λ^k of J Jᵀ
exactly up to rounding, from μ_1 … μ_K (Pennington, Schoenholz & Ganguli 2017, §3).
"""

import numpy as np


def multiply(a, b, n):
    """The first ``n`` coefficients of the product of two series."""
    return np.convolve(a[:n], b[:n])[:n]


def power(a, p, n):
    """The first ``n`` coefficients of a(x)^p (a_0 > 0, p real) by J. C. P. Miller's
    recurrence a·(a^p)' = p a'·a^p."""
    a = np.asarray(a, dtype=float)
    y = np.zeros(n)
    y[0] = a[0] ** p
    for k in range(1, n):
        j = np.arange(1, min(k, a.size - 1) + 1)
        y[k] = np.sum((p * j - k + j) * a[j] * y[k - j]) / (k * a[0])
    return y


def revert(f, n):
    """Coefficients g_1 … g_{n−1} (index = power, g_0 = 0) of the compositional
    inverse of f(x) = Σ_{j≥1} f_j x^j (f_1 ≠ 0), to order n − 1."""
    g = np.zeros(n)
    g[1] = 1.0 / f[1]
    for k in range(2, n):
        acc = np.zeros(n)
        pk = np.zeros(n)
        pk[0] = 1.0
        for j in range(1, k + 1):
            pk = multiply(pk, g, n)
            if j < f.size:
                acc += f[j] * pk
        g[k] = -acc[k] / f[1]
    return g


def jjt_moments(mu, depth, sigma_w, orthogonal):
    """E λ^k, k = 1 … len(mu), of the eigenvalues λ of J Jᵀ (module docstring),
    from μ_k = E φ'(√q* z)^{2k}, k = 1 … K (``mu``)."""
    n = len(mu) + 1
    psi_d = np.concatenate([[0.0], np.asarray(mu, dtype=float)])
    inv_d = revert(psi_d, n)  # ψ_D^{-1}(m) = Σ inv_d[k] m^k
    r = inv_d[1:]  # r(m) = ψ_D^{-1}(m)/m, r_0 = 1/μ_1
    base = r / sigma_w**2
    if orthogonal:
        base = multiply(base, np.array([1.0, 1.0]), n - 1)
    h = power(base, depth, n - 1)  # [r g/σ_w²]^L
    h = multiply(h, (-1.0) ** np.arange(n - 1), n - 1)  # × 1/(1 + m)
    inv_j = np.concatenate([[0.0], h])  # ψ_J^{-1}(m) = m h(m)
    return revert(inv_j, n)[1:]

r"""Finite-width random networks applied to a batch of inputs: the empirical NNGP and NTK kernels
of one network (compiled per activation and target).

A template (:mod:`fastprop.run.compile`): compiled by
:func:`fastprop.kernels.simulate.network_kernels`, which binds ``ev`` (φ, φ', φ'') and
``PARALLEL``; not imported directly.

The network (DESIGN §1, in the NTK parameterisation of Jacot et al. 2018): h_1 = (σ_w/√d_0) W_1 x
+ σ_b b_1, h_m = (σ_w/√N) W_m φ(h_{m−1}) + σ_b b_m, all entries of W_m, b_m standard normal, width
N. Network ``k`` under seed ``s`` reads the stream (s, k) of :mod:`fastprop.chains.rng` in this
order: W_1 row by row, b_1 (when σ_b > 0), W_2, b_2, … up to the deepest recorded layer, then (for
the NTK) one readout vector v_ℓ of N normals for each recorded ℓ ≥ 1 in increasing order. For one
input of dimension d_0 = N these are the numbers :func:`fastprop.simulate_chains` (dense
Gaussian sampler) draws for chain k, so that network is that chain.

Empirical kernels of network k at layer ℓ:

.. math:: \hat K^0 = K^0, \qquad \hat K^ℓ_{ab} = \frac{σ_w^2}{N} φ(h_ℓ(a))·φ(h_ℓ(b)) + σ_b^2,

the covariance of the next pre-activation given this network (E K̂^ℓ → K^ℓ as N → ∞), and the
tangent kernel of the scalar readout f_ℓ = (σ_w/√N) v_ℓ·φ(h_ℓ) + σ_b β_ℓ with respect to every
weight and bias of layers 1 … ℓ and of the readout,

.. math:: \hat Θ^ℓ_{ab} = \hat K^ℓ_{ab} + \sum_{m=1}^{ℓ} \hat K^{m-1}_{ab}\, g_m(a)·g_m(b), \qquad
          g_ℓ = \frac{σ_w}{\sqrt N} v_ℓ ⊙ φ'(h_ℓ), \quad
          g_{m-1} = φ'(h_{m-1}) ⊙ \frac{σ_w}{\sqrt N} W_m^T g_m,

g_m = ∂f_ℓ/∂h_m (backpropagation). One backward sweep from the deepest recorded layer carries the
gradients of every recorded readout at once; it draws each W_m again from the stream state saved
when the forward pass reached layer m, so no weight matrix is ever stored.
"""

import math

import numpy as np
from numba import njit, prange

from fastprop.chains import rng
from fastprop.run.compile import bound

ev, PARALLEL, CACHE = bound(__name__, "ev", "PARALLEL", "CACHE")

BLOCK = 32
"""Rows of W_m redrawn at a time in the backward sweep."""


@njit(cache=CACHE)
def gram(x, scale, shift, out):
    """out = scale · x xᵀ + shift, each entry one sum in index order (exactly symmetric)."""
    n, m = x.shape
    for a in range(n):
        for b in range(a + 1):
            s = 0.0
            for i in range(m):
                s += x[a, i] * x[b, i]
            v = scale * s + shift
            out[a, b] = v
            out[b, a] = v


@njit(cache=CACHE)
def draw_layer(st, x_in, c, sb, z, h):
    """h[a] = c W x_in[a] + σ_b b for every input a, W's rows then b drawn from the stream in order
    (the arithmetic of the chains' dense sampler, so one input gives the same numbers)."""
    n, m = x_in.shape
    width = h.shape[1]
    for i in range(width):
        rng.fill_normals(st, z, m)
        for a in range(n):
            acc = 0.0
            for j in range(m):
                acc += z[j] * x_in[a, j]
            h[a, i] = c * acc
    if sb > 0.0:
        rng.fill_normals(st, z, width)
        for i in range(width):
            for a in range(n):
                h[a, i] += sb * z[i]


@njit(cache=CACHE)
def backward(st, g, c, slope, z, blk, out):
    """out[r, a] = slope[a] ⊙ (c Wᵀ g[r, a]) for the W drawn from stream state ``st`` (rows in
    order, ``BLOCK`` at a time into ``blk``)."""
    nr, n, width = g.shape
    out[:] = 0.0
    for i0 in range(0, width, BLOCK):
        rows = min(BLOCK, width - i0)
        for i in range(rows):
            rng.fill_normals(st, z, width)
            blk[i, :] = z[:width]
        for r in range(nr):
            for a in range(n):
                o = out[r, a]
                for i in range(rows):
                    coef = g[r, a, i0 + i]
                    w = blk[i]
                    for j in range(width):
                        o[j] += coef * w[j]
    for r in range(nr):
        for a in range(n):
            for j in range(width):
                out[r, a, j] *= c * slope[a, j]


@njit(cache=CACHE)
def network(st, x, k0, depth, width, sw, sb, rec, ntk, k_out, t_out):
    """Network k (stream ``st``) on the inputs ``x`` (n × d_0): its K̂ at the recorded layers
    ``rec`` into ``k_out`` and, when ``ntk``, its Θ̂ into ``t_out`` (module docstring)."""
    n, d0 = x.shape
    z = np.empty(max(d0, width))
    khat = np.empty((depth + 1, n, n))
    khat[0] = k0
    slopes = np.empty((depth if ntk else 0, n, width))
    states = np.empty((depth + 1, st.shape[0]), dtype=np.uint64)
    h = np.empty((n, width))
    xl = np.empty((n, width))
    inp = x
    for ell in range(1, depth + 1):
        states[ell] = st
        draw_layer(st, inp, sw / math.sqrt(inp.shape[1]), sb, z, h)
        for a in range(n):
            for i in range(width):
                p, dp, _ = ev(h[a, i])
                xl[a, i] = p
                if ntk:
                    slopes[ell - 1, a, i] = dp
        gram(xl, sw * sw / width, sb * sb, khat[ell])
        inp = xl
    for j in range(rec.size):
        k_out[j] = khat[rec[j]]
        if ntk:
            t_out[j] = khat[rec[j]]
    if not ntk or depth == 0:
        return
    first = 1 if rec[0] == 0 else 0  # rec[first:] are the readouts (layers ≥ 1)
    nr = rec.size - first
    v = np.empty((nr, width))
    for r in range(nr):
        rng.fill_normals(st, z, width)
        v[r] = z[:width]
    g = np.zeros((nr, n, width))
    g_next = np.empty((nr, n, width))
    blk = np.empty((BLOCK, width))
    gg = np.empty((n, n))
    scale = sw / math.sqrt(width)
    lo = nr  # readouts lo … nr−1 are active (rec[first + r] ≥ m)
    for m in range(depth, 0, -1):
        while lo > 0 and rec[first + lo - 1] >= m:
            lo -= 1
            for a in range(n):
                for i in range(width):
                    g[lo, a, i] = scale * v[lo, i] * slopes[m - 1, a, i]
        for r in range(lo, nr):
            gram(g[r], 1.0, 0.0, gg)
            t = t_out[first + r]
            for a in range(n):
                for b in range(n):
                    t[a, b] += khat[m - 1, a, b] * gg[a, b]
        if m > 1 and lo < nr:
            saved = states[m].copy()
            backward(saved, g[lo:], scale, slopes[m - 2], z, blk, g_next[lo:])
            g, g_next = g_next, g


@njit(parallel=PARALLEL, cache=CACHE)
def networks(seed, first, count, x, k0, depth, width, sw, sb, rec, ntk, k_out, t_out):
    """Networks first … first+count−1 under ``seed``: k_out[i], t_out[i] are network first+i's
    kernels (:func:`network`); each network owns its stream, so threads change nothing."""
    for i in prange(count):
        st = np.empty(rng.STREAM_SIZE, dtype=np.uint64)
        rng.stream_init(st, seed, first + i)
        network(st, x, k0, depth, width, sw, sb, rec, ntk, k_out[i], t_out[i])

r"""One Jacobian chain, and a batch of them on the CPU.

A template (:mod:`fastprop.run.compile`): compiled per activation and target by
:func:`fastprop.jacobians.compiled.chain_module`, which binds ``ev`` (φ, φ', φ''), ``preact``
(the dense layer draw of :mod:`fastprop.chains.samplers`, float64) and ``PARALLEL``; not
imported directly.

Chain ``c`` under seed ``s`` runs the network of :func:`fastprop.simulate_chains` and carries
J_ℓ = ∂x_ℓ/∂x_0 = D_ℓ W_ℓ ⋯ D_1 W_1 (D_ℓ = diag φ'(h_ℓ); with RMS normalisation each layer also
contributes the normalisation's derivative (√d/‖x‖)(I − x̂x̂ᵀ)) in QR form J_ℓ V = Q_ℓ T_ℓ
(:mod:`fastprop.jacobians.linalg`). The frame V changes no singular value. For positively
homogeneous φ with σ_b = 0 and no normalisation (and for the ``TRIANGULAR`` sampler) it is
orthogonal with V e_0 = x̂_0 (a reflector, its first column's sign fixed): Benettin's first frame
vector is the input direction, T_ℓ's first diagonal entry is ‖J_ℓ x̂_0‖ = ‖x_ℓ‖/‖x_0‖, and every
layer is then the same in law, so log|T_ii| are sums of independent, identically distributed
per-layer terms (no transient in the Lyapunov estimates). Otherwise V = I: there J_ℓ x̂_0 stays
close to the forward signal's direction for many layers, whose gain is lowered where units
saturate, so a frame starting at x̂_0 biases the finite-depth estimates (tanh, σ_w = 1.2,
σ_b = 0.1, width 10, depth 100: λ_1 came out 0.008 lower, 17 standard errors, than with V = I).
Q_0 = V, T_0 = I; each step is a QR factorisation D_ℓ W_ℓ Q_{ℓ−1} = Q_ℓ R_ℓ with
T_ℓ = R_ℓ T_{ℓ−1}. Where D_ℓ has zeros (a ReLU unit off, a saturated hard_tanh) the rank of the
step is known exactly, and the factorisation keeps the exact zeros (``qr_known_rank``).

Samplers (``method``):

``DENSE``
    Draws W_ℓ from the stream (s, c) exactly as the chains' dense sampler does (the same
    numbers, the same forward arithmetic), so x_ℓ is chain c of ``simulate_chains``
    (``method="dense"``) bit for bit, and forms W_ℓ Q_{ℓ−1}. For positively homogeneous φ with
    σ_b = 0 (and no RMS normalisation) x is carried as a unit direction, as the chains' tracked
    sampler carries it: J does not depend on ‖x‖, and x then never overflows or underflows.
``ROTATED``
    Draws G_ℓ = W_ℓ Q_{ℓ−1} directly with those same numbers and sets h_ℓ = G_ℓ (Q_{ℓ−1}ᵀ x_{ℓ−1}) + b_ℓ.
    Exact in law because Q_{ℓ−1} depends only on earlier layers and the law of W_ℓ (Gaussian
    or Haar) is invariant under right multiplication by an orthogonal matrix; it saves the
    d³ product.
``TRIANGULAR``
    Gaussian weights, σ_b = 0, no normalisation, and φ positively homogeneous with |φ'| ∈ {0, 1}
    (linear, ReLU, abs); or linear φ with any σ_b (J does not depend on x), and with orthogonal
    weights R = σ_w I. Then x_{ℓ−1} = J_{ℓ−1} x_0
    (φ(h) = φ'(h) h), so in the frame V, Q_{ℓ−1}ᵀ x_{ℓ−1} = T_{ℓ−1} Vᵀ x_0 ∝ e_0 and h_ℓ ∝ g, the
    first column of the Gaussian G_ℓ = W_ℓ Q_{ℓ−1}; its other columns are independent of g, hence
    of D_ℓ = diag φ'(g). With K = #{i: φ'(g_i) ≠ 0}, D_ℓ maps them to independent standard
    Gaussians on a K-dimensional coordinate subspace, and the QR factor of D_ℓ G_ℓ has
    independent entries (Bartlett's decomposition after the first column): (σ_w/√d) χ_{K−i} on
    the diagonal for i = 0 … K−1 (R_00 = (σ_w/√d)‖D g‖), (σ_w/√d) N(0, 1) above the diagonal in rows
    0 … K−1, zero rows from K on; Q_ℓ's first column is D g/‖D g‖ and the rest of it is Haar and
    independent of R_ℓ. Per layer: d normals (g), the K(d−1) − K(K−1)/2 normals above the diagonal
    (row by row), then χ²_{K−i} for i = 1 … K−1 (a sum of K − i squared normals for K − i ≤ 32,
    else a gamma variate): at most d² normals a layer for d ≤ 32, about half that for ReLU and no
    QR. So log|T_ii| is a sum over layers of independent terms ½ log((σ_w²/d) χ²_{K−i})
    (i = 0 … d−1; −∞ where K ≤ i), with K = d (linear, abs) or K ~ Binomial(d, ½) (ReLU): the
    Lyapunov exponents are their means, in closed form, at every depth.

The direction stream (s, c + 2⁶³), which no chain uses, gives the random unit vector v of
‖J_ℓ v‖ (d normals, normalised; drawn first) and, for ``TRIANGULAR`` only, at each recorded
layer ℓ ≥ 1 the uniform unit vector ω ∈ R^{K−1} (K − 1 normals each, in order) of
Q_ℓᵀ u = (q·u, ‖P u‖ ω, 0, …, 0) (``triangular_qtu``): exact in law at each layer.

Recorded at layer ``rec[j]`` into ``out[q · nrec + j, col]`` for the quantities ``q``
(:data:`fastprop.jacobians.result.QUANTITIES`): log s_i(J_ℓ) (i = 0 … d−1, largest first), log |T_ii|
(whose mean over chains, / ℓ, estimates the Lyapunov exponents; with the frame at x̂_0, ``r1`` is
log ‖J_ℓ x̂_0‖), log ‖J_ℓᵀ u‖, log ‖J_ℓ v‖, log(s_2/s_1) and log of the effective rank
(Σ s_i)²/Σ s_i².
"""

import math

import numpy as np
from numba import njit, prange

from fastprop.chains import rng
from fastprop.chains.common import _log_norm, _unit
from fastprop.jacobians import linalg as la
from fastprop.run.borrow import borrowed
from fastprop.run.compile import bound

ev, preact, PARALLEL, CACHE = bound(__name__, "ev", "preact", "PARALLEL", "CACHE")

DENSE, ROTATED, TRIANGULAR = 0, 1, 2
M_, V_, T_, B_ = 0, 1, 2, 3  # the d × d work matrices
TAU, SGN, PRE, W_, Y_, VD, LS, TMP, DI, BUF = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9  # the work vectors
E_, BE, LIVE, PERM, NPERM = 0, 1, 2, 3, 4  # the integer work vectors
N_MATS, N_VECS, N_INTS = 4, 10, 5
DIRECTION = np.uint64(1 << 63)
"""Chain c's direction stream is the stream c + 2⁶³ (no chain index reaches it)."""


@njit(cache=CACHE)
def random_unit(st, w, d):
    """w ← a uniformly random unit vector: d normals from stream ``st``, normalised."""
    rng.fill_normals(st, w, d)
    nrm = 0.0
    for i in range(d):
        nrm += w[i] * w[i]
    nrm = 1.0 / math.sqrt(nrm)
    for i in range(d):
        w[i] *= nrm


@njit(cache=CACHE)
def record(out, col, j, nrec, d, mats, vecs, ints, k, tau_pre, u, dst, g, rank):
    """Write the recorded quantities of the current J V = Q T into out[·, col] (module docstring);
    ``rank`` ≥ 0: a ``TRIANGULAR`` step of that rank whose direction is ``g`` (else −1)."""
    That, V, B = mats[T_], mats[V_], mats[B_]
    e, be, live = ints[E_], ints[BE], ints[LIVE]
    la.normalise_triangle(That, e, live, d)
    ls, w, y = vecs[LS], vecs[W_], vecs[Y_]
    la.log_singular_values(That, e, live, d, B, be, ls)
    for i in range(d):
        out[i * nrec + j, col] = ls[i]
        out[(d + i) * nrec + j, col] = la.log_diagonal(That, e, live, i)
    if rank >= 0:  # Q_ℓᵀ u drawn given the step (TRIANGULAR)
        triangular_qtu(dst, g, rank, u, w, d)
    else:
        for i in range(d):
            w[i] = u[i]
        la.apply_qt(w, d, k, V, vecs[TAU], vecs[SGN], vecs[PRE], tau_pre, ints[PERM], vecs[BUF])
    out[2 * d * nrec + j, col] = la.log_norm_ttw(That, e, live, d, w, y)
    out[(2 * d + 1) * nrec + j, col] = la.log_norm_tv(That, e, live, d, vecs[VD])
    ratio, erank = la.log_ratio_and_rank(ls, d)
    out[(2 * d + 2) * nrec + j, col] = ratio
    out[(2 * d + 3) * nrec + j, col] = erank


CHI2_BY_NORMALS = 32
"""χ²_k for k up to this is a sum of k squared normals (faster than a gamma variate here)."""


@njit(cache=CACHE)
def triangular_step(st, Mt, z, g, d, sw, ortho):
    """Mt ← the R factor of one layer by columns, drawn directly (module docstring,
    ``TRIANGULAR``); returns its rank K. From the stream: g (d normals, the direction of h_ℓ: the
    first column of W_ℓ Q_{ℓ−1}, kept in ``g``; K = #{i: φ'(g_i) ≠ 0} and R_00 = (σ_w/√d)‖D g‖),
    then the normals above the diagonal of rows 0 … K−1 row by row, then for i = 1 … K−1 the
    variate χ²_{K−i} (K − i normals squared and summed while K − i ≤ CHI2_BY_NORMALS, else a gamma
    variate); for d ≤ CHI2_BY_NORMALS all of them are read in one go. Orthogonal weights (linear φ
    only): R = σ_w I."""
    for i in range(d):
        for c in range(d):
            Mt[c, i] = 0.0
    if ortho:  # (g = e_0: Q_ℓᵀ u is then some unit vector, all that T = σ_w^ℓ I needs)
        for i in range(d):
            Mt[i, i] = sw
            g[i] = 0.0
        g[0] = 1.0
        return d
    s = sw / math.sqrt(d)
    rng.fill_normals(st, g, d)
    K = 0
    r2 = 0.0
    for i in range(d):
        _, dp, _ = ev(g[i])
        if dp != 0.0:
            K += 1
            r2 += g[i] * g[i]
    if K == 0:
        return 0
    Mt[0, 0] = s * math.sqrt(r2)
    above = K * (d - 1) - K * (K - 1) // 2
    small = min(K, CHI2_BY_NORMALS)  # χ²_k for k ≤ small come from normals
    together = d <= CHI2_BY_NORMALS
    rng.fill_normals(st, z, above + K * (K - 1) // 2 if together else above)
    p = 0
    for i in range(K):
        for c in range(i + 1, d):
            Mt[c, i] = s * z[p]
            p += 1
    for i in range(1, K):
        k = K - i
        if k > small:
            v = rng.chi2_variate(st, k)
        else:
            if not together:
                rng.fill_normals(st, z, k)
                p = 0
            v = 0.0
            for m in range(k):
                v += z[p + m] * z[p + m]
            p += k
        Mt[i, i] = s * math.sqrt(v)
    return K


@njit(cache=CACHE)
def triangular_qtu(dst, g, K, u, w, d):
    """w ← Q_ℓᵀ u for the ``TRIANGULAR`` sampler, exact in law given the step's g and rank K: Q_ℓ's
    first column is D g/‖D g‖ (D = diag φ'(g), |φ'| ∈ {0, 1}), its next K − 1 columns a Haar basis
    of the rest of the range of D, independent of R_ℓ (Bartlett), so Q_ℓᵀ u = (q·u, ‖P u‖ ω, 0 … 0)
    with P the projection on that rest and ω uniform on the unit sphere of R^{K−1} (K − 1 normals
    from the direction stream ``dst``). The rows of T from K on are zero, so the zeros there are
    immaterial."""
    for i in range(d):
        w[i] = 0.0
    if K == 0:
        return
    nrm = 0.0
    qu = 0.0
    for i in range(d):
        _, dp, _ = ev(g[i])
        if dp != 0.0:
            y = dp * g[i]
            nrm += y * y
            qu += y * u[i]
    nrm = 1.0 / math.sqrt(nrm)
    qu *= nrm
    w[0] = qu
    if K > 1:
        rest = 0.0  # ‖P u‖ = ‖u_S − (q·u) q‖ on the range S of D (no cancellation)
        for i in range(d):
            _, dp, _ = ev(g[i])
            if dp != 0.0:
                y = u[i] - qu * (dp * g[i] * nrm)
                rest += y * y
        rest = math.sqrt(rest)
        rng.fill_normals(dst, w[1:], K - 1)
        o = 0.0
        for i in range(1, K):
            o += w[i] * w[i]
        o = rest / math.sqrt(o)
        for i in range(1, K):
            w[i] *= o


@njit(cache=CACHE)
def layer_step(st, x, h, z, q, a, d, sw, sb, method, ortho, rms, tracked, mats, vecs, ints, k_old, tau_pre_old):
    """One layer of a ``DENSE`` or ``ROTATED`` chain: x ← x_ℓ, and M ← D_ℓ W_ℓ Q_{ℓ−1} by columns,
    its rows sorted by decreasing |φ'| (``la.sort_rows``; with RMS normalisation times the
    normalisation's derivative, rotated so that its null row is row 0), factorised in place.
    ``tracked`` (positively homogeneous φ, σ_b = 0, no RMS): x is kept a unit vector as the chains'
    tracked sampler keeps it (J does not depend on ‖x‖), so it never overflows or underflows.
    Returns (rank of the step, τ of its leading reflector or 0, a power of two by which the
    factorised step is to be multiplied: the RMS scale √d/‖x‖ beyond the doubles)."""
    M, V = mats[M_], mats[V_]
    tau, sgn, pre, dg, buf = vecs[TAU], vecs[SGN], vecs[PRE], vecs[DI], vecs[BUF]
    perm, nperm = ints[PERM], ints[NPERM]
    if method == ROTATED:
        for i in range(d):
            a[i] = x[i]
        la.apply_qt(a, d, k_old, V, tau, sgn, pre, tau_pre_old, perm, buf)
        preact(st, z, q, a, h, d, sw, sb, ortho)
    else:
        preact(st, z, q, x, h, d, sw, sb, ortho)
    k = 0
    for i in range(d):
        p, dp, _ = ev(h[i])
        x[i] = p
        dg[i] = dp
        if dp != 0.0:
            k += 1
    if tracked:  # the tracked sampler's arithmetic
        _unit(x, x, d)
    la.sort_rows(dg, d, nperm)
    c = sw / math.sqrt(d)  # M is held by columns: M[j] is column j; row i of M is row nperm[i] of D W
    for j in range(d):
        for i in range(d):
            p = nperm[i]
            M[j, i] = sw * q[j * d + p] if ortho else c * z[p * d + j]
    if method == DENSE:  # W Q (row i of W Q is Qᵀ (row i of W))
        la.times_q(M, d, k_old, V, tau, sgn, pre, tau_pre_old, perm, mats[B_])
    for j in range(d):
        for i in range(d):
            M[j, i] *= dg[nperm[i]]
    for i in range(d):
        perm[i] = nperm[i]
    tau_pre = 0.0
    shift = 0
    if rms:
        logn = _log_norm(x, d)
        if -math.inf < logn < math.inf:
            lr = 0.5 * math.log(d) - logn
            r = math.exp(lr)  # the chains' arithmetic for x ← x/‖x‖_rms
            inside = True  # x̂ in the range of D: the projection then lowers the rank by one
            mx = 0.0
            for i in range(d):
                mx = max(mx, abs(x[i]))
                if dg[i] == 0.0 and x[i] != 0.0:
                    inside = False
            xh = vecs[TMP]  # x̂ in the sorted row order, from x/max|x| (no overflow, no underflow)
            nrm = 0.0
            for i in range(d):
                xh[i] = x[perm[i]] / mx
                nrm += xh[i] * xh[i]
            nrm = 1.0 / math.sqrt(nrm)
            for i in range(d):
                xh[i] *= nrm
            tau_pre = la.householder_vector(xh, d, pre)
            la.reflect_columns(M, d, pre, tau_pre)
            if not (0.0 < r < math.inf and abs(lr) < 700.0):  # ‖x‖ near the ends of the doubles:
                shift = int(lr / la.LN2)  # 2^shift of the scale goes to T's exponents
                r = math.exp(lr - shift * la.LN2)
                for i in range(d):
                    x[perm[i]] = math.sqrt(d) * xh[i] / r  # x ← √d x̂, then × r below
            for j in range(d):
                M[j, 0] = 0.0  # H (I − x̂x̂ᵀ) = H − β e_0 x̂ᵀ: row 0 of H M gone
                for i in range(d):
                    M[j, i] *= r
            for i in range(d):
                x[i] *= r
            if inside and k > 0:
                k -= 1
    la.qr_known_rank(M, d, k, V, tau, sgn)
    return k, tau_pre, shift


@njit(cache=CACHE)
def frame_at_x0(method, homogeneous, sb, rms):
    """Whether the QR frame starts at x̂_0 (module docstring): positively homogeneous φ with σ_b = 0
    and no normalisation, and the ``TRIANGULAR`` sampler; else V = I."""
    return method == TRIANGULAR or (homogeneous and sb == 0.0 and not rms)


@njit(cache=CACHE)
def jacobian_chain(st, dst, out, col, rec, L, d, sw, sb, x0, method, ortho, rms, homogeneous, u, v, v_random, z, q, x,
                   h, a, mats, vecs, ints):  # fmt: skip
    """Chain ``col`` (streams ``st`` and ``dst`` set to (s, c) and (s, c + 2⁶³)): its recorded
    quantities into out[:, col] (module docstring)."""
    nrec = rec.shape[0]
    vd = vecs[VD]
    if v_random:
        random_unit(dst, vd, d)
    else:
        for i in range(d):
            vd[i] = v[i]
    la.identity_triangle(mats[T_], ints[E_], ints[LIVE], d)
    for i in range(d):
        vecs[SGN, i] = 1.0
    # the frame: J_0 V = V = Q_0 T_0 with T_0 = I; where it starts at x̂_0, Q_0 = V = H diag(±1, 1, …, 1),
    # H the reflector taking x̂_0 to ±e_0 and the sign such that V e_0 = x̂_0
    tau_pre = 0.0
    logn = _log_norm(x0, d)
    if frame_at_x0(method, homogeneous, sb, rms) and -math.inf < logn < math.inf:
        xh = vecs[TMP]
        mx = 0.0
        for i in range(d):
            mx = max(mx, abs(x0[i]))
        nrm = 0.0
        for i in range(d):
            xh[i] = x0[i] / mx
            nrm += xh[i] * xh[i]
        nrm = 1.0 / math.sqrt(nrm)
        for i in range(d):
            xh[i] *= nrm
        tau_pre = la.householder_vector(xh, d, vecs[PRE])
        if tau_pre != 0.0:
            la.reflect(xh, d, vecs[PRE], tau_pre)
            la.reflect(vd, d, vecs[PRE], tau_pre)
        s0 = -1.0 if xh[0] < 0.0 else 1.0  # V = H diag(s0, 1, …, 1): V e_0 = x̂_0
        vecs[SGN, 0] = s0  # (the sign of Q_0's first column)
        vd[0] *= s0  # ‖J v‖ = ‖T Vᵀ v‖
    tracked = homogeneous and sb == 0.0 and not rms and method != TRIANGULAR
    for i in range(d):
        x[i] = x0[i]
    if tracked:  # a unit direction, as the chains' tracked sampler starts
        logn = _log_norm(x0, d)
        if logn > -math.inf:
            r = math.exp(-logn)
            for i in range(d):
                x[i] = x0[i] * r
    k = 0  # Q_0 = V: no reflectors but the frame's
    ints[PERM, 0] = -1
    j = 0
    if rec[0] == 0:
        record(out, col, 0, nrec, d, mats, vecs, ints, k, tau_pre, u, dst, h, -1)
        j = 1
    for ell in range(1, L + 1):
        rank = -1
        if method == TRIANGULAR:
            rank = triangular_step(st, mats[M_], z, h, d, sw, ortho)
            k = d
            shift = 0
        else:
            k, tau_pre, shift = layer_step(st, x, h, z, q, a, d, sw, sb, method, ortho, rms, tracked, mats, vecs,
                                           ints, k, tau_pre)  # fmt: skip
        la.update_triangle(mats[M_], mats[T_], ints[E_], ints[LIVE], d, vecs[TMP])
        if method != TRIANGULAR and shift != 0:
            for i in range(d):
                ints[E_, i] += shift
        if j < nrec and rec[j] == ell:
            record(out, col, j, nrec, d, mats, vecs, ints, k, tau_pre, u, dst, h, rank)
            j += 1


@njit(parallel=PARALLEL, cache=CACHE)
def run(out, rec, first, nb, seed, d, L, sw, sb, x0, method, ortho, rms, homogeneous, u, v, v_random, nchunks):
    """Chains first … first + nb − 1 into out[:, 0 … nb − 1], ``nchunks`` ranges side by side
    (each chain owns its streams, so threads change nothing)."""
    for t in prange(nchunks):
        chunk(t * nb // nchunks, (t + 1) * nb // nchunks, out, rec, first, seed, d, L, sw, sb, x0, method, ortho, rms,
              homogeneous, u, v, v_random)  # fmt: skip


@njit(cache=CACHE)
def chunk(lo, hi, out, rec, first, seed, d, L, sw, sb, x0, method, ortho, rms, homogeneous, u, v, v_random):
    """Chains first + lo … first + hi − 1 with one set of work arrays."""
    st = np.empty(rng.STREAM_SIZE, np.uint64)
    dst = np.empty(rng.STREAM_SIZE, np.uint64)
    z = np.empty(d * d + d)
    q = np.empty(d * d if ortho else 1)
    x = np.empty(d)
    h = np.empty(d)
    a = np.empty(d)
    mats = np.empty((N_MATS, d, d))
    vecs = np.empty((N_VECS, d))
    ints = np.empty((N_INTS, d), np.int64)
    # no reference counts on the views the chain takes (fastprop.run.borrow)
    st, dst, z, q, x, h, a, mats, vecs, ints = borrowed((st, dst, z, q, x, h, a, mats, vecs, ints))
    out, rec, x0, u, v = borrowed((out, rec, x0, u, v))
    for i in range(lo, hi):
        rng.stream_init(st, seed, first + i)
        rng.stream_init(dst, seed, np.uint64(first + i) + DIRECTION)
        jacobian_chain(st, dst, out, i, rec, L, d, sw, sb, x0, method, ortho, rms, homogeneous, u, v, v_random, z, q,
                       x, h, a, mats, vecs, ints)  # fmt: skip

r"""Small dense linear algebra of one Jacobian chain, written once as plain ``@njit`` code so that
the CPU targets and the CUDA kernel compile the same functions.

The product J_ℓ = Q_ℓ T_ℓ (Benettin et al. 1980; the QR method of Eckmann & Ruelle 1985,
§ III.C) is carried as

* Q_ℓ: the Householder reflectors of the latest QR step (LAPACK's ``dlarfg`` convention,
  H = I − τ v vᵀ with v₀ = 1), the step's row permutation (rows by decreasing |φ'|:
  :func:`sort_rows`), an optional reflector applied before them, and a sign per column so that the
  triangular factor has a non-negative diagonal (:func:`qr_known_rank`, :func:`apply_qt`);
* T_ℓ = R_ℓ ⋯ R_1 (upper triangular) with one power-of-two scale per row,
  T = diag(2^{e_i}) T̂, max_k |T̂_ik| ∈ [½, 1) (or a zero row): every scaling is exact, and depth
  10⁴ neither overflows nor underflows (:func:`update_triangle`).

The singular values of J_ℓ are those of T_ℓ, computed by one-sided Jacobi (Hestenes 1958) on the
rows of diag(2^e) T̂ in that scaled form (:func:`log_singular_values`). Its rotations see only the
scale-free quantities of two rows and the ratio of their scales, so it keeps the high relative
accuracy of one-sided Jacobi for graded matrices (Demmel & Veselić 1992: relative error
O(ε κ(T̂)) for every singular value, κ(T̂) the condition number of the row-scaled factor) while
the scales themselves span any range.
"""

import math

import numpy as np
from numba import njit

LN2 = math.log(2.0)
JACOBI_TOL = 4e-16
"""Rows i, j count as orthogonal when |t̂_i·t̂_j| ≤ JACOBI_TOL · d · ‖t̂_i‖‖t̂_j‖."""
JACOBI_SWEEPS = 60
EXP_FLOOR = -1100
"""A term 2^k T̂ with k below this is below the smallest subnormal: skipped."""
POW2_LOW, POW2_HIGH = -1074, 1023
POW2 = np.ldexp(1.0, np.arange(POW2_LOW, POW2_HIGH + 1))
"""2^k for every k of a double; multiplying by it is exact unless the product leaves the normal range."""


@njit(cache=True, inline="always")
def pow2(k):
    """2^k (0 below the subnormals, inf above the doubles), from the table."""
    if k < POW2_LOW:
        return 0.0
    if k > POW2_HIGH:
        return math.inf
    return POW2[k - POW2_LOW]


@njit(cache=True)
def reflector(col, j, d, vrow):
    """The Householder reflector of ``col`` below entry j (``dlarfg``): writes v into ``vrow``
    (v_j = 1), returns (τ, β) with H col[j:] = β e_j. A zero column gives τ = 0, β = col[j]."""
    alpha = col[j]
    vrow[j] = 1.0
    ss = 0.0
    for i in range(j + 1, d):
        ss += col[i] * col[i]
    if 1e-290 < ss < 1e290 and abs(alpha) < 1e145:
        beta = -math.copysign(math.sqrt(alpha * alpha + ss), alpha)
    else:  # zero, tiny, huge or NaN: scaled, so that no square overflows or underflows
        scale = 0.0
        for i in range(j + 1, d):
            a = abs(col[i])
            if a != a or a == math.inf or alpha != alpha:  # undefined from here on
                for m in range(j + 1, d):
                    vrow[m] = math.nan
                return math.nan, math.nan
            scale = max(scale, a)
        if scale == 0.0:
            for i in range(j + 1, d):
                vrow[i] = 0.0
            return 0.0, alpha
        xnorm = 0.0
        for i in range(j + 1, d):
            xnorm += (col[i] / scale) ** 2
        beta = -math.copysign(math.hypot(alpha, scale * math.sqrt(xnorm)), alpha)
    tau = (beta - alpha) / beta
    r = 1.0 / (alpha - beta)
    for i in range(j + 1, d):
        vrow[i] = col[i] * r
    return tau, beta


@njit(cache=True)
def qr_known_rank(Mt, d, k, V, tau, sgn):
    """M = Q R in place, for M given by columns (Mt[j] is column j of M) whose rank is known to be
    k and whose first k columns are independent (true almost surely here): reflectors for columns
    0 … k−1 into V[j], tau[j]; R by columns in Mt (R_ij = Mt[j, i], i ≤ j) with R_jj ≥ 0 (sgn[j] =
    ±1 flips row j of R and column j of Q); rows k … d−1 of R exactly zero (the columns after the
    k-th lie in the span of the first k, so floating-point rounding there is replaced by the exact
    value)."""
    for j in range(k):
        alpha = Mt[j, j]
        ss = 0.0
        for i in range(j + 1, d):
            ss += Mt[j, i] * Mt[j, i]
        if 1e-290 < ss < 1e290 and abs(alpha) < 1e145:  # (reflector's common case, inline)
            beta = -math.copysign(math.sqrt(alpha * alpha + ss), alpha)
            t = (beta - alpha) / beta
            r = 1.0 / (alpha - beta)
            V[j, j] = 1.0
            for i in range(j + 1, d):
                V[j, i] = Mt[j, i] * r
        else:
            t, beta = reflector(Mt[j], j, d, V[j])
        tau[j] = t
        if t != 0.0:
            for c in range(j + 1, d):
                s = Mt[c, j]
                for i in range(j + 1, d):
                    s += V[j, i] * Mt[c, i]
                s *= t
                Mt[c, j] -= s
                for i in range(j + 1, d):
                    Mt[c, i] -= s * V[j, i]
        Mt[j, j] = beta
        for i in range(j + 1, d):
            Mt[j, i] = 0.0
        sgn[j] = -1.0 if beta < 0.0 else 1.0
        if beta < 0.0:
            for c in range(j, d):
                Mt[c, j] = -Mt[c, j]
    for j in range(k, d):
        tau[j] = 0.0
        sgn[j] = 1.0
        for c in range(d):
            Mt[c, j] = 0.0


@njit(cache=True)
def apply_qt(w, d, k, V, tau, sgn, pre, tau_pre, perm, buf):
    """w ← Qᵀ w for Q = Pᵀ H_pre H_0 ⋯ H_{k−1} S: P the row permutation (P w)_i = w[perm[i]]
    (none when perm[0] < 0), H_pre the reflector ``pre`` with ``tau_pre`` (the identity when
    tau_pre = 0), S = diag(sgn); ``buf`` is work space."""
    if perm[0] >= 0:
        for i in range(d):
            buf[i] = w[perm[i]]
        for i in range(d):
            w[i] = buf[i]
    if tau_pre != 0.0:
        reflect(w, d, pre, tau_pre)
    for j in range(k):
        t = tau[j]
        if t != 0.0:
            s = w[j]
            for i in range(j + 1, d):
                s += V[j, i] * w[i]
            s *= t
            w[j] -= s
            for i in range(j + 1, d):
                w[i] -= s * V[j, i]
    for i in range(d):
        w[i] *= sgn[i]


@njit(cache=True)
def times_q(Mt, d, k, V, tau, sgn, pre, tau_pre, perm, Bt):
    """M ← M Q for M given by columns (Mt[c] is column c) and Q as in :func:`apply_qt`: row by row
    the same arithmetic as ``apply_qt`` on each row of M (row i of M Q is Qᵀ applied to row i of
    M), done a reflector at a time over all rows, so that the inner loops run along contiguous
    columns. ``Bt`` (d × d) is work space."""
    if perm[0] >= 0:  # column m of M Pᵀ is column perm[m] of M
        for m in range(d):
            p = perm[m]
            for r in range(d):
                Bt[m, r] = Mt[p, r]
        for m in range(d):
            for r in range(d):
                Mt[m, r] = Bt[m, r]
    y = Bt[0]
    if tau_pre != 0.0:
        for r in range(d):
            y[r] = 0.0
        for i in range(d):
            f = pre[i]
            for r in range(d):
                y[r] += f * Mt[i, r]
        for r in range(d):
            y[r] *= tau_pre
        for i in range(d):
            f = pre[i]
            for r in range(d):
                Mt[i, r] -= y[r] * f
    for j in range(k):
        t = tau[j]
        if t != 0.0:
            for r in range(d):
                y[r] = Mt[j, r]
            for i in range(j + 1, d):
                f = V[j, i]
                for r in range(d):
                    y[r] += f * Mt[i, r]
            for r in range(d):
                y[r] *= t
                Mt[j, r] -= y[r]
            for i in range(j + 1, d):
                f = V[j, i]
                for r in range(d):
                    Mt[i, r] -= y[r] * f
    for i in range(d):
        if sgn[i] != 1.0:
            for r in range(d):
                Mt[i, r] *= sgn[i]


@njit(cache=True)
def sort_rows(dg, d, perm):
    """perm ← the row order by decreasing |dg| (ties by index): Householder QR of a matrix whose
    rows are graded is accurate row by row when its rows come largest first (Powell & Reid 1969;
    Cox & Higham 1998), which a layer's D_ℓ makes of D_ℓ W_ℓ Q_{ℓ−1} (φ' spanning many decades)."""
    for i in range(d):
        perm[i] = i
    for i in range(1, d):  # insertion sort: stable, and d is small
        p = perm[i]
        v = abs(dg[p])
        j = i - 1
        while j >= 0 and abs(dg[perm[j]]) < v:
            perm[j + 1] = perm[j]
            j -= 1
        perm[j + 1] = p


@njit(cache=True)
def householder_vector(x, d, pre):
    """The reflector H = I − τ p pᵀ (p₀ = 1, into ``pre``) with H x = β e_0 for a unit vector x;
    returns τ (0 when x is already ±e_0 … up to its sign: then H = I and x = x₀ e_0)."""
    alpha = x[0]
    xnorm = 0.0
    for i in range(1, d):
        xnorm += x[i] * x[i]
    xnorm = math.sqrt(xnorm)
    pre[0] = 1.0
    if xnorm == 0.0:
        for i in range(1, d):
            pre[i] = 0.0
        return 0.0
    beta = -math.copysign(math.hypot(alpha, xnorm), alpha)
    r = 1.0 / (alpha - beta)
    for i in range(1, d):
        pre[i] = x[i] * r
    return (beta - alpha) / beta


@njit(cache=True)
def reflect(w, d, pre, tau_pre):
    """w ← H w for H = I − τ p pᵀ (p = ``pre``, τ = ``tau_pre``)."""
    s = 0.0
    for i in range(d):
        s += pre[i] * w[i]
    s *= tau_pre
    for i in range(d):
        w[i] -= s * pre[i]


@njit(cache=True)
def reflect_columns(Mt, d, pre, tau_pre):
    """M ← H M for H = I − τ p pᵀ, M given by columns (Mt[c] is column c)."""
    for c in range(d):
        reflect(Mt[c], d, pre, tau_pre)


@njit(cache=True)
def normalise_row(row, d):
    """Scale ``row`` by a power of two so that max |row| ∈ [½, 1); returns the exponent taken out
    (0 for a zero row, which stays zero). Exact: only the exponent changes."""
    mx = 0.0
    for c in range(d):
        mx = max(mx, abs(row[c]))
    if mx == 0.0 or not math.isfinite(mx):
        return 0
    # (frexp and ldexp are exact; ldexp only rounds a result in the subnormal range)
    _, ex = math.frexp(mx)
    if -1000 < ex < 1000:
        f = pow2(-ex)
        for c in range(d):
            row[c] *= f
    else:
        for c in range(d):
            row[c] = math.ldexp(row[c], -ex)
    return ex


@njit(cache=True)
def identity_triangle(That, e, live, d):
    """T = I in scaled form."""
    for i in range(d):
        live[i] = 1
        for c in range(d):
            That[i, c] = 0.0
        That[i, i] = 0.5
        e[i] = 1


LAZY_LOW, LAZY_HIGH = 2.0**-200, 2.0**200
"""Between updates a row of T̂ may drift within [LAZY_LOW, LAZY_HIGH) before it is renormalised
(:func:`update_triangle`); :func:`normalise_triangle` restores max |T̂_ik| ∈ [½, 1)."""


@njit(cache=True)
def update_triangle(Rt, That, e, live, d, tmp):
    """T ← R T for upper triangular R given by columns (R_im = Rt[m, i]; non-negative diagonal,
    rows of zeros allowed), on the scaled form diag(2^e) T̂. ``live[i]`` says whether row i of T
    is non-zero. Row i of the product only reads rows m ≥ i, so rows are replaced in increasing
    order. Each new row is Σ_m R_im 2^(e_m − top) T̂_m with ``top`` the largest e_m it mixes: the
    factors 2^(e_m − top) are exact, so the values do not depend on how the rows are scaled. A row
    whose largest entry stays in [LAZY_LOW, LAZY_HIGH) keeps its scale (no renormalisation: an
    exponent then tracks its row's magnitude to within 2^±200, enough to keep every product
    finite); the others are brought back to [½, 1) exactly."""
    for i in range(d):
        top = EXP_FLOOR * 4  # the largest scale among the rows that row i mixes
        for m in range(i, d):
            if Rt[m, i] != 0.0 and live[m] != 0:
                top = max(top, e[m])
        for c in range(d):  # (full-length rows: T̂ is zero below its diagonal; fewer loop shapes)
            tmp[c] = 0.0
        if top > EXP_FLOOR * 4:
            for m in range(i, d):
                r = Rt[m, i]
                k = e[m] - top
                if r != 0.0 and live[m] != 0 and k >= POW2_LOW:  # (2^k below the doubles: nothing)
                    f = r * POW2[k - POW2_LOW]  # exact unless subnormal: then negligible
                    for c in range(d):
                        tmp[c] += f * That[m, c]
        mx = 0.0
        for c in range(d):
            That[i, c] = tmp[c]
            mx = max(mx, abs(tmp[c]))
        if mx == 0.0:
            live[i] = 0
            e[i] = 0
        elif LAZY_LOW <= mx < LAZY_HIGH:
            live[i] = 1
            e[i] = top
        else:  # (a row with inf or NaN keeps them: the chain's values are then undefined)
            live[i] = 1
            e[i] = top + normalise_row_from(That, i, d)


@njit(cache=True)
def normalise_row_from(That, i, d):
    """Row i of the upper triangle T̂ (entries i … d−1) scaled by a power of two so that its largest
    entry is in [½, 1); returns the exponent taken out (0 for a zero or non-finite row, left as it
    is). Exact: only the exponent changes (ldexp only rounds a result in the subnormal range)."""
    mx = 0.0
    for c in range(i, d):
        mx = max(mx, abs(That[i, c]))
    if mx == 0.0 or not math.isfinite(mx):
        return 0
    _, ex = math.frexp(mx)
    if -1000 < ex < 1000:
        f = pow2(-ex)
        for c in range(i, d):
            That[i, c] *= f
    else:
        for c in range(i, d):
            That[i, c] = math.ldexp(That[i, c], -ex)
    return ex


@njit(cache=True)
def normalise_triangle(That, e, live, d):
    """Every live row of T̂ back to max |T̂_ik| ∈ [½, 1) (exact), the form the singular values,
    the diagonal and the norms read."""
    for i in range(d):
        if live[i]:
            e[i] += normalise_row_from(That, i, d)


@njit(cache=True)
def log_diagonal(That, e, live, i):
    """log |T_ii| (−inf for a zero row or diagonal)."""
    if not live[i] or That[i, i] == 0.0:
        return -math.inf
    return e[i] * LN2 + math.log(abs(That[i, i]))


@njit(cache=True)
def log_norm_tv(That, e, live, d, v):
    """log ‖T v‖ from the scaled form (−inf for T v = 0)."""
    top = EXP_FLOOR * 4
    for i in range(d):
        if live[i] and e[i] > top:
            top = e[i]
    if top == EXP_FLOOR * 4:
        return -math.inf
    s = 0.0
    for i in range(d):
        if live[i] and e[i] - top > EXP_FLOOR:
            y = 0.0
            for c in range(i, d):
                y += That[i, c] * v[c]
            y *= pow2(e[i] - top)
            s += y * y
    if s == 0.0:
        return -math.inf
    return top * LN2 + 0.5 * math.log(s)


@njit(cache=True)
def log_norm_ttw(That, e, live, d, w, y):
    """log ‖Tᵀ w‖ from the scaled form (``y`` is work space)."""
    top = EXP_FLOOR * 4
    for i in range(d):
        if live[i] and w[i] != 0.0 and e[i] > top:
            top = e[i]
    if top == EXP_FLOOR * 4:
        return -math.inf
    for c in range(d):
        y[c] = 0.0
    for i in range(d):
        k = e[i] - top
        if live[i] and w[i] != 0.0 and k > EXP_FLOOR:
            f = w[i] * pow2(k)
            for c in range(i, d):
                y[c] += f * That[i, c]
    s = 0.0
    for c in range(d):
        s += y[c] * y[c]
    if s == 0.0:
        return -math.inf
    return top * LN2 + 0.5 * math.log(s)


@njit(cache=True)
def jacobi_pair(B, be, p, q, d):
    """One Hestenes rotation of rows p and q of diag(2^be) B (be[p] ≥ be[q]); returns whether the
    rows were already orthogonal to the tolerance."""
    a = 0.0
    b = 0.0
    g = 0.0
    for c in range(d):
        a += B[p, c] * B[p, c]
        b += B[q, c] * B[q, c]
        g += B[p, c] * B[q, c]
    if a == 0.0 or b == 0.0 or abs(g) <= JACOBI_TOL * d * math.sqrt(a) * math.sqrt(b):
        return True
    # ζ = (β − α)/(2γ) for the true Gram entries α = 4^{e_p} a, β = 4^{e_q} b, γ = 2^{e_p+e_q} g;
    # with r = 2^{e_q − e_p} ≤ 1 and η = r ζ every quantity below is finite as r → 0
    r = pow2(be[q] - be[p])
    eta = (r * r * b - a) / (2.0 * g)
    t_r = math.copysign(1.0, eta) / (abs(eta) + math.sqrt(r * r + eta * eta))  # t / r
    t = r * t_r
    c = 1.0 / math.sqrt(1.0 + t * t)
    s_r = c * t_r  # s / r
    sr = c * t * r  # s · r
    for k in range(d):
        bp = B[p, k]
        bq = B[q, k]
        B[p, k] = c * bp - sr * bq
        B[q, k] = s_r * bp + c * bq
    be[p] += normalise_row(B[p], d)
    be[q] += normalise_row(B[q], d)
    return False


@njit(cache=True)
def log_singular_values(That, e, live, d, B, be, out):
    """out[0 … d−1] ← log s_i(T), largest first (−inf for zero singular values), by one-sided
    Jacobi on the rows of the scaled T (module docstring). Returns the number of sweeps, or −1 when
    it did not converge in JACOBI_SWEEPS (the values are then those of the last sweep)."""
    n = 0
    for i in range(d):
        if live[i]:
            for c in range(d):
                B[n, c] = That[i, c]
            be[n] = e[i]
            n += 1
    sweeps = -1
    for sweep in range(JACOBI_SWEEPS):
        done = True
        for i in range(n - 1):
            for j in range(i + 1, n):
                if be[i] >= be[j]:
                    ok = jacobi_pair(B, be, i, j, d)
                else:
                    ok = jacobi_pair(B, be, j, i, d)
                done = done and ok
        if done:
            sweeps = sweep + 1
            break
    for i in range(n):
        s = 0.0
        for c in range(d):
            s += B[i, c] * B[i, c]
        out[i] = be[i] * LN2 + 0.5 * math.log(s) if s > 0.0 else -math.inf
    for i in range(n, d):
        out[i] = -math.inf
    for i in range(1, d):  # insertion sort, largest first
        v = out[i]
        j = i - 1
        while j >= 0 and out[j] < v:
            out[j + 1] = out[j]
            j -= 1
        out[j + 1] = v
    return sweeps


@njit(cache=True)
def log_ratio_and_rank(ls, d):
    """(log(s_2/s_1), log of the effective rank (Σ s_i)²/Σ s_i²) from the log singular values,
    largest first. NaN where undefined (s_1 = 0, or d = 1 for the ratio)."""
    top = ls[0]
    if top == -math.inf or top != top:
        return math.nan, math.nan
    ratio = ls[1] - top if d > 1 else math.nan
    s1 = 0.0
    s2 = 0.0
    for i in range(d):
        x = math.exp(ls[i] - top)
        s1 += x
        s2 += x * x
    return ratio, 2.0 * math.log(s1) - math.log(s2)

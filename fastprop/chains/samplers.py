"""The samplers of one chain (:mod:`fastprop.chains`): ``chain`` runs chain ``col``
from its stream state ``st`` and writes log‖x_ℓ‖ at the recorded layers ``rec``
into ``out[:, col]``; ``z``, ``q``, ``x``, ``h`` are its work vectors.

A template (:mod:`fastprop.run.compile`): compiled per activation and working
dtype by :func:`fastprop.chains.compiled.chain_function`, which binds ``ev``
(φ, φ', φ'') and ``F`` (the working float type); not imported directly.
"""

import math

from numba import njit

from fastprop.chains import rng
from fastprop.chains.common import DENSE, N2_MAX, N2_MIN, _haar_apply, _half_log_gain, _log_norm, _unit
from fastprop.run.compile import bound

ev, F, CACHE = bound(__name__, "ev", "F", "CACHE")


@njit(cache=CACHE)
def phi(h):
    return ev(h)[0]


@njit(cache=CACHE)
def dense_preact(st, z, q, x, h, d, sw, sb, ortho):
    """h = W x + b for one freshly drawn layer (b only if σ_b > 0)."""
    nb = d if sb > 0.0 else 0
    rng.fill_normals(st, z, d * d + nb)
    if ortho:
        _haar_apply(z, q, x, h, d)
        for i in range(d):
            h[i] *= sw
    else:
        c = F(sw / math.sqrt(d))
        for i in range(d):
            acc = F(0.0)
            for j in range(d):
                acc += z[i * d + j] * x[j]
            h[i] = c * acc
    for i in range(nb):
        h[i] += sb * z[d * d + i]


@njit(cache=CACHE)
def tracked_chain(st, out, col, rec, L, d, sw, sb, x0, method, ortho, rms, pos_sq, neg_sq, z, q, x, h):
    """Positively homogeneous φ, σ_b = 0: carry log‖x‖ and (dense) a unit direction."""
    half_log_d = 0.5 * math.log(d)
    nrec = rec.shape[0]
    j = 0  # the next recorded layer is rec[j] (rec is increasing); out[j, col] holds it
    logn = _log_norm(x0, d)
    if logn > -math.inf:
        r = math.exp(-logn)
        for i in range(d):
            x[i] = x0[i] * r
    if rec[0] == 0:
        out[0, col] = logn
        j = 1
    for ell in range(1, L + 1):
        if logn == -math.inf:
            for m in range(j, nrec):
                out[m, col] = -math.inf
            return
        if method == DENSE:
            dense_preact(st, z, q, x, h, d, sw, 0.0, ortho)
            for i in range(d):
                h[i] = phi(h[i])
            gain = _unit(h, x, d)
        elif ortho and pos_sq == neg_sq:
            gain = _half_log_gain(sw * sw * pos_sq, sw, pos_sq)
        elif ortho:
            rng.fill_normals(st, z, d)
            zz = 0.0
            for i in range(d):
                zz += z[i] * z[i]
            c = sw / math.sqrt(zz)
            r2 = 0.0
            for i in range(d):
                y = phi(c * z[i])
                r2 += y * y
            if not N2_MIN < r2 < N2_MAX:  # φ(c z) = c φ(z): the same gain in logs
                r2 = 0.0
                for i in range(d):
                    y = phi(z[i])
                    r2 += y * y
                r2 = _half_log_gain(0.0, sw, r2 / zz)
            else:
                r2 = 0.5 * math.log(r2)
            gain = r2
        else:
            if pos_sq == neg_sq:
                g = pos_sq * rng.chi2_variate(st, d)
            else:
                k = rng.binomial_half(st, d)
                g = 0.0
                if pos_sq > 0.0:
                    g += pos_sq * rng.chi2_variate(st, k)
                if neg_sq > 0.0:
                    g += neg_sq * rng.chi2_variate(st, d - k)
            gain = _half_log_gain(sw * sw / d * g, sw, g / d)
        if gain == -math.inf:
            logn = -math.inf
        else:  # (NaN from a NaN input: undefined, never a zero)
            logn += gain
        if j < nrec and rec[j] == ell:
            out[j, col] = logn
            j += 1
        if rms and logn > -math.inf:
            logn = half_log_d


@njit(cache=CACHE)
def dense_chain(st, out, col, rec, L, d, sw, sb, x0, method, ortho, rms, pos_sq, neg_sq, z, q, x, h):
    """The dense sampler: every weight drawn, x itself propagated."""
    half_log_d = 0.5 * math.log(d)
    nrec = rec.shape[0]
    j = 0  # the next recorded layer is rec[j] (rec is increasing); out[j, col] holds it
    for i in range(d):
        x[i] = x0[i]
    logn = _log_norm(x, d)
    if rec[0] == 0:
        out[0, col] = logn
        j = 1
    for ell in range(1, L + 1):
        dense_preact(st, z, q, x, h, d, sw, sb, ortho)
        for i in range(d):
            x[i] = phi(h[i])
        logn = _log_norm(x, d)
        if j < nrec and rec[j] == ell:
            out[j, col] = logn
            j += 1
        if rms and -math.inf < logn < math.inf:
            r = math.exp(half_log_d - logn)
            for i in range(d):
                x[i] *= r


@njit(cache=CACHE)
def invariant_layer(z, off, n2, logn, d, nb, sw, sb, ortho, x, h):
    """One layer of the invariant sampler from the normals ``z[off : off + d + nb]``
    (nb = d bias normals for orthogonal weights with σ_b > 0, else 0), given
    n2 = ‖x‖² and logn = log‖x‖ of its input: returns those of its output.

    Given x, ``h = W x + b`` is N(0, (σ_w²‖x‖²/d + σ_b²) I) for Gaussian weights and
    σ_w‖x‖·z/‖z‖ + σ_b z' for orthogonal ones. n2 is used while it and the
    pre-activation variance are representable (the plain arithmetic); beyond, the
    scale comes from logn, so the layer overflows only where ‖x‖ itself does, and a
    NaN stays NaN (never a zero norm)."""
    v = sw * sw * n2 / d + sb * sb
    in_range = (N2_MIN < n2 < N2_MAX or logn == -math.inf) and v < N2_MAX
    r = 0.0 if in_range else math.exp(logn)  # ‖x‖, outside the range of n2
    if ortho:
        zz = 0.0
        for i in range(d):
            zz += z[off + i] * z[off + i]
        c = sw * math.sqrt(n2 / zz) if in_range else sw * r / math.sqrt(zz)
        for i in range(d):
            h[i] = c * z[off + i]
        for i in range(nb):
            h[i] += sb * z[off + d + i]
    else:
        s = math.sqrt(v) if in_range else math.hypot(sw * r / math.sqrt(d), sb)
        for i in range(d):
            h[i] = s * z[off + i]
    n2 = 0.0
    for i in range(d):
        y = phi(h[i])
        n2 += y * y
    if N2_MIN < n2 < N2_MAX:
        logn = 0.5 * math.log(n2)
    else:  # zero, underflowed, overflowed or NaN: from the vector itself
        for i in range(d):
            x[i] = phi(h[i])
        logn = _log_norm(x, d)
    return n2, logn


@njit(cache=CACHE)
def invariant_chain(st, out, col, rec, L, d, sw, sb, x0, method, ortho, rms, pos_sq, neg_sq, z, q, x, h):
    """The invariant sampler for general φ."""
    half_log_d = 0.5 * math.log(d)
    nrec = rec.shape[0]
    j = 0  # the next recorded layer is rec[j] (rec is increasing); out[j, col] holds it
    # general φ: carry log‖x‖, and n2 = ‖x‖² while it is representable (invariant_layer)
    n2 = 0.0
    for i in range(d):
        n2 += x0[i] * x0[i]
    logn = _log_norm(x0, d)
    if rec[0] == 0:
        out[0, col] = logn
        j = 1
    nb = d if (ortho and sb > 0.0) else 0
    for ell in range(1, L + 1):
        rng.fill_normals(st, z, d + nb)
        n2, logn = invariant_layer(z, 0, n2, logn, d, nb, sw, sb, ortho, x, h)
        if j < nrec and rec[j] == ell:
            out[j, col] = logn
            j += 1
        if rms and -math.inf < logn < math.inf:
            n2 = float(d)
            logn = half_log_d
        if logn != logn:  # undefined from here on
            for m in range(j, nrec):
                out[m, col] = math.nan
            return


@njit(cache=CACHE)
def chain(st, out, col, rec, L, d, sw, sb, x0, method, ortho, tracked, rms, pos_sq, neg_sq, z, q, x, h):
    """Run one chain with the sampler its parameters call for."""
    if tracked:
        tracked_chain(st, out, col, rec, L, d, sw, sb, x0, method, ortho, rms, pos_sq, neg_sq, z, q, x, h)
    elif method == DENSE:
        dense_chain(st, out, col, rec, L, d, sw, sb, x0, method, ortho, rms, pos_sq, neg_sq, z, q, x, h)
    else:
        invariant_chain(st, out, col, rec, L, d, sw, sb, x0, method, ortho, rms, pos_sq, neg_sq, z, q, x, h)

"""``simulate_jacobians``: the input–output Jacobians of finite-width random networks."""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import get_num_threads

from .. import _validate
from .._version import __version__
from ..activations import activation as _activation
from ..chains import exactsum
from ..chains.common import NBINS, WEIGHTS
from ..chains.compiled import stats_kernel
from ..chains.result import COUNTS
from ..chains.simulate import _batch, _choice, _input, _layers, _thresholds, chain_range, timed_batches
from ..run import resources as _resources
from ..run import schedule
from ..run.progress import make as _progress
from ..run.targets import check_target, n_chunks, resolve_target
from .compiled import chain_module
from .result import JacobianResult, empty_jacobian_result, quantities

__all__ = ["simulate_jacobians"]

METHODS = ("auto", "dense", "rotated", "triangular")
CODES = {"dense": 0, "rotated": 1, "triangular": 2}
CLUSTER_MIN_CHAINS = 1 << 10
"""The smallest range of chains worth a Dask task (a Jacobian chain costs about d/2 forward chains)."""


def is_identity(act):
    """Whether φ is the identity (then J does not depend on the inputs or biases)."""
    return act.homogeneous and tuple(act.eval3(1.0)[:2]) == (1.0, 1.0) and tuple(act.eval3(-1.0)[:2]) == (-1.0, 1.0)


def triangular_applies(act, sb, weights, rms_norm, x0):
    """Whether the exact ``"triangular"`` sampler applies (:mod:`fastprop.jacobians.chain`): no
    normalisation, and either linear φ, or Gaussian weights, σ_b = 0, x_0 ≠ 0 and φ positively
    homogeneous with |φ'| ∈ {0, 1} (φ' is constant on each half-line, so φ'(±1) tells: linear, ReLU,
    abs)."""
    if rms_norm:
        return False
    if is_identity(act):
        return True
    slopes = {abs(float(act.eval3(1.0)[1])), abs(float(act.eval3(-1.0)[1]))}
    return (act.homogeneous and sb == 0.0 and weights == "gaussian" and bool(np.any(x0 != 0.0))
            and slopes <= {0.0, 1.0} and slopes != {0.0})  # fmt: skip


def _unit(vec, name, d):
    """A unit vector of shape (d,) (``vec`` normalised), or None."""
    if vec is None:
        return None
    w = _validate.real_array(vec, name)
    if w.shape != (d,):
        raise ValueError(f"{name} must have shape (width,) = ({d},), got {w.shape}")
    top = float(np.max(np.abs(w)))
    if not top > 0:
        raise ValueError(f"{name} must be a non-zero vector")
    w = w / top  # (no overflow or underflow in the norm)
    return np.ascontiguousarray(w / np.linalg.norm(w))


def simulate_jacobians(width=10, depth=100, n_chains=10**4, activation="linear", sigma_w=1.0, sigma_b=0.0,
                       weights="gaussian", method="auto", layers=None, thresholds=(0.01, 10.0), seed=0, first_chain=0,
                       target="auto", client=None, *, rms_norm=False, x0=None, u=None, v=None, keep_values=False,
                       batch_size=None, progress=False) -> JacobianResult:  # fmt: skip
    r"""Simulate the input–output Jacobians J_ℓ = ∂x_ℓ/∂x_0 = D_ℓ W_ℓ ⋯ D_1 W_1 of ``n_chains``
    random networks (D_ℓ = diag φ'(h_ℓ)) and collect, at each recorded layer, the law of every
    singular value, the Lyapunov spectrum, the gradient norms and the rank-collapse measures.

    Chain c under ``seed`` is the network of :func:`fastprop.simulate_chains` (DESIGN §1): with
    ``method="dense"`` it reads the same stream with the same arithmetic, so its x_ℓ is chain c of
    ``simulate_chains(method="dense")`` bit for bit; the other samplers are exact in law
    (:mod:`fastprop.jacobians.chain`). The product is carried in QR form J_ℓ V = Q_ℓ T_ℓ
    (Benettin's method, its first frame vector V e_1 = x̂_0 for homogeneous φ with σ_b = 0, else
    V = I; each step's rows sorted by |φ'| before
    its Householder QR) with power-of-two row scales, so any depth neither overflows nor underflows;
    the singular values are those of T_ℓ by one-sided Jacobi on the scaled rows
    (:mod:`fastprop.jacobians.linalg`), not the diagonal of
    T_ℓ (which only agrees in the limit). Accuracy, tested against the product multiplied out in
    160-digit arithmetic: every log s_i within 1e-10·max(1, ℓ/10), the smallest included, when
    the singular values span 80 decades or φ' spans tens of decades within a layer. With
    ``rms_norm`` the normalisation's projection mixes the rows of a step, and its small singular
    values are accurate relative to the step's largest.

    Parameters
    ----------
    width, depth, n_chains, activation, sigma_w, sigma_b, weights, layers, seed, first_chain
        As for :func:`fastprop.simulate_chains`.
    method : {"auto", "dense", "rotated", "triangular"}
        "dense": every weight drawn, the same networks as ``simulate_chains``; "rotated": W_ℓ Q_{ℓ−1}
        drawn directly (exact in law, saves a d³ product a layer); "triangular": the QR factor of each
        layer drawn directly (χ on the diagonal, normals above; no QR): linear φ, or Gaussian
        weights with σ_b = 0 and ReLU or abs, without RMS normalisation. "auto": "triangular" where
        it applies, else "rotated".
    thresholds : sequence of float > 0
        t with exact counts of each quantity > t and < t (``result.law(q).tail_probability``).
    target : {"auto", "cpu", "parallel", "cuda"}
        Results do not depend on it (on a real GPU, up to last-ulp differences of its libdevice
        math, as for the chains).
    client : dask.distributed.Client or str, optional
        Consecutive chain ranges on a Dask cluster, merged exactly.
    rms_norm : bool
        x ← x/‖x‖_rms after every layer, and J includes the normalisation's derivative
        (√d/‖x‖)(I − x̂x̂ᵀ): its rank is then at most d − 1, so s_d = 0 exactly.
    x0 : array of shape (width,), optional
        The input; default (1, …, 1)/√d.
    u : array of shape (width,), optional
        The output direction of the backward norm ‖J_ℓᵀ u‖ (normalised; default (1, …, 1)/√d).
    v : array of shape (width,), optional
        The input direction of ‖J_ℓ v‖ (normalised); default a uniformly random unit vector per
        chain, from the chain's direction stream (seed, c + 2⁶³).
    keep_values : bool
        Keep every recorded log-value (slots × chains) in ``result.stats.norms``.
    batch_size : int, optional
        Chains per batch; results do not depend on it.
    progress : bool or tqdm bar

    Returns
    -------
    JacobianResult
        ``law(q)`` for each quantity q of :func:`fastprop.jacobians.quantities`,
        ``mean_log_singular_values(layer)``, ``lyapunov(layer)``, ``merge``, ``save``/``load``.

    Example
    -------
    >>> import fastprop as fp
    >>> r = fp.simulate_jacobians(width=10, depth=100, n_chains=10**4, layers=[10, 100])
    >>> lam, lo, hi = r.lyapunov()          # the Lyapunov spectrum of Gaussian products
    """
    d, L, n, first, seed = chain_range(width, depth, n_chains, first_chain, seed)
    act = _activation(activation)
    _ = act.fingerprint
    sw = _validate.real_scalar(sigma_w, "sigma_w", low=0.0)
    sb = _validate.real_scalar(sigma_b, "sigma_b", low=0.0)
    weights = _choice(weights, "weights", WEIGHTS)
    method = _choice(method, "method", METHODS)
    rms_norm = _validate.boolean(rms_norm, "rms_norm")
    keep_values = _validate.boolean(keep_values, "keep_values")
    x0v = _input(x0, d)
    exact = triangular_applies(act, sb, weights, rms_norm, x0v)
    if method == "triangular" and not exact:
        raise ValueError("method='triangular' needs no rms_norm and either the linear activation, or Gaussian weights, "
                         "sigma_b = 0, a non-zero x0 and a positively homogeneous activation with |phi'| in {0, 1} "
                         "(relu, abs)")
    resolved = ("triangular" if exact else "rotated") if method == "auto" else method
    rec = _layers(layers, L)
    thr = _thresholds(thresholds)
    check_target(target)
    tgt = resolve_target(target) if client is None else target
    uv = _unit(u, "u", d)
    uv = np.full(d, 1.0 / math.sqrt(d)) if uv is None else uv
    vv = _unit(v, "v", d)
    nslots = len(quantities(d)) * rec.size
    batch = _batch(batch_size, n, nslots)
    what = f"simulate_jacobians(width={d}, {rec.size} recorded layers{', keep_values' if keep_values else ''})"
    _resources.require(_memory(d, nslots, n if keep_values else 0, abs(batch), tgt), what)
    # ("qr_frame": where T's frame starts; results saved before it had one do not merge)
    frame = resolved == "triangular" or (act.homogeneous and sb == 0.0 and not rms_norm)
    params = {"width": d, "depth": L, "activation": act.name, "activation_fingerprint": act.fingerprint,
              "sigma_w": sw, "sigma_b": sb, "weights": weights, "method": resolved, "rms_norm": rms_norm,
              "seed": seed, "x0": None if x0 is None else x0v.tolist(), "u": uv.tolist(),
              "v": None if vv is None else vv.tolist(), "keep_norms": keep_values, "dtype": "float64",
              "qr_frame": "x0" if frame else "identity"}  # fmt: skip
    if client is not None:
        kwargs = dict(width=d, depth=L, activation=schedule.activation_ref(act), sigma_w=sw, sigma_b=sb,
                      weights=weights, method=resolved, layers=rec.tolist(), thresholds=thr.tolist(), seed=seed,
                      rms_norm=rms_norm, x0=x0, u=uv, v=vv, keep_values=keep_values, batch_size=batch_size)  # fmt: skip
        with schedule.cluster(client) as cl:
            return _on_cluster(kwargs, first, n, target, cl, progress)
    meta = {"fastprop_version": __version__, "target": tgt}
    result = empty_jacobian_result(params, rec, thr, first, n, keep_values, meta)
    args = (rec, seed, d, L, sw, sb, x0v, CODES[resolved], weights == "orthogonal", rms_norm, act.homogeneous, uv,
            np.zeros(d) if vv is None else vv, vv is None)  # fmt: skip
    if tgt == "cuda":
        from .cuda import run_batches

        batch = abs(batch)
    else:
        run_batches = functools.partial(_run_batches_cpu, tgt)
    bar = _progress(progress, n, "chains", "chains")
    try:
        run_batches(result, act, batch, first, n, np.log(thr), keep_values, bar, *args)
    finally:
        bar.close()
    return result


def _memory(d, nslots, n_kept, batch, target):
    """Bytes a run allocates: the statistics of every slot, kept values, one batch of values and each
    thread's work space (five d × d matrices, about twenty vectors)."""
    stats = nslots * (8 * (NBINS + 2) + 8 * 4 + 16 * 2 + 8 * 3 * exactsum.NLIMB)
    threads = 1 if target == "cpu" else get_num_threads()
    work = 0 if target == "cuda" else threads * 8 * (6 * d * d + 24 * d + 200)
    return stats + 8 * nslots * (n_kept + batch + 1) + work


def _run_batches_cpu(tgt, result, act, batch, first, n, tlog, keep, bar, rec, seed, d, L, sw, sb, x0, code, ortho, rms,
                     homogeneous, u, v, v_random):  # fmt: skip
    """Chains [first, first + n) on a CPU target, folded into ``result`` batch by batch."""
    run = chain_module(act, tgt).run
    update = stats_kernel(tgt)
    stats = [getattr(result.stats, k) for k in COUNTS]
    nslots = stats[0].shape[0]

    def step(done, nb):
        out = np.empty((nslots, nb))
        run(out, rec, first + done, nb, np.uint64(seed), d, L, sw, sb, x0, code, ortho, rms, homogeneous, u, v,
            v_random, n_chunks(nb, tgt))  # fmt: skip
        update(out, nb, tlog, *stats)
        if keep:
            result.stats.norms[:, done : done + nb] = out

    timed_batches(tgt, n, batch, step, bar)


def _chain_range(kwargs, first, n, target):
    """One unit of work on a Dask worker: chains [first, first + n)."""
    return simulate_jacobians(n_chains=n, first_chain=first, target=target, **kwargs)


def _on_cluster(kwargs, first, n, target, client, progress):
    ranges = schedule.split(n, CLUSTER_MIN_CHAINS, client)
    parts = [None] * len(ranges)

    def combine(i, res):
        parts[i] = res

    schedule.run_on_cluster(client, _chain_range, [(kwargs, first + a, b - a, target) for a, b in ranges],
                            [b - a for a, b in ranges], combine, progress, "chains", "chains")  # fmt: skip
    result = parts[0]
    for p in parts[1:]:
        result = result.merge(p)
    result.meta["target"] = "+".join(sorted({p.meta["target"] for p in parts}))
    return result

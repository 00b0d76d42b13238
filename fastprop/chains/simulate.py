"""``simulate_chains``: Monte-Carlo estimates of the law of ‖x_ℓ‖ for random networks."""

from __future__ import annotations

import functools
import math
import numbers
import time

import numpy as np
from numba import get_num_threads

from .. import _validate
from .._version import __version__
from ..activations import activation as _activation
from ..run import resources as _resources
from ..run import schedule
from ..run.progress import make as _progress
from ..run.targets import check_target, n_chunks, resolve_target
from . import exactsum
from .common import DENSE, INVARIANT, METHODS, NBINS, WEIGHTS
from .compiled import chain_kernel, stats_kernel
from .result import COUNTS, ChainResult, empty_result

__all__ = ["simulate_chains"]

MAX_BATCH = 1 << 20
BATCH_SECONDS = 1.0
"""Without ``batch_size`` the CPU targets run batches of about this long (a KeyboardInterrupt
takes effect between batches); the first has one chain per thread (:func:`first_timed_batch`)
and each next one at most 8× its predecessor. A single chain is never cut: one that takes
minutes (depth 10⁹) delays an interrupt by that long."""


def first_timed_batch(target):
    """Chains in the first batch sized by time: one per thread of ``target``."""
    return 1 if target == "cpu" else get_num_threads()


CLUSTER_MIN_CHAINS = 1 << 16
"""The smallest range of chains worth a Dask task."""

MAX_CHAINS = 1 << 63
"""Chain indices are 63-bit: first_chain + n_chains ≤ 2⁶³."""


def _choice(value, name, allowed):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {allowed}; got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
    return value


def _layers(layers, depth):
    if layers is None:
        return np.array([depth], np.int64)
    if isinstance(layers, (numbers.Integral, np.integer)) and not isinstance(layers, bool):
        layers = [layers]
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise TypeError(f"layers must be an int or a sequence of ints, got {type(layers).__name__}")
    out = []
    for given in layers:
        if isinstance(given, (bool, np.bool_)) or not isinstance(given, (numbers.Integral, np.integer)):
            raise TypeError(f"layers must be ints in [0, depth={depth}], got {given!r}")
        v = int(given)
        if v < 0:
            v += depth + 1
        if not 0 <= v <= depth:
            raise ValueError(
                f"layers must lie in [0, depth={depth}] (or be negative indices ≥ {-depth - 1}), got {int(given)}"
            )
        out.append(v)
    if not out:
        raise ValueError("layers must name at least one layer")
    return np.array(sorted(set(out)), np.int64)


def _thresholds(thresholds):
    t = _validate.real_array(thresholds, "thresholds", low=0.0, low_open=True).reshape(-1)
    if t.size == 0:
        raise ValueError("thresholds must hold at least one t > 0")
    return np.array(sorted(set(t.tolist())), np.float64)


def chain_range(width, depth, n_chains, first_chain, seed):
    """(d, L, n, first, seed) checked: a width ≥ 1, a depth ≥ 0, n ≥ 1 chains from first_chain ≥ 0
    with 63-bit indices, and a 64-bit seed."""
    d = _validate.positive_int(width, "width")
    L = _validate.positive_int(depth, "depth", low=0)
    n = _validate.positive_int(n_chains, "n_chains")
    first = _validate.positive_int(first_chain, "first_chain", low=0)
    seed = _validate.positive_int(seed, "seed", low=0)
    if seed >= 1 << 64:
        raise ValueError(f"seed must be < 2**64, got {seed}")
    if first + n > MAX_CHAINS:
        raise ValueError(f"first_chain + n_chains must be ≤ 2**63, got {first + n}")
    return d, L, n, first, seed


def _input(x0, d):
    """The input vector: ``x0`` checked, or the default unit vector (1, …, 1)/√d."""
    if x0 is None:
        return np.full(d, 1.0 / math.sqrt(d))
    x0v = _validate.real_array(x0, "x0")
    if x0v.shape != (d,):
        raise ValueError(f"x0 must have shape (width,) = ({d},), got {x0v.shape}")
    return np.ascontiguousarray(x0v)


def _batch(batch_size, n, n_layers):
    """Chains per batch; negative: sized by time, up to its absolute value."""
    if batch_size is None:
        return -min(n, MAX_BATCH, max(1024, (1 << 22) // n_layers))
    return min(_validate.positive_int(batch_size, "batch_size"), MAX_BATCH)


def _dtype(dtype):
    """The name of a chain working dtype: "float64" or "float32"."""
    try:
        name = np.dtype(dtype).name
    except Exception:  # NumPy's dtype parser raises TypeError, ValueError, even SyntaxError
        raise TypeError(f"dtype must be 'float64' or 'float32', got {dtype!r}") from None
    if name not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return name


def simulate_chains(
    width=10,
    depth=100,
    n_chains=10**6,
    activation="linear",
    sigma_w=1.0,
    sigma_b=0.0,
    weights="gaussian",
    method="auto",
    layers=None,
    thresholds=(0.01, 10.0),
    seed=0,
    first_chain=0,
    target="auto",
    client=None,
    *,
    rms_norm=False,
    x0=None,
    keep_norms=False,
    batch_size=None,
    progress=False,
    dtype="float64",
) -> ChainResult:
    """Simulate ``n_chains`` random networks and collect statistics of ‖x_ℓ‖.

    Chain ``i`` (``first_chain ≤ i < first_chain + n_chains``) is the network
    ``h_ℓ = W_ℓ x_{ℓ-1} + b_ℓ``, ``x_ℓ = φ(h_ℓ)``, ℓ = 1..depth, drawn from the
    counter-based stream (seed, i) of :mod:`fastprop.chains.rng`; samplers and their
    exactness are described in :mod:`fastprop.chains`.

    Parameters
    ----------
    width, depth : int
        d ≥ 1 and L ≥ 0.
    n_chains : int
        Number of chains (≥ 1); memory does not grow with it.
    activation : str or Activation
        Any built-in or registered activation.
    sigma_w, sigma_b : float
        Weight and bias standard deviations (W entries N(0, σ_w²/d); b ~ N(0, σ_b²)).
    weights : {"gaussian", "orthogonal"}
        Gaussian entries, or σ_w times a Haar-orthogonal matrix.
    method : {"auto", "dense", "invariant"}
        Sampler; "auto" is "invariant" (exact and fastest for every request).
    layers : int or sequence of int, optional
        Depths ℓ to record (0..depth; negative counts from depth); default: depth.
    thresholds : sequence of float > 0
        t with exact counts of ‖x_ℓ‖ > t and ‖x_ℓ‖ < t.
    seed : int
        0 ≤ seed < 2⁶⁴.
    first_chain : int
        Index of the first chain; disjoint ranges merge exactly (``ChainResult.merge``).
    target : {"auto", "cpu", "parallel", "cuda"}
        Results do not depend on it ("cuda": see :mod:`fastprop.chains.cuda`
        for the last-ulp caveat of GPU math); "auto" is "cuda" where a GPU is
        usable, else "parallel".
    client : dask.distributed.Client or str, optional
        Run consecutive ranges of chains on a Dask cluster (a client or a
        scheduler address) and merge them; bitwise the local result
        (:mod:`fastprop.run.distributed`). ``target`` is resolved on each worker.
    rms_norm : bool
        Apply x ← x/‖x‖_rms after every layer; the recorded norm is the one
        before normalisation.
    x0 : array of shape (width,), optional
        The input; default the unit vector (1, …, 1)/√d. (For both weight laws
        only ‖x0‖ matters.)
    keep_norms : bool
        Also keep every recorded log‖x_ℓ‖ (n_chains values a layer) for exact
        quantiles and arbitrary thresholds.
    batch_size : int, optional
        Chains per batch; results do not depend on it.
    progress : bool or tqdm bar (:mod:`fastprop.run.progress`)
        Show a progress bar over the batches on stderr (only on a terminal).
    dtype : {"float64", "float32"}
        Precision of each chain's working vectors (x, h, the weight normals)
        and of the matrix–vector product; norms, logs and every statistic stay
        float64, and the random streams are the same. "float32" is an opt-in
        for GPUs, where it halves the dense sampler's per-thread memory (d² + d
        values) and uses single-precision arithmetic (on the CPU it gains
        nothing: drawing the normals dominates). Accuracy against the float64
        twin chain (same streams), tested: median |Δ log‖x_ℓ‖| ≤ ℓ·√d·2⁻²⁴,
        99 % of chains within 4× that (rare chains whose W nearly annihilates
        x lose more), far below any Monte-Carlo interval; in the chaotic phase
        (χ_1 > 1) single chains drift apart as rounding is amplified like any
        perturbation, while the law of ‖x_ℓ‖ is unchanged. A parameter of the
        result: float32 and float64 runs do not merge.

    Returns
    -------
    ChainResult

    Example
    -------
    >>> import fastprop as fp
    >>> r = fp.simulate_chains(width=10, depth=100, n_chains=10**5, seed=1)
    >>> t = r.tail_probability(10.0)          # P(‖x_100‖ > 10) with a 95 % interval
    """
    d, L, n, first, seed = chain_range(width, depth, n_chains, first_chain, seed)
    act = _activation(activation)
    _ = act.fingerprint  # computed here, so that a copy sent to a Dask worker carries it
    sw = _validate.real_scalar(sigma_w, "sigma_w", low=0.0)
    sb = _validate.real_scalar(sigma_b, "sigma_b", low=0.0)
    weights = _choice(weights, "weights", WEIGHTS)
    method = _choice(method, "method", METHODS)
    _validate.boolean(rms_norm, "rms_norm")
    _validate.boolean(keep_norms, "keep_norms")
    rec = _layers(layers, L)
    thr = _thresholds(thresholds)
    dtype = _dtype(dtype)
    check_target(target)
    tgt = resolve_target(target) if client is None else target
    x0v = _input(x0, d)
    batch = _batch(batch_size, n, rec.size)
    _resources.require(
        chain_memory(d, L, rec.size, n if keep_norms else 0, abs(batch), method == "dense", weights, dtype, tgt),
        f"simulate_chains(width={d}, depth={L}, {rec.size} recorded layers{', keep_norms' if keep_norms else ''})",
    )
    if client is not None:
        kwargs = dict(
            width=d, depth=L, activation=act, sigma_w=sw, sigma_b=sb, weights=weights, method=method,
            layers=rec.tolist(), thresholds=thr.tolist(), seed=seed, rms_norm=rms_norm, x0=x0,
            keep_norms=keep_norms, batch_size=batch_size, dtype=dtype,
        )  # fmt: skip
        with schedule.cluster(client) as cl:
            return _chains_on_cluster(kwargs, first, n, target, cl, progress)

    return _run_here(
        act, d, L, n, first, seed, sw, sb, weights, method, rec, thr, rms_norm, x0, x0v, keep_norms, batch, progress,
        dtype, tgt,
    )  # fmt: skip


def _run_here(
    act, d, L, n, first, seed, sw, sb, weights, method, rec, thr, rms_norm, x0, x0v, keep_norms, batch, progress,
    dtype, tgt,
):  # fmt: skip
    """The local part of :func:`simulate_chains`, on validated arguments and a concrete target."""
    resolved = "dense" if method == "dense" else "invariant"
    tracked = act.homogeneous and sb == 0.0
    pos_sq = float(act.eval3(1.0)[0]) ** 2
    neg_sq = float(act.eval3(-1.0)[0]) ** 2
    params = {
        "width": d,
        "depth": L,
        "activation": act.name,
        "activation_fingerprint": act.fingerprint,
        "sigma_w": sw,
        "sigma_b": sb,
        "weights": weights,
        "method": resolved,
        "rms_norm": rms_norm,
        "seed": seed,
        "x0": x0v.tolist() if x0 is not None else None,
        "keep_norms": keep_norms,
        "dtype": dtype,
    }
    meta = {"fastprop_version": __version__, "target": tgt, "log_tracked": tracked}
    result = empty_result(params, rec, thr, first, n, keep_norms, meta)

    tlog = np.log(thr)
    code = DENSE if resolved == "dense" else INVARIANT
    if tgt == "cuda":
        from .cuda import run_batches

        batch = abs(batch)  # GPU batches are sized by count (each takes well under a second)
    else:
        run_batches = functools.partial(_run_batches_cpu, tgt)
    bar = _progress(progress, n, "chains", "chains")
    try:
        run_batches(
            result, act, batch, rec, first, n, seed, d, L, sw, sb, x0v, code,
            weights == "orthogonal", tracked, rms_norm, pos_sq, neg_sq, tlog, keep_norms, bar, dtype,
        )  # fmt: skip
    finally:
        bar.close()
    return result


def chain_memory(d, L, n_layers, n_kept, batch, dense, weights, dtype, target, results=1):
    """Bytes a chain run allocates: ``results`` sets of statistics (histogram, counts
    and exact sums per recorded layer), kept norms, one batch of
    recorded log-norms, and each concurrent thread's work space (the dense sampler
    holds d² + d normals and, for orthogonal weights, a d × d basis)."""
    stats = n_layers * (8 * (NBINS + 2) + 8 * 4 + 16 * 2 + 8 * 3 * exactsum.NLIMB)
    item = np.dtype(dtype).itemsize
    per_thread = (d * d + d + (d * d if weights == "orthogonal" else 1) if dense else 2 * d + 1) + 2 * d
    threads = 1 if target == "cpu" else get_num_threads()
    work = 0 if target == "cuda" else threads * per_thread * item
    return results * stats + 8 * n_layers * (n_kept + batch + 1) + work


def _run_batches_cpu(
    tgt, result, act, batch, rec, first, n, seed, d, L, sw, sb, x0, code, ortho, tracked, rms, pos_sq, neg_sq, tlog,
    keep_norms, bar, dtype,
):  # fmt: skip
    """Chains [first, first + n) on a CPU target in batches, folded into ``result``
    (the counterpart of :func:`fastprop.chains.cuda.run_batches`)."""
    run = chain_kernel(act, tgt, dtype)
    update = stats_kernel(tgt)
    stats = [getattr(result, k) for k in COUNTS]

    def step(done, nb):
        out = np.empty((result.layers.size, nb))
        run(out, rec, first + done, nb, np.uint64(seed), d, L, sw, sb, x0, code, ortho, tracked, rms, pos_sq, neg_sq,
            n_chunks(nb, tgt))  # fmt: skip
        update(out, nb, tlog, *stats)
        if keep_norms:
            result.norms[:, done : done + nb] = out

    timed_batches(tgt, n, batch, step, bar)


def timed_batches(tgt, n, batch, step, bar):
    """Call ``step(done, nb)`` for consecutive batches of n items. A negative ``batch`` sizes them
    by time (``BATCH_SECONDS``, at most −batch; :data:`BATCH_SECONDS`), so a KeyboardInterrupt
    takes effect within seconds; results do not depend on the sizes."""
    timed = batch < 0
    cap = -batch if timed else batch
    nb_next = min(first_timed_batch(tgt), cap) if timed else batch
    done = 0
    while done < n:
        nb = min(nb_next, n - done)
        t0 = time.perf_counter()
        step(done, nb)
        if timed and nb == nb_next:
            rate = nb / max(time.perf_counter() - t0, 1e-6)
            nb_next = int(min(max(1, rate * BATCH_SECONDS), 8 * nb, cap))
        done += nb
        bar.advance(nb)


# ------------------------------------------------------------------ units of work on a cluster
def _chain_range(kwargs, first, n, target):
    """One unit of work: the chains [first, first + n) (run on a Dask worker)."""
    return simulate_chains(n_chains=n, first_chain=first, target=target, **kwargs)


def _chains_on_cluster(kwargs, first, n, target, client, progress):
    """Consecutive chain ranges on ``client``, merged exactly (in chain order)."""
    kwargs = dict(kwargs, activation=schedule.activation_ref(kwargs["activation"]))
    ranges = schedule.split(n, CLUSTER_MIN_CHAINS, client)
    parts = [None] * len(ranges)

    def combine(i, res):
        parts[i] = res

    schedule.run_on_cluster(
        client, _chain_range, [(kwargs, first + a, b - a, target) for a, b in ranges], [b - a for a, b in ranges],
        combine, progress, "chains", "chains",
    )  # fmt: skip
    result = parts[0]
    for p in parts[1:]:
        result = result.merge(p)
    result.meta["target"] = "+".join(sorted({p.meta["target"] for p in parts}))
    return result

"""``rare_tail``: P(‖x_L‖ > t) or P(‖x_L‖ < t) far below 1/n, to a requested relative error.

Methods (``method="auto"`` picks the first that applies):

``"exact"``
    The norm is deterministic: depth 0, σ_w = σ_b = 0, or orthogonal weights with
    σ_b = 0 and |φ(h)| = |h| (linear, abs: ‖x_L‖ = σ_w^L). p is 0 or 1.
``"tilt"``
    Gaussian weights, σ_b = 0, φ = linear, abs or relu: the layer gains are independent
    χ² factors (relu: a binomial mixture) and each is drawn from its exponentially tilted
    law at the saddle point of the threshold, with exact likelihood ratios
    (:mod:`fastprop.rare.tilt`). Logarithmically efficient; ReLU's zero atom (every unit
    of a layer off) is exact: P(‖x_L‖ = 0) = 1 − (1 − 2^−d)^L. Runs on every target
    and on Dask.
``"splitting"``
    Everything else (tanh, erf, gelu, …, biases, orthogonal weights): fixed-effort
    generalized splitting with pCN moves in the space of the network's normals
    (:mod:`fastprop.rare.splitting`), levels from a pilot run, and the interval from
    independent runs. A fixed tilt is not efficient once the recursion has an additive
    part (Blanchet, Lam & Zwart 2012, on perpetuities), and the per-layer gains are
    then neither independent nor of known law; splitting needs neither. Measured
    (benchmarks/README.md): for tanh (σ_w = 1.5, σ_b = 0.3), width 10, depth 100, both
    tails near 1e-8, one run of 1000 particles has a relative standard deviation of
    about 0.26 for ~60 000 networks, so 32 runs give ±10 % with 2·10⁶ networks where
    plain Monte Carlo needs 3–6·10¹⁰ (1.6–2.8·10⁴ times the work); its work grows like
    log(1/p)², plain Monte Carlo's like 1/p. Its runs are
    independent and run on CPU threads (one run a thread) and on Dask workers; a run
    is a population of particles that branch and die, a poor fit for a GPU, so it
    does not run on the CUDA target ("auto" runs it on the CPU threads).

Stopping and the randomness contract: the work is done in stages at sizes fixed by
the statistics so far (blocks of ``TILT_BLOCK`` chains or ``RUN_BLOCK`` runs), each
chain or run on its own stream, and the statistics are exact sums (tilt) or the
per-run values in run order (splitting). So an estimate depends only on (seed, the
parameters, ``rel_error``, ``max_chains``): not on the target, threads or Dask split.
"""

from __future__ import annotations

import math

import numpy as np
from numba import get_num_threads

from .. import _validate
from ..activations import activation as _activation
from ..chains import exact, exactsum, rng
from ..chains.common import WEIGHTS
from ..chains.simulate import _choice
from ..run import resources as _resources
from ..run import schedule
from ..run.progress import make as _progress
from ..run.targets import check_target, n_chunks, resolve_target
from .result import RareTailEstimate
from .tilt import TiltPlan, fold, weights_parallel, weights_serial

__all__ = ["rare_tail", "METHODS", "SIDES"]

METHODS = ("auto", "tilt", "splitting")
SIDES = ("upper", "lower")
TILTABLE = ("linear", "abs", "relu")
DEFAULT_MAX_CHAINS = 10**8
TILT_BLOCK = 1 << 14
"""Tilted chains are run in stages of whole blocks of this many chains."""
RUN_BLOCK = 16
"""Splitting runs are run in stages of whole blocks of this many independent runs."""
MIN_RUNS = 2 * RUN_BLOCK
"""The fewest splitting runs behind an interval (the first stage)."""
MIN_HITS = 30
"""The fewest tilted chains in the event behind an interval."""
SPLIT_STREAM = np.uint64((1 << 62) + (1 << 61))
"""Splitting run r reads the stream (seed, SPLIT_STREAM + r); the pilot reads SPLIT_STREAM − 1."""
P0 = 0.1
"""The pilot's levels are (1 − P0) quantiles: each level is passed by about P0 of the particles."""
MAX_LEVELS = 1000
MOVES = 5
"""pCN moves per particle and level."""
PARTICLE_BYTES = 16 << 20
"""The default particle count keeps a run's two populations of normals within this."""
_Z95 = 1.959963984540054


def rare_tail(
    width=10,
    depth=100,
    threshold=1e3,
    side="upper",
    activation="linear",
    sigma_w=1.0,
    sigma_b=0.0,
    weights="gaussian",
    method="auto",
    rel_error=0.1,
    max_chains=None,
    seed=0,
    target="auto",
    client=None,
    *,
    particles=None,
    moves=MOVES,
    progress=False,
) -> RareTailEstimate:
    """P(‖x_L‖ > t) (``side="upper"``) or P(‖x_L‖ < t) (``"lower"``) for a width-d,
    depth-L random network from a unit x₀ (DESIGN §1), by importance sampling or
    splitting (see :mod:`fastprop.rare.estimate` for the methods and where each runs),
    run until the 95 % interval is within ±``rel_error``·p (the estimated relative
    standard error at most rel_error/1.96) or ``max_chains`` networks have been evaluated.

    Parameters
    ----------
    width, depth : int
        d ≥ 1, L ≥ 0.
    threshold : float
        t > 0.
    side : {"upper", "lower"}
        The tail: ‖x_L‖ > t or ‖x_L‖ < t (the latter includes ‖x_L‖ = 0).
    activation, sigma_w, sigma_b, weights
        The network, as in :func:`fastprop.simulate_chains`.
    method : {"auto", "tilt", "splitting"}
        "auto": exact where the norm is deterministic, else "tilt" where it applies,
        else "splitting".
    rel_error : float
        The target half-width of the 95 % interval relative to p, in (0, 1): 0.1 asks for
        ±10 % (the meaning of :attr:`fastprop.TailEstimate.rel_error`).
    max_chains : int, optional
        The most networks to evaluate (default 10⁸); the first stage always runs.
    seed : int
        0 ≤ seed < 2⁶⁴.
    target : {"auto", "cpu", "parallel", "cuda"}
        Where the tilted chains run ("cuda" only for "tilt"; "auto" is the GPU where
        one is usable, else "parallel"). The estimate does not depend on it.
    client : dask.distributed.Client or str, optional
        Run each stage's chains or runs on a Dask cluster; bitwise the local estimate.
    particles : int, optional
        Splitting: particles per run (≥ 20; default 1000, fewer where a run's normals
        would pass 16 MiB).
    moves : int
        Splitting: pCN moves per particle and level (≥ 1).
    progress : bool or tqdm bar
        A bar over the networks evaluated.

    Returns
    -------
    RareTailEstimate

    Example
    -------
    >>> import fastprop as fp
    >>> e = fp.rare_tail(width=10, depth=100, threshold=1e3)   # ≈ 4.6e-8, to ±10 %
    >>> e.ci_low < fp.exact.chain_norm(10, 100).sf(1e3) < e.ci_high
    True
    """
    d = _validate.positive_int(width, "width")
    L = _validate.positive_int(depth, "depth", low=0)
    t = float(_validate.real_scalar(threshold, "threshold", low=0.0, low_open=True))
    side = _choice(side, "side", SIDES)
    act = _activation(activation)
    _ = act.fingerprint  # computed here, so that a copy sent to a Dask worker carries it
    sw = _validate.real_scalar(sigma_w, "sigma_w", low=0.0)
    sb = _validate.real_scalar(sigma_b, "sigma_b", low=0.0)
    weights = _choice(weights, "weights", WEIGHTS)
    method = _choice(method, "method", METHODS)
    rel = float(_validate.real_scalar(rel_error, "rel_error", low=0.0, low_open=True, high=1.0))
    if rel == 1.0:
        raise ValueError("rel_error must be < 1 (the 95 % interval's half-width relative to p), got 1.0")
    rel_se = rel / _Z95  # the target relative standard error
    cap = DEFAULT_MAX_CHAINS if max_chains is None else _validate.positive_int(max_chains, "max_chains")
    seed = _validate.integer(seed, "seed", low=0, high=2**64 - 1)
    check_target(target)
    bias_normals = weights == "orthogonal" and sb > 0
    m = _validate.positive_int(moves, "moves")
    if particles is not None:
        _validate.positive_int(particles, "particles", low=20)
    params = dict(
        width=d, depth=L, threshold=t, side=side, activation=act.name, sigma_w=sw, sigma_b=sb, weights=weights,
        seed=seed, rel_error=rel, max_chains=cap,
    )  # fmt: skip
    upper = side == "upper"

    log_norm = _deterministic_log_norm(act, d, L, sw, sb, weights)
    tiltable = weights == "gaussian" and sb == 0.0 and sw > 0.0 and act.name in TILTABLE
    if method == "tilt" and not tiltable:
        raise ValueError(
            "method='tilt' needs Gaussian weights, sigma_b = 0, sigma_w > 0 and activation linear, abs or relu "
            f"(independent layer gains); got weights={weights!r}, sigma_b={sb:g}, activation={act.name!r}"
        )
    if log_norm is not None:  # whatever the method
        return _exact(log_norm, math.log(t), upper, params)
    if method == "tilt" or (method == "auto" and tiltable):
        tgt = resolve_target(target) if client is None else target
        return _tilted(exact.chain_norm(d, L, act.name, sw), t, upper, rel_se, cap, seed, tgt, client, progress, params)
    if target == "cuda":
        raise ValueError(
            "splitting runs on CPU threads and Dask workers, not on the CUDA target (its runs are populations that "
            "branch and die); use target='auto', 'cpu' or 'parallel'"
        )
    tgt = ("parallel" if target in ("auto", "cuda") else target) if client is None else target
    n_part = _particles(particles, L, d, bias_normals, 1 if tgt == "cpu" else get_num_threads())
    return _splitting(act, d, L, sw, sb, weights == "orthogonal", t, upper, rel_se, cap, seed, tgt, client, n_part, m,
                      progress, params)  # fmt: skip


# ------------------------------------------------------------------ checks and the exact case
def _particles(particles, L, d, bias_normals, threads):
    """The particles of a splitting run (default: 1000, fewer where a run's two populations of
    normals would pass PARTICLE_BYTES), refused before any work when the runs that go at once
    (one a thread) would not fit in memory."""
    dim = max(1, L * (2 * d if bias_normals else d))
    if particles is None:
        n = int(min(1000, max(20, PARTICLE_BYTES // (16 * dim))))
    else:
        n = _validate.positive_int(particles, "particles", low=20)
    at_once = min(threads, MIN_RUNS)
    _resources.require(16 * n * dim * at_once, f"rare_tail splitting: {at_once} runs of {n} particles of {dim} normals")
    return n


def _deterministic_log_norm(act, d, L, sw, sb, weights):
    """log‖x_L‖ where it is not random, else None."""
    if L == 0:
        return 0.0
    if sw == 0.0 and sb == 0.0:
        phi0 = abs(float(act.eval3(0.0)[0]))
        return 0.5 * math.log(d) + math.log(phi0) if phi0 > 0 else -math.inf
    if weights == "orthogonal" and sb == 0.0 and act.name in ("linear", "abs"):
        return L * math.log(sw) if sw > 0 else -math.inf
    return None


def _exact(log_norm, log_t, upper, params):
    """A deterministic norm, compared with t in logs (σ_w^L exactly, not exp(L log σ_w))."""
    p = 1.0 if (log_norm > log_t if upper else log_norm < log_t) else 0.0
    return RareTailEstimate(
        p=p, ci_low=p, ci_high=p, rel_error=0.0, rel_std_error=0.0, n=0, method="exact", converged=True,
        log10_p=0.0 if p else -math.inf, speedup=math.inf, diagnostics={"log_norm": log_norm}, params=params,
    )  # fmt: skip


def _estimate(log_p, rel, n, method, converged, diagnostics, params, z=_Z95):
    """The estimate from log p and its relative standard error ``rel``; the interval is
    p(1 ± z·rel) (z: the normal's or, for few splitting runs, Student's 97.5 % point)."""
    p = math.exp(log_p) if log_p > -math.inf else 0.0
    half = z * rel
    lo = p * max(0.0, 1.0 - half) if math.isfinite(rel) else 0.0
    hi = min(1.0, p * (1.0 + half)) if math.isfinite(rel) else 1.0
    if log_p > -math.inf and math.isfinite(rel) and rel > 0 and p < 1.0:
        # in logs: p may lie below the smallest double (then the ratio is astronomically large)
        log_speedup = math.log1p(-p) - log_p - 2.0 * math.log(rel) - math.log(max(n, 1))
        speedup = math.exp(min(log_speedup, 709.0)) if log_speedup < 709.0 else math.inf
    else:
        speedup = math.nan if log_p == -math.inf else math.inf
    return RareTailEstimate(
        p=min(p, 1.0), ci_low=lo, ci_high=hi, rel_error=half, rel_std_error=rel, n=int(n), method=method,
        converged=converged, log10_p=log_p / math.log(10.0), speedup=speedup, diagnostics=diagnostics, params=params,
    )  # fmt: skip


def _nothing_reached(ci_high, n, diagnostics, params):
    """Splitting found no network in the event: p̂ = 0, and ``ci_high`` a rough bound."""
    return RareTailEstimate(
        p=0.0, ci_low=0.0, ci_high=min(1.0, ci_high), rel_error=math.inf, rel_std_error=math.inf, n=int(n),
        method="splitting", converged=False, log10_p=-math.inf, speedup=math.nan, diagnostics=diagnostics,
        params=params,
    )


def _next_size(done, rel, target_rel, block, cap, ok):
    """The size of the run after the next stage: enough for ``target_rel`` by the
    variance so far (at most 8× and at least one block more), in whole blocks."""
    need = done * (rel / target_rel) ** 2 * 1.05 if (ok and math.isfinite(rel)) else 8 * done
    size = max(done + block, min(8 * done, math.ceil(need)))
    return min(cap, block * math.ceil(size / block))


# ------------------------------------------------------------------ tilt
def _tilt_sums(plan, first, n, seed, target, batch=1 << 20):
    """Σw, Σw² (exact accumulators) and hits of the tilted chains [first, first + n)."""
    sums = np.zeros((2, exactsum.NLIMB), np.int64)
    hits = 0
    if target == "cuda":
        from .cuda import tilt_weights

        for a in range(0, n, batch):
            out = tilt_weights(plan, first + a, min(batch, n - a), seed)
            hits += fold(out, out.shape[0], sums)
        return sums, hits
    out = np.empty(min(batch, n))
    for a in range(0, n, batch):
        nb = min(batch, n - a)
        args = (out, first + a, nb, np.uint64(seed), *plan.args)
        if target == "parallel":
            weights_parallel(*args, n_chunks(nb, target))
        else:
            weights_serial(*args)
        hits += fold(out, nb, sums)
    return sums, hits


def _tilt_task(law_args, log_t, upper, first, n, seed, target):
    """One unit of work on a Dask worker: the tilted chains [first, first + n)."""
    plan = TiltPlan(exact.chain_norm(*law_args), log_t, upper)
    return _tilt_sums(plan, first, n, seed, resolve_target(target))


def _tilted(law, t, upper, rel_target, cap, seed, target, client, progress, params):
    plan = TiltPlan(law, math.log(t), upper)
    atom = law.atom
    sums = np.zeros((2, exactsum.NLIMB), np.int64)
    hits = done = 0
    bar = _progress(progress, None, "rare tail (tilt)", "chains")
    law_args = (law.width, law.depth, law.activation, law.sigma_w)
    rel = math.inf
    try:
        size = min(cap, TILT_BLOCK)
        while True:
            n = size - done
            if client is None:
                s, h = _tilt_sums(plan, done, n, seed, target)
                parts = [(s, h)]
            else:
                head = (law_args, math.log(t), upper)
                parts = _on_cluster(client, _tilt_task, head, done, n, 1 << 16, (seed, target))
            for s, h in parts:
                sums += s
                hits += h
            exactsum.normalize(sums[0])
            exactsum.normalize(sums[1])
            done = size
            log_p, rel = _tilt_value(plan, sums, hits, done, atom, upper)
            bar.advance(n, _note(log_p, rel))
            ok = hits >= MIN_HITS
            if (ok and rel <= rel_target) or done >= cap:
                break
            size = _next_size(done, rel, rel_target, TILT_BLOCK, cap, ok)
    finally:
        bar.close()
    s1, s2 = exactsum.value(sums[0]), exactsum.value(sums[1])
    diagnostics = dict(
        theta=plan.theta.tolist(), log_ref=plan.log_ref, hits=int(hits), ess=s1 * s1 / s2 if s2 > 0 else 0.0, atom=atom,
    )  # fmt: skip
    return _estimate(log_p, rel, done, "tilt", bool(hits >= MIN_HITS and rel <= rel_target), diagnostics, params)


def _tilt_value(plan, sums, hits, n, atom, upper):
    """(log p, relative standard error) from the exact sums of n tilted chains."""
    s1, s2 = exactsum.value(sums[0]), exactsum.value(sums[1])
    if hits == 0:
        cond, rel_c = -math.inf, math.inf
    else:
        mean = s1 / n
        var = max(0.0, (s2 - n * mean * mean) / (n - 1)) if n > 1 else math.inf
        cond = plan.log_ref + math.log(mean)  # log P(event | ‖x_L‖ > 0)
        rel_c = math.sqrt(var / n) / mean
    if atom == 0.0:
        return cond, rel_c
    log_cont = math.log1p(-atom) + cond
    if upper:
        return log_cont, rel_c
    log_p = float(np.logaddexp(math.log(atom), log_cont))
    return log_p, (rel_c * math.exp(log_cont - log_p) if hits else math.inf)


# ------------------------------------------------------------------ splitting
def _splitting_runs(act, d, L, sw, sb, ortho, sign, levels, steps, first, count, seed, target, N, m):
    """Independent fixed-level runs [first, first + count): (log p̂ per run, stats per run)."""
    from .compiled import splitting_kernels

    kern = splitting_kernels(act, target)
    log_p = np.empty(count)
    stats = np.zeros((count, 4), np.int64)
    nb = d if (ortho and sb > 0.0) else 0
    kern.replicas(log_p, stats, first, np.uint64(seed), SPLIT_STREAM, levels, steps, N, m, L, d, nb, sw, sb, ortho,
                  sign)  # fmt: skip
    return log_p, stats


def _splitting_task(act, d, L, sw, sb, ortho, sign, levels, steps, first, count, seed, target, N, m):
    """One unit of work on a Dask worker: splitting runs [first, first + count)."""
    tgt = "parallel" if target in ("auto", "cuda") else target
    return _splitting_runs(_activation(act), d, L, sw, sb, ortho, sign, levels, steps, first, count, seed, tgt, N, m)


def _pilot(kern, d, L, sw, sb, ortho, sign, target, seed, N, m):
    """Levels of ±log‖x_L‖ and pCN steps from an adaptive run (stream SPLIT_STREAM − 1):
    (levels, steps, log p̂ of the levels reached, evaluations, whether they reached the threshold)."""
    st = np.empty(rng.STREAM_SIZE, np.uint64)
    rng.stream_init(st, np.uint64(seed), SPLIT_STREAM - np.uint64(1))
    levels = np.empty(MAX_LEVELS)
    steps = np.empty(MAX_LEVELS)
    stats = np.zeros(4, np.int64)
    nb = d if (ortho and sb > 0.0) else 0
    log_p = kern.run_levels(st, levels, steps, True, target, N, m, P0, L, d, nb, sw, sb, ortho, sign, stats)
    reached = bool(stats[0] != kern.STAGNATED and log_p > -math.inf)
    count = int(stats[0]) if reached else 0
    return levels[:count].copy(), steps[:count].copy(), log_p, int(stats[1]), reached


def _splitting(act, d, L, sw, sb, ortho, t, upper, rel_target, cap, seed, target, client, N, m, progress, params):
    from .compiled import splitting_kernels

    sign = 1.0 if upper else -1.0
    goal = sign * math.log(t)
    kern = splitting_kernels(act, target if target in ("cpu", "parallel") else "parallel")
    levels, steps, pilot_log_p, work, reached = _pilot(kern, d, L, sw, sb, ortho, sign, goal, seed, N, m)
    diagnostics = dict(particles=N, moves=m, pilot_log_p=pilot_log_p)
    if not reached:
        note = "the pilot's levels stopped rising before the threshold"
        diagnostics.update(levels=levels.tolist(), runs=0, note=note)
        return _nothing_reached(math.exp(pilot_log_p), work, diagnostics, params)
    log_ps = np.empty(0)
    stats = np.zeros((0, 4), np.int64)
    bar = _progress(progress, None, "rare tail (splitting)", "networks")
    per_run = work  # the pilot's cost: the estimate of a run's
    rel = math.inf
    try:
        size = MIN_RUNS
        while True:
            count = size - log_ps.size
            args = (act, d, L, sw, sb, ortho, sign, levels, steps)
            if client is None:
                parts = [_splitting_runs(*args, log_ps.size, count, seed, target, N, m)]
            else:
                ref = (schedule.activation_ref(act),) + args[1:]
                parts = _on_cluster(client, _splitting_task, ref, log_ps.size, count, 1, (seed, target, N, m))
            for lp, st in parts:
                log_ps = np.concatenate([log_ps, lp])
                stats = np.concatenate([stats, st])
            work_now = work + int(stats[:, 1].sum())
            log_p, rel = _mean_of_runs(log_ps)
            bar.advance(int(stats[-count:, 1].sum()), _note(log_p, rel))
            per_run = max(1, int(stats[:, 1].sum()) // log_ps.size)
            ok = log_ps.size >= MIN_RUNS
            if ok and _t95(log_ps.size) * rel <= _Z95 * rel_target:
                break
            size = _next_size(log_ps.size, rel, rel_target, RUN_BLOCK, 10**9, ok)
            size = min(size, log_ps.size + (cap - work_now) // per_run // RUN_BLOCK * RUN_BLOCK)
            if size <= log_ps.size:
                break
    finally:
        bar.close()
    totals = stats.sum(axis=0)
    diagnostics.update(
        levels=levels.tolist(), runs=int(log_ps.size), acceptance=_ratio(totals[2], totals[3]),
        zero_runs=int(np.sum(log_ps == -math.inf)),
    )  # fmt: skip
    converged = bool(log_ps.size >= MIN_RUNS and _t95(log_ps.size) * rel <= _Z95 * rel_target)
    if log_p == -math.inf:
        diagnostics["note"] = "every run died before the threshold"
        return _nothing_reached(3.0 / log_ps.size * math.exp(pilot_log_p), work_now, diagnostics, params)
    return _estimate(log_p, rel, work_now, "splitting", converged, diagnostics, params, _t95(log_ps.size))


def _t95(runs):
    """Student's 97.5 % point for the mean of ``runs`` independent runs."""
    from scipy import stats

    return float(stats.t.ppf(0.975, max(runs - 1, 1)))


def _note(log_p, rel):
    """The progress bar's note: the estimate so far and its 95 % half-width."""
    return f"p≈{math.exp(log_p):.3g} ±{_Z95 * rel:.2g}"


def _ratio(a, b):
    return float(a) / float(b) if b else math.nan


def _mean_of_runs(log_ps):
    """(log of the mean of the runs' estimates, relative standard error of that mean)."""
    top = log_ps.max()
    if top == -math.inf:
        return -math.inf, math.inf
    v = np.exp(log_ps - top)
    mean = v.mean()
    rel = v.std(ddof=1) / math.sqrt(v.size) / mean if v.size > 1 else math.inf
    return top + math.log(mean), float(rel)


# ------------------------------------------------------------------ Dask
def _on_cluster(client, task, head, first, n, min_size, tail):
    """``task(*head, first_i, n_i, *tail)`` over consecutive pieces of [first, first + n) on
    the cluster; the results in piece order."""
    with schedule.cluster(client) as cl:
        ranges = schedule.split(n, min_size, cl)
        parts = [None] * len(ranges)

        def combine(i, res):
            parts[i] = res

        args = [(*head, first + a, b - a, *tail) for a, b in ranges]
        schedule.run_on_cluster(cl, task, args, [b - a for a, b in ranges], combine)
    return parts

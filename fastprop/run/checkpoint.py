"""Long chain runs that survive interruption: blocks of chains, checkpoints, resume.

A run simulates consecutive blocks of chain indices ``[done, done + size)`` and
merges them (:meth:`ChainResult.merge` is exact), so after any number of blocks
the merged result *is* the result of one call over ``[0, done)``. The block sizes
depend only on ``done`` and the run's recorded cap (:func:`block_size`), which makes
the sequence of blocks,
and hence the stopping point of a ``target_rel_error`` run, the same whether or
not the run was interrupted and resumed.

The checkpoint is the result file itself: a loadable :class:`ChainResult` of the
finished blocks whose ``meta["run"]`` records the request (chains wanted,
precision, tail) and ``complete``. It is written atomically every
``checkpoint_every`` seconds, when the run is interrupted (Ctrl-C, SIGTERM) and
at the end; a crash loses at most the blocks since the last write.
"""

from __future__ import annotations

import math
import time

from .. import _validate
from ..activations import activation as _activation
from ..chains.result import ChainResult
from ..chains.simulate import MAX_CHAINS, _layers, _thresholds, chain_memory, first_timed_batch, simulate_chains
from . import files as _io
from . import resources as _resources
from .progress import make as _progress
from .targets import resolve_target

__all__ = ["run_chains", "resume_chains", "block_size", "next_boundary", "FIRST_BLOCK", "MAX_BLOCK", "GPU_MAX_BLOCK"]

FIRST_BLOCK = 1 << 16
MAX_BLOCK = 1 << 20
GPU_MAX_BLOCK = 1 << 24
"""Block cap of a run started on the GPU (≈ 0.3 s of work a block at 5·10⁷ chains/s)."""
SIDES = ("upper", "lower")


SUB_BLOCK_SECONDS = 2.0
"""A local run computes each block in pieces of about this many seconds, so that
Ctrl-C and SIGTERM take effect within seconds whatever the width and depth."""


def block_size(done, max_block=MAX_BLOCK):
    """Chains in the block that starts after ``done`` chains: doubling from 2¹⁶ up to
    ``max_block`` (2²⁰ on the CPU, 2²⁴ on a GPU; on a Dask cluster enough for all
    its threads). The cap is fixed when a run starts and recorded, so a resumed run
    cuts the same blocks (and a run to a target error stops at the same chain)."""
    return min(max(done, FIRST_BLOCK), max_block)


def next_boundary(done, max_block=MAX_BLOCK):
    """The first block boundary after ``done`` chains (boundaries: 0, then each plus
    its :func:`block_size`). A run interrupted inside a block resumes to the end of
    that same block, so the chain counts at which a target error is checked, and
    hence where the run stops, never depend on interruptions."""
    edge = 0
    while edge <= done:
        edge += block_size(edge, max_block)
    return edge


def _request(n_chains, target_rel_error, tail, max_chains):
    if (n_chains is None) == (target_rel_error is None):
        raise ValueError("give exactly one of n_chains and target_rel_error")
    if n_chains is not None:
        n_chains = _validate.integer(n_chains, "n_chains", low=1, high=MAX_CHAINS)
    else:
        e = _validate.real_scalar(target_rel_error, "target_rel_error", low=0.0, low_open=True)
        if not e < 1.0:
            raise ValueError(f"target_rel_error must be in (0, 1), got {target_rel_error!r}")
        max_chains = _validate.integer(max_chains, "max_chains", low=1, high=MAX_CHAINS)
        target_rel_error = e
    if not isinstance(tail, (tuple, list)) or len(tail) != 2:
        raise TypeError(f"tail must be a pair (side, t), got {tail!r}")
    side, t = tail
    t = _validate.real_scalar(t, "tail threshold", low=0.0, low_open=True)
    if side not in SIDES:
        raise ValueError(f"tail side must be 'upper' or 'lower', got {side!r}")
    return {
        "n_chains": n_chains,
        "target_rel_error": target_rel_error,
        "tail": [side, float(t)],
        "max_chains": max_chains,
        "max_block": MAX_BLOCK,
        "complete": False,
    }


def _finished(result, run):
    done = result.n if result is not None else 0
    if run["n_chains"] is not None:
        return done >= run["n_chains"]
    if done >= run["max_chains"]:
        return True
    at_boundary = done > 0 and next_boundary(done - 1, run.get("max_block", MAX_BLOCK)) == done
    return at_boundary and _tail(result, run).rel_error <= run["target_rel_error"]


def _tail(result, run):
    side, t = run["tail"]
    return result.tail_probability(t, side=side, layer=-1)


def _refuse_unfinished(path):
    """Refuse to start a run over an unfinished checkpoint at ``path``."""
    try:
        old = ChainResult.load(path)
    except (FileNotFoundError, _io.FileFormatError, ImportError):
        return  # nothing there, or not a chain result: no run to lose
    run = old.meta.get("run")
    if isinstance(run, dict) and run.get("complete") is False:
        raise FileExistsError(
            f"{path!s} holds an unfinished run ({old.n:,} chains done); continue it with resume_chains "
            "(CLI: --resume), or start over with force=True (CLI: --force)"
        )


def _save(result, run, path):
    result.meta["run"] = dict(run)
    result.save(path)


def run_chains(
    path,
    n_chains=None,
    *,
    target_rel_error=None,
    tail=None,
    max_chains=10**9,
    checkpoint_every=30.0,
    progress=False,
    target="auto",
    start=None,
    force=False,
    **simulate_kwargs,
):
    """Simulate chains block by block into the result file ``path``; resumable.

    Either ``n_chains`` chains, or — with ``target_rel_error=E`` — until the 95 %
    Wilson interval of the tail probability ``tail = (side, t)`` at the deepest
    recorded layer has half-width ≤ E·p (checked after every block), or
    ``max_chains`` is reached; ``tail`` defaults to ("upper", largest threshold).
    ``simulate_kwargs`` are those of :func:`fastprop.simulate_chains` (``t`` must
    be one of its ``thresholds``); with ``client=`` every block runs on the Dask
    cluster, in blocks large enough to keep its threads busy.

    On KeyboardInterrupt (Ctrl-C; the CLI maps SIGTERM to it) the finished
    chains are written to ``path`` before the exception propagates; continue with
    :func:`resume_chains`. A local run computes its blocks in pieces of a few
    seconds (``SUB_BLOCK_SECONDS``), so an interruption loses seconds of work at
    most. ``path`` holding an unfinished run is refused (resume it, or pass
    ``force=True`` to start over). The final result equals ``simulate_chains`` over the
    same chains bit for bit, however often the run was interrupted.
    """
    thresholds = _thresholds(simulate_kwargs.get("thresholds", (0.01, 10.0))).tolist()
    if tail is None:
        tail = ("upper", max(thresholds))
    run = _request(n_chains, target_rel_error, tail, max_chains)
    if "n_chains" in simulate_kwargs or "first_chain" in simulate_kwargs:
        raise TypeError("run_chains sets n_chains and first_chain itself")
    if start is not None:
        if not isinstance(start, ChainResult):
            raise TypeError("start must be a ChainResult")
        if start.chain_ranges != [(0, start.n)]:
            raise ValueError("a run can only continue a result over the chains [0, n)")
    if run["tail"][1] not in thresholds:
        raise ValueError(f"the tail threshold {run['tail'][1]!r} must be one of the thresholds")
    depth = _validate.positive_int(simulate_kwargs.get("depth", 100), "depth", low=0)
    n_layers = _layers(simulate_kwargs.get("layers"), depth).size
    kept = 2 * (run["n_chains"] or run["max_chains"]) if simulate_kwargs.get("keep_norms") else 0  # merge copies
    need = chain_memory(1, depth, n_layers, kept, 0, False, "gaussian", "float64", "cpu", results=3)
    _resources.require(need, f"a chain run recording {n_layers} layers (result, block and their merge)")
    if not isinstance(force, bool):
        raise TypeError(f"force must be a bool, got {type(force).__name__}")
    if not force:
        _refuse_unfinished(path)
    return _continue(path, run, start, simulate_kwargs, checkpoint_every, progress, target, fresh=True)


def resume_chains(path, *, checkpoint_every=30.0, progress=False, target="auto", out=None, client=None):
    """Continue the run checkpointed in ``path`` (written by :func:`run_chains`) to its end.

    Every parameter comes from the file; the result is written back to ``path``
    (or ``out``) and returned. A complete run is returned as it is. ``target``
    and ``client`` (Dask) may differ from the first run's: results do not depend on them.
    """
    result = ChainResult.load(path)
    run = result.meta.get("run")
    if not isinstance(run, dict) or "complete" not in run:
        raise ValueError(f"{path!s} is not a checkpoint of a fastprop chain run (no run record)")
    p = result.params
    if p["activation_fingerprint"] is None:  # written before fingerprints: the activation of that name now
        p["activation_fingerprint"] = _activation(p["activation"]).fingerprint
    kwargs = {
        "width": p["width"],
        "depth": p["depth"],
        "activation": p["activation"],
        "sigma_w": p["sigma_w"],
        "sigma_b": p["sigma_b"],
        "weights": p["weights"],
        "method": p["method"],
        "rms_norm": p["rms_norm"],
        "seed": p["seed"],
        "x0": p["x0"],
        "keep_norms": p["keep_norms"],
        "dtype": p.get("dtype", "float64"),  # files from before dtype existed are float64
        "layers": [int(v) for v in result.layers],
        "thresholds": [float(v) for v in result.thresholds],
        "client": client,
    }
    run = dict(run, complete=False)
    return _continue(out or path, run, result, kwargs, checkpoint_every, progress, target)


def _continue(path, run, result, kwargs, checkpoint_every, progress, target, fresh=False):
    seconds = checkpoint_every
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
        raise ValueError(f"checkpoint_every must be a number of seconds ≥ 0, got {checkpoint_every!r}")
    client = kwargs.get("client")
    if client is None:
        if fresh and resolve_target(target) == "cuda":
            run["max_block"] = GPU_MAX_BLOCK
        return _blocks(path, run, result, kwargs, checkpoint_every, progress, target)
    from .distributed import TASKS_PER_THREAD, connect  # Dask only for a run on a cluster

    with connect(client) as cl:  # one connection for the whole run
        if fresh:  # blocks large enough to keep the cluster busy; recorded, so a resume keeps them
            run["max_block"] = max(MAX_BLOCK, FIRST_BLOCK * TASKS_PER_THREAD * sum(cl.nthreads().values()))
        return _blocks(path, run, result, dict(kwargs, client=cl), checkpoint_every, progress, target)


def _blocks(path, run, result, kwargs, checkpoint_every, progress, target):
    total = run["n_chains"] if run["n_chains"] is not None else run["max_chains"]
    bar = _progress(progress, total, "chains", "chains")
    if result is not None:
        bar.advance(result.n)
    last_save = time.monotonic()
    local = kwargs.get("client") is None
    piece = first_timed_batch("parallel")  # chains in the next piece of a local block, sized by time
    try:
        while not _finished(result, run):
            done = result.n if result is not None else 0
            edge = min(next_boundary(done, run.get("max_block", MAX_BLOCK)), total)
            while done < edge:
                size = min(piece, edge - done) if local else edge - done
                t0 = time.monotonic()
                block = simulate_chains(n_chains=size, first_chain=done, target=target, **kwargs)
                piece = _next_piece(size, time.monotonic() - t0, piece)
                result = block if result is None else result.merge(block)
                result.meta["target"] = block.meta["target"]
                done += size
                note = None
                if run["target_rel_error"] is not None and done == edge:
                    est = _tail(result, run)
                    note = f"rel. error {_pct(est.rel_error)} (goal {_pct(run['target_rel_error'])})"
                bar.advance(size, note)
                if time.monotonic() - last_save >= checkpoint_every:
                    _save(result, run, path)
                    last_save = time.monotonic()
    except KeyboardInterrupt:
        if result is not None:
            _save(result, run, path)
        raise
    finally:
        bar.close()
    run["complete"] = True
    _save(result, run, path)
    return result


def _next_piece(size, seconds, piece):
    """Chains for the next piece: about ``SUB_BLOCK_SECONDS`` at the rate just measured
    (growing at most 8× a step), at least one."""
    if size < piece:  # a short piece (end of a block) says little about the rate
        return piece
    return int(min(max(1, size * SUB_BLOCK_SECONDS / max(seconds, 1e-6)), 8 * size, 1 << 24))


def _pct(x):
    return "inf" if not math.isfinite(x) else f"{x:.1%}"

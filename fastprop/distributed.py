"""Running the engines on a Dask cluster: same kernels, same numbers.

``client=`` on :func:`fastprop.meanfield_grid`, :func:`fastprop.edge_of_chaos`
and :func:`fastprop.simulate_chains` (and ``--scheduler`` on the command line)
cuts the work into tasks and runs each with the ordinary local function on a
Dask worker:

* a grid into tiles of σ_w rows (each task gets its slice of the axes and returns
  its tile), an edge-of-chaos curve into slices of σ_b;
* a chain run into consecutive ranges of chain indices; each task returns the
  :class:`~fastprop.ChainResult` of its range and the ranges are combined with
  :meth:`~fastprop.ChainResult.merge`.

Only axis slices and parameters travel to the workers and only result tiles
come back. Grid points are computed independently and chain ``i`` always uses
the random stream (seed, i), and merging is exact integer arithmetic, so the
result is *bitwise* the local one however many workers and tasks there are and
in whatever order they finish. A task lost with its worker is recomputed by Dask
from the same inputs, giving the same tile or range again; each range is merged
exactly once (``merge`` refuses overlaps). ``target`` is resolved on each worker
("auto": that worker's best target).

Dask is an optional extra: ``pip install "fastprop[dask]"``.
"""

from __future__ import annotations

import contextlib
import math

from .activations import ACTIVATIONS
from .activations import activation as _activation
from .progress import make as _progress

__all__ = ["resolve_client", "connect", "Cancelled", "TASKS_PER_THREAD"]

TASKS_PER_THREAD = 4
"""Tasks per worker thread: enough to balance uneven tiles and a lost worker."""


class Cancelled(RuntimeError):
    """A distributed run whose tasks were cancelled (e.g. ``client.restart()``)."""


def _dask():
    try:
        import distributed
    except ImportError:
        raise ImportError("client= needs Dask's distributed scheduler: pip install 'fastprop[dask]'") from None
    return distributed


def resolve_client(client, timeout=10):
    """``None``, a ``distributed.Client``, or a scheduler address (``"tcp://host:8786"``)
    to connect to. Raises a clear error for anything else or an unreachable scheduler."""
    if client is None:
        return None
    distributed = _dask()
    if isinstance(client, distributed.Client):
        return client
    if isinstance(client, str):
        try:
            return distributed.Client(client, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConnectionError(f"cannot connect to the Dask scheduler at {client!r}: {exc}") from None
    kind = type(client).__name__
    raise TypeError(f"client must be None, a dask.distributed.Client or a scheduler address, got {kind}")


@contextlib.contextmanager
def connect(client, timeout=10):
    """Context manager around :func:`resolve_client` that closes a client it opened
    from an address (a client passed in stays open)."""
    cl = resolve_client(client, timeout)
    try:
        yield cl
    finally:
        if cl is not None and cl is not client:
            cl.close()


def _activation_ref(act):
    """What to send to a worker: a built-in's name, or the (picklable) Activation."""
    if act.name in ACTIVATIONS and _activation(act.name) is act:
        return act.name
    return act


def _threads(client):
    nthreads = client.nthreads()
    if not nthreads:
        raise RuntimeError("the Dask cluster has no workers")
    return sum(nthreads.values())


def _pieces(n, min_size, client):
    """Split range(n) into consecutive (start, stop) pieces for the cluster's threads."""
    count = max(1, min(math.ceil(n / max(min_size, 1)), TASKS_PER_THREAD * _threads(client)))
    size = math.ceil(n / count)
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def _gather(client, futures, bar, weights, combine):
    """Feed results to ``combine`` as they complete, advancing ``bar`` by each weight."""
    distributed = _dask()
    index = {fut.key: i for i, fut in enumerate(futures)}
    try:
        for fut in distributed.as_completed(futures):
            if fut.cancelled():
                raise Cancelled("the distributed run was cancelled (its Dask tasks were cancelled or lost)")
            i = index[fut.key]
            combine(i, fut.result())
            bar.advance(weights[i])
    except (distributed.client.FutureCancelledError, distributed.CancelledError) as exc:
        raise Cancelled(f"the distributed run was cancelled: {exc}") from None
    except BaseException:
        client.cancel(futures)
        raise


# ------------------------------------------------------------------ tasks
def _grid_task(act, sw, sb, target):
    from .grid import meanfield_grid

    return meanfield_grid(act, sw, sb, target=target)


def _edge_task(act, sb, target, sw_range):
    from .grid import edge_of_chaos

    return edge_of_chaos(act, sb, target=target, sigma_w_range=sw_range, full_output=True)


def _chain_task(kwargs, first, n, target):
    from .simulate import simulate_chains

    return simulate_chains(n_chains=n, first_chain=first, target=target, **kwargs)


# ------------------------------------------------------------------ drivers
def grid(act, sw, sb, target, client, progress):
    """The tiles of ``meanfield_grid`` on ``client``; returns (arrays, worker targets)."""
    import numpy as np

    ref = _activation_ref(act)
    rows = _pieces(sw.size, max(1, 16384 // sb.size), client)
    bar = _progress(progress, sw.size * sb.size, f"{act.name} grid", "points")
    futures = [client.submit(_grid_task, ref, sw[a:b], sb, target, pure=False) for a, b in rows]
    from .grid import _FIELDS as names

    out = {k: np.empty((sw.size, sb.size), np.int8 if k == "status" else np.float64) for k in names}
    targets = set()

    def combine(i, tile):
        a, b = rows[i]
        for k in names:
            out[k][a:b] = getattr(tile, k)
        targets.add(tile.target)

    try:
        _gather(client, futures, bar, [(b - a) * sb.size for a, b in rows], combine)
    finally:
        if bar is not progress:
            bar.close()
    return [out[k] for k in names], "+".join(sorted(targets))


def edge(act, sb, target, sw_range, client):
    """``edge_of_chaos`` over slices of ``sb`` on ``client``; returns (sigma_w, status)."""
    import numpy as np

    ref = _activation_ref(act)
    parts = _pieces(sb.size, 8, client)
    futures = [client.submit(_edge_task, ref, sb[a:b], target, sw_range, pure=False) for a, b in parts]
    out = np.empty(sb.size)
    status = np.empty(sb.size, np.int8)

    def combine(i, res):
        a, b = parts[i]
        out[a:b], status[a:b] = res

    _gather(client, futures, _progress(False, 1, "", ""), [0] * len(parts), combine)
    return out, status


def chains(kwargs, first, n, target, client, progress):
    """``simulate_chains`` over consecutive chain ranges on ``client``, merged exactly."""
    from .checkpoint import FIRST_BLOCK

    kwargs = dict(kwargs, activation=_activation_ref(_activation(kwargs["activation"])))
    ranges = _pieces(n, FIRST_BLOCK, client)
    bar = _progress(progress, n, "chains", "chains")
    futures = [client.submit(_chain_task, kwargs, first + a, b - a, target, pure=False) for a, b in ranges]
    parts = [None] * len(ranges)

    def combine(i, res):
        parts[i] = res

    try:
        _gather(client, futures, bar, [b - a for a, b in ranges], combine)
    finally:
        if bar is not progress:
            bar.close()
    result = parts[0]
    for p in parts[1:]:
        result = result.merge(p)
    targets = sorted({p.meta["target"] for p in parts})
    result.meta["target"] = "+".join(targets)
    return result

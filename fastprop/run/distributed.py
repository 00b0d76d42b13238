"""Running the engines' units of work on a Dask cluster: same kernels, same numbers.

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

This module knows nothing of grids or chains: an engine hands
:mod:`fastprop.run.schedule` a task function (module-level, so that workers
import it by name), one argument tuple per unit of work and a ``combine``
callback, and the units are submitted and gathered here.

Dask is an optional extra: ``pip install "fastprop[dask]"``.
"""

from __future__ import annotations

import contextlib
import math

from .progress import make as _progress

__all__ = ["resolve_client", "connect", "Cancelled", "TASKS_PER_THREAD", "pieces", "run_tasks"]

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


def _threads(client):
    nthreads = client.nthreads()
    if not nthreads:
        raise RuntimeError("the Dask cluster has no workers")
    return sum(nthreads.values())


def pieces(n, min_size, client):
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


def run_tasks(client, task, args, weights, combine, progress, label, unit):
    """Submit ``task(*a)`` for each ``a`` in ``args`` and pass each result to
    ``combine(i, result)`` as it completes, advancing a progress bar (total
    ``sum(weights)``) by ``weights[i]``. Raises :class:`Cancelled` when Dask cancels
    the tasks; any other exception (Ctrl-C included) cancels the outstanding ones."""
    bar = _progress(progress, sum(weights), label, unit)
    futures = [client.submit(task, *a, pure=False) for a in args]
    try:
        _gather(client, futures, bar, weights, combine)
    finally:
        bar.close()

"""Where an engine's units of work run: here, or on a Dask cluster.

Engines (:mod:`fastprop.meanfield`, :mod:`fastprop.chains`) cut their work into
units (a tile of grid rows, a range of chains) and hand them to this module with
``client=``; they never import Dask code themselves. The Dask side lives in
:mod:`fastprop.run.distributed` and is imported only when a client is given, so
a local run never loads Dask.
"""

from __future__ import annotations

import contextlib

from ..activations import ACTIVATIONS
from ..activations import activation as _activation

__all__ = ["cluster", "split", "run_on_cluster", "activation_ref"]


@contextlib.contextmanager
def cluster(client):
    """The Dask client for ``client`` (a client, or a scheduler address that is
    connected to and closed afterwards); errors are clear (ImportError naming the
    extra, ConnectionError, TypeError)."""
    from . import distributed

    with distributed.connect(client) as cl:
        yield cl


def split(n, min_size, client):
    """Consecutive (start, stop) pieces of range(n), at least ``min_size`` long where
    possible, enough to keep every worker thread of ``client`` busy."""
    from . import distributed

    return distributed.pieces(n, min_size, client)


def run_on_cluster(client, task, args, weights, combine, progress=False, label="", unit=""):
    """Run ``task(*a)`` for each ``a`` in ``args`` on the cluster; each result goes to
    ``combine(i, result)`` as it arrives (see :func:`fastprop.run.distributed.run_tasks`)."""
    from . import distributed

    distributed.run_tasks(client, task, args, weights, combine, progress, label, unit)


def activation_ref(act):
    """What travels to a worker for an activation: a built-in's name, or the
    (picklable) :class:`~fastprop.Activation` itself."""
    if act.name in ACTIVATIONS and _activation(act.name) is act:
        return act.name
    return act

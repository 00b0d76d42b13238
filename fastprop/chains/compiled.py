"""The compiled chain kernels, from the templates of this package (cached on disk,
:mod:`fastprop.run.compile`): ``samplers`` (one chain, per activation and working
dtype), ``batches`` (a batch of chains, per target) and ``statistics`` (folding a
batch into a result, per target)."""

from __future__ import annotations

import numpy as np

from ..run.compile import specialise

__all__ = ["samplers", "chain_function", "chain_kernel", "stats_kernel"]

_CACHE: dict = {}


def samplers(act, dtype="float64"):
    """The compiled samplers module of an activation and working dtype (its one-chain
    functions, e.g. ``invariant_layer``, for the engines built on the chains)."""
    key = ("samplers", act.fingerprint, dtype)
    module = _CACHE.get(key)
    if module is None:
        module = _CACHE[key] = specialise(
            "fastprop.chains.samplers",
            f"chains-{act.name}-samplers-{dtype}",
            f"{act.name}:{act.fingerprint}:{dtype}",
            {"ev": act.eval3, "F": np.dtype(dtype).type},
            shared=act.portable,
        )
    return module


def chain_function(act, dtype="float64"):
    """The scalar chain function of an activation and working dtype, compiled by
    whichever target calls it (also as a CUDA device function)."""
    return samplers(act, dtype).chain


def chain_kernel(act, target, dtype="float64"):
    """The compiled chain batch kernel for an activation, a CPU target and a working dtype."""
    key = ("batches", act.fingerprint, target, dtype)
    k = _CACHE.get(key)
    if k is None:
        chains = samplers(act, dtype)
        module = specialise(
            "fastprop.chains.batches",
            f"chains-{act.name}-batches-{dtype}-{target}",
            f"{act.name}:{act.fingerprint}:{dtype}:{target}:{chains.__name__}",
            {"chain": chains.chain, "dtype": np.dtype(dtype), "PARALLEL": target == "parallel"},
            shared=act.portable,
        )
        k = _CACHE[key] = module.run
    return k


def stats_kernel(target):
    """The compiled statistics kernel of a CPU target."""
    key = ("statistics", target)
    k = _CACHE.get(key)
    if k is None:
        module = specialise(
            "fastprop.chains.statistics", f"chains-statistics-{target}", target, {"PARALLEL": target == "parallel"}
        )
        k = _CACHE[key] = module.update
    return k

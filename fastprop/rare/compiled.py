"""The compiled splitting kernels, from the template :mod:`fastprop.rare.splitting`
(cached on disk, :mod:`fastprop.run.compile`): per activation and CPU target."""

from __future__ import annotations

from ..chains.compiled import samplers
from ..run.compile import specialise

__all__ = ["splitting_kernels"]

_CACHE: dict = {}


def splitting_kernels(act, target):
    """The splitting module of an activation for target "cpu" or "parallel": ``replicas``
    (independent fixed-level runs, in parallel over runs) and ``run_levels`` (one run)."""
    key = (act.fingerprint, target)
    module = _CACHE.get(key)
    if module is None:
        layers = samplers(act)
        module = _CACHE[key] = specialise(
            "fastprop.rare.splitting",
            f"rare-{act.name}-splitting-{target}",
            f"{act.name}:{act.fingerprint}:{target}:{layers.__name__}",
            {"layer": layers.invariant_layer, "PARALLEL": target == "parallel"},
            shared=act.portable,
        )
    return module

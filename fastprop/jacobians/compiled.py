"""The compiled Jacobian chain kernels, from the template :mod:`fastprop.jacobians.chain` (cached on
disk, :mod:`fastprop.run.compile`)."""

from __future__ import annotations

from ..chains.compiled import samplers as chain_samplers
from ..run.compile import specialise

__all__ = ["chain_module"]

_CACHE: dict = {}


def chain_module(act, target):
    """The compiled template :mod:`fastprop.jacobians.chain` of an activation ("cpu" or "parallel"
    for its batch kernel; its chain function serves every target)."""
    key = (act.fingerprint, target)
    module = _CACHE.get(key)
    if module is None:
        samplers = chain_samplers(act, "float64")
        module = _CACHE[key] = specialise(
            "fastprop.jacobians.chain", f"jacobians-{act.name}-{target}",
            f"{act.name}:{act.fingerprint}:{target}:{samplers.__name__}",
            {"ev": act.eval3, "preact": samplers.dense_preact, "PARALLEL": target == "parallel"},
            shared=act.portable,
        )  # fmt: skip
    return module

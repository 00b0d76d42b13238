"""The mean-field kernels of one activation, from the templates of this package.

Each concern is a template module compiled per activation (and cached on disk)
by :func:`fastprop.run.compile.specialise`; each builds on the ones before it:

============== ======================================== ==========================
template       holds                                    builds on
============== ======================================== ==========================
``moments``    E φ, E φ', E φ², E φ'², dEφ²/dq; V(q)    φ, the panel rule
``mehler``     the truncated Mehler model and its root  φ, the panel rule
``pairs``      pair integrals (Gauss–Legendre, lattice, φ, the panel rule, closed
               closed forms); C(c)                      forms
``fixed_points`` q*, c*, every quantity of a point       moments, mehler, pairs
``edge``       σ_w with χ_1 = 1 at one σ_b               moments, fixed_points
``drivers``    loops over points (serial or ``prange``) all of the above
============== ======================================== ==========================
"""

from __future__ import annotations

from types import SimpleNamespace

from ..activations import activation as _activation
from ..quadrature import BASE_BREAKS, NGL, make_next_break
from ..run.compile import specialise
from .common import KMEHLER, SCRATCH, _no_gauss_mean, _no_kernel

__all__ = ["kernels", "scalar_kernels"]

_CACHE: dict = {}


def _spec(act, concern, identity, **bindings):
    return specialise(
        f"fastprop.meanfield.{concern}",
        f"meanfield-{act.name}-{concern}",
        f"{act.name}:{act.fingerprint}:{identity}",
        bindings,
        shared=act.portable,
    )


def scalar_kernels(act):
    """The compiled scalar mean-field functions of an activation (one set per process)."""
    act = _activation(act)
    ns = _CACHE.get(act.fingerprint)
    if ns is not None:
        return ns
    ev = act.eval3
    next_break = make_next_break(act.breaks, act.corners)
    has_gm, has_kernel = act.gauss_mean is not None, act.kernel is not None
    max_nodes = NGL * (len(BASE_BREAKS) + 1 + 2 * len(act.breaks))  # panels of one graded rule
    strip = act.strip if (act.strip > 0.0 and not has_gm and not has_kernel and not act.kinks) else 0.0
    moments = _spec(
        act, "moments", "", ev=ev, next_break=next_break,
        KINKS=act.kinks or (0.0,), JUMPS=act.slope_jumps or (0.0,), NKINKS=len(act.kinks),
    )  # fmt: skip
    mehler = _spec(act, "mehler", "", ev=ev, next_break=next_break, MAX_NODES=max_nodes)
    pairs = _spec(
        act, "pairs", "", ev=ev, next_break=next_break,
        gm=act.gauss_mean if has_gm else _no_gauss_mean, ker=act.kernel if has_kernel else _no_kernel,
        HAS_GM=has_gm, HAS_KERNEL=has_kernel, ODD=act.odd, STRIP=strip,
    )  # fmt: skip
    built_on = f"{moments.__name__} {mehler.__name__} {pairs.__name__}"
    fixed = _spec(act, "fixed_points", built_on, ev=ev, moments=moments.moments, mehler=mehler.mehler, pair=pairs.pair)
    edge = _spec(act, "edge", f"{moments.__name__} {fixed.__name__}", moments=moments.moments, q_star=fixed.q_star)
    ns = SimpleNamespace(
        activation=act,
        moments=moments.moments,
        length_map=moments.length_map,
        mehler=mehler.mehler,
        conditional_mean=pairs.conditional_mean,
        pair=pairs.pair,
        correlation_map=pairs.correlation_map,
        q_star=fixed.q_star,
        point=fixed.point,
        chi1_at=edge.chi1_at,
        edge=edge.edge,
        scratch_size=max(SCRATCH, 3 * max_nodes + KMEHLER + 1),  # the lattice rule's tables, or mehler's
        modules=(moments, mehler, pairs, fixed, edge),
    )
    _CACHE[act.fingerprint] = ns
    return ns


def kernels(act, target="cpu"):
    """The compiled mean-field kernels of an activation for a CPU ``target``
    ("cpu": serial; "parallel": the drivers use ``prange``): the scalar functions
    of :func:`scalar_kernels` and the drivers ``grid_driver``, ``edge_driver``,
    ``map_driver``. Built once per process and kept under the activation's
    :attr:`~fastprop.Activation.fingerprint`, loaded from the disk cache when a
    process has compiled them before (:mod:`fastprop.run.compile`)."""
    act = _activation(act)
    key = (act.fingerprint, target)
    ns = _CACHE.get(key)
    if ns is None:
        base = scalar_kernels(act)
        drivers = _spec(
            act, "drivers", f"{target} " + " ".join(m.__name__ for m in base.modules),
            point=base.point, edge=base.edge, length_map=base.length_map, correlation_map=base.correlation_map,
            q_star=base.q_star, SCRATCH_SIZE=base.scratch_size, PARALLEL=target == "parallel",
        )  # fmt: skip
        ns = SimpleNamespace(
            **vars(base),
            grid_driver=drivers.grid_driver,
            edge_driver=drivers.edge_driver,
            map_driver=drivers.map_driver,
        )
        _CACHE[key] = ns
    return ns

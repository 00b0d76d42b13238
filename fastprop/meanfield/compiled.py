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
``drivers``    loops over points and table nodes          all of the above
               (serial or ``prange``)
============== ======================================== ==========================
"""

from __future__ import annotations

from types import SimpleNamespace

from ..activations import activation as _activation
from ..quadrature import BASE_BREAKS, NGL, make_next_break
from ..run.compile import specialise
from .common import KMEHLER, SCRATCH, _no_gauss_mean, _no_kernel

__all__ = [
    "kernels",
    "scalar_kernels",
    "moments_module",
    "mehler_module",
    "pairs_module",
    "fixed_points_module",
    "edge_module",
]

_CACHE: dict = {}


def _spec(act, concern, identity, **bindings):
    key = (act.fingerprint, concern, identity)
    module = _CACHE.get(key)
    if module is None:
        module = _CACHE[key] = specialise(
            f"fastprop.meanfield.{concern}",
            f"meanfield-{act.name}-{concern}",
            f"{act.name}:{act.fingerprint}:{identity}",
            bindings,
            shared=act.portable,
        )
    return module


def _panel_rule(act):
    """φ's three values and the graded panel rule of its breaks (one per activation)."""
    key = (act.fingerprint, "next_break")
    if key not in _CACHE:
        _CACHE[key] = make_next_break(act.breaks, act.corners)
    return {"ev": act.eval3, "next_break": _CACHE[key]}


def _max_nodes(act):
    """Nodes of one graded Gauss–Legendre rule of this activation."""
    return NGL * (len(BASE_BREAKS) + 1 + 2 * len(act.breaks))


def moments_module(act):
    """The compiled ``moments`` template of an activation: ``moments(q)``, ``length_map``."""
    act = _activation(act)
    return _spec(
        act, "moments", "", KINKS=act.kinks or (0.0,), JUMPS=act.slope_jumps or (0.0,), NKINKS=len(act.kinks),
        **_panel_rule(act),
    )  # fmt: skip


def mehler_module(act):
    """The compiled ``mehler`` template: the truncated Mehler model's fixed point."""
    act = _activation(act)
    return _spec(act, "mehler", "", MAX_NODES=_max_nodes(act), **_panel_rule(act))


def pairs_module(act):
    """The compiled ``pairs`` template: pair integrals and the correlation map."""
    act = _activation(act)
    has_gm, has_kernel = act.gauss_mean is not None, act.kernel is not None
    strip = act.strip if (act.strip > 0.0 and not has_gm and not has_kernel and not act.kinks) else 0.0
    return _spec(
        act, "pairs", "", gm=act.gauss_mean if has_gm else _no_gauss_mean,
        ker=act.kernel if has_kernel else _no_kernel, HAS_GM=has_gm, HAS_KERNEL=has_kernel, ODD=act.odd,
        STRIP=strip, **_panel_rule(act),
    )  # fmt: skip


def fixed_points_module(act):
    """The compiled ``fixed_points`` template (q*, c*, a whole point), built on the three above."""
    act = _activation(act)
    parts = (moments_module(act), mehler_module(act), pairs_module(act))
    return _spec(
        act, "fixed_points", " ".join(m.__name__ for m in parts), ev=act.eval3, moments_at=parts[0].moments_at,
        length_moments_at=parts[0].length_moments_at, mehler=parts[1].mehler, mehler_root=parts[1].mehler_root,
        pair=parts[2].pair, HAS_KERNEL=act.kernel is not None,
    )  # fmt: skip


def edge_module(act):
    """The compiled ``edge`` template (σ_w with χ_1 = 1), built on moments and fixed points."""
    act = _activation(act)
    moments, fixed = moments_module(act), fixed_points_module(act)
    return _spec(
        act, "edge", f"{moments.__name__} {fixed.__name__}", ev=act.eval3, moments_at=moments.moments_at,
        q_star=fixed.q_star,
    )  # fmt: skip


def scalar_kernels(act):
    """The compiled scalar mean-field functions of an activation, in one namespace."""
    act = _activation(act)
    moments, mehler, pairs = moments_module(act), mehler_module(act), pairs_module(act)
    fixed, edge = fixed_points_module(act), edge_module(act)
    return SimpleNamespace(
        activation=act,
        moments=moments.moments,
        moments_at=moments.moments_at,
        length_map=moments.length_map,
        hermite_coefficients=mehler.hermite_coefficients,
        mehler=mehler.mehler,
        conditional_mean=pairs.conditional_mean,
        pair=pairs.pair,
        correlation_map=pairs.correlation_map,
        q_star=fixed.q_star,
        c_star=fixed.c_star,
        point=fixed.point,
        chi1_at=edge.chi1_at,
        edge=edge.edge,
        scratch_size=max(SCRATCH, 3 * _max_nodes(act) + KMEHLER + 1),  # the lattice rule's tables, or mehler's
        modules=(moments, mehler, pairs, fixed, edge),
    )


def kernels(act, target="cpu"):
    """The compiled mean-field kernels of an activation for a CPU ``target``
    ("cpu": serial; "parallel": the drivers use ``prange``): the scalar functions
    of :func:`scalar_kernels` and the drivers ``grid_driver``, ``edge_driver``,
    ``map_driver``. Built once per process and kept under the activation's
    :attr:`~fastprop.Activation.fingerprint`, loaded from the disk cache when a
    process has compiled them before (:mod:`fastprop.run.compile`)."""
    act = _activation(act)
    key = (act.fingerprint, "kernels", target)
    ns = _CACHE.get(key)
    if ns is None:
        base = scalar_kernels(act)
        drivers = _spec(
            act, "drivers", f"{target} " + " ".join(m.__name__ for m in base.modules),
            point=base.point, edge=base.edge, length_map=base.length_map, correlation_map=base.correlation_map,
            q_star=base.q_star, moments=base.moments, hermite_coefficients=base.hermite_coefficients,
            pair=base.pair, KMEHLER=KMEHLER, SCRATCH_SIZE=base.scratch_size, PARALLEL=target == "parallel",
        )  # fmt: skip
        ns = SimpleNamespace(
            **vars(base),
            grid_driver=drivers.grid_driver,
            pending_panels=drivers.pending_panels,
            edge_driver=drivers.edge_driver,
            map_driver=drivers.map_driver,
            q_star_nodes=drivers.q_star_nodes,
            moment_nodes=drivers.moment_nodes,
            pair_nodes=drivers.pair_nodes,
        )
        _CACHE[key] = ns
    return ns

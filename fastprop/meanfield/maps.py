"""The length map V(q) and the correlation map C(c), broadcasting like ufuncs."""

from __future__ import annotations

import math

import numpy as np

from .. import _validate
from ..activations import activation as _activation
from ..run import resources as _resources
from .compiled import kernels
from .tables import tables

__all__ = ["length_map", "correlation_map", "q_star"]


def _run(kind, x, q, sigma_w, sigma_b, act):
    try:
        shape = np.broadcast_shapes(x.shape, q.shape, sigma_w.shape, sigma_b.shape)
    except ValueError:
        shapes = ", ".join(str(a.shape) for a in (x, sigma_w, sigma_b))
        raise ValueError(f"the arguments do not broadcast together: shapes {shapes}") from None
    _resources.require(8 * 5 * math.prod(shape), f"a map over {math.prod(shape)} points")
    arrays = np.broadcast_arrays(x, q, sigma_w, sigma_b)
    flat = [np.array(a, dtype=np.float64).reshape(-1) for a in arrays]  # copies: broadcast views are read-only
    out = np.empty(flat[0].size)
    k, tab = kernels(act, "cpu"), tables(act)
    if kind == 1:  # the pair boxes of every q (q* where not given) must exist first
        x, q, sw, sb = flat
        if np.any(q < 0.0):
            k.map_driver(2, sw, q, sw, sb, tab.arrays_without_q_start, out)
            q[q < 0.0] = out[q < 0.0]
        tab.ensure_pairs(q)
    k.map_driver(kind, *flat, tab.arrays_without_q_start, out)
    out = out.reshape(shape)
    return float(out) if out.ndim == 0 else out


def length_map(q, sigma_w, sigma_b, activation="tanh"):
    """V(q) = σ_w² ∫ φ(√q z)² Dz + σ_b²  (Poole et al. 2016, eq. 3).

    ``q``, ``sigma_w`` and ``sigma_b`` broadcast against each other like NumPy
    ufunc arguments; a float is returned when all are scalars. q ≥ 0, σ ≥ 0.
    Integration: kink-split, graded Gauss–Legendre (see :mod:`fastprop.quadrature`),
    through the activation's certified table where it covers q
    (:mod:`fastprop.meanfield.tables`; within 1e-13 of the quadrature).
    """
    act = _activation(activation)
    q = _validate.real_array(q, "q", low=0.0)
    sw = _validate.real_array(sigma_w, "sigma_w", low=0.0)
    sb = _validate.real_array(sigma_b, "sigma_b", low=0.0)
    return _run(0, q, q, sw, sb, act)


def correlation_map(c, sigma_w, sigma_b, activation="tanh", q=None):
    """C(c) = (σ_w² ∫∫ φ(u₁)φ(u₂) Dz₁Dz₂ + σ_b²)/q  (Poole et al. 2016, eq. 5).

    u₁ = √q z₁, u₂ = √q (c z₁ + √(1−c²) z₂). ``q`` defaults to the fixed point
    q*(σ_w, σ_b) of the length map; the result is NaN exactly where that fixed
    point is 0 or +inf (the map is undefined there; see
    :func:`fastprop.meanfield_grid` for the status of such points). A given
    ``q`` must be > 0. All arguments broadcast; c ∈ [−1, 1].
    """
    act = _activation(activation)
    c = _validate.real_array(c, "c", low=-1.0, high=1.0)
    sw = _validate.real_array(sigma_w, "sigma_w", low=0.0)
    sb = _validate.real_array(sigma_b, "sigma_b", low=0.0)
    if q is None:
        qa = np.array(-1.0)
    else:
        qa = _validate.real_array(q, "q", low=0.0, low_open=True)
    return _run(1, c, qa, sw, sb, act)


def q_star(sigma_w, sigma_b, activation="tanh"):
    """q*(σ_w, σ_b), the stable fixed point of the length map, at points (σ_w, σ_b)
    that broadcast together (not a grid): the first column of
    :func:`fastprop.meanfield_grid` without the correlation map's work; 0 or +inf
    in the degenerate cases documented in :mod:`fastprop.meanfield`."""
    act = _activation(activation)
    sw = _validate.real_array(sigma_w, "sigma_w", low=0.0)
    sb = _validate.real_array(sigma_b, "sigma_b", low=0.0)
    return _run(2, sw, sw, sw, sb, act)

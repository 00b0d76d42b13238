"""The law of D² = φ'(√q z)², z ~ N(0, 1), as a discrete measure, and its compiled kernels.

The graded, kink-split Gauss–Legendre rule of :mod:`fastprop.quadrature` (which
integrates smooth functions of φ' to rounding) is refined by cutting every panel
into ``nsub`` parts; its nodes t_i = φ'(√q z_i)² with weights w_i approximate the
law. Nodes of equal value are merged, so an activation with φ' constant on pieces
(relu, hard_tanh, leaky_relu, abs, linear; elu and selu on h > 0) gets exact atoms
(relu: ½ δ_0 + ½ δ_1, up to the Gaussian mass beyond |z| = 9, 2e-19).

Moment generating functions M(ζ) = Σ w t/(ζ − t) of this measure are exact for the
atoms and converge for ζ off the support of the continuous part as the rule is
refined; their discretisation error at a given ζ is estimated by comparing two
refinements (:mod:`fastprop.spectra.spectrum`).
"""

from __future__ import annotations

import numpy as np

from ..activations import activation as _activation
from ..quadrature import BASE_BREAKS, NGL, make_next_break
from ..run.compile import specialise

_CACHE: dict = {}


def derivative_kernels(act):
    """The compiled ``derivatives`` template of an activation: ``mu``, ``mu_many``, ``law_nodes``."""
    act = _activation(act)
    key = (act.fingerprint, "derivatives")
    module = _CACHE.get(key)
    if module is None:
        module = _CACHE[key] = specialise(
            "fastprop.spectra.derivatives",
            f"spectra-{act.name}-derivatives",
            f"{act.name}:{act.fingerprint}",
            {"ev": act.eval3, "next_break": make_next_break(act.breaks, act.corners)},
            shared=act.portable,
        )
    return module


def derivative_law(act, q, nsub):
    """(t, w): the discretised law of φ'(√q z)² (module docstring), values ascending."""
    k = derivative_kernels(act)
    size = NGL * nsub * (len(BASE_BREAKS) + 2 + 2 * len(act.breaks) * 8)
    t = np.empty(size)
    w = np.empty(size)
    n = k.law_nodes(float(q), nsub, t, w)
    if n > size:
        t = np.empty(n)
        w = np.empty(n)
        k.law_nodes(float(q), nsub, t, w)
    t, w = t[:n], w[:n]
    values, inverse = np.unique(t, return_inverse=True)
    weights = np.bincount(inverse, weights=w)
    return values, weights

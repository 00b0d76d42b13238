r"""Mean-field maths for one activation: length map, correlation map, fixed points.

Every formula is a small scalar function in a template module of this package
(:mod:`fastprop.meanfield.compiled` lists them), compiled per activation by
:func:`kernels` (the activation's φ, φ', φ'' are compiled into it) and cached
on disk. :mod:`fastprop.meanfield.grid` only schedules these functions over points.

Conventions (DESIGN §1; Poole et al. 2016, Schoenholz et al. 2017)
--------------------------------------------------------------------
* Length map (Poole et al. 2016, eq. 3):
  :math:`V(q) = σ_w^2 \int φ(\sqrt q z)^2 Dz + σ_b^2`; q* its stable fixed point.
* Correlation map at q* (Poole et al. 2016, eq. 5):
  :math:`C(c) = (σ_w^2 \iint φ(u_1)φ(u_2) Dz_1 Dz_2 + σ_b^2)/q^*`,
  :math:`u_1 = \sqrt{q^*} z_1`, :math:`u_2 = \sqrt{q^*}(c z_1 + \sqrt{1-c^2} z_2)`.
* :math:`χ_1 = σ_w^2 \int φ'(\sqrt{q^*} z)^2 Dz = C'(1)` (Poole et al. eq. 7);
  :math:`χ_c = σ_w^2 \iint φ'(u_1)φ'(u_2) = C'(c^*)` (Schoenholz et al. eq. 9;
  the derivative follows from Price's theorem, dN/dc = q E φ'φ').
* :math:`χ_q = V'(q^*) = χ_1 + σ_w^2 \int φ''(\sqrt{q^*} z) φ(\sqrt{q^*} z) Dz`
  (Stein's lemma; kinks add Dirac masses); where its two terms cancel it is
  computed as :math:`σ_w^2 \int φ(\sqrt{q^*} z) φ'(\sqrt{q^*} z)\, z\, Dz / \sqrt{q^*}`,
  the q-derivative of V taken under the integral (:func:`moments`).
* Depth scales (Schoenholz et al. 2017, eqs. 7 and 10): ξ_q = −1/ln χ_q,
  ξ_c = −1/ln χ_c; +inf exactly at χ = 1.

Integration
-----------
One-dimensional moments use the graded, kink-split Gauss–Legendre rule of
:mod:`fastprop.quadrature`. The two-dimensional integrals are done by
conditioning on z₁: the inner expectation over z₂ is E φ(m + s z₂) with
m = √q c z₁, s = √q √(1−c²) — in closed form when the activation has one
(``gauss_mean``), otherwise by the same graded rule with its panels moved to
(b − m)/s — and the outer integral over z₁ has panels at b/√q and
b/(√q c). Near c = ±1 the conditional mean turns each corner k of φ (a kink,
or a jump of φ'') over a width w = √(1−c²)/|c| around k/(√q c), which
collapses; panels are then graded around it at ±w·2ʲ
(:func:`fastprop.quadrature.make_next_break`), which keeps the rule exact to
rounding for c within 1e-12 of ±1. Activations with a closed-form kernel (relu, erf, linear) skip the
quadrature for the two-dimensional integral altogether.

Activations analytic in a strip |Im h| < a without a closed form (tanh,
sigmoid, softplus, swish: ``Activation.strip``) use a lattice rule for the
two-dimensional integrals when |c| ≥ 0.2: u₁ = iΔ₁ and u₂ = jΔ₂ with
Δ₂ = |c|Δ₁/m, so that each conditional mean c·u₁ is itself a lattice point and
E[φ(u₂) | u₁] is a discrete convolution of φ's lattice samples with one table
of Gaussian weights. φ is evaluated once per lattice point (not once per pair
of nodes) and the convolution vectorises; the trapezoidal rule's error
2M/(e^{2πa/Δ} − 1) (Trefethen & Weideman 2014) sets Δ from a and the
Gaussian's width (:func:`fastprop.quadrature.lattice_step`, error < e^{−36}).
The same sums give E φ''φ'', so C''(c) is known at no extra evaluations. For
odd φ only half the lattice is summed. Where the lattice would be huge (|c|
small, √(q(1−c²)) tiny, q very large) the Gauss–Legendre rule is used.

Tables: what every point shares
-------------------------------
A grid, the edge of chaos and the maps do not integrate at each point: every
point shares the activation, so the moments, the Hermite coefficients a_n(q)
and the pair integrals E φ(u₁)φ(u₂), E φ'(u₁)φ'(u₂) are tabulated once per
activation as piecewise Chebyshev interpolants in ln q (and θ = arccos c, on
boxes graded towards c = 1), built from the quadrature below and certified to
1e-13 of it at fresh points (:mod:`fastprop.meanfield.tables`, layout in
:mod:`fastprop.meanfield.interpolants`). Each point then solves its fixed
points by Newton on the interpolants (about 1 µs a point; q* by Newton on E φ²
and its derivative alone, the other moments at the last step). On the table path
c* starts from a start table: at q* = q the point's c* depends only on
t = (χ_1 − 1)/(χ̂ − 1), χ̂ = q E φ'²/E φ², so c*(ln q, t) is tabulated per pair
panel (not certified; its measured error, doubled, puts the start below c*),
and Newton on the pair table takes two or three steps in one box; where the start
says c* < 0.25, the Mehler model below starts there. Where no certified
table covers a value (q below 4e-11, c* above 1 − 5e-8 next to the edge of
chaos, c < 0.25 when the Mehler series has not converged, a kinked φ's panel
that failed its certificate) the point takes the exact per-point path
described here, which stays the reference (``tables=False``).

Fixed points
------------
q*: safeguarded Newton on g(q) = V(q) − q with V'(q) from the same quadrature,
growing a bracket geometrically and bisecting (geometrically when the bracket
spans decades) whenever Newton leaves it.

c*: in the chaotic phase (χ_1 > 1) C is increasing and convex on [0, 1] with
C(1) = 1 (its Taylor coefficients at 0 are the squared Hermite coefficients
a_n² of φ(√q z), all ≥ 0: Mehler's formula), so c* is the unique fixed point in
[0, 1). The first 33 terms of that series are a lower bound whose error on
[0, c] is at most R·c³³ with R = E φ² − Σ a_n² (derivative: 33·R·c³²). Their
fixed point c_M ≤ c* is computed first; when the bound is below rounding, c_M
*is* c* (typically c* ≲ 0.35) and no two-dimensional integral is needed.
Otherwise (the model is still above the diagonal where the bound reaches
rounding, c_R: then c* > c_R) Newton starts from c_R and increases
monotonically to c*, on the tabulated pair integrals where they cover it;
on the exact ones, with C'' from the lattice rule each step is a Halley step,
and a step below 1e-7 is final (c + δ and χ_c = C'(c) + C''δ then err by
O(δ³) and O(δ²)). A bisection guard catches rounding. In the ordered phase
(χ_1 ≤ 1) c* = 1 and χ_c = χ_1.

Degenerate cases (one documented value each, flagged in ``status``)
------------------------------------------------------------------
* ``Q_ZERO``: σ_b = 0, φ(0) = 0 and V'(0⁺) ≤ 1 — q* = 0. Every other quantity is
  its limit q → 0⁺ (χ_1 = σ_w² E φ'(0^{sign z})², so relu gives σ_w²/2),
  c* = 1, χ_c = χ_1.
* ``Q_INFINITE``: V(q) > q for all q up to 1e200 — q* = +inf, χ_1 is its limit
  q → ∞, and c*, χ_c, ξ_q, ξ_c are NaN (no correlation map exists there).
* ``CRITICAL``: χ_c or χ_q equal to 1 within rounding — the depth scale is +inf.
* ``NOT_CONVERGED``: an iteration hit its cap; the last iterate is returned.
"""

from .common import Status
from .compiled import kernels, scalar_kernels
from .grid import MeanFieldGrid, edge_of_chaos, meanfield_grid
from .maps import correlation_map, length_map, q_star

__all__ = [
    "Status",
    "kernels",
    "scalar_kernels",
    "MeanFieldGrid",
    "meanfield_grid",
    "edge_of_chaos",
    "length_map",
    "correlation_map",
    "q_star",
]

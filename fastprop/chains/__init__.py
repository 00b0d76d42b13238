"""Monte-Carlo chains: finite-width random networks and the law of ‖x_ℓ‖.

A chain is one random network of width d and depth L applied to x₀ (DESIGN §1):
``h_ℓ = W_ℓ x_{ℓ-1} + b_ℓ``, ``x_ℓ = φ(h_ℓ)``, with ``W_ℓ`` Gaussian
(entries N(0, σ_w²/d)) or ``σ_w`` times a Haar-orthogonal matrix, and
``b_ℓ ~ N(0, σ_b² I)``. Each chain draws its numbers from its own counter-based
stream (:mod:`fastprop.chains.rng`), so a chain's result depends only on (seed, chain
index, parameters).

Samplers (all exact in law for the sequence of norms ‖x_ℓ‖)
------------------------------------------------------------
``dense``
    Draws every ``W_ℓ`` entry by entry (d² normals a layer, row-major; the
    orthogonal one by Gram–Schmidt of a Gaussian matrix's columns, which is
    Haar: Mezzadri 2007), then d bias normals when σ_b > 0. The reference path.
``invariant``
    Rotation invariance: given x, ``W x`` is N(0, σ_w²‖x‖²/d · I) for Gaussian
    weights and uniform on the sphere of radius σ_w‖x‖ for orthogonal ones, so
    ``h_ℓ`` is drawn from d normals (2d for orthogonal weights with bias) and
    only ‖x_ℓ‖ is carried. For positively homogeneous φ (linear, relu,
    leaky_relu, abs) with σ_b = 0 and Gaussian weights the layer gain is a
    chi-square factor: ``‖x_ℓ‖² / ‖x_{ℓ-1}‖² = (σ_w²/d)(φ(1)² χ²_K + φ(−1)² χ²_{d−K})``
    with K ~ Binomial(d, ½) (K = d when φ(1)² = φ(−1)²), a handful of numbers a
    layer whatever d; for orthogonal weights and |φ| = |h| the gain is σ_w²
    exactly.
``auto``
    ``invariant``, the fastest exact sampler for every supported request.

Depth without overflow: for positively homogeneous φ with σ_b = 0 the chain
carries log‖x_ℓ‖ and a unit direction, so depth 10⁴ and beyond neither
overflows nor underflows; a chain whose signal becomes exactly 0 (every unit of
a ReLU layer inactive) stays 0. Elsewhere the dense sampler propagates x itself
and the invariant sampler carries log‖x_ℓ‖ (and ‖x_ℓ‖² only while it is a
representable float), so both overflow exactly where ‖x_ℓ‖ itself leaves the
float range (≈ 1.8e308), not where its square does; norms that overflow are
counted as infinite and a NaN (e.g. φ(−∞) = NaN for gelu) as undefined, never
as a zero norm.

RMS normalisation (``rms_norm=True``): after layer ℓ, ``x_ℓ ← x_ℓ / ‖x_ℓ‖_rms``
with ``‖x‖_rms = ‖x‖/√d`` (the remedy for deep linear nets in the thesis
chapter behind this package). The recorded ``‖x_ℓ‖`` is then the norm *before*
that normalisation, i.e. the gain of layer ℓ on an input of norm √d.
"""

from .result import ChainResult, TailEstimate
from .simulate import simulate_chains

__all__ = ["ChainResult", "TailEstimate", "simulate_chains"]

"""Rare-event tails of ‖x_L‖, far below 1/n: :func:`rare_tail` → :class:`RareTailEstimate`.

Exponential tilting of the layer gains where they are independent
(:mod:`fastprop.rare.tilt`), generalized splitting in the space of a network's
normals everywhere else (:mod:`fastprop.rare.splitting`); the methods, where each
runs and the randomness contract are in :mod:`fastprop.rare.estimate`.
"""

from .estimate import rare_tail
from .result import RareTailEstimate

__all__ = ["rare_tail", "RareTailEstimate"]

"""The backward signal at finite width: input–output Jacobians of random networks.

:func:`simulate_jacobians` runs the networks of :func:`fastprop.simulate_chains` and carries
their Jacobians J_ℓ = ∂x_ℓ/∂x_0 in QR form (:mod:`fastprop.jacobians.chain`,
:mod:`fastprop.jacobians.linalg`); :class:`JacobianResult` holds the streaming statistics of every
singular value, the QR diagonals (the Lyapunov spectrum), the gradient norms ‖J_ℓᵀ u‖ and
‖J_ℓ v‖, s_2/s_1 and the effective rank, per recorded layer.
"""

from .result import JacobianResult, quantities
from .simulate import simulate_jacobians

__all__ = ["JacobianResult", "quantities", "simulate_jacobians"]

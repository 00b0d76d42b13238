"""fastprop: signal propagation through random deep networks, compiled.

Mean field (infinite width): :func:`length_map`, :func:`correlation_map`,
:func:`meanfield_grid` (q*, χ_1, c*, χ_c, ξ_q, ξ_c over (σ_w, σ_b) grids) and
:func:`edge_of_chaos`. Conventions follow Poole et al. 2016 and Schoenholz et
al. 2017; see ``DESIGN.md`` and the module docs of :mod:`fastprop.meanfield`.

Finite width: :func:`simulate_chains` (Monte-Carlo laws of ‖x_ℓ‖, exact
:mod:`~fastprop.chains.exact` laws), resumable :mod:`~fastprop.run.checkpoint` runs,
:func:`simulate_jacobians` (singular values and Lyapunov spectra of the input–output Jacobian)
and :func:`simulate_kernels` (empirical NNGP and NTK kernels).

Layout: shared maths (:mod:`fastprop.activations`, :mod:`fastprop.quadrature`,
:mod:`fastprop.special`); one subpackage per engine (:mod:`fastprop.meanfield`,
:mod:`fastprop.chains`); the execution layer :mod:`fastprop.run` (targets,
kernel cache, Dask, checkpoints, progress, files); :mod:`fastprop.cli` and
:mod:`fastprop.plot` on top.
"""

from . import plot
from ._version import __version__
from .activations import ACTIVATIONS, Activation, activation, register_activation
from .chains import ChainResult, TailEstimate, exact, simulate_chains
from .jacobians import JacobianResult, simulate_jacobians
from .kernels import EmpiricalKernels, KernelResult, nngp, simulate_kernels
from .meanfield import MeanFieldGrid, Status, correlation_map, edge_of_chaos, length_map, meanfield_grid
from .rare import RareTailEstimate, rare_tail
from .run import checkpoint, distributed
from .run.targets import TARGETS
from .spectra import JacobianSpectrum, SpectrumMap, jacobian_moments, jacobian_spectrum, spectrum_map

__all__ = [
    "__version__",
    "ACTIVATIONS",
    "Activation",
    "activation",
    "register_activation",
    "length_map",
    "correlation_map",
    "meanfield_grid",
    "MeanFieldGrid",
    "edge_of_chaos",
    "Status",
    "simulate_chains",
    "ChainResult",
    "TailEstimate",
    "exact",
    "rare_tail",
    "RareTailEstimate",
    "simulate_jacobians",
    "JacobianResult",
    "jacobian_moments",
    "jacobian_spectrum",
    "JacobianSpectrum",
    "spectrum_map",
    "SpectrumMap",
    "nngp",
    "KernelResult",
    "simulate_kernels",
    "EmpiricalKernels",
    "checkpoint",
    "distributed",
    "plot",
    "TARGETS",
]

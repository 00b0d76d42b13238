"""fastprop: signal propagation through random deep networks, compiled.

Mean field (infinite width): :func:`length_map`, :func:`correlation_map`,
:func:`meanfield_grid` (q*, χ_1, c*, χ_c, ξ_q, ξ_c over (σ_w, σ_b) grids) and
:func:`edge_of_chaos`. Conventions follow Poole et al. 2016 and Schoenholz et
al. 2017; see ``DESIGN.md`` and the module docs of :mod:`fastprop.meanfield`.
"""

from . import checkpoint, distributed, exact, plot
from ._version import __version__
from .activations import ACTIVATIONS, Activation, activation, register_activation
from .chainresult import ChainResult, TailEstimate
from .grid import MeanFieldGrid, edge_of_chaos, meanfield_grid
from .maps import correlation_map, length_map
from .meanfield import Status
from .simulate import simulate_chains
from .targets import TARGETS

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
    "checkpoint",
    "distributed",
    "plot",
    "TARGETS",
]

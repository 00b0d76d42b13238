"""Mean-field quantities over (σ_w, σ_b) grids, and the edge of chaos.

The drivers only schedule the compiled scalar maths of :mod:`fastprop.meanfield`
over points; every point is computed independently from a cold start, so a
grid's values do not depend on the target, the thread count or on how the grid
is tiled.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .. import _validate
from .._version import __version__
from ..activations import activation as _activation
from ..run import files as _io
from ..run import resources as _resources
from ..run import schedule
from ..run.progress import make as _progress
from ..run.targets import check_target, resolve_target
from .common import Status
from .compiled import kernels
from .cpu import run_grid_cpu, table_set

__all__ = ["MeanFieldGrid", "meanfield_grid", "edge_of_chaos"]

EDGE_SCAN = 64
"""Points of the log-spaced scan for the first χ_1 = 1 crossing in :func:`edge_of_chaos`."""

_FIELDS = ("q_star", "chi_1", "c_star", "chi_c", "chi_q", "xi_q", "xi_c", "status")
GRID_BYTES_PER_POINT = 7 * 8 + 1
"""Seven float64 fields and the int8 status of a grid point (nothing else grows with the grid)."""


@dataclass(eq=False)
class MeanFieldGrid:
    """Mean-field quantities on a (σ_w, σ_b) grid; 2-D arrays are indexed [i_w, i_b].

    Attributes
    ----------
    sigma_w, sigma_b : 1-D arrays, the axes.
    q_star : fixed point of the length map (0 or +inf in degenerate cases).
    chi_1 : σ_w² E φ'(√q* z)², the slope of the correlation map at c = 1.
    c_star : stable fixed point of the correlation map in [0, 1].
    chi_c : σ_w² E φ'(u₁)φ'(u₂) at c*, the slope of the correlation map there.
    chi_q : V'(q*), the slope of the length map at q*.
    xi_q, xi_c : depth scales −1/ln χ_q and −1/ln χ_c (+inf at criticality).
    status : :class:`fastprop.Status` bit flags per point.
    activation, target : how the grid was computed; ``meta`` holds the version.
    """

    sigma_w: np.ndarray
    sigma_b: np.ndarray
    q_star: np.ndarray
    chi_1: np.ndarray
    c_star: np.ndarray
    chi_c: np.ndarray
    chi_q: np.ndarray
    xi_q: np.ndarray
    xi_c: np.ndarray
    status: np.ndarray
    activation: str = "tanh"
    target: str = "cpu"
    meta: dict = field(default_factory=dict)

    @property
    def shape(self):
        return (self.sigma_w.size, self.sigma_b.size)

    def __repr__(self):
        flags = {s.name: int(np.count_nonzero(self.status & s)) for s in Status if s and np.any(self.status & s)}
        return (
            f"MeanFieldGrid(activation={self.activation!r}, shape={self.shape}, "
            f"sigma_w=[{self.sigma_w[0]:g}..{self.sigma_w[-1]:g}], "
            f"sigma_b=[{self.sigma_b[0]:g}..{self.sigma_b[-1]:g}], "
            f"status={flags or 'all OK'})"
        )

    def _info(self):
        return {
            "activation": self.activation,
            "target": self.target,
            "meta": self.meta,
            "format": "fastprop.MeanFieldGrid/1",
        }

    def _arrays(self):
        return {f.name: getattr(self, f.name) for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)}

    _DIMS = {"sigma_w": ("sigma_w",), "sigma_b": ("sigma_b",), **{k: ("sigma_w", "sigma_b") for k in _FIELDS}}

    def save(self, path):
        """Write the grid to ``path`` atomically (a temporary file in the same
        directory is renamed over ``path`` only once complete): netCDF when the
        name ends in ``.nc`` (needs the xarray extra), NumPy ``.npz`` otherwise."""
        return _io.save(path, self._info(), self._arrays(), self._DIMS, coords=("sigma_w", "sigma_b"))

    @classmethod
    def load(cls, path):
        """Read a grid written by :meth:`save` (``.npz`` or netCDF); values round-trip bit for bit."""
        info, arrays = _io.load(path, "MeanFieldGrid")
        shapes = {"sigma_w": ("sigma_w",), "sigma_b": ("sigma_b",), **dict.fromkeys(_FIELDS, ("sigma_w", "sigma_b"))}
        _io.check_arrays(path, arrays, shapes)
        if not isinstance(info.get("activation"), str) or not isinstance(info.get("meta", {}), dict):
            raise _io.FileFormatError(f"{str(path)!r}: no activation name or meta record")
        if arrays["status"].dtype != np.int8:
            raise _io.FileFormatError(f"{str(path)!r}: status has dtype {arrays['status'].dtype}, expected int8")
        return cls(
            activation=info["activation"], target=str(info.get("target", "")), meta=info.get("meta", {}), **arrays
        )

    def to_xarray(self):
        """An ``xarray.Dataset`` with coordinates ``sigma_w``, ``sigma_b`` (needs the xarray extra)."""
        return _io.dataset(self._info(), self._arrays(), self._DIMS, coords=("sigma_w", "sigma_b"))


def meanfield_grid(
    activation, sigma_w, sigma_b, target="auto", client=None, *, progress=False, tables=True
) -> MeanFieldGrid:
    """q*, χ_1, c*, χ_c, χ_q, ξ_q, ξ_c and status over a (σ_w, σ_b) grid.

    Parameters
    ----------
    activation : str or Activation
        A built-in name (see :data:`fastprop.ACTIVATIONS`) or a registered one.
    sigma_w, sigma_b : 1-D array_like
        The axes: weight and bias standard deviations (σ ≥ 0, finite).
    target : {"auto", "cpu", "parallel", "cuda"}
        "auto" is "cuda" where a GPU is usable (one thread per point,
        :mod:`fastprop.meanfield.cuda`), else "parallel" (all CPU threads).
    client : dask.distributed.Client or str, optional
        Run the grid in tiles of σ_w rows on a Dask cluster (a client, or a
        scheduler address); the values are bitwise those of a local run
        (:mod:`fastprop.run.distributed`). ``target`` is then resolved on each worker.
    progress : bool or tqdm bar (:mod:`fastprop.run.progress`)
        Show a progress bar on stderr (only when it is a terminal). The grid is
        then computed in slices; the values do not change.
    tables : bool
        Evaluate the certified tables of the activation (:mod:`fastprop.meanfield.tables`;
        default), or compute every point by the exact per-point quadrature (the
        reference, 10–100× slower). The two agree to ~1e-13.

    Returns
    -------
    MeanFieldGrid
        Arrays of shape ``(len(sigma_w), len(sigma_b))``. Formulas, methods and
        the documented values of degenerate points are in :mod:`fastprop.meanfield`.

    Example
    -------
    >>> import numpy as np, fastprop as fp
    >>> g = fp.meanfield_grid("tanh", np.linspace(0.5, 3, 6), [0.0, 0.3], target="cpu")
    >>> g.q_star.shape
    (6, 2)
    """
    act = _activation(activation)
    sw = _validate.axis(sigma_w, "sigma_w")
    sb = _validate.axis(sigma_b, "sigma_b")
    _resources.require(sw.size * sb.size * GRID_BYTES_PER_POINT, f"a {sw.size} × {sb.size} grid")
    use_tables = _validate.boolean(tables, "tables")
    meta = {
        "fastprop_version": __version__, "method": act.method_note, "activation_fingerprint": act.fingerprint,
        "tables": use_tables,
    }  # fmt: skip
    check_target(target)
    if client is not None:
        with schedule.cluster(client) as cl:
            out, tgt = _grid_on_cluster(act, sw, sb, target, cl, progress, use_tables)
        return MeanFieldGrid(sw.copy(), sb.copy(), *out, activation=act.name, target=tgt, meta=meta)
    tgt = resolve_target(target)
    shape = (sw.size, sb.size)
    out = [np.empty(shape) for _ in range(7)] + [np.empty(shape, dtype=np.int8)]
    tab = table_set(act, use_tables)
    bar = _progress(progress, sw.size * sb.size, f"{act.name} grid", "points")
    try:
        if tgt == "cuda":
            from .cuda import run_grid

            run_grid(act, sw, sb, out, bar, tab)
        else:
            run_grid_cpu(act, sw, sb, tgt, out, bar, tab)
    finally:
        bar.close()
    return MeanFieldGrid(sw.copy(), sb.copy(), *out, activation=act.name, target=tgt, meta=meta)


def edge_of_chaos(
    activation, sigma_b, target="auto", sigma_w_range=(0.01, 100.0), full_output=False, client=None, *, tables=True
):
    """σ_w at which χ_1 = 1 (the order-to-chaos transition) for each σ_b.

    χ_1(σ_w, σ_b) = σ_w² E φ'(√q* z)² is evaluated at the fixed point q*(σ_w, σ_b).
    The first upward crossing of χ_1 = 1 in ``sigma_w_range`` is located by a
    log-spaced scan (``EDGE_SCAN`` = 64 points) and refined by the Illinois method to 1e-15
    relative. Where q* diverges beyond the crossing (relu-like activations with
    σ_b > 0), χ_1 there is its q → ∞ limit, which is continuous; such edges are
    flagged ``Q_INFINITE``. Where no crossing exists in the range the value is
    NaN and the status ``NO_EDGE``.

    At σ_b = 0 with φ(0) = 0 the crossing is where q* leaves 0 (σ_w² E φ'²(0⁺) = 1),
    returned exactly: χ_1 − 1 can touch 0 there with zero slope (erf), where
    no root finder gets closer than √ε from values of χ_1.

    ``client`` (a Dask client or scheduler address) runs slices of ``sigma_b``
    on a cluster, with bitwise the local values. ``tables``: as in
    :func:`meanfield_grid`.

    Returns an array like ``sigma_b`` (a float for a scalar), or with
    ``full_output=True`` a pair ``(sigma_w, status)``.

    Known values: relu at σ_b = 0 → √2 (He et al. 2015); tanh at σ_b = 0 → 1.
    """
    act = _activation(activation)
    scalar = np.ndim(sigma_b) == 0
    sb = _validate.real_array(sigma_b, "sigma_b", low=0.0).reshape(-1)
    if sb.size == 0:
        raise ValueError("sigma_b must not be empty")
    _resources.require(sb.size * 17, f"an edge of chaos at {sb.size} values of sigma_b")
    rng = _validate.real_array(sigma_w_range, "sigma_w_range", low=0.0, low_open=True)
    if rng.shape != (2,) or not rng[0] < rng[1]:
        raise ValueError(f"sigma_w_range must be (low, high) with 0 < low < high, got {tuple(rng.reshape(-1))}")
    use_tables = _validate.boolean(tables, "tables")
    check_target(target)
    if client is not None:
        with schedule.cluster(client) as cl:
            out, status = _edge_on_cluster(act, sb, target, (float(rng[0]), float(rng[1])), cl, use_tables)
    else:
        tgt = resolve_target(target)
        sb, lo, hi = np.ascontiguousarray(sb), float(rng[0]), float(rng[1])
        tab = table_set(act, use_tables)
        if tgt == "cuda":
            from .cuda import run_edge

            out, status = run_edge(act, sb, lo, hi, EDGE_SCAN, tab)
        else:
            out = np.empty(sb.size)
            status = np.empty(sb.size, dtype=np.int8)
            kernels(act, tgt).edge_driver(sb, lo, hi, EDGE_SCAN, tab.arrays, out, status)
    shape = np.shape(sigma_b)
    out, status = out.reshape(shape), status.reshape(shape)
    if scalar:
        out, status = float(out), int(status)
    return (out, status) if full_output else out


# ------------------------------------------------------------------ units of work on a cluster
def _grid_tile(act, sw, sb, target, use_tables=True):
    """One unit of work: the grid of a slice of σ_w rows (run on a Dask worker)."""
    return meanfield_grid(act, sw, sb, target=target, tables=use_tables)


def _edge_slice(act, sb, target, sw_range, use_tables=True):
    """One unit of work: the edge of chaos at a slice of σ_b (run on a Dask worker)."""
    return edge_of_chaos(act, sb, target=target, sigma_w_range=sw_range, full_output=True, tables=use_tables)


def _grid_on_cluster(act, sw, sb, target, client, progress, use_tables):
    """The tiles of a grid on ``client``; returns (arrays, worker targets)."""
    ref = schedule.activation_ref(act)
    rows = schedule.split(sw.size, max(1, 16384 // sb.size), client)
    out = {k: np.empty((sw.size, sb.size), np.int8 if k == "status" else np.float64) for k in _FIELDS}
    targets = set()

    def combine(i, tile):
        a, b = rows[i]
        for k in _FIELDS:
            out[k][a:b] = getattr(tile, k)
        targets.add(tile.target)

    schedule.run_on_cluster(
        client, _grid_tile, [(ref, sw[a:b], sb, target, use_tables) for a, b in rows],
        [(b - a) * sb.size for a, b in rows],
        combine, progress, f"{act.name} grid", "points",
    )  # fmt: skip
    return [out[k] for k in _FIELDS], "+".join(sorted(targets))


def _edge_on_cluster(act, sb, target, sw_range, client, use_tables):
    """The edge of chaos over slices of ``sb`` on ``client``; returns (sigma_w, status)."""
    ref = schedule.activation_ref(act)
    parts = schedule.split(sb.size, 8, client)
    out = np.empty(sb.size)
    status = np.empty(sb.size, np.int8)

    def combine(i, res):
        a, b = parts[i]
        out[a:b], status[a:b] = res

    schedule.run_on_cluster(client, _edge_slice, [(ref, sb[a:b], target, sw_range, use_tables) for a, b in parts],
                            [0] * len(parts), combine)  # fmt: skip
    return out, status

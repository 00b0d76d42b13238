r"""NNGP and NTK kernels of a batch of inputs through depth: :func:`nngp`, :class:`KernelResult`.

Conventions (DESIGN §1; Lee et al. 2018, Jacot et al. 2018):

.. math:: K^0 = σ_w^2 X X^T/d_0 + σ_b^2, \qquad
          K^ℓ_{ab} = σ_w^2\, E[φ(u_a)φ(u_b)] + σ_b^2, \qquad
          Θ^0 = K^0,\quad Θ^ℓ = K^ℓ + σ_w^2\, E[φ'(u_a)φ'(u_b)]\, Θ^{ℓ-1},

(u_a, u_b) centred Gaussian with covariance K^{ℓ−1} restricted to {a, b}. Inputs of any norms:
the two variances of a pair need not be equal. How each pair is computed (Mehler's series where
its tail is certified, else the exact pair integral) is in :mod:`fastprop.kernels.layers`; the
per-input Hermite coefficients and moments come from the mean-field engine's certified tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from .. import _validate
from .._version import __version__
from ..activations import activation as _activation
from ..meanfield import interpolants
from ..meanfield.compiled import scalar_kernels
from ..meanfield.tables import tables as _tables
from ..run import files as _io
from ..run import schedule
from ..run.compile import specialise
from ..run.progress import make as _progress
from ..run.resources import require
from ..run.targets import check_target, resolve_target

__all__ = ["nngp", "KernelResult"]

_CACHE: dict = {}
PAIRS_PER_BLOCK = 1 << 23
"""Pair-layers (pairs × depth) per block of rows: a few seconds of work on two cores."""


def layer_kernels(act, target):
    """The compiled ``layers`` template of an activation for "cpu" or "parallel"."""
    key = (act.fingerprint, target)
    module = _CACHE.get(key)
    if module is None:
        base = scalar_kernels(act)
        pairs = base.modules[2]
        module = _CACHE[key] = specialise(
            "fastprop.kernels.layers", f"kernels-{act.name}-layers", f"{act.name}:{act.fingerprint}:{target} "
            + " ".join(m.__name__ for m in base.modules),
            {"ev": act.eval3, "pair": base.pair, "lattice_pair": pairs.lattice_pair,
             "pair_gauss_legendre": pairs.pair_gauss_legendre, "STRIP": pairs.STRIP,
             "moments_at": base.moments_at, "hermite_coefficients": base.hermite_coefficients,
             "hermite_table": interpolants.hermite_table, "HOMOGENEOUS": act.homogeneous,
             "PARALLEL": target == "parallel", "SCRATCH_SIZE": base.scratch_size},
            shared=act.portable,
        )  # fmt: skip
    return module


@dataclass
class KernelResult:
    """NNGP (and NTK) kernels of ``n`` inputs at the recorded layers.

    ``nngp[i]``, ``ntk[i]``: n × n float64 arrays at layer ``layers[i]`` (``ntk`` is None when
    not computed). ``exact_pairs[i]``: how many pairs of layer ``layers[i]`` took the exact pair
    integral (with ``rows=``, every computed entry counts, so a pair whose two rows are both in the
    block counts twice) rather than Mehler's series (0 at layer 0)."""

    layers: np.ndarray
    nngp: np.ndarray
    ntk: np.ndarray | None
    exact_pairs: np.ndarray
    activation: str = "tanh"
    sigma_w: float = 1.0
    sigma_b: float = 0.0
    meta: dict = field(default_factory=dict)

    def _arrays(self):
        arrays = {"layers": self.layers, "nngp": self.nngp, "exact_pairs": self.exact_pairs}
        if self.ntk is not None:
            arrays["ntk"] = self.ntk
        return arrays

    def _info(self):
        return {"activation": self.activation, "sigma_w": self.sigma_w, "sigma_b": self.sigma_b, "meta": self.meta,
                "format": "fastprop.KernelResult/1"}  # fmt: skip

    _DIMS = {"layers": ("layer",), "nngp": ("layer", "a", "b"), "ntk": ("layer", "a", "b"),
             "exact_pairs": ("layer",)}  # fmt: skip

    def save(self, path):
        """Write the result to ``path`` atomically (``.npz``; ``.nc`` needs the xarray extra)."""
        return _io.save(path, self._info(), self._arrays(), self._DIMS, coords=("layers",))

    @classmethod
    def load(cls, path):
        """Read a result written by :meth:`save`; values round-trip bit for bit."""
        info, arrays = _io.load(path, "KernelResult")
        _io.check_arrays(path, arrays, {k: v for k, v in cls._DIMS.items()}, optional=("ntk",))
        if not isinstance(info.get("activation"), str):
            raise _io.FileFormatError(f"{str(path)!r}: no activation name")
        return cls(layers=arrays["layers"], nngp=arrays["nngp"], ntk=arrays.get("ntk"),
                   exact_pairs=arrays["exact_pairs"], activation=info["activation"], sigma_w=info["sigma_w"],
                   sigma_b=info["sigma_b"], meta=info.get("meta", {}))  # fmt: skip

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims (layer, a, b) (needs the xarray extra)."""
        return _io.dataset(self._info(), self._arrays(), self._DIMS, coords=("layers",))

    def identical(self, other):
        """Whether two results hold bit-identical kernels for the same job."""
        same_ntk = (self.ntk is None and other.ntk is None) or (
            self.ntk is not None and other.ntk is not None and np.array_equal(self.ntk, other.ntk)
        )
        return (self.activation, self.sigma_w, self.sigma_b) == (other.activation, other.sigma_w, other.sigma_b) and (
            np.array_equal(self.layers, other.layers) and np.array_equal(self.nngp, other.nngp) and same_ntk
        )


def record_layers(layers, depth):
    """The recorded layers: sorted distinct ints in 0 … depth (default all)."""
    if layers is None:
        return np.arange(depth + 1, dtype=np.int64)
    rec = np.unique(np.asarray([_validate.integer(v, "layers", low=0, high=depth) for v in np.ravel(layers)],
                               dtype=np.int64))  # fmt: skip
    if rec.size == 0:
        raise ValueError("layers is empty")
    return rec


def _checked_inputs(X, gram):
    """(X, gram) validated: exactly one of them, as float arrays."""
    if (X is None) == (gram is None):
        raise TypeError("give X (inputs as rows) or gram (X Xᵀ/d0), not both and not neither")
    if np.iscomplexobj(X) or np.iscomplexobj(gram):
        raise TypeError("X and gram must be real arrays")
    if X is not None:
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X must be a 2-D array (n inputs × d0 features), got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X has non-finite entries")
        return X, None
    gram = np.asarray(gram, dtype=float)
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1] or gram.shape[0] < 1:
        raise ValueError(f"gram must be a square n × n matrix, got shape {gram.shape}")
    if not np.all(np.isfinite(gram)):
        raise ValueError("gram has non-finite entries")
    if not np.array_equal(gram, gram.T):
        raise ValueError("gram must be symmetric")
    if np.any(np.diag(gram) < 0.0):
        raise ValueError("gram must have a non-negative diagonal (it is X Xᵀ/d0)")
    return None, gram


def first_layer(X, gram, sw2, sb2):
    """K⁰ = σ_w² X Xᵀ/d0 + σ_b² (or σ_w² gram + σ_b²), exactly symmetric."""
    X, gram = _checked_inputs(X, gram)
    with np.errstate(over="ignore"):  # an overflow is refused by the caller, with a message
        if X is not None:
            k0 = X @ X.T
            k0 /= X.shape[1]
        else:
            k0 = np.array(gram, order="C")
        k0 *= sw2  # in place: at n = 10⁴ each n × n temporary is 800 MB
        k0 += sb2
    _symmetrise(k0)
    return k0


def first_rows(X, gram, sw2, sb2, r0, r1):
    """Rows r0 … r1−1 of K⁰ and its whole diagonal (from gram: those of :func:`first_layer`
    exactly; from X: equal to them up to the rounding of the products X Xᵀ)."""
    X, gram = _checked_inputs(X, gram)
    with np.errstate(over="ignore"):  # an overflow is refused by the caller, with a message
        if X is not None:
            k0 = X[r0:r1] @ X.T
            k0 /= X.shape[1]
            d0 = np.einsum("ij,ij->i", X, X)
            d0 /= X.shape[1]
        else:
            k0 = np.array(gram[r0:r1], order="C")
            d0 = np.diag(gram).copy()
        for v in (k0, d0):
            v *= sw2
            v += sb2
    k0[np.arange(r1 - r0), np.arange(r0, r1)] = d0[r0:r1]
    return k0, d0


@njit(cache=True)
def _symmetrise(k):
    """k ← (k + kᵀ)/2 in place (exactly symmetric)."""
    for a in range(k.shape[0]):
        for b in range(a):
            v = 0.5 * (k[a, b] + k[b, a])
            k[a, b] = v
            k[b, a] = v


def _diagonals(mod, tab, d0, depth, sw2, sb2, ntk):
    """The diagonals through depth: qs[ℓ] = diag K^ℓ, ts[ℓ] = diag Θ^ℓ, and vals[ℓ] the per-input
    values at qs[ℓ] (ℓ < depth), from d0 = diag K⁰."""
    n = d0.size
    qs = np.empty((depth + 1, n))
    ts = np.empty((depth + 1, n))
    qs[0] = ts[0] = d0
    vals = np.empty((depth + 1, n, mod.NF))
    for ell in range(1, depth + 1):
        mod.inputs(qs[ell - 1], tab, vals[ell - 1])
        qs[ell], ts[ell] = qs[ell - 1], ts[ell - 1]
        mod.diagonal_step(vals[ell - 1], sw2, sb2, ntk, qs[ell], ts[ell])
    return qs, ts, vals


def _cpu_pairs(mod, k0, qs, vals, sw2, sb2, ntk, slot, r0, r1, full, out_k, out_t, exact, bar):
    """The off-diagonal entries of rows r0 … r1−1 (b < a, and b > a with ``full``) on the CPU
    threads, in blocks of rows of about ``PAIRS_PER_BLOCK`` pair-layers (progress, and a
    KeyboardInterrupt, between blocks); rows in an order that balances the work: long and short
    rows alternate. Row a of K⁰ is k0[a − r0] and goes to out[:, a − r0]."""
    n, depth = qs.shape[1], qs.shape[0] - 1
    idx = np.arange(r0, r1, dtype=np.int64)
    rows = np.empty(idx.size, dtype=np.int64)
    rows[0::2], rows[1::2] = idx[::-1][: (idx.size + 1) // 2], idx[: idx.size // 2]
    per_row = n if full else max(1, (r0 + r1) // 2)
    per_block = max(1, min(idx.size, PAIRS_PER_BLOCK // max(1, per_row * depth)))
    counts = np.zeros((per_block, depth + 1), dtype=np.int64)
    for i0 in range(0, rows.size, per_block):
        block = rows[i0 : i0 + per_block]
        mod.pairs(k0, qs, vals, sw2, sb2, ntk, slot, block, r0, full, out_k, out_t, counts)
        exact += counts[: block.size].sum(axis=0)
        bar.advance(int(block.size * (n - 1) if full else block.sum()))


def _triangle_block(ref, k0_block, d0, r0, r1, depth, sw, sb, ntk, rec, target):
    """A Dask task: the entries (a, b < a) of rows r0 … r1−1 through every layer, from those rows
    of K⁰ (columns 0 … r1−1) and the whole diagonal d0 of K⁰. Returns (K block, Θ block, exact
    counts per layer); the blocks are (recorded layers, r1 − r0, r1) with the lower triangle set."""
    act = _activation(ref)
    tgt = resolve_target(target)
    mod = layer_kernels(act, "parallel" if tgt == "cuda" else tgt)
    sw2, sb2 = sw * sw, sb * sb
    qs, _, vals = _diagonals(mod, _tables(act).arrays_without_q_start, d0, depth, sw2, sb2, ntk)
    slot = _slots(rec, depth)
    out_k = np.zeros((rec.size, r1 - r0, r1))
    out_t = np.zeros((rec.size, r1 - r0, r1)) if ntk else np.empty((1, 1, 1))
    exact = np.zeros(depth + 1, dtype=np.int64)
    _cpu_pairs(mod, k0_block, qs, vals, sw2, sb2, ntk, slot, r0, r1, False, out_k, out_t, exact, _progress(False, 0,
               "", ""))  # fmt: skip
    return out_k, (out_t if ntk else None), exact


def _slots(rec, depth):
    slot = np.full(depth + 1, -1, dtype=np.int64)
    slot[rec] = np.arange(rec.size)
    return slot


def _triangle_on_cluster(client, act, k0, d0, depth, sw, sb, ntk, rec, target, out_k, out_t, exact, progress):
    """The lower triangle on a Dask cluster, in blocks of rows of about equal numbers of pairs."""
    n = d0.size
    count = len(schedule.split(n, 64, client))
    bounds = sorted({int(round(n * math.sqrt(k / count))) for k in range(count + 1)})
    blocks = [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    ref = schedule.activation_ref(act)
    args = [(ref, np.ascontiguousarray(k0[a:b, :b]), d0, a, b, depth, sw, sb, ntk, rec, target) for a, b in blocks]

    def combine(i, result):
        a, b = blocks[i]
        bk, bt, ex = result
        out_k[:, a:b, :b] = bk
        if ntk:
            out_t[:, a:b, :b] = bt
        exact[:] += ex

    weights = [(b * (b - 1) - a * (a - 1)) // 2 for a, b in blocks]
    schedule.run_on_cluster(client, _triangle_block, args, weights, combine, progress, "pairs", "pairs")


def nngp(X=None, depth=10, activation="tanh", sigma_w=1.0, sigma_b=0.0, *, ntk=True, layers=None, gram=None,
         target="auto", client=None, rows=None, progress=False):  # fmt: skip
    r"""The NNGP kernel K^ℓ (and the NTK Θ^ℓ) of the rows of ``X`` through ``depth`` layers.

    Parameters
    ----------
    X : (n, d0) array
        The inputs, one per row; or give ``gram`` = X Xᵀ/d0 instead (then K⁰ = σ_w² gram + σ_b²).
    depth : int ≥ 0
    activation, sigma_w, sigma_b
        The network (module docstring for the recursion; DESIGN §1).
    ntk : bool
        Also the neural tangent kernel Θ^ℓ.
    layers : ints in 0 … depth, optional
        Layers to record (default all, 0 … depth).
    target : {"auto", "cpu", "parallel", "cuda"}
        "auto": "cuda" where a GPU is usable, else "parallel" (threads over rows). On "cuda" a
        thread takes a pair through every layer by Mehler's series; the pairs that need the exact
        integral somewhere are computed on the CPU (:mod:`fastprop.kernels.cuda`).
    client : dask.distributed.Client or str, optional
        Compute the kernels on a Dask cluster in blocks of rows of about equal work (each task
        gets its rows of K⁰ and the diagonal, and returns its block); the result is gathered
        here and is bitwise the local one. ``target`` is resolved on each worker.
    rows : (start, stop), optional
        Only rows start … stop−1 of every kernel (arrays of shape (stop − start, n)), for kernels
        too large for one machine: compute them block by block, anywhere, and store each. Bitwise
        the rows of the whole kernel given ``gram``; from ``X``, equal to them up to the rounding
        of the products X Xᵀ. CPU targets only.
    progress : bool or tqdm bar
        A bar over the pairs (:mod:`fastprop.run.progress`).

    Returns
    -------
    KernelResult

    Accuracy: every pair is computed to about 1e-13 of √(K_aa K_bb) (the series' certified
    tail, or the exact pair integral; closed forms for relu, erf and linear at equal variances),
    at any input norms and correlations up to ±1.
    """
    act = _activation(activation)
    depth = _validate.integer(depth, "depth", low=0)
    sw = _validate.real_scalar(sigma_w, "sigma_w", low=0.0)
    sb = _validate.real_scalar(sigma_b, "sigma_b", low=0.0)
    ntk = _validate.boolean(ntk, "ntk")
    rec = record_layers(layers, depth)
    sw2, sb2 = sw * sw, sb * sb
    src = X if X is not None else gram
    n = len(src) if src is not None and np.ndim(src) >= 1 else 0
    if client is not None:
        check_target(target)  # resolved on each worker
        tgt = target
        if rows is not None:
            raise ValueError("rows= computes one block here; client= cuts the whole kernel into blocks: give one")
    else:
        tgt = resolve_target(target)
    r0, r1 = (0, n) if rows is None else _row_range(rows, n)
    if rows is not None and tgt == "cuda":
        raise ValueError("rows= runs on the CPU targets ('cpu', 'parallel')")
    m = r1 - r0
    nk = 2 if ntk else 1
    require(8.0 * m * n * (rec.size * nk + 1),
            f"nngp of {n} inputs ({rec.size} recorded layers{', NTK too' if ntk else ''}"
            f"{f', rows {r0} … {r1 - 1}' if rows is not None else ''})")  # fmt: skip
    if rows is None:
        k0 = first_layer(X, gram, sw2, sb2)
        d0 = np.diag(k0).copy()
    else:
        k0, d0 = first_rows(X, gram, sw2, sb2, r0, r1)
    n = d0.size
    if not (np.all(np.isfinite(k0)) and np.all(np.isfinite(d0))):
        raise ValueError("K⁰ = σ_w² X Xᵀ/d0 + σ_b² overflows (entries beyond 1.8e308): scale the inputs down")
    mod = layer_kernels(act, "parallel" if tgt in ("cuda", "auto") else tgt)
    qs, ts, vals = _diagonals(mod, _tables(act).arrays_without_q_start, d0, depth, sw2, sb2, ntk)
    finite = np.isfinite(qs).all(axis=1) & (np.isfinite(ts).all(axis=1) if ntk else True)
    if not finite.all():
        raise ValueError(f"the kernels overflow at layer {int(np.argmin(finite))} (the length map of some input "
                         "passes 1.8e308): record fewer layers, or scale the inputs or σ_w down")  # fmt: skip
    slot = _slots(rec, depth)
    out_k = np.empty((rec.size, m, n))
    out_t = np.empty((rec.size, m, n)) if ntk else np.empty((1, 1, 1))
    exact = np.zeros(depth + 1, dtype=np.int64)
    if depth > 0 and n > 1:
        if client is not None:
            with schedule.cluster(client) as cl:
                _triangle_on_cluster(cl, act, k0, d0, depth, sw, sb, ntk, rec, target, out_k, out_t, exact, progress)
        else:
            bar = _progress(progress, m * (n - 1) if rows is not None else n * (n - 1) // 2, "pairs", "pairs")
            try:
                if tgt == "cuda":
                    from .cuda import run_pairs

                    exact += run_pairs(layer_kernels(act, "cpu"), mod, k0, qs, vals, sw2, sb2, ntk, slot, out_k,
                                       out_t, bar)  # fmt: skip
                else:
                    _cpu_pairs(mod, k0, qs, vals, sw2, sb2, ntk, slot, r0, r1, rows is not None, out_k, out_t, exact,
                               bar)  # fmt: skip
            finally:
                bar.close()
        if rows is None:  # the kernels computed the lower triangles
            mod.mirror_lower(out_k)
            if ntk:
                mod.mirror_lower(out_t)
    own = (np.arange(m), np.arange(r0, r1))
    for j, ell in enumerate(rec):
        out_k[j][own] = qs[ell, r0:r1]
        if ntk:
            out_t[j][own] = ts[ell, r0:r1]
    if rec[0] == 0:
        out_k[0] = k0
        if ntk:
            out_t[0] = k0
    meta = {"fastprop_version": __version__, "activation_fingerprint": act.fingerprint, "depth": depth,
            "n": n, "target": tgt, "rows": [r0, r1]}  # fmt: skip
    return KernelResult(layers=rec, nngp=out_k, ntk=out_t if ntk else None, exact_pairs=exact[rec], activation=act.name,
                        sigma_w=sw, sigma_b=sb, meta=meta)  # fmt: skip


def _row_range(rows, n):
    """``rows`` = (r0, r1) with 0 ≤ r0 < r1 ≤ n."""
    if isinstance(rows, (str, bytes)) or not hasattr(rows, "__len__") or len(rows) != 2:
        raise TypeError(f"rows must be a pair (start, stop) of row indices, got {rows!r}")
    r0 = _validate.integer(rows[0], "rows[0]", low=0, high=max(0, n - 1))
    r1 = _validate.integer(rows[1], "rows[1]", low=r0 + 1, high=n)
    return r0, r1

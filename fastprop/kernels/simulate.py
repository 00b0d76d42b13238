r"""Empirical kernels of finite-width random networks: :func:`simulate_kernels`,
:class:`EmpiricalKernels`.

Each network draws its weights from its own counter-based stream (network k under seed s is
chain k of :mod:`fastprop.chains.rng`; the draw order is in :mod:`fastprop.kernels.networks`),
and the sums over networks are exact (:mod:`fastprop.chains.exactsum`). So a result depends only
on (seed, parameters, the range of networks): not on threads, batches or how the range is split;
:meth:`EmpiricalKernels.merge` of disjoint ranges equals the run over their union, bit for bit.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field

import numpy as np
from numba import njit, prange

from .. import _validate
from .._version import __version__
from ..activations import activation as _activation
from ..chains import exactsum
from ..run import files as _io
from ..run import schedule
from ..run.compile import specialise
from ..run.progress import make as _progress
from ..run.resources import require
from .nngp import first_layer, record_layers
from .triangle import pair_of

__all__ = ["simulate_kernels", "EmpiricalKernels"]

_CACHE: dict = {}
BATCH_BYTES = 1 << 26
"""Each batch of networks holds at most about this many bytes of per-network kernels."""
MAX_NETWORKS = 1 << 63


def network_kernels(act, target):
    """The compiled ``networks`` template of an activation for "cpu" or "parallel"."""
    key = (act.fingerprint, target)
    module = _CACHE.get(key)
    if module is None:
        module = _CACHE[key] = specialise(
            "fastprop.kernels.networks", f"kernels-{act.name}-networks-{target}",
            f"{act.name}:{act.fingerprint}:{target}", {"ev": act.eval3, "PARALLEL": target == "parallel"},
            shared=act.portable,
        )  # fmt: skip
    return module


@njit(cache=True)
def _exact_square(v):
    """(p, e) with p + e = v² exactly (Dekker's product with Veltkamp's split; |v| < 1.3e154), so the
    sums of squares, and the spread of an entry that every network shares, are exact."""
    p = v * v
    c = 134217729.0 * v
    hi = c - (c - v)
    lo = v - hi
    return p, ((hi * hi - p) + 2.0 * hi * lo) + lo * lo


@njit(parallel=True, cache=True)
def _accumulate(values, sums):
    """sums[s, j, p] += values[i, j, a, b] (s = 0) and its square (s = 1) exactly, over networks i,
    for the lower-triangle entries p = a(a+1)/2 + b. Returns how many values (or squares) are not
    finite doubles (then nothing is added: the caller refuses the result)."""
    count, nrec, n, _ = values.shape
    npairs = n * (n + 1) // 2
    bad = 0
    for i in range(count):
        for j in range(nrec):
            for a in range(n):
                for b in range(a + 1):
                    v = values[i, j, a, b]
                    if not math.isfinite(v * v):
                        bad += 1
    if bad > 0:
        return bad
    for task in prange(nrec * npairs):
        j = task // npairs
        p = task - j * npairs
        a, b = pair_of(p)  # (a + 1, b) in the strict triangle is (a, b ≤ a) here
        a -= 1
        for i in range(count):
            v = values[i, j, a, b]
            exactsum.add(sums[0, j, p], v)
            sq, err = _exact_square(v)
            exactsum.add(sums[1, j, p], sq)
            exactsum.add(sums[1, j, p], err)
        exactsum.normalize(sums[0, j, p])
        exactsum.normalize(sums[1, j, p])
    return 0


@njit(cache=True)
def _to_float(acc):
    """A normalised exact sum as a double: a fixed function of its unique limbs (so equal sums
    give equal doubles), summed from the top limb on magnitudes (no cancellation), within a few
    ulps of the exact value."""
    mag = acc.copy()
    neg = mag[-1] < 0
    if neg:
        for k in range(mag.size):
            mag[k] = -mag[k]
        exactsum.normalize(mag)
    v = 0.0
    for k in range(mag.size - 1, -1, -1):
        if mag[k] != 0:
            v += math.ldexp(float(mag[k]), 32 * k - exactsum.OFFSET)
    return -v if neg else v


@njit(cache=True)
def _means(sums, count, n, mean):
    """mean[j, a, b] = the exact sum of entry (a, b) over the networks, / count."""
    for j in range(sums.shape[1]):
        p = 0
        for a in range(n):
            for b in range(a + 1):
                m = _to_float(sums[0, j, p]) / count
                mean[j, a, b] = m
                mean[j, b, a] = m
                p += 1


def _kernel_moments(sums, count, n):
    """Mean and standard deviation over the networks (n − 1 in the denominator; NaN for one
    network) of each entry; the variance from the exact sums, (N S₂ − S₁²)/(N (N − 1)), in integer
    arithmetic: no cancellation."""
    mean = np.empty((sums.shape[1], n, n))
    std = np.full_like(mean, np.nan)
    _means(sums, count, n, mean)
    if count > 1:
        scale = 1 << exactsum.OFFSET
        den = count * (count - 1) * scale * scale
        for j in range(sums.shape[1]):
            p = 0
            for a in range(n):
                for b in range(a + 1):
                    s1, s2 = exactsum.to_int(sums[0, j, p]), exactsum.to_int(sums[1, j, p])
                    std[j, a, b] = std[j, b, a] = math.sqrt(max(0, count * s2 * scale - s1 * s1) / den)
                    p += 1
    return mean, std


@dataclass
class EmpiricalKernels:
    """Mean and spread over random networks of their empirical kernels K̂^ℓ (and Θ̂^ℓ).

    ``nngp_mean[i]``, ``nngp_std[i]``: n × n, the mean over the networks of K̂ at layer
    ``layers[i]`` and its standard deviation across networks (the spread of one network's
    kernel; the standard error of the mean is :meth:`stderr`). ``ntk_mean``, ``ntk_std``: the
    same for Θ̂ (None when not simulated). ``networks``: the range [first, stop) of network
    indices. ``sums``: the exact sums behind them (what :meth:`merge` adds)."""

    layers: np.ndarray
    width: int
    networks: tuple
    nngp_mean: np.ndarray
    nngp_std: np.ndarray
    ntk_mean: np.ndarray | None
    ntk_std: np.ndarray | None
    sums: np.ndarray
    activation: str = "tanh"
    sigma_w: float = 1.0
    sigma_b: float = 0.0
    seed: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def n_networks(self) -> int:
        return self.networks[1] - self.networks[0]

    def stderr(self, kernel="nngp"):
        """Standard error of the mean kernel (std/√n_networks), ``kernel`` "nngp" or "ntk"."""
        if kernel not in ("nngp", "ntk"):
            raise ValueError(f"kernel must be 'nngp' or 'ntk', got {kernel!r}")
        std = self.nngp_std if kernel == "nngp" else self.ntk_std
        if std is None:
            raise ValueError("this result has no NTK (simulated with ntk=False)")
        return std / math.sqrt(self.n_networks)

    def _params(self):
        return (self.activation, self.sigma_w, self.sigma_b, self.seed, self.width, self.meta.get("inputs_sha"))

    def merge(self, other) -> EmpiricalKernels:
        """The result over the union of two adjacent network ranges (exact: equal, bit for bit, to
        one run over the union)."""
        if not isinstance(other, EmpiricalKernels):
            raise TypeError(f"can only merge another EmpiricalKernels, got {type(other).__name__}")
        if self._params() != other._params() or not np.array_equal(self.layers, other.layers) or (
                (self.ntk_mean is None) != (other.ntk_mean is None)):  # fmt: skip
            raise ValueError("these results are of different jobs (activation, σ, seed, width, inputs, layers, ntk)")
        (a0, a1), (b0, b1) = sorted([self.networks, other.networks])
        if b0 != a1:
            raise ValueError(f"network ranges [{a0}, {a1}) and [{b0}, {b1}) are not adjacent")
        sums = self.sums + other.sums
        for idx in np.ndindex(sums.shape[:-1]):
            exactsum.normalize(sums[idx])
        return _result(sums, (a0, b1), self.layers, self.width, self.ntk_mean is not None,
                       self.activation, self.sigma_w, self.sigma_b, self.seed, dict(self.meta))  # fmt: skip

    def identical(self, other) -> bool:
        """Whether both hold exactly the same sums for the same job and networks."""
        return (isinstance(other, EmpiricalKernels) and self._params() == other._params()
                and self.networks == other.networks and np.array_equal(self.layers, other.layers)
                and np.array_equal(self.sums, other.sums))  # fmt: skip

    def _arrays(self):
        arrays = {"layers": self.layers, "nngp_mean": self.nngp_mean, "nngp_std": self.nngp_std, "sums": self.sums}
        if self.ntk_mean is not None:
            arrays["ntk_mean"], arrays["ntk_std"] = self.ntk_mean, self.ntk_std
        return arrays

    def _info(self):
        return {"activation": self.activation, "sigma_w": self.sigma_w, "sigma_b": self.sigma_b, "seed": self.seed,
                "width": self.width, "networks": list(self.networks), "meta": self.meta,
                "format": "fastprop.EmpiricalKernels/1"}  # fmt: skip

    _DIMS = {"layers": ("layer",), "nngp_mean": ("layer", "a", "b"), "nngp_std": ("layer", "a", "b"),
             "ntk_mean": ("layer", "a", "b"), "ntk_std": ("layer", "a", "b"),
             "sums": ("kernel", "moment", "layer", "pair", "limb")}  # fmt: skip

    def save(self, path):
        """Write the result to ``path`` atomically (``.npz``; ``.nc`` needs the xarray extra)."""
        return _io.save(path, self._info(), self._arrays(), self._DIMS, coords=("layers",))

    @classmethod
    def load(cls, path):
        """Read a result written by :meth:`save`; it merges and compares like the original."""
        info, arrays = _io.load(path, "EmpiricalKernels")
        _io.check_arrays(path, arrays, cls._DIMS, optional=("ntk_mean", "ntk_std"))
        return cls(layers=arrays["layers"], width=int(info["width"]), networks=tuple(info["networks"]),
                   nngp_mean=arrays["nngp_mean"], nngp_std=arrays["nngp_std"], ntk_mean=arrays.get("ntk_mean"),
                   ntk_std=arrays.get("ntk_std"), sums=arrays["sums"], activation=info["activation"],
                   sigma_w=info["sigma_w"], sigma_b=info["sigma_b"], seed=int(info["seed"]),
                   meta=info.get("meta", {}))  # fmt: skip

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims (layer, a, b) (needs the xarray extra)."""
        arrays = {k: v for k, v in self._arrays().items() if k != "sums"}
        return _io.dataset(self._info(), arrays, self._DIMS, coords=("layers",))


def _result(sums, networks, rec, width, ntk, act_name, sw, sb, seed, meta):
    count = networks[1] - networks[0]
    n = int(round((math.sqrt(8 * sums.shape[3] + 1) - 1) / 2))
    k_mean, k_std = _kernel_moments(sums[0], count, n)
    t_mean, t_std = _kernel_moments(sums[1], count, n) if ntk else (None, None)
    return EmpiricalKernels(layers=rec, width=width, networks=tuple(int(v) for v in networks), nngp_mean=k_mean,
                            nngp_std=k_std, ntk_mean=t_mean, ntk_std=t_std, sums=sums, activation=act_name,
                            sigma_w=sw, sigma_b=sb, seed=seed, meta=meta)  # fmt: skip


def simulate_kernels(X, width=100, depth=10, n_networks=100, activation="tanh", sigma_w=1.0, sigma_b=0.0, *, ntk=True,
                     layers=None, seed=0, first_network=0, target="auto", client=None, progress=False):  # fmt: skip
    r"""Empirical NNGP (and NTK) kernels of ``n_networks`` random networks of width ``width``.

    Network k applies ``depth`` random layers of width ``width`` to the rows of ``X`` (Gaussian
    weights, DESIGN §1) and gives K̂^ℓ = σ_w²/N φ(h_ℓ)φ(h_ℓ)ᵀ + σ_b² (K̂⁰ = K⁰) and, with ``ntk``,
    the tangent kernel Θ̂^ℓ of a scalar readout at layer ℓ over every weight and bias below it
    (:mod:`fastprop.kernels.networks` has the formulas and the streams). As the width grows the
    mean kernel approaches :func:`fastprop.nngp` with a 1/width correction, and the spread
    shrinks like 1/√width.

    Parameters
    ----------
    X : (n, d0) array
        The inputs, one per row (the networks need the inputs themselves, not only their Gram
        matrix).
    width : int ≥ 1
    depth : int ≥ 0
    n_networks : int ≥ 1
    activation, sigma_w, sigma_b
        The networks (DESIGN §1).
    ntk : bool
        Also the empirical NTK (a backward sweep per network: about twice the work). Its random
        readouts are drawn after the deepest recorded layer, one per recorded layer, so Θ̂ of a
        network depends on ``layers`` (K̂ does not).
    layers : ints in 0 … depth, optional
        Layers to record (default all).
    seed, first_network : int
        Networks first_network … first_network + n_networks − 1 under ``seed``.
    target : {"auto", "cpu", "parallel"}
        "auto": "parallel" (threads over networks).
    client : dask.distributed.Client or str, optional
        Run consecutive ranges of networks on a Dask cluster and merge them (exact: bitwise the
        local result); ``target`` is resolved on each worker.
    progress : bool or tqdm bar
        A bar over the networks (:mod:`fastprop.run.progress`).

    Returns
    -------
    EmpiricalKernels
    """
    act = _activation(activation)
    width = _validate.integer(width, "width", low=1)
    depth = _validate.integer(depth, "depth", low=0)
    count = _validate.integer(n_networks, "n_networks", low=1)
    seed = _validate.integer(seed, "seed", low=0, high=(1 << 64) - 1)
    first = _validate.integer(first_network, "first_network", low=0)
    if first + count > MAX_NETWORKS:
        raise ValueError(f"network indices are 63-bit: first_network + n_networks must be ≤ 2⁶³, got {first + count}")
    sw = _validate.real_scalar(sigma_w, "sigma_w", low=0.0)
    sb = _validate.real_scalar(sigma_b, "sigma_b", low=0.0)
    ntk = _validate.boolean(ntk, "ntk")
    if target not in ("auto", "cpu", "parallel"):
        raise ValueError(f"target must be 'auto', 'cpu' or 'parallel' for simulate_kernels, got {target!r}")
    tgt = "parallel" if target == "auto" else target  # (resolved on each worker with client=)
    rec = record_layers(layers, depth)
    if X is None:
        raise TypeError("simulate_kernels needs the inputs X (n × d0), one per row")
    shape = np.shape(X)
    if len(shape) != 2:
        raise ValueError(f"X must be a 2-D array (n inputs × d0 features), got shape {shape}")
    n, d0 = shape
    deepest = int(rec[-1])
    nk = 2 if ntk else 1
    npairs = n * (n + 1) // 2
    per_network = 8.0 * rec.size * n * n * nk
    batch = int(max(1, min(count, BATCH_BYTES // per_network)))
    work = 8.0 * ((deepest + 1) * n * n + (deepest * n * width + 2 * rec.size * n * width if ntk else 0)
                  + 2 * n * width + max(d0, width) * 33)  # fmt: skip
    sums_bytes = nk * 2 * rec.size * npairs * exactsum.NLIMB * 8.0
    require(sums_bytes + batch * per_network + work * _threads(tgt) + 8.0 * n * n,
            f"simulate_kernels of {n} inputs at width {width} ({rec.size} recorded layers{', NTK too' if ntk else ''})")
    if client is not None:
        x = np.ascontiguousarray(np.asarray(X, dtype=float))
        first_layer(x, None, sw * sw, sb * sb)  # (validates X)
        return _on_cluster(client, act, x, width, depth, count, first, sw, sb, ntk, rec, seed, target, progress)
    k0 = first_layer(X, None, sw * sw, sb * sb)
    x = np.ascontiguousarray(np.asarray(X, dtype=float))
    mod = network_kernels(act, tgt)
    sums = np.zeros((nk, 2, rec.size, npairs, exactsum.NLIMB), dtype=np.int64)
    bar = _progress(progress, count, "networks", "networks")
    try:
        done = 0
        while done < count:
            m = min(batch, count - done)
            k_out = np.empty((m, rec.size, n, n))
            t_out = np.empty((m, rec.size, n, n)) if ntk else np.empty((m, 1, 1, 1))
            mod.networks(np.uint64(seed), first + done, m, x, k0, deepest, width, sw, sb, rec, ntk, k_out, t_out)
            bad = _accumulate(k_out, sums[0]) + (_accumulate(t_out, sums[1]) if ntk else 0)
            if bad:
                raise FloatingPointError(
                    f"{bad} kernel values of networks {first + done} … {first + done + m - 1} (or their squares) are "
                    "not finite doubles: the networks overflow (scale the inputs or σ_w down, or record fewer layers)")
            done += m
            bar.advance(m)
    finally:
        bar.close()
    meta = {"fastprop_version": __version__, "activation_fingerprint": act.fingerprint, "depth": depth, "n": n,
            "d0": d0, "target": tgt, "inputs_sha": hashlib.sha256(x.tobytes()).hexdigest()[:16]}  # fmt: skip
    return _result(sums, (first, first + count), rec, width, ntk, act.name, sw, sb, seed, meta)


def _threads(target):
    from numba import get_num_threads

    return 1 if target == "cpu" else get_num_threads()


def _network_range(ref, x, width, depth, count, first, sw, sb, ntk, rec, seed, target):
    """A Dask task: :func:`simulate_kernels` over networks first … first+count−1."""
    return simulate_kernels(x, width, depth, count, ref, sw, sb, ntk=ntk, layers=rec, seed=seed, first_network=first,
                            target=target)  # fmt: skip


def _on_cluster(client, act, x, width, depth, count, first, sw, sb, ntk, rec, seed, target, progress):
    with schedule.cluster(client) as cl:
        parts = schedule.split(count, 16, cl)
        ref = schedule.activation_ref(act)
        args = [(ref, x, width, depth, b - a, first + a, sw, sb, ntk, rec, seed, target) for a, b in parts]
        results = [None] * len(parts)

        def combine(i, r):
            results[i] = r

        schedule.run_on_cluster(cl, _network_range, args, [b - a for a, b in parts], combine, progress, "networks",
                                "networks")  # fmt: skip
    out = results[0]
    for r in results[1:]:
        out = out.merge(r)
    return out

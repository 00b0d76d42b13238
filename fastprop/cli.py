"""The ``fastprop`` command line: ``grid``, ``edge``, ``tail``, ``spectrum``, ``kernel``, ``info`` and ``cache``.

Every subcommand has defaults that reproduce a classic figure, writes a result
file that loads back in Python (``.npz``, or netCDF for ``.nc`` names) and a PNG,
and shows a progress bar on long work when stderr is a terminal (``--quiet``
turns it off). Errors are one line on stderr: exit code 2 for bad arguments, 1
for a failure while running, 130 when interrupted (Ctrl-C or SIGTERM; ``tail``
then keeps a checkpoint that ``--resume`` continues).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import signal
import sys
import time
import warnings

import numpy as np


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line (no usage dump) with exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


# ----------------------------------------------------------------- arguments
def _axis(text, per_value=8):
    """``start:stop:num`` (inclusive linspace) or a comma-separated list; refused before
    it is built when ``per_value`` bytes for each of its values would not fit (a grid
    axis: a grid has at least that many points)."""
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if num < 1:
                raise ValueError
            from fastprop.run.resources import ResourceError, require

            try:
                require(per_value * num, f"an axis of {num} values")
            except ResourceError as exc:
                raise argparse.ArgumentTypeError(str(exc)) from None
            return np.linspace(start, stop, num)
        return np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid axis {text!r}: use start:stop:num or a comma-separated list"
        ) from None


def _count(text):
    """A positive integer, also written as 1e6 or 10**6."""
    try:
        if "**" in text:
            base, exp = text.split("**")
            value = int(base) ** int(exp)
        else:
            f = float(text)
            if not f.is_integer():
                raise ValueError
            value = int(f)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: use an integer such as 1000000 or 1e6") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: must be ≥ 1")
    if value > 1 << 63:
        raise argparse.ArgumentTypeError(f"invalid count {text!r}: must be ≤ 2^63 (chain indices are 63-bit)")
    return value


def _tail_spec(text):
    """``upper:T`` or ``lower:T``."""
    side, _, t = text.partition(":")
    try:
        if side not in ("upper", "lower"):
            raise ValueError
        value = float(t)
        if not (value > 0 and math.isfinite(value)):
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid tail {text!r}: use upper:T or lower:T with T > 0") from None
    return side, value


_NO_RANDOMNESS = "no effect on the values (mean field is deterministic); recorded in the output"


def _common(p, out, seed_help=_NO_RANDOMNESS, out_help="result file, .npz or .nc (netCDF)"):
    p.add_argument("--target", default="auto", help="auto, cpu, parallel or cuda (default: auto)")
    p.add_argument("--seed", type=int, default=None, help=seed_help)
    p.add_argument("--out", default=out, help=f"{out_help} (default: {out})")
    p.add_argument("--png", default=None, help="figure file, or 'none' (default: the --out path with .png)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument(
        "--scheduler", metavar="ADDRESS", default=None, help="run on a Dask cluster, e.g. tcp://host:8786 (needs dask)"
    )


def _jacobian_parser(sub):
    j = sub.add_parser(
        "jacobian",
        help="finite-width input–output Jacobians: singular values and rank collapse against depth, Lyapunov spectra",
        description="Random networks of --width units (fp.simulate_jacobians): for the first activation, the laws "
        "(median and 10–90 % band) of every log singular value of J_l = dx_l/dx_0 against depth, and s_2/s_1 "
        "against depth with and without RMS normalisation (the collapse of products of matrices towards rank "
        "one); for every activation, the Lyapunov spectrum (lambda_i = E log|T_ii| / L from the QR method, with "
        "95 % intervals; conditioned on |T_ii| > 0 where a ReLU network lost directions exactly). sigma_w on "
        "the edge of chaos (chi_1 = 1) unless --sigma-w is given. Writes the curves "
        "(.npz) and the figure.",
    )
    j.add_argument("--activation", nargs="+", default=["tanh", "relu", "erf", "linear"],
                   help="(default: tanh relu erf linear; singular values and s2/s1 for the first)")  # fmt: skip
    j.add_argument("--width", type=int, default=10, help="(default: 10)")
    j.add_argument("--depth", type=int, default=100, help="(default: 100)")
    j.add_argument("--chains", type=int, default=4000, help="random networks per run (default: 4000)")
    j.add_argument("--weights", choices=["gaussian", "orthogonal"], default="gaussian")
    j.add_argument("--sigma-b", type=float, default=0.05, help="bias standard deviation (default: 0.05)")
    j.add_argument("--sigma-w", type=float, default=None, help="weight standard deviation (default: the edge of chaos)")
    _common(
        j, "fastprop_jacobian.npz", seed_help="seed of the random networks (default 0)", out_help="result file, .npz"
    )


def _parser():
    p = _Parser(prog="fastprop", description="Signal propagation in random deep networks.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    g = sub.add_parser(
        "grid",
        help="mean-field quantities over a (σ_w, σ_b) grid and the phase-diagram PNG (default: tanh)",
        description="q*, χ_1, c*, χ_c, ξ_q, ξ_c over a (σ_w, σ_b) grid; writes the result file and the phase "
        "diagram with the χ_1 = 1 contour and q* along the edge of chaos.",
    )
    g.add_argument("--activation", default="tanh", help="activation name (default: tanh)")
    from .meanfield.grid import GRID_BYTES_PER_POINT

    grid_axis = functools.partial(_axis, per_value=GRID_BYTES_PER_POINT)
    g.add_argument(
        "--sigma-w", type=grid_axis, default=_axis("0.1:4:200"), help="σ_w axis, start:stop:num (default 0.1:4:200)"
    )
    g.add_argument(
        "--sigma-b", type=grid_axis, default=_axis("0:2:100"), help="σ_b axis, start:stop:num (default 0:2:100)"
    )
    _common(g, "fastprop_grid.npz")

    e = sub.add_parser(
        "edge",
        help="edge of chaos σ_w(σ_b) (χ_1 = 1) for one or more activations: table, CSV and PNG",
        description="σ_w on the edge of chaos (χ_1 = 1) for each σ_b and activation.",
    )
    e.add_argument("--activation", nargs="+", default=["tanh"], help="activation names (default: tanh)")
    e.add_argument("--sigma-b", type=_axis, default=_axis("0:2:21"), help="σ_b axis (default 0:2:21)")
    e.add_argument(
        "--spectrum-sigma-b",
        type=float,
        default=0.05,
        help="σ_b of the second table and panel: the variance of the Jacobian's spectrum σ²_JJᵀ against depth on "
        "the edge of chaos, Gaussian and orthogonal weights (default 0.05)",
    )
    _common(e, "fastprop_edge.csv", out_help="CSV table")

    t = sub.add_parser(
        "tail",
        help="Monte-Carlo law of ‖x_ℓ‖ for random finite-width networks: tail probabilities and histograms",
        description="Simulate random width-d networks and estimate P(‖x_ℓ‖ > t), P(‖x_ℓ‖ < t) with 95 % "
        "Wilson intervals (and the exact value where the exact law applies). Defaults: width 10, depths "
        "1, 20, 100, 10^6 chains of a linear Gaussian network with σ_w = 1. Long runs are resumable: "
        "Ctrl-C keeps a checkpoint in --out; continue it with --resume FILE.",
    )
    t.add_argument("--width", type=_count, default=None, help="width d (default 10)")
    t.add_argument("--depth", type=int, nargs="+", default=None, help="depths ℓ to record (default 1 20 100)")
    t.add_argument("--chains", type=_count, default=None, help="number of chains (default 1e6)")
    t.add_argument("--activation", default=None, help="activation (default linear)")
    t.add_argument("--sigma-w", type=float, default=None, help="σ_w (default 1)")
    t.add_argument("--sigma-b", type=float, default=None, help="σ_b (default 0)")
    t.add_argument("--weights", default=None, help="gaussian or orthogonal (default gaussian)")
    t.add_argument("--method", default=None, help="auto, dense or invariant (default auto)")
    t.add_argument(
        "--dtype", choices=["float64", "float32"], default=None, help="precision of each chain (default float64)"
    )
    t.add_argument("--thresholds", type=float, nargs="+", default=None, help="thresholds t (default 0.01 10)")
    t.add_argument(
        "--target-rel-error",
        type=float,
        default=None,
        metavar="E",
        help="instead of --chains: simulate until the 95%% interval of the --tail probability is within ±E",
    )
    t.add_argument(
        "--tail",
        type=_tail_spec,
        default=None,
        help="the probability --target-rel-error applies to, at the deepest layer (default upper:<largest t>)",
    )
    t.add_argument("--max-chains", type=_count, default=None, help="cap for --target-rel-error (default 1e9)")
    t.add_argument(
        "--rare",
        type=_tail_spec,
        default=None,
        metavar="SIDE:T",
        help="a rare-event estimate (fastprop.rare_tail: tilting or splitting) of P(‖x_L‖ > T) (upper:T) or "
        "P(‖x_L‖ < T) (lower:T) at one --depth (default 100), far below 1/chains, and a figure of that tail over "
        "the decades down to it; --method is then auto, tilt or splitting, and --out a .json file",
    )
    t.add_argument(
        "--rel-error", type=float, default=None, metavar="E", help="with --rare: the 95%% interval within ±E (0.1)"
    )
    t.add_argument("--resume", metavar="FILE", default=None, help="continue the interrupted run checkpointed in FILE")
    t.add_argument(
        "--force", action="store_true", help="start over even if --out holds an unfinished run (it is overwritten)"
    )
    t.add_argument(
        "--checkpoint-every", type=float, default=30.0, metavar="SECONDS", help="checkpoint interval (default 30)"
    )
    _common(t, "fastprop_tail.npz", seed_help="random seed, 0 ≤ seed < 2^64 (default 0)")

    s = sub.add_parser(
        "spectrum",
        help="densities of the singular values of the input–output Jacobian (mean field), with finite-width checks",
        description="The law of the singular values s of J = D_L W_L ⋯ D_1 W_1 at the fixed point q*, by free "
        "probability (Pennington, Schoenholz & Ganguli 2017), for each activation, weight law and depth; σ_w on the "
        "edge of chaos (χ_1 = 1) unless --sigma-w is given. Overlays histograms of random networks of --width "
        "units (NumPy; --width 0: none). Writes the curves (.npz) and the figure.",
    )
    s.add_argument(
        "--activation", nargs="+", default=["relu", "tanh", "hard_tanh"], help="(default: relu tanh hard_tanh)"
    )
    s.add_argument("--depth", nargs="+", type=int, default=[2, 8, 32, 100], help="(default: 2 8 32 100)")
    s.add_argument("--weights", nargs="+", choices=["gaussian", "orthogonal"], default=["gaussian", "orthogonal"])
    s.add_argument("--sigma-b", type=float, default=0.05, help="bias standard deviation (default: 0.05)")
    s.add_argument("--sigma-w", type=float, default=None, help="weight standard deviation (default: the edge of chaos)")
    s.add_argument("--width", type=int, default=300, help="width of the simulated networks; 0: none (default: 300)")
    s.add_argument("--networks", type=int, default=1, help="simulated networks per curve (default: 1)")
    s.add_argument("--points", type=int, default=400, help="points per density curve (default: 400)")
    s.add_argument("--decades", type=float, default=10.0, help="decades of λ = s² below the top edge (default: 10)")
    _common(
        s, "fastprop_spectrum.npz", seed_help="seed of the simulated networks (default 0)", out_help="result file, .npz"
    )
    k = sub.add_parser(
        "kernel",
        help="NNGP/NTK kernels through depth: iterated correlation maps and finite-width networks against the NNGP",
        description="For each activation, the correlation c^l = K^l_ab / sqrt(K^l_aa K^l_bb) of two unit-norm inputs "
        "against c^0, the same for K^0 = sigma_w^2 x x'/d0 + sigma_b^2 (the iterated correlation map, fp.nngp) "
        "at depths 1, 2, 4, … up to "
        "--depth; then, for the first activation, the kernels K^L and Theta^L of inputs on a circle from fp.nngp "
        "against the mean and spread of random networks of each --widths (fp.simulate_kernels), and the error of "
        "the finite-width mean against the width (the 1/width correction). sigma_w on the edge of chaos (chi_1 = 1) "
        "unless --sigma-w is given. Writes the curves (.npz) and the figure.",
    )
    k.add_argument("--activation", nargs="+", default=["tanh", "relu", "erf", "gelu"],
                   help="(default: tanh relu erf gelu; finite widths for the first)")  # fmt: skip
    k.add_argument("--depth", type=int, default=10, help="network depth L (default: 10)")
    k.add_argument("--sigma-b", type=float, default=0.1, help="bias standard deviation (default: 0.1)")
    k.add_argument("--sigma-w", type=float, default=None, help="weight standard deviation (default: the edge of chaos)")
    k.add_argument("--widths", nargs="+", type=int, default=[4, 8, 16, 32, 64], help="(default: 4 8 16 32 64)")
    k.add_argument("--networks", type=int, default=2000, help="random networks per width (default: 2000)")
    k.add_argument("--inputs", type=int, default=17, help="inputs on the half circle (default: 17)")
    _common(
        k, "fastprop_kernel.npz", seed_help="seed of the random networks (default 0)", out_help="result file, .npz"
    )
    _jacobian_parser(sub)
    sub.add_parser("info", help="version, usable targets, threads, GPU, kernel cache and library versions")
    c = sub.add_parser(
        "cache",
        help="the on-disk cache of compiled kernels: show it, or clear it",
        description="Compiled kernels are cached in FASTPROP_CACHE_DIR (default ~/.cache/fastprop; 'off' turns "
        "the cache off), so a new process compiles nothing it compiled before.",
    )
    c.add_argument("action", nargs="?", choices=("show", "clear"), default="show", help="default: show")
    return p


_TAIL_DEFAULTS = {
    "width": 10,
    "depth": [1, 20, 100],
    "chains": 10**6,
    "activation": "linear",
    "sigma_w": 1.0,
    "sigma_b": 0.0,
    "weights": "gaussian",
    "method": "auto",
    "thresholds": [0.01, 10.0],
    "seed": 0,
    "dtype": "float64",
}


_RESULT_EXTENSIONS = {
    "grid": (".npz", ".nc", ".nc4"),
    "tail": (".npz", ".nc", ".nc4"),
    "rare": (".json",),
    "edge": (".csv",),
    "spectrum": (".npz",),
    "kernel": (".npz",),
    "jacobian": (".npz",),
}


def _writable(path, flag, extensions):
    """Everything about an output path that can be checked before any work: a file
    name (not empty, not a directory) with one of ``extensions``, in an existing
    writable directory, the optional library a netCDF file needs (``extensions`` None: any
    name, e.g. a checkpoint being resumed in place)."""
    if path is None:
        return
    if not path.strip():
        raise _ArgError(f"{flag} must name a file (got an empty name)")
    if os.path.isdir(path):
        raise _ArgError(f"cannot write {flag} {path!r}: it is a directory")
    if extensions and not path.lower().endswith(extensions):
        raise _ArgError(f"{flag} {path!r} must end in {' or '.join(extensions)}")
    d = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(d) or not os.access(d, os.W_OK):
        raise _ArgError(f"cannot write {flag} {path!r}: the directory is missing or not writable")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise _ArgError(f"cannot write {flag} {path!r}: the file is not writable")
    if path.lower().endswith((".nc", ".nc4")):
        from fastprop.run.files import _xarray

        _xarray()  # ImportError naming the extra, before any work


def _out(args):
    """The result path: --out, or for ``tail --resume FILE`` without --out, FILE (and for
    ``tail --rare``, fastprop_rare.json)."""
    if getattr(args, "resume", None) and args.out == "fastprop_tail.npz":
        return args.resume
    if getattr(args, "rare", None) and args.out == "fastprop_tail.npz":
        return "fastprop_rare.json"
    return args.out


def _kind(args):
    """The kind of result a command writes (``tail --rare`` writes an estimate)."""
    return "rare" if getattr(args, "rare", None) else args.command


def _png(args):
    """The figure path: --png, or the --out path with .png (None for 'none')."""
    if args.png is None:
        return os.path.splitext(_out(args))[0] + ".png"
    return None if args.png.lower() == "none" else args.png


# --------------------------------------------------------------- subcommands
def _grid(args):
    import fastprop as fp
    from fastprop import plot
    from fastprop.meanfield.maps import q_star

    t0 = time.perf_counter()
    g = fp.meanfield_grid(
        args.activation, args.sigma_w, args.sigma_b, target=args.target, progress=not args.quiet, client=args.client
    )
    dt = time.perf_counter() - t0
    g.meta["seed"] = args.seed
    g.meta["command"] = "fastprop grid"
    path = g.save(args.out)
    n = g.q_star.size
    chaotic = int(np.count_nonzero(g.chi_1 > 1))
    rate = f"{dt / n * 1e6:.1f} us/point including compiling or loading the kernels, target {g.target}"
    print(f"{g.activation}: {g.shape[0]} x {g.shape[1]} grid in {dt:.2f} s ({rate})")
    print(f"chaotic points (chi_1 > 1): {chaotic} of {n}; flagged: {int(np.count_nonzero(g.status))}")
    print(f"wrote {path}  (load with fastprop.MeanFieldGrid.load)")
    png = _png(args)
    if png:
        sw_edge = fp.edge_of_chaos(g.activation, g.sigma_b, target=args.target)
        on_edge = np.isfinite(sw_edge)
        q_edge = np.full(sw_edge.shape, np.nan)
        q_edge[on_edge] = q_star(sw_edge[on_edge], g.sigma_b[on_edge], g.activation)
        plot.phase_diagram(g, edge=(g.sigma_b, sw_edge, q_edge), path=png)
        print(f"wrote {png}")


def _edge(args):
    import fastprop as fp
    from fastprop import plot
    from fastprop.run.files import atomic_write

    if not args.spectrum_sigma_b >= 0:
        raise _ArgError(f"--spectrum-sigma-b must be ≥ 0, got {args.spectrum_sigma_b}")
    header = ["sigma_b"] + list(args.activation)
    cols = [fp.edge_of_chaos(a, args.sigma_b, target=args.target, client=args.client) for a in args.activation]
    rows = [[sb] + [c[i] for c in cols] for i, sb in enumerate(args.sigma_b)]
    print("  ".join(f"{h:>12s}" for h in header))
    for r in rows:
        print("  ".join(f"{v:12.8f}" for v in r))
    variance = _edge_spectrum_variance(args.activation, args.spectrum_sigma_b)
    if args.out:
        comment = (
            f"# fastprop {fp.__version__} edge of chaos (chi_1 = 1): sigma_w per sigma_b; "
            f"target {args.target}, seed {args.seed}"
        )
        body = "\n".join(",".join(repr(float(v)) for v in r) for r in rows)
        atomic_write(args.out, f"{comment}\n{','.join(header)}\n{body}\n".encode())
        print(f"wrote {args.out}")
    png = _png(args)
    if png:
        plot.edge_curves(args.sigma_b, dict(zip(args.activation, cols, strict=True)), path=png, variance=variance)
        print(f"wrote {png}")


EDGE_DEPTHS = np.unique(np.geomspace(1, 1000, 31).round()).astype(int)


def _edge_spectrum_variance(activations, sigma_b):
    """σ²_JJᵀ(L) = L (μ_2/μ_1² − 1 + v_W) on the edge of chaos at ``sigma_b`` per activation
    (Pennington, Schoenholz & Ganguli 2017, Fig. 2; :func:`fastprop.spectra.maps.spectrum_variance`):
    prints the slopes and returns the curves for the figure."""
    import fastprop as fp
    from fastprop.meanfield.maps import q_star
    from fastprop.spectra.maps import spectrum_variance

    curves = {}
    print(f"\nvariance of the spectrum of J Jᵀ on the edge of chaos, sigma_b = {sigma_b:g}: sigma²_JJᵀ = slope × L")
    print(f"{'activation':>12} {'sigma_w':>12} {'q*':>12} {'Gaussian':>12} {'orthogonal':>12}")
    for act in activations:
        sw = float(fp.edge_of_chaos(act, sigma_b, target="cpu"))
        if not math.isfinite(sw):
            print(f"{act:>12} {'no edge of chaos at this sigma_b':>38}")
            continue
        q = float(q_star(sw, sigma_b, act))
        mu_1, mu_2 = fp.jacobian_moments(act, [1, 2], sigma_w=sw, sigma_b=sigma_b)
        chi_1 = sw * sw * mu_1
        gauss, orth = (spectrum_variance(mu_1, mu_2, chi_1, EDGE_DEPTHS, w) for w in ("gaussian", "orthogonal"))
        curves[act] = (gauss, orth)
        print(f"{act:>12} {sw:12.8f} {q:12.6g} {gauss[0]:12.6g} {orth[0]:12.6g}")
    return {"sigma_b": sigma_b, "depth": EDGE_DEPTHS, "curves": curves}


def _spectrum(args):
    import fastprop as fp
    from fastprop import plot
    from fastprop.run.files import save_npz
    from fastprop.spectra.simulate import jacobian_singular_values

    if any(d < 1 for d in args.depth):
        raise _ArgError(f"--depth values must be ≥ 1, got {args.depth}")
    if args.width < 0 or args.networks < 1 or args.points < 2 or not args.decades > 0:
        raise _ArgError("--width must be ≥ 0, --networks ≥ 1, --points ≥ 2 and --decades > 0")
    if args.sigma_b < 0 or (args.sigma_w is not None and not args.sigma_w > 0):
        raise _ArgError("--sigma-b must be ≥ 0 and --sigma-w > 0")
    seed = 0 if args.seed is None else args.seed
    ln10 = math.log(10.0)
    panels, arrays, runs = {}, {}, []
    print(f"{'activation':>10} {'weights':>10} {'L':>4} {'sigma_w':>9} {'q*':>10} {'E lambda':>11} {'Var lambda':>11} "
          f"{'s_max':>10}  {'width-' + str(args.width) + ' E lambda':>17}")  # fmt: skip
    for act in args.activation:
        sw = args.sigma_w if args.sigma_w is not None else float(fp.edge_of_chaos(act, args.sigma_b, target="cpu"))
        if not math.isfinite(sw):
            raise _ArgError(f"{act} has no edge of chaos at sigma_b = {args.sigma_b:g}; give --sigma-w")
        for weights in args.weights:
            for depth in args.depth:
                s = fp.jacobian_spectrum(act, sw, args.sigma_b, depth, weights)
                lo, hi = s.support()
                if hi > 0.0:
                    lam = np.geomspace(max(lo, hi * 10.0**-args.decades) * (1 + 1e-9), hi * (1 - 1e-9), args.points)
                else:  # atoms only (e.g. tanh at σ_b = 0, q* = 0, orthogonal weights: J Jᵀ = σ_w^{2L} I)
                    lam = np.array([at for at, _ in s.atoms if at > 0.0] or [1.0])
                x = 0.5 * np.log10(lam)
                with warnings.catch_warnings():  # NaN marks values without a certified error; plotted as gaps
                    warnings.simplefilter("ignore")
                    dens = 2.0 * ln10 * lam * s.density(lam)  # of log10 s, s = √λ
                sim = None
                emp = ""
                if args.width:
                    logs = jacobian_singular_values(act, sw, args.sigma_b, depth, args.width, weights,
                                                    args.networks, seed + len(runs))  # fmt: skip
                    sim = logs.ravel() / ln10
                    emp = f"{np.mean(np.exp(2 * logs)):.5g}"
                    arrays[f"{act}_{weights}_L{depth}_sim_log10_s"] = sim
                key = f"{act}_{weights}_L{depth}"
                arrays[key + "_log10_s"], arrays[key + "_density"] = x, dens
                runs.append({"activation": act, "weights": weights, "depth": depth, "sigma_w": sw,
                             "sigma_b": args.sigma_b, "q_star": s.q_star, "mean": s.mean, "variance": s.variance,
                             "support": list(s.support()), "atom": s.atom})  # fmt: skip
                atoms = [(0.5 * math.log10(at), mass) for at, mass in s.atoms if at > 0.0]
                panels.setdefault((act, depth), []).append((weights, x, dens, sim, atoms))
                s_max = math.sqrt(max([hi] + [at for at, _ in s.atoms]))
                print(f"{act:>10} {weights:>10} {depth:>4} {sw:9.5f} {s.q_star:10.4g} {s.mean:11.5g} "
                      f"{s.variance:11.5g} {s_max:10.5g}  {emp:>17}")  # fmt: skip
    info = {"format": "fastprop.spectrum_curves/1", "version": fp.__version__, "width": args.width,
            "networks": args.networks, "seed": seed, "runs": runs}  # fmt: skip
    if args.out:
        save_npz(args.out, info, arrays)
        print(f"wrote {args.out} (numpy.load: <activation>_<weights>_L<depth>_log10_s / _density / _sim_log10_s)")
    png = _png(args)
    if png:
        plot.singular_value_densities(panels, path=png)
        print(f"wrote {png}")


def _kernel(args):
    import fastprop as fp
    from fastprop import plot
    from fastprop.run.files import save_npz

    if args.depth < 1 or args.networks < 2 or args.inputs < 2 or any(w < 1 for w in args.widths):
        raise _ArgError("--depth must be ≥ 1, --networks ≥ 2, --inputs ≥ 2 and --widths ≥ 1")
    if not (0 <= args.sigma_b < math.inf) or (args.sigma_w is not None and not 0 < args.sigma_w < math.inf):
        raise _ArgError("--sigma-b must be finite and ≥ 0, --sigma-w finite and > 0")
    target = args.target
    sim_target = "parallel" if target == "cuda" else target  # the networks run on the CPU
    seed = 0 if args.seed is None else args.seed
    depths = sorted({min(2**i, args.depth) for i in range(args.depth.bit_length() + 1)})
    arrays, maps, sigmas = {}, {}, {}
    theta0 = np.linspace(0.0, np.pi, 201)
    circle = np.stack([np.cos(theta0), np.sin(theta0)], axis=1) * math.sqrt(2.0)  # ‖x‖²/d0 = 1
    print(f"{'activation':>10} {'sigma_w':>9} " + " ".join(f"{'c^' + str(d) + '(0)':>9}" for d in depths))
    for act in args.activation:
        sw = args.sigma_w if args.sigma_w is not None else float(fp.edge_of_chaos(act, args.sigma_b, target="cpu"))
        if not math.isfinite(sw):
            raise _ArgError(f"{act} has no edge of chaos at sigma_b = {args.sigma_b:g}; give --sigma-w")
        sigmas[act] = sw
        r = fp.nngp(circle, args.depth, act, sw, args.sigma_b, ntk=False, layers=[0, *depths], target=target,
                    client=args.client, progress=not args.quiet)  # fmt: skip
        corr = r.nngp[:, 0, :] / np.sqrt(r.nngp[:, :1, 0] * np.diagonal(r.nngp, axis1=1, axis2=2))
        arrays[f"{act}_c0"], arrays[f"{act}_c"] = corr[0], corr[1:]
        maps[act] = (corr[0], corr[1:])
        at_zero = [np.interp(0.0, corr[0][::-1], c[::-1]) for c in corr[1:]]
        print(f"{act:>10} {sw:9.5f} " + " ".join(f"{v:9.5f}" for v in at_zero))
    act = args.activation[0]
    theta = np.linspace(0.0, np.pi, args.inputs)
    X = np.stack([np.cos(theta), np.sin(theta)], axis=1) * math.sqrt(2.0)
    exact = fp.nngp(X, args.depth, act, sigmas[act], args.sigma_b, layers=[args.depth], target=target,
                    client=args.client)  # fmt: skip
    arrays["theta"], arrays["nngp"], arrays["ntk"] = theta, exact.nngp[0], exact.ntk[0]
    finite = []
    print(f"\n{act}, depth {args.depth}: random networks against the infinite-width kernels at x = x' (relative "
          "to K and Theta there; SE: standard error of the mean)")  # fmt: skip
    print(f"{'width':>7} {'networks':>9} {'E K^ - K':>10} {'2 SE':>8} {'spread K^':>10} {'E T^ - T':>10} {'2 SE':>8}")
    k00, t00 = exact.nngp[0][0, 0], exact.ntk[0][0, 0]
    for w in args.widths:
        e = fp.simulate_kernels(X, w, args.depth, args.networks, act, sigmas[act], args.sigma_b, layers=[args.depth],
                                seed=seed, target=sim_target, client=args.client, progress=not args.quiet)  # fmt: skip
        for name, m, sd in (("nngp", e.nngp_mean[0], e.nngp_std[0]), ("ntk", e.ntk_mean[0], e.ntk_std[0])):
            arrays[f"w{w}_{name}_mean"], arrays[f"w{w}_{name}_std"] = m, sd
        bias_k, se_k = (e.nngp_mean[0][0, 0] - k00) / k00, e.stderr()[0][0, 0] / k00
        bias_t, se_t = (e.ntk_mean[0][0, 0] - t00) / t00, e.stderr("ntk")[0][0, 0] / t00
        spread = e.nngp_std[0][0, 0] / k00
        finite.append((w, e.nngp_mean[0], e.stderr()[0], e.ntk_mean[0], e.stderr("ntk")[0], bias_k, se_k, spread))
        print(f"{w:>7} {args.networks:>9} {bias_k:10.3g} {2 * se_k:8.2g} {spread:10.3g} {bias_t:10.3g} {2 * se_t:8.2g}")
    info = {"format": "fastprop.kernel_curves/1", "version": fp.__version__, "depth": args.depth, "depths": depths,
            "sigma_b": args.sigma_b, "sigma_w": sigmas, "finite_activation": act, "widths": args.widths,
            "networks": args.networks, "seed": seed}  # fmt: skip
    if args.out:
        save_npz(args.out, info, arrays)
        print(f"wrote {args.out} (numpy.load: <activation>_c0, <activation>_c [depth, c0]; theta, nngp, ntk, "
              "w<width>_<nngp|ntk>_<mean|std>)")  # fmt: skip
    png = _png(args)
    if png:
        plot.kernel_figure(maps, depths, sigmas, args.sigma_b, act, theta, exact.nngp[0], exact.ntk[0], finite,
                           args.depth, path=png)  # fmt: skip
        print(f"wrote {png}")


def _jacobian(args):
    import fastprop as fp
    from fastprop import plot
    from fastprop.run.files import save_npz

    if args.width < 2 or args.depth < 1 or args.chains < 2:
        raise _ArgError("--width must be ≥ 2, --depth ≥ 1 and --chains ≥ 2")
    if not (0 <= args.sigma_b < math.inf) or (args.sigma_w is not None and not 0 < args.sigma_w < math.inf):
        raise _ArgError("--sigma-b must be finite and ≥ 0, --sigma-w finite and > 0")
    seed = 0 if args.seed is None else args.seed
    d, depth = args.width, args.depth
    layers = sorted({0, depth} | {min(depth, round(depth * f)) for f in np.geomspace(0.01, 1, 12)})
    quantiles = (0.1, 0.5, 0.9)
    kw = dict(weights=args.weights, layers=layers, seed=seed, target=args.target, client=args.client,
              progress=not args.quiet)  # fmt: skip
    arrays = {"layers": np.array(layers)}
    sigmas, spectra, laws, collapse = {}, {}, None, {}
    print(f"width {d}, depth {depth}, {args.chains} networks each; Lyapunov exponents (natural log, ± 95 % interval)")
    for k, act in enumerate(args.activation):
        sw = args.sigma_w if args.sigma_w is not None else float(fp.edge_of_chaos(act, args.sigma_b, target="cpu"))
        if not math.isfinite(sw):
            raise _ArgError(f"{act} has no edge of chaos at sigma_b = {args.sigma_b:g}; give --sigma-w")
        sigmas[act] = sw
        r = fp.simulate_jacobians(d, depth, args.chains, act, sw, args.sigma_b, **kw)
        lam, lo, hi = r.lyapunov(nonzero=True)
        spectra[act] = (lam, lo, hi)
        arrays[f"{act}_lyapunov"], arrays[f"{act}_lyapunov_ci"] = lam, np.stack([lo, hi])
        top = ", ".join(f"{v:.4f}" for v in lam[:4])
        lost = r.law("r1").zeros[-1] / r.n
        note = f"; J = 0 in {lost:.1%} of the networks, λ conditioned on |T_ii| > 0" if lost else ""
        print(f"{act:>10}  sigma_w {sw:.5f}  lambda_1..4 = {top}  (± {np.nanmax(hi - lo) / 2:.1g}{note})")
        if k == 0:
            laws = np.array([[r.law(f"s{i + 1}").quantile(quantiles, layer=ell) for ell in layers] for i in range(d)])
            arrays[f"{act}_singular_value_quantiles"] = laws
            for rms in (False, True):
                rr = r if not rms else fp.simulate_jacobians(d, depth, args.chains, act, sw, args.sigma_b,
                                                             rms_norm=True, **kw)  # fmt: skip
                ratio = np.array([rr.law("s2/s1").quantile(quantiles, layer=ell) for ell in layers])
                collapse[rms] = ratio
                arrays[f"{act}_s2_over_s1_quantiles{'_rms' if rms else ''}"] = ratio
    act0 = args.activation[0]
    print(f"\n{act0}: median s_2/s_1 at depth {depth}: {collapse[False][-1][1]:.3g} without RMS normalisation, "
          f"{collapse[True][-1][1]:.3g} with it")  # fmt: skip
    info = {"format": "fastprop.jacobian_curves/1", "version": fp.__version__, "width": d, "depth": depth,
            "chains": args.chains, "weights": args.weights, "sigma_b": args.sigma_b, "sigma_w": sigmas,
            "quantiles": list(quantiles), "seed": seed}  # fmt: skip
    if args.out:
        save_npz(args.out, info, arrays)
        print(f"wrote {args.out} (numpy.load: layers, <activation>_lyapunov [i], <activation>_lyapunov_ci "
              f"[low/high, i], {act0}_singular_value_quantiles [i, layer, q], {act0}_s2_over_s1_quantiles[_rms] "
              "[layer, q])")  # fmt: skip
    png = _png(args)
    if png:
        plot.jacobian_figure(layers, laws, collapse, spectra, sigmas, args.sigma_b, act0, d, path=png)
        print(f"wrote {png}")


def _tail_request(args):
    given = {k: getattr(args, k) for k in _TAIL_DEFAULTS if getattr(args, k) is not None}
    if args.resume:
        extra = [k for k in given] + [k for k in ("target_rel_error", "tail", "max_chains") if getattr(args, k)]
        if extra:
            flags = ", ".join("--" + k.replace("_", "-") for k in extra)
            raise _ArgError(f"--resume continues the run exactly as it was started; do not pass {flags}")
        return None
    a = {**_TAIL_DEFAULTS, **given}
    if args.target_rel_error is not None and "chains" in given:
        raise _ArgError("give either --chains or --target-rel-error, not both")
    if args.target_rel_error is None and (args.tail or args.max_chains):
        raise _ArgError("--tail and --max-chains only apply with --target-rel-error")
    depths = a["depth"]
    if any(v < 0 for v in depths):
        raise _ArgError(f"depths must be ≥ 0, got {depths}")
    side, t = args.tail or ("upper", max(a["thresholds"]))
    if t not in a["thresholds"]:
        a["thresholds"] = [*a["thresholds"], t]
    kwargs = {
        "width": a["width"],
        "depth": max(depths),
        "layers": sorted(set(depths)),
        "activation": a["activation"],
        "sigma_w": a["sigma_w"],
        "sigma_b": a["sigma_b"],
        "weights": a["weights"],
        "method": a["method"],
        "thresholds": a["thresholds"],
        "seed": a["seed"],
        "dtype": a["dtype"],
    }
    if args.target_rel_error is not None:
        run = {"n_chains": None, "target_rel_error": args.target_rel_error, "max_chains": args.max_chains or 10**9}
    else:
        run = {"n_chains": a["chains"]}
    return kwargs, run, (side, t)


def _exact_laws(r):
    """The exact law of ‖x_ℓ‖ at each recorded layer of a chain result, where there is one."""
    p = r.params
    if p["rms_norm"]:
        return {}
    x0 = 1.0 if p["x0"] is None else float(np.linalg.norm(p["x0"]))
    laws = {int(ell): _exact_law({**p, "depth": int(ell)}, x0) for ell in r.layers}
    return {} if None in laws.values() else laws


def _tail_table(r, laws):
    lines = [f"{'layer':>5}  {'event':<14}{'p':>11}  {'95% interval':<25}{'hits / chains':>22}  {'exact':>10}"]
    for ell in r.layers:
        law = laws.get(int(ell))
        for t in r.thresholds:
            for side, sym in (("upper", ">"), ("lower", "<")):
                e = r.tail_probability(t, side, layer=int(ell))
                ex = "" if law is None else f"{float(law.sf(t) if side == 'upper' else law.cdf(t)):10.4g}"
                ci = f"[{e.ci_low:.4g}, {e.ci_high:.4g}]"
                lines.append(
                    f"{int(ell):>5}  {'||x||' + sym + f'{t:g}':<14}{e.p:>11.4g}  {ci:<25}{e.hits:>11}/{e.n:<10}  {ex}"
                )
    return "\n".join(lines)


class _Terminated(KeyboardInterrupt):
    pass


def _on_sigterm(signum, frame):
    raise _Terminated()


def _rare(args):
    """``tail --rare SIDE:T``: one rare-event estimate, and the tail curve down to it."""
    import fastprop as fp
    from fastprop import plot

    unused = ("chains", "thresholds", "target_rel_error", "tail", "resume", "dtype")
    bad = [k for k in unused if getattr(args, k) is not None]
    if bad:
        raise _ArgError(f"--rare does not take {', '.join('--' + k.replace('_', '-') for k in bad)}")
    a = {**_TAIL_DEFAULTS, **{k: getattr(args, k) for k in _TAIL_DEFAULTS if getattr(args, k) is not None}}
    if args.depth is not None and len(args.depth) != 1:
        raise _ArgError(f"--rare estimates at one depth; got --depth {' '.join(map(str, args.depth))}")
    side, t = args.rare
    net = dict(width=a["width"], depth=args.depth[0] if args.depth else 100, activation=a["activation"],
               sigma_w=a["sigma_w"], sigma_b=a["sigma_b"], weights=a["weights"])  # fmt: skip
    run = dict(method=args.method or "auto", seed=a["seed"], target=args.target, client=args.client,
               max_chains=args.max_chains)  # fmt: skip
    rel = 0.1 if args.rel_error is None else args.rel_error
    t0 = time.perf_counter()
    e = fp.rare_tail(threshold=t, side=side, rel_error=rel, progress=not args.quiet, **net, **run)
    dt = time.perf_counter() - t0
    print(
        f"{net['activation']} network, width {net['width']}, depth {net['depth']}, {net['weights']} weights, "
        f"sigma_w = {net['sigma_w']:g}, sigma_b = {net['sigma_b']:g}, seed {a['seed']}: {dt:.2f} s"
    )
    print(e)
    law = _exact_law(net)
    if law is not None:
        print(f"exact: {float(law.sf(t) if side == 'upper' else law.cdf(t)):.6e}")
    out = _out(args)
    e.save(out)
    print(f"wrote {out}  (load with fastprop.RareTailEstimate.load)")
    png = _png(args)
    if png:
        mc = fp.simulate_chains(n_chains=10**5, keep_norms=True, seed=a["seed"], target=args.target, **net)
        bulk = float(np.exp(np.median(mc.norms[-1])))
        points = [
            fp.rare_tail(threshold=float(u), side=side, rel_error=max(rel, 0.1), **net, **run)
            for u in np.geomspace(bulk, t, 8)[1:-1]
        ]
        plot.rare_tail_curve([*points, e], np.exp(mc.norms[-1]), law, path=png)
        print(f"wrote {png}")


def _exact_law(net, x0=1.0):
    """The exact law of ‖x_L‖ where there is one (Gaussian weights, σ_b = 0, linear/abs/relu)."""
    from fastprop.chains import exact

    if net["weights"] != "gaussian" or net["sigma_b"] != 0 or net["sigma_w"] <= 0:
        return None
    if net["activation"] not in ("linear", "abs", "relu"):
        return None
    return exact.chain_norm(net["width"], net["depth"], net["activation"], net["sigma_w"], x0)


def _tail(args):
    from fastprop import plot
    from fastprop.run import checkpoint

    if args.rare:
        return _rare(args)
    if args.rel_error is not None:
        raise _ArgError("--rel-error only applies with --rare (for plain chains use --target-rel-error)")

    req = _tail_request(args)
    out = _out(args)
    if args.resume and not os.path.exists(args.resume):
        raise _ArgError(f"--resume: no such file {args.resume!r}")
    if args.checkpoint_every < 0:
        raise _ArgError("--checkpoint-every must be ≥ 0")
    _writable(out, "--out", None if args.resume and out == args.resume else _RESULT_EXTENSIONS["tail"])
    if not args.resume and not args.force:
        try:
            checkpoint._refuse_unfinished(out)
        except FileExistsError as exc:
            raise _ArgError(f"--out {out}: {exc}".replace("resume_chains (CLI: --resume)", f"--resume {out}")) from None
    before = _stat(out)
    common = {"checkpoint_every": args.checkpoint_every, "progress": not args.quiet, "target": args.target}
    t0 = time.perf_counter()
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if args.resume:
            r = checkpoint.resume_chains(args.resume, out=out, client=args.client, **common)
        else:
            kwargs, run, tail = req
            r = checkpoint.run_chains(
                out,
                run["n_chains"],
                target_rel_error=run.get("target_rel_error"),
                max_chains=run.get("max_chains", 10**9),
                tail=tail,
                client=args.client,
                force=True,
                **kwargs,
                **common,
            )
    except KeyboardInterrupt:
        if _stat(out) != before:  # this run wrote its checkpoint there
            print(
                f"fastprop tail: interrupted; the finished chains are checkpointed in {out} "
                f"(continue with: fastprop tail --resume {out})",
                file=sys.stderr,
            )
        else:
            kept = f" ({out} is as it was)" if before is not None else ""
            print(f"fastprop tail: interrupted before any chains finished; nothing was saved{kept}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    dt = time.perf_counter() - t0
    p = r.params
    print(
        f"{p['activation']} network, width {p['width']}, {p['weights']} weights, sigma_w = {p['sigma_w']:g}, "
        f"sigma_b = {p['sigma_b']:g}, seed {p['seed']}: {r.n:,} chains ({p['method']} sampler, {p['dtype']}, "
        f"target {r.meta['target']}) in {dt:.2f} s"
    )
    laws = _exact_laws(r)
    print(_tail_table(r, laws))
    run = r.meta["run"]
    if run["target_rel_error"] is not None:
        side, t = run["tail"]
        est = r.tail_probability(t, side)
        ok = est.rel_error <= run["target_rel_error"]
        word = "reached" if ok else f"NOT reached (stopped at --max-chains {run['max_chains']:,})"
        print(f"precision goal ±{run['target_rel_error']:.1%} for P({side} {t:g}) {word}: ±{est.rel_error:.2%}")
    print(f"wrote {out}  (load with fastprop.ChainResult.load)")
    png = _png(args)
    if png:
        plot.tail_histograms(r, laws, path=png)
        print(f"wrote {png}")


def _stat(path):
    """What identifies a file's current contents (None when there is none)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _info(_args):
    import numba

    import fastprop as fp
    from fastprop.run.targets import cuda_status, resolve_target

    print(f"fastprop {fp.__version__}")
    versions = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"numba {numba.__version__}"]
    for mod in ("numba_cuda", "scipy", "matplotlib", "xarray", "netCDF4", "dask", "distributed"):
        try:
            m = __import__(mod)
            versions.append(f"{mod} {getattr(m, '__version__', '?')}")
        except ImportError:
            versions.append(f"{mod} (not installed)")
    print("versions: " + ", ".join(versions))
    print(f"threads: {numba.config.NUMBA_NUM_THREADS} (set NUMBA_NUM_THREADS to change), {os.cpu_count()} CPUs")
    usable, why = cuda_status()
    print(f"GPU: {why}")
    targets = ["cpu", "parallel"] + (["cuda"] if usable else [])
    print(f"targets usable here: {', '.join(targets)} (auto -> {resolve_target('auto')})")
    print(f"activations: {', '.join(fp.ACTIVATIONS)}")
    _cache_show()


def _cache_show():
    from fastprop.run import compile

    root = compile.cache_dir()
    if root is None:
        print("kernel cache: off (FASTPROP_CACHE_DIR=off): kernels are compiled in every process")
        return
    files, size = compile.size()
    print(f"kernel cache: {root} ({files} files, {size / 2**20:.1f} MiB; FASTPROP_CACHE_DIR to move, 'off' to disable)")


def _cache(args):
    from fastprop.run import compile

    if args.action == "clear" and compile.cache_dir() is not None:
        print(f"removed {compile.clear()} files from the kernel cache {compile.cache_dir()}")
    else:
        _cache_show()


# ---------------------------------------------------------------------- main
def main(argv=None):
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed its one-line error (or --help)
        return int(exc.code or 0)
    try:
        if args.command not in ("info", "cache"):
            from fastprop.run.targets import check_target

            check_target(args.target)
            if getattr(args, "resume", None) and not os.path.exists(args.resume):
                raise _ArgError(f"--resume: no such file {args.resume!r}")
            out = _out(args)
            in_place = getattr(args, "resume", None) and out == args.resume  # a checkpoint, any name
            _writable(out, "--out", None if in_place else _RESULT_EXTENSIONS[_kind(args)])
            _writable(_png(args), "--png", (".png",))
        from fastprop.run.distributed import connect

        with connect(getattr(args, "scheduler", None)) as args.client:
            commands = {"grid": _grid, "edge": _edge, "tail": _tail, "spectrum": _spectrum, "kernel": _kernel,
                        "jacobian": _jacobian, "info": _info, "cache": _cache}  # fmt: skip
            rc = commands[args.command](args)
    except (_ArgError, ValueError, TypeError, ImportError, ConnectionError) as exc:
        return _fail(args, exc, 2)
    except KeyboardInterrupt:
        print(f"fastprop {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError as exc:
        return _fail(args, f"out of memory ({exc or 'an allocation failed'})", 1)
    except Exception as exc:  # never a traceback for a user (FASTPROP_TRACEBACK=1 shows it)
        return _fail(args, exc if isinstance(exc, (OSError, RuntimeError)) else f"{type(exc).__name__}: {exc}", 1)
    return rc or 0


def _fail(args, exc, code):
    """Report ``exc`` as one line on stderr and return the exit code (or re-raise it
    with ``FASTPROP_TRACEBACK=1``, for debugging)."""
    if os.environ.get("FASTPROP_TRACEBACK") == "1" and isinstance(exc, BaseException):
        raise exc
    message = " ".join(str(exc).split())  # one line, whatever the exception holds
    print(f"fastprop {args.command}: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

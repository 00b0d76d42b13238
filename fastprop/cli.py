"""The ``fastprop`` command line: ``grid``, ``edge`` and ``info``.

Errors are one line on stderr with exit code 2 (bad arguments) or 1 (failure).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np


class _ArgError(Exception):
    pass


def _axis(text):
    """``start:stop:num`` (inclusive linspace) or a comma-separated list."""
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            start, stop, num = float(parts[0]), float(parts[1]), int(parts[2])
            if num < 1:
                raise ValueError
            return np.linspace(start, stop, num)
        return np.array([float(v) for v in text.split(",")])
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid axis {text!r}: use start:stop:num or a comma-separated list"
        ) from None


def _parser():
    p = argparse.ArgumentParser(prog="fastprop", description="Signal propagation in random deep networks.")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("grid", help="mean-field quantities over a (σ_w, σ_b) grid (default: tanh phase diagram)")
    g.add_argument("--activation", default="tanh", help="activation name (default: tanh)")
    g.add_argument(
        "--sigma-w", type=_axis, default=_axis("0.1:4:200"), help="σ_w axis, start:stop:num (default 0.1:4:200)"
    )
    g.add_argument("--sigma-b", type=_axis, default=_axis("0:2:100"), help="σ_b axis, start:stop:num (default 0:2:100)")
    g.add_argument("--target", default="auto", help="auto, cpu or parallel (default: auto)")
    g.add_argument("--out", default="fastprop_grid.npz", help="result file (default: fastprop_grid.npz)")

    e = sub.add_parser("edge", help="edge of chaos σ_w(σ_b) with χ_1 = 1 for one or more activations")
    e.add_argument("--activation", nargs="+", default=["tanh"], help="activation names (default: tanh)")
    e.add_argument("--sigma-b", type=_axis, default=_axis("0:2:11"), help="σ_b axis (default 0:2:11)")
    e.add_argument("--target", default="auto")
    e.add_argument("--out", default=None, help="optional CSV file for the table")

    sub.add_parser("info", help="version, targets and threads on this machine")
    return p


def _grid(args):
    import fastprop as fp

    t0 = time.perf_counter()
    g = fp.meanfield_grid(args.activation, args.sigma_w, args.sigma_b, target=args.target)
    dt = time.perf_counter() - t0
    path = g.save(args.out)
    n = g.q_star.size
    chaotic = int(np.count_nonzero(g.chi_1 > 1))
    rate = f"{dt / n * 1e6:.1f} us/point, target {g.target}"
    print(f"{g.activation}: {g.shape[0]} x {g.shape[1]} grid in {dt:.2f} s ({rate})")
    print(f"chaotic points (chi_1 > 1): {chaotic} of {n}; flagged: {int(np.count_nonzero(g.status))}")
    print(f"wrote {path}  (load with fastprop.MeanFieldGrid.load)")


def _edge(args):
    import fastprop as fp

    rows = []
    header = ["sigma_b"] + list(args.activation)
    cols = [fp.edge_of_chaos(a, args.sigma_b, target=args.target) for a in args.activation]
    print("  ".join(f"{h:>12s}" for h in header))
    for i, sb in enumerate(args.sigma_b):
        vals = [sb] + [c[i] for c in cols]
        rows.append(vals)
        print("  ".join(f"{v:12.8f}" for v in vals))
    if args.out:
        from ._io import atomic_write

        text = ",".join(header) + "\n" + "\n".join(",".join(repr(float(v)) for v in r) for r in rows) + "\n"
        atomic_write(args.out, text.encode())
        print(f"wrote {args.out}")


def _info(_args):
    import numba

    import fastprop as fp
    from fastprop.targets import cuda_available

    print(f"fastprop {fp.__version__}")
    print(f"python {platform.python_version()}  numpy {np.__version__}  numba {numba.__version__}")
    print(f"threads: {numba.config.NUMBA_NUM_THREADS}  (NUMBA_NUM_THREADS)")
    gpu = "  (a GPU is visible; the cuda target is not built yet)" if cuda_available() else ""
    print(f"targets usable here: cpu, parallel{gpu}")
    print(f"activations: {', '.join(fp.ACTIVATIONS)}")


def main(argv=None):
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    try:
        if args.command in ("grid", "edge") and getattr(args, "out", None):
            d = os.path.dirname(os.path.abspath(args.out))
            if not os.path.isdir(d) or not os.access(d, os.W_OK):
                raise _ArgError(f"cannot write to {args.out!r}: directory is missing or not writable")
        {"grid": _grid, "edge": _edge, "info": _info}[args.command](args)
    except (_ArgError, ValueError, TypeError) as exc:
        print(f"fastprop {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fastprop {args.command}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""Figures: the mean-field phase diagram, edge-of-chaos curves, ‖x_ℓ‖ histograms,
Jacobian singular-value densities and NNGP/NTK kernels against finite width.

Each function returns a matplotlib ``Figure`` and, given ``path``, also writes it
(PNG, atomically). They draw results only; nothing here computes mean-field
quantities or simulates. Needs matplotlib (a dependency of fastprop); the
non-interactive Agg backend is used, so no display is required.
"""

from __future__ import annotations

import io

import numpy as np

from .run.files import atomic_write

__all__ = ["phase_diagram", "edge_curves", "tail_histograms", "rare_tail_curve", "singular_value_densities",
           "kernel_figure", "jacobian_figure"]  # fmt: skip


def _figure(nrows, ncols, size, margins=None):
    """A figure of nrows × ncols axes: laid out by matplotlib, or with fixed ``margins``
    (``subplots_adjust`` arguments; a third faster to draw than the constrained layout)."""
    from matplotlib.figure import Figure  # Agg canvas, no pyplot state, no display

    fig = Figure(figsize=size, layout=None if margins else "constrained")
    if margins:
        fig.subplots_adjust(**margins)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def save_png(fig, path, dpi=110):
    """Write ``fig`` to ``path`` as PNG, atomically; returns the path."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write(path, buf.getvalue())
    return path


def phase_diagram(grid, edge=None, path=None):
    """The order-to-chaos phase diagram of a :class:`fastprop.MeanFieldGrid`.

    Six panels over (σ_w, σ_b): q*, χ_1, c*, ξ_q and ξ_c, each with the χ_1 = 1
    contour (Poole et al. 2016, Fig. 2; Pennington et al. 2017, Fig. 1), and,
    when ``edge = (sigma_b, sigma_w_edge, q_on_edge)`` is given, the edge of chaos
    σ_w(σ_b) with q* along it.
    """
    sw, sb = grid.sigma_w, grid.sigma_b
    margins = {"left": 0.05, "right": 0.95, "bottom": 0.07, "top": 0.9, "wspace": 0.45, "hspace": 0.35}
    fig, ax = _figure(2, 3, (14, 8), margins)
    fig.suptitle(f"{grid.activation}: mean-field phase diagram ({grid.shape[0]} × {grid.shape[1]} grid)")
    with np.errstate(divide="ignore", invalid="ignore"):
        panels = [
            ("q* (white: q* = 0)", np.log10(grid.q_star), "log10 q*", "viridis", None),
            ("χ_1", grid.chi_1, "χ_1", "RdBu_r", "centre"),
            ("c*", grid.c_star, "c*", "magma", None),
            ("ξ_q", np.log10(grid.xi_q), "log10 ξ_q (layers)", "cividis", None),
            ("ξ_c", np.log10(grid.xi_c), "log10 ξ_c (layers)", "cividis", None),
        ]
    two_d = sw.size > 1 and sb.size > 1
    for k, (title, z, label, cmap, norm) in enumerate(panels):
        a = ax.flat[k]
        a.set_title(title)
        a.set_xlabel("σ_w")
        a.set_ylabel("σ_b")
        if not two_d:
            a.text(0.5, 0.5, "needs ≥ 2 points on each axis", ha="center", va="center", transform=a.transAxes)
            continue
        zz = np.ma.masked_invalid(z.T)
        kw = {}
        if norm == "centre":
            from matplotlib.colors import TwoSlopeNorm

            finite = grid.chi_1[np.isfinite(grid.chi_1)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 2.0)
            kw["norm"] = TwoSlopeNorm(vcenter=1.0, vmin=min(lo, 0.999), vmax=max(hi, 1.001))
        mesh = a.pcolormesh(sw, sb, zz, cmap=cmap, shading="nearest", **kw)
        fig.colorbar(mesh, ax=a, label=label)
        if np.nanmin(grid.chi_1) < 1 < np.nanmax(grid.chi_1):
            a.contour(sw, sb, grid.chi_1.T, levels=[1.0], colors="k", linewidths=1.2, linestyles="--")
    a = ax.flat[5]
    a.set_title("edge of chaos (χ_1 = 1)")
    if edge is not None:
        esb, esw, eq = (np.asarray(v, float) for v in edge)
        a.plot(esb, esw, "k-", label="σ_w on the edge")
        a.set_xlabel("σ_b")
        a.set_ylabel("σ_w")
        b = a.twinx()
        b.plot(esb, eq, "C1-", label="q* on the edge")
        b.set_ylabel("q* on the edge", color="C1")
        a.legend(loc="upper left")
    else:
        a.text(0.5, 0.5, "edge not computed", ha="center", va="center", transform=a.transAxes)
    if path is not None:
        save_png(fig, path)
    return fig


def edge_curves(sigma_b, curves, path=None, variance=None):
    """σ_w(σ_b) on the edge of chaos for several activations: ``curves`` maps name → σ_w.
    With ``variance`` ({"sigma_b", "depth", "curves": name → (Gaussian, orthogonal)}), a
    second panel: the variance of the spectrum of J Jᵀ against depth on the edge at that σ_b
    (Pennington, Schoenholz & Ganguli 2017, Fig. 2)."""
    fig, ax = _figure(1, 2 if variance else 1, (12.5 if variance else 6.5, 4.5))
    a = ax[0, 0]
    colors = {}
    for name, sw in curves.items():
        (line,) = a.plot(sigma_b, sw, marker="o", ms=3, label=name)
        colors[name] = line.get_color()
    a.set_xlabel("σ_b")
    a.set_ylabel("σ_w with χ_1 = 1")
    a.set_title("edge of chaos: ordered below each curve, chaotic above")
    a.grid(alpha=0.3)
    a.legend()
    if variance:
        b = ax[0, 1]
        depth = variance["depth"]
        for name, (gauss, orth) in variance["curves"].items():
            b.loglog(depth, gauss, color=colors.get(name), label=f"{name}, Gaussian")
            if np.any(orth > 1e-12 * gauss):  # 0 up to rounding: none to draw (e.g. tanh at σ_b = 0)
                b.loglog(
                    depth,
                    np.where(orth > 1e-12 * gauss, orth, np.nan),
                    "--",
                    color=colors.get(name),
                    label=f"{name}, orthogonal",
                )
        b.set_xlabel("depth L")
        b.set_ylabel("σ²_JJᵀ (variance of the squared singular values)")
        b.set_title(f"spectrum of J Jᵀ on the edge of chaos, σ_b = {variance['sigma_b']:g}")
        b.grid(alpha=0.3, which="both")
        b.legend(fontsize=8)
    if path is not None:
        save_png(fig, path)
    return fig


def _rebin(counts, edges, factor):
    n = counts.size // factor * factor
    return counts[:n].reshape(-1, factor).sum(axis=1), edges[: n + 1 : factor]


def tail_histograms(result, laws=None, path=None, bins_per_decade=10):
    """Histograms of ‖x_ℓ‖ (log axis) at every recorded layer of a :class:`fastprop.ChainResult`.

    Each panel shows the fraction of chains per bin of log10‖x_ℓ‖, the declared
    thresholds with their tail probabilities and 95 % intervals, and — where
    ``laws`` maps a layer to an exact law (:func:`fastprop.chains.exact.chain_norm`) —
    the exact bin probabilities. Reproduces the width-10 linear-network figure of
    the source notes (depths 1, 20, 100).
    """
    from .chains.common import BINS_PER_DECADE

    if BINS_PER_DECADE % bins_per_decade:
        raise ValueError(f"bins_per_decade must divide {BINS_PER_DECADE}, got {bins_per_decade}")
    layers = [int(v) for v in result.layers]
    fig, ax = _figure(1, len(layers), (4.6 * len(layers), 4.2))
    p = result.params
    fig.suptitle(
        f"‖x_ℓ‖ over {result.n:,} random networks: width {p['width']}, {p['activation']}, "
        f"{p['weights']} weights, σ_w = {p['sigma_w']:g}, σ_b = {p['sigma_b']:g}"
    )
    for a, layer in zip(ax.flat, layers, strict=True):
        counts, edges = result.histogram(layer=layer)
        counts, edges = _rebin(counts, edges, BINS_PER_DECADE // bins_per_decade)
        frac = counts / result.n
        a.stairs(frac, 10.0**edges, fill=True, alpha=0.55, label="simulated")
        law = (laws or {}).get(layer)
        if law is not None and counts.size:
            exact = np.diff(law.cdf(10.0**edges))
            a.stairs(exact, 10.0**edges, color="k", lw=1, label="exact law")
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel(f"‖x_{layer}‖")
        a.set_ylabel("fraction of networks per bin")
        a.set_title(f"depth ℓ = {layer}")
        lines = []
        for t in result.thresholds:
            a.axvline(t, color="C3", lw=0.8, ls=":")
            up = result.tail_probability(t, "upper", layer=layer)
            lo = result.tail_probability(t, "lower", layer=layer)
            lines.append(f"P(>{t:g}) = {_fmt(up)}")
            lines.append(f"P(<{t:g}) = {_fmt(lo)}")
        a.text(0.02, 0.98, "\n".join(lines), transform=a.transAxes, va="top", fontsize=8, family="monospace")
        a.legend(loc="upper right", fontsize=8)
    if path is not None:
        save_png(fig, path)
    return fig


def rare_tail_curve(estimates, norms=None, law=None, path=None):
    """The tail of ‖x_L‖ over many decades: :class:`fastprop.RareTailEstimate` points (one
    network and side) with their 95 % intervals, the empirical tail of plain chains
    ``norms`` (‖x_L‖ samples) where there are any, and the exact law where ``law`` is given
    (:func:`fastprop.chains.exact.chain_norm`)."""
    p = estimates[-1].params
    upper = p["side"] == "upper"
    fig, ax = _figure(1, 1, (7.5, 5.2))
    a = ax[0, 0]
    t = np.array([e.params["threshold"] for e in estimates])
    order = np.argsort(t)
    est = [estimates[i] for i in order]
    t = t[order]
    y = np.array([10.0**e.log10_p for e in est])
    lo = np.array([max(e.ci_low, 1e-320) for e in est])
    hi = np.array([e.ci_high for e in est])
    a.errorbar(t, y, yerr=[y - np.minimum(lo, y), hi - y], fmt="o", color="C3", ms=4, capsize=3,
               label=f"rare_tail ({', '.join(sorted({e.method for e in est}))}), 95 % intervals")  # fmt: skip
    if norms is not None and len(norms):
        v = np.sort(np.asarray(norms))
        frac = (np.arange(v.size, 0, -1) if upper else np.arange(1, v.size + 1)) / v.size
        a.step(v, frac, where="post", color="C0", lw=1, label=f"{v.size:,} plain chains")
    if law is not None:
        grid = np.geomspace(min(t.min(), np.min(norms) if norms is not None else t.min()), t.max(), 200)
        exact = law.sf(grid) if upper else law.cdf(grid)
        a.plot(grid, exact, color="k", lw=1, label="exact law")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xlabel(f"t  (‖x_{p['depth']}‖)")
    a.set_ylabel(f"P(‖x_L‖ {'>' if upper else '<'} t)")
    a.set_title(
        f"{p['activation']}, width {p['width']}, depth {p['depth']}, {p['weights']} weights, "
        f"σ_w = {p['sigma_w']:g}, σ_b = {p['sigma_b']:g}",
        fontsize=10,
    )
    a.legend(fontsize=8, loc="lower left" if upper else "lower right")
    if path is not None:
        save_png(fig, path)
    return fig


def _fmt(t):
    if t.hits == 0:
        return f"0 (< {t.ci_high:.2g})"
    return f"{t.p:.4g} ±{100 * t.rel_error:.2g}%"


def singular_value_densities(panels, path=None):
    """Densities of log10 s (s the singular values of J) from free probability, with
    finite-width histograms overlaid. ``panels``: a dict (activation, depth) → list of
    (weights, x, density, simulated log10 s or None, atoms at s > 0 as (log10 s, mass));
    rows are activations, columns depths. Atoms are dotted lines labelled with their mass."""
    acts = list(dict.fromkeys(a for a, _ in panels))
    depths = sorted({d for _, d in panels})
    fig, ax = _figure(len(acts), len(depths), (3.2 * len(depths) + 0.5, 2.6 * len(acts) + 0.6))
    colours = {"gaussian": "C0", "orthogonal": "C1"}
    for i, act in enumerate(acts):
        for k, depth in enumerate(depths):
            a = ax[i, k]
            curves = panels.get((act, depth), [])
            finite = [d[np.isfinite(d)] for _, _, d, _, _ in curves]
            top = max((np.percentile(d, 97) for d in finite if d.size), default=0.0)
            if top > 0:  # integrable spikes at square-root or atom edges would flatten the rest
                a.set_ylim(0.0, 1.6 * top)
            for weights, x, dens, sim, atoms in curves:
                c = colours.get(weights, "C2")
                a.plot(x, dens, color=c, lw=1.4, label=f"{weights} (free prob.)")
                right = x[-1]
                for xa, mass in atoms:
                    a.axvline(xa, color=c, ls=":", lw=1.4)
                    a.annotate(f"atom {mass:.3g}", (xa, 0.9), xycoords=("data", "axes fraction"), color=c,
                               fontsize=7, ha="right", rotation=90)  # fmt: skip
                    right = max(right, xa + 0.02 * (xa - x[0]))
                if sim is not None and sim.size:
                    # normalised by all simulated values, so it estimates the same density
                    inside = sim[np.isfinite(sim) & (sim >= x[0]) & (sim <= right)]
                    bins = 40
                    width = (right - x[0]) / bins
                    a.hist(inside, bins=bins, range=(x[0], right), histtype="step", color=c, alpha=0.7,
                           weights=np.full(inside.size, 1.0 / (sim.size * width)))  # fmt: skip
            a.set_title(f"{act}, L = {depth}", fontsize=9)
            a.set_xlabel("log10 s")
            a.grid(alpha=0.3)
            if k == 0:
                a.set_ylabel("density of log10 s")
    ax[0, 0].legend(fontsize=7)
    if path is not None:
        save_png(fig, path)
    return fig


def kernel_figure(maps, depths, sigma_w, sigma_b, activation, theta, nngp, ntk, finite, depth, path=None):
    """Top row: the iterated correlation map c^ℓ(c⁰) of each activation (``maps``: activation →
    (c⁰, c^ℓ for ℓ in ``depths``)). Bottom row, for ``activation`` at layer ``depth``: K(x_0, x_θ)
    and Θ(x_0, x_θ) for inputs on a circle, the infinite-width kernels (``nngp``, ``ntk``) against
    finite-width means ± 2 standard errors, and the bias and spread of K̂(x₀, x₀) against the width.
    ``finite``: (width, nngp mean, its standard error, ntk mean, its standard error, and at (x₀, x₀)
    the relative bias, its standard error and the relative spread) per width."""
    acts = list(maps)
    ncols = max(3, len(acts))
    fig, ax = _figure(2, ncols, (3.2 * ncols + 0.4, 6.4))
    for i, act in enumerate(acts):
        a = ax[0, i]
        c0, cs = maps[act]
        a.plot([-1, 1], [-1, 1], color="0.6", lw=0.8, ls="--")
        colours = _depth_colours(len(depths))
        for ell, c, col in zip(depths, cs, colours, strict=True):
            a.plot(c0, c, color=col, lw=1.3, label=f"ℓ = {ell}")
        a.set_title(f"{act}, σ_w = {sigma_w[act]:.4g}, σ_b = {sigma_b:g}", fontsize=9)
        a.set_xlabel("input correlation c⁰")
        a.set_xlim(-1, 1)
        a.grid(alpha=0.3)
        if i == 0:
            a.set_ylabel("c^ℓ (NNGP)")
            a.legend(fontsize=7, loc="upper left")
    for i in range(len(acts), ncols):
        ax[0, i].set_visible(False)
    colours = _depth_colours(len(finite))
    deg = np.degrees(theta)
    for k, (name, exact) in enumerate((("K", nngp), ("Θ", ntk))):
        a = ax[1, k]
        a.plot(deg, exact[0], color="k", lw=1.6, label="infinite width", zorder=3)
        for (w, km, kse, tm, tse, *_), col in zip(finite, colours, strict=True):
            m, se = (km, kse) if k == 0 else (tm, tse)
            a.errorbar(deg, m[0], yerr=2 * se[0], color=col, fmt="o", ms=2.5, lw=0.8, capsize=1.5, label=f"width {w}")
        a.set_xlabel("angle between the inputs (degrees)")
        kind = "NNGP" if k == 0 else "NTK"
        a.set_title(f"{activation}, layer {depth}: {kind} {name}(x₀, x_θ), mean ± 2 SE", fontsize=9)
        a.grid(alpha=0.3)
        if k == 0:
            a.legend(fontsize=7)
    a = ax[1, 2]
    widths = np.array([f[0] for f in finite], dtype=float)
    bias, se, spread = (np.array([f[i] for f in finite]) for i in (5, 6, 7))
    a.errorbar(widths, np.abs(bias), yerr=2 * se, fmt="o-", color="C3", capsize=2, label="|E K̂ − K| ± 2 SE")
    a.plot(widths, spread, "s-", color="C0", label="spread of K̂ (std)")
    if widths.size:
        w0 = widths[0]
        a.plot(widths, spread[0] * np.sqrt(w0 / widths), color="C0", ls=":", lw=1, label="∝ 1/√width")
        a.plot(widths, abs(bias[0]) * w0 / widths, color="C3", ls=":", lw=1, label="∝ 1/width")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set_xticks(widths, [f"{w:g}" for w in widths])
    a.xaxis.set_minor_locator(_null_locator())
    a.set_xlabel("width")
    a.set_ylabel("relative to K(x₀, x₀)")
    a.set_title(f"{activation}, layer {depth}: finite-width K̂(x₀, x₀)", fontsize=9)
    a.grid(alpha=0.3, which="both")
    a.legend(fontsize=7)
    for i in range(3, ncols):
        ax[1, i].set_visible(False)
    if path is not None:
        save_png(fig, path)
    return fig


def jacobian_figure(layers, laws, collapse, spectra, sigma_w, sigma_b, activation, width, path=None):
    """Left: the laws of log10 s_i(J_ℓ) against depth for ``activation`` (``laws[i, ℓ]``: the 10 %,
    50 % and 90 % quantiles of s_i at ``layers[ℓ]``). Middle: s_2/s_1 against depth without and with
    RMS normalisation (``collapse[rms][ℓ]``: its three quantiles). Right: the Lyapunov spectra
    λ_1 … λ_d of each activation (``spectra``: activation → (λ, low, high)) at its σ_w."""
    fig, ax = _figure(1, 3, (14.0, 4.4))
    ell = np.asarray(layers, dtype=float)
    a = ax[0, 0]
    colours = _depth_colours(width)
    for i in range(width):
        _band(a, ell, laws[i], colours[i], 1.3, f"s_{i + 1}" if i in (0, width - 1) else None)
    a.set_xlabel("depth ℓ")
    a.set_ylabel("log10 s_i(J_ℓ): median, 10–90 %")
    a.set_title(f"{activation}, width {width}, σ_w = {sigma_w[activation]:.4g}, σ_b = {sigma_b:g}", fontsize=9)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    a = ax[0, 1]
    for rms, col in ((False, "C3"), (True, "C0")):
        _band(a, ell, collapse[rms], col, 1.5, "RMS normalisation" if rms else "plain")
    a.set_xlabel("depth ℓ")
    a.set_ylabel("log10 s_2/s_1: median, 10–90 %")
    a.set_title(f"{activation}: collapse towards rank one", fontsize=9)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    a = ax[0, 2]
    for k, (act, (lam, lo, hi)) in enumerate(spectra.items()):
        i = np.arange(1, lam.size + 1)
        fin = np.isfinite(lam)
        a.errorbar(i[fin], lam[fin], yerr=[lam[fin] - lo[fin], hi[fin] - lam[fin]], fmt="o-", ms=3, lw=1,
                   capsize=2, color=f"C{k}", label=f"{act} (σ_w = {sigma_w[act]:.3g})")  # fmt: skip
    a.axhline(0.0, color="0.5", lw=0.8)
    a.set_xlabel("i")
    a.set_ylabel("Lyapunov exponent λ_i (per layer)")
    a.set_title(f"Lyapunov spectra, width {width}, σ_b = {sigma_b:g}", fontsize=9)
    a.grid(alpha=0.3)
    a.legend(fontsize=7)
    if path is not None:
        save_png(fig, path)
    return fig


def _band(a, x, quantiles, colour, lw, label):
    """The middle of three quantiles as a line and the outer two as a band, in log10."""
    with np.errstate(divide="ignore"):
        q = np.log10(quantiles)
    a.fill_between(x, q[:, 0], q[:, 2], color=colour, alpha=0.2, lw=0)
    a.plot(x, q[:, 1], color=colour, lw=lw, label=label)


def _null_locator():
    from matplotlib.ticker import NullLocator

    return NullLocator()


def _depth_colours(n):
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.9 * i / max(1, n - 1)) for i in range(n)]

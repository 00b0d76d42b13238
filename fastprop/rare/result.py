"""The result of :func:`fastprop.rare_tail`: a tail probability with its interval and
the diagnostics needed to trust it."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field

from ..run.files import atomic_write

__all__ = ["RareTailEstimate"]


@dataclass(frozen=True)
class RareTailEstimate:
    """P(‖x_L‖ > t) (``side="upper"``) or P(‖x_L‖ < t) (``"lower"``) by a rare-event method.

    Attributes
    ----------
    p : float
        The estimate (0.0 where it is below the smallest double; ``log10_p`` keeps it).
    ci_low, ci_high : float
        The 95 % interval, p ± 1.96·SE, with the standard error SE from the estimator's own
        variance (the sample variance of the tilted chains' weights, or of independent
        splitting runs), clipped to [0, 1].
    rel_error : float
        The half-width of the interval relative to p, 1.96·SE/p, as
        :attr:`fastprop.TailEstimate.rel_error` (inf when p = 0).
    rel_std_error : float
        The estimated relative standard error SE/p.
    n : int
        The work: networks evaluated (tilted chains; or particles drawn plus moves
        proposed, each a whole network, for splitting, the pilot included).
    method : str
        "tilt", "splitting" or "exact" (a deterministic norm).
    converged : bool
        Whether ``rel_error`` reached the requested value (else ``max_chains`` ran out).
    log10_p : float
        log10 of the estimate, also where ``p`` underflows.
    speedup : float
        Plain Monte Carlo's work for the same relative error, (1 − p)/(p·rel_std_error²)
        chains, over ``n``.
    diagnostics : dict
        Method-specific: for "tilt" the tilt ``theta``, ``log_bound`` (log B), ``hits``,
        ``ess`` (effective sample size (Σw)²/Σw²) and ``atom`` (P(‖x_L‖ = 0) for relu);
        for "splitting" the ``levels`` (of ±log‖x_L‖), ``particles``, ``moves``,
        ``runs``, ``acceptance`` (of the pCN moves), ``zero_runs`` and the pilot's
        ``pilot_log_p``.
    params : dict
        The request (width, depth, threshold, side, activation, σ_w, σ_b, weights,
        seed, requested rel_error and max_chains).
    """

    p: float
    ci_low: float
    ci_high: float
    rel_error: float
    rel_std_error: float
    n: int
    method: str
    converged: bool
    log10_p: float
    speedup: float
    diagnostics: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def __str__(self):
        side = ">" if self.params.get("side", "upper") == "upper" else "<"
        t = self.params.get("threshold", math.nan)
        note = self.diagnostics.get("note", "max_chains spent before the requested relative error")
        stop = "" if self.converged else f"  ({note})"
        return (
            f"P(‖x_L‖ {side} {t:g}) = {_num(self.p, self.log10_p)}  95% CI [{self.ci_low:.3e}, {self.ci_high:.3e}]  "
            f"±{self.rel_error:.3g} (95 %)  method {self.method}  {self.n:,} networks  "
            f"speed-up over plain Monte Carlo {self.speedup:.3g}x{stop}"
        )

    def save(self, path):
        """Write the estimate as JSON (loads back with :meth:`load`)."""
        atomic_write(path, json.dumps(asdict(self), indent=1, default=float).encode())

    @classmethod
    def load(cls, path) -> RareTailEstimate:
        """Read an estimate written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        try:
            return cls(**data)
        except TypeError as exc:
            raise ValueError(f"{path} is not a saved RareTailEstimate: {exc}") from None


def _num(p, log10_p):
    if p > 0 or not math.isfinite(log10_p):
        return f"{p:.4e}"
    e = math.floor(log10_p)
    return f"{10 ** (log10_p - e):.4f}e{e}"

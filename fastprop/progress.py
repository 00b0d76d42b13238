"""A one-line progress bar with rate and time left, for long grids and chain runs.

It draws on a terminal only: when the stream is not a TTY (a pipe, a log file,
a test) or ``enabled=False`` it does nothing, so results and output files are
never affected by it.
"""

from __future__ import annotations

import math
import sys
import time

__all__ = ["Progress"]


def _clock(seconds):
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


def _count(n):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}" if isinstance(n, float) else str(n)


class Progress:
    """``Progress(total, label, unit)``; call :meth:`advance` with work done, :meth:`close` at the end.

    ``enabled=None`` (default) draws only when ``stream`` is a terminal. Redraws
    at most every ``min_interval`` seconds. Also a context manager.
    """

    def __init__(self, total, label="", unit="it", *, enabled=None, stream=None, min_interval=0.2, width=28):
        self.stream = sys.stderr if stream is None else stream
        if enabled is None:
            enabled = bool(getattr(self.stream, "isatty", lambda: False)())
        self.enabled = bool(enabled)
        self.total = total
        self.label, self.unit = label, unit
        self.done = 0
        self.note = ""
        self.min_interval, self.width = min_interval, width
        self._t0 = time.perf_counter()
        self._last = -math.inf

    def advance(self, n, note=None):
        """Record ``n`` more units of work (and an optional note shown after the bar)."""
        self.done += n
        if note is not None:
            self.note = note
        if self.enabled:
            now = time.perf_counter()
            if now - self._last >= self.min_interval or self.done >= self.total:
                self._last = now
                self._draw(now)

    def line(self, now=None):
        """The text of the bar as it would be drawn now."""
        now = time.perf_counter() if now is None else now
        elapsed = now - self._t0
        frac = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(frac * self.width)
        bar = "#" * filled + "-" * (self.width - filled)
        rate = self.done / elapsed if elapsed > 0 else math.inf
        left = (self.total - self.done) / rate if rate > 0 and math.isfinite(rate) else math.inf
        text = (
            f"{self.label} {frac:4.0%} |{bar}| {_count(self.done)}/{_count(self.total)} {self.unit}"
            f"  {_count(rate) if math.isfinite(rate) else '?'} {self.unit}/s"
            f"  {_clock(elapsed)} elapsed, {_clock(left)} left"
        )
        return f"{text}  {self.note}" if self.note else text

    def _draw(self, now):
        self.stream.write("\r" + self.line(now) + "\x1b[K")
        self.stream.flush()

    def close(self):
        """Draw the final state and end the line."""
        if self.enabled:
            self._draw(time.perf_counter())
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def make(progress, total, label, unit):
    """A :class:`Progress` for a ``progress=`` argument: False/None (off), True (a bar
    on stderr when it is a terminal) or a :class:`Progress` the caller owns."""
    if isinstance(progress, Progress):
        return progress
    if progress is None or progress is False:
        return Progress(total, label, unit, enabled=False)
    if progress is True:
        return Progress(total, label, unit)
    raise TypeError(f"progress must be a bool or a fastprop.progress.Progress, got {type(progress).__name__}")

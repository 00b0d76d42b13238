"""Progress bars for long grids and chain runs, drawn by tqdm (``tqdm.auto``).

``progress=`` on :func:`fastprop.meanfield_grid`, :func:`fastprop.simulate_chains`
and :func:`fastprop.run.checkpoint.run_chains` takes

* ``False`` (the default): no bar;
* ``True``: a bar in a Jupyter notebook (a widget where ipywidgets is installed)
  or on a terminal (stderr), and nothing when stderr is a pipe or a log file;
* a tqdm bar you made (or any object with ``update(n)``): it is advanced by the
  work done (and given a note with ``set_postfix_str`` where it has one) and
  left open, e.g. ``tqdm(total=n, file=sys.stdout)`` to draw into a log.

The bar never changes a result: values do not depend on it.
"""

from __future__ import annotations

import sys

__all__ = ["make", "interactive"]


def _in_notebook() -> bool:
    """Whether this process is a Jupyter (IPython kernel) process."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        ip = shell.get_ipython()
    except Exception:  # an IPython without a running shell
        return False
    return ip is not None and "IPKernelApp" in getattr(ip, "config", {})


def interactive(stream=None) -> bool:
    """Whether ``progress=True`` draws: in a notebook, or when ``stream`` (stderr) is a terminal."""
    stream = sys.stderr if stream is None else stream
    return _in_notebook() or bool(getattr(stream, "isatty", lambda: False)())


class _Bar:
    """What the engines advance: ``advance(n, note)`` and ``close()`` over a tqdm bar."""

    def __init__(self, bar, owned):
        self.bar = bar
        self.owned = owned
        self.enabled = bar is not None

    def advance(self, n, note=None):
        """Record ``n`` more units of work, and a note shown after the bar."""
        if self.bar is None:
            return
        if note is not None and hasattr(self.bar, "set_postfix_str"):
            self.bar.set_postfix_str(note, refresh=False)
        self.bar.update(n)

    def close(self):
        """End a bar made here (one passed in is left to its owner)."""
        if self.bar is not None and self.owned:
            self.bar.close()


def make(progress, total, label, unit) -> _Bar:
    """The bar for a ``progress=`` argument (see the module docs) over ``total`` units."""
    if progress is None or progress is False:
        return _Bar(None, False)
    if progress is True:
        if not interactive():
            return _Bar(None, False)
        from tqdm.auto import tqdm

        return _Bar(tqdm(total=total, desc=label, unit=unit, unit_scale=True, dynamic_ncols=True), True)
    plain = (bool, int, float, str, bytes, dict, list, tuple, set)
    if not isinstance(progress, plain) and callable(getattr(progress, "update", None)):
        return _Bar(progress, False)
    kind = type(progress).__name__
    raise TypeError(f"progress must be a bool or a tqdm bar (an object with update(n)), got {kind}")

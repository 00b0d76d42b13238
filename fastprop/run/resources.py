"""Up-front resource checks (DESIGN §6): a request whose memory would not fit is
refused before any work, with the size it would need.

The estimates count what a call allocates and keeps (outputs, statistics, work
spaces of the threads that run at once); the budget is the memory the system
reports available (``MemAvailable``), or what is left under an address-space
limit (``ulimit -v``) when that is smaller.
"""

from __future__ import annotations

import os
import resource

__all__ = ["ResourceError", "available_bytes", "require", "format_bytes"]


class ResourceError(ValueError, MemoryError):
    """A request that would not fit in memory (a ``ValueError`` and a ``MemoryError``)."""


def format_bytes(n) -> str:
    """``n`` bytes in the largest binary unit that keeps it ≥ 1 (e.g. "7.45 GiB")."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def _meminfo(key):
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _address_space_left():
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        used = 0
    return max(soft - used, 0)


def available_bytes() -> int:
    """Memory a new allocation can use now: the smaller of the system's available
    memory and what an address-space limit leaves."""
    avail = _meminfo("MemAvailable")
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):  # pragma: no cover - not Linux
            avail = 1 << 62
    left = _address_space_left()
    return avail if left is None else min(avail, left)


def require(nbytes, what):
    """Refuse (``ResourceError``) when ``nbytes`` would not fit in :func:`available_bytes`."""
    avail = available_bytes()
    if nbytes > avail:
        raise ResourceError(
            f"{what} would need {format_bytes(nbytes)} of memory; only {format_bytes(avail)} is available here"
        )

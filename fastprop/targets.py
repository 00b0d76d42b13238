"""Execution targets: which compiled variant of a driver runs the work.

``"cpu"`` is serial Numba, ``"parallel"`` uses ``prange`` over the machine's
threads (``NUMBA_NUM_THREADS``), and ``"cuda"`` is the GPU target of the
numba-cuda package (a later issue of the project; requesting it here raises a
clear error). ``"auto"`` resolves to the best usable target.
"""

from __future__ import annotations

TARGETS = ("auto", "cpu", "parallel", "cuda")


def cuda_available() -> bool:
    """True when numba-cuda is importable and a GPU (or the simulator) is usable."""
    try:
        from numba import cuda
    except ImportError:  # pragma: no cover - numba always ships numba.cuda shims
        return False
    try:
        return bool(cuda.is_available())
    except Exception:
        return False


def cuda_status():
    """(usable, description) of the GPU for ``fastprop info``."""
    try:
        from numba import cuda
    except ImportError:  # pragma: no cover
        return False, "numba.cuda is not importable"
    try:
        if not cuda.is_available():
            return False, "none usable (no CUDA driver or device found)"
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    except Exception as exc:  # a broken driver must not break `fastprop info`
        return False, f"none usable ({type(exc).__name__}: {exc})"
    return False, f"{name} (visible; the cuda target is not built in this version)"


def check_target(target) -> str:
    """Validate the name ``target`` (one of :data:`TARGETS`) without resolving it."""
    if not isinstance(target, str):
        raise TypeError(f"target must be a str, one of {TARGETS}; got {type(target).__name__}")
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return target


def resolve_target(target) -> str:
    """Validate ``target`` and return the concrete target name ("cpu" or "parallel")."""
    check_target(target)
    if target == "auto":
        return "parallel"
    if target == "cuda":
        raise ValueError(
            "target='cuda' is not available in this version of fastprop: the CUDA kernels are not built yet; "
            "use target='parallel' or 'cpu'"
        )
    return target

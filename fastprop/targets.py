"""Execution targets: which compiled variant of a driver runs the work.

``"cpu"`` is serial Numba, ``"parallel"`` uses ``prange`` over the machine's
threads (``NUMBA_NUM_THREADS``), and ``"cuda"`` runs on an NVIDIA GPU through
Numba's CUDA target (the numba-cuda package). ``"cuda"`` is built for
:func:`fastprop.simulate_chains`; the mean-field drivers do not have CUDA kernels
yet. ``"auto"`` resolves to ``"cuda"`` where the driver has CUDA kernels and a
real GPU is usable, else ``"parallel"``. Results do not depend on the target
(DESIGN §4).

The CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) makes ``"cuda"`` usable without a
GPU, for tests; ``"auto"`` never picks the simulator.
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
        if _simulated():
            return True, "the CUDA simulator (NUMBA_ENABLE_CUDASIM=1), for tests only"
        dev = cuda.get_current_device()
        name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    except Exception as exc:  # a broken driver must not break `fastprop info`
        return False, f"none usable ({type(exc).__name__}: {exc})"
    return True, f"{name} (compute capability {dev.compute_capability[0]}.{dev.compute_capability[1]})"


def check_target(target) -> str:
    """Validate the name ``target`` (one of :data:`TARGETS`) without resolving it."""
    if not isinstance(target, str):
        raise TypeError(f"target must be a str, one of {TARGETS}; got {type(target).__name__}")
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose one of {', '.join(TARGETS)}")
    return target


def _simulated() -> bool:
    from numba import config

    return bool(config.ENABLE_CUDASIM)


def resolve_target(target, cuda_kernels=False) -> str:
    """Validate ``target`` and return the concrete target ("cpu", "parallel" or "cuda").

    ``cuda_kernels`` says whether the calling driver has CUDA kernels.
    """
    check_target(target)
    if target == "auto":
        return "cuda" if cuda_kernels and not _simulated() and cuda_available() else "parallel"
    if target == "cuda":
        if not cuda_kernels:
            raise ValueError(
                "target='cuda' is not available for the mean-field drivers yet (only simulate_chains has CUDA "
                "kernels); use target='parallel' or 'cpu'"
            )
        usable, why = cuda_status()
        if not usable:
            raise ValueError(f"target='cuda' needs a usable NVIDIA GPU with numba-cuda: {why}")
    return target

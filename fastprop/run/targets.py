"""Execution targets: which compiled variant of a driver runs the work.

``"cpu"`` is serial Numba, ``"parallel"`` uses ``prange`` over the machine's
threads (``NUMBA_NUM_THREADS``), and ``"cuda"`` runs on an NVIDIA GPU through
the CUDA target of the numba-cuda package (the ``cuda12``/``cuda13`` extras).
``"auto"`` resolves to ``"cuda"`` where a real GPU is usable, else
``"parallel"``. Results do not depend on the target (DESIGN §4).

The CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``) makes ``"cuda"`` usable without a
GPU, for tests; ``"auto"`` never picks the simulator.
"""

from __future__ import annotations

import importlib.util

from numba import get_num_threads

TARGETS = ("auto", "cpu", "parallel", "cuda")


def numba_cuda_installed() -> bool:
    """Whether the numba-cuda package (the CUDA target fastprop is built for) is
    installed. Numba's own deprecated ``numba.cuda`` cannot compile its kernels."""
    return importlib.util.find_spec("numba_cuda") is not None


def cuda_status():
    """(usable, description) of the CUDA target here, for ``fastprop info`` and errors.

    Usable means numba-cuda with a working GPU, or the simulator
    (``NUMBA_ENABLE_CUDASIM=1``, which needs no numba-cuda). Without either, numba's
    CUDA module is not even imported (it costs a fifth of a second)."""
    if not _simulated() and not numba_cuda_installed():
        return False, "numba-cuda is not installed (pip install 'fastprop[cuda12]' or 'fastprop[cuda13]')"
    try:
        from numba import cuda
    except ImportError:  # pragma: no cover - numba always ships numba.cuda shims
        return False, "numba.cuda is not importable"
    try:
        if _simulated():
            return bool(cuda.is_available()), "the CUDA simulator (NUMBA_ENABLE_CUDASIM=1), for tests only"
        if not cuda.is_available():
            return False, "none usable (no CUDA driver or device found)"
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


def resolve_target(target) -> str:
    """Validate ``target`` and return the concrete target ("cpu", "parallel" or "cuda")."""
    check_target(target)
    if target == "auto":
        return "cuda" if not _simulated() and cuda_status()[0] else "parallel"
    if target == "cuda":
        usable, why = cuda_status()
        if not usable:
            raise ValueError(f"target='cuda' needs a usable NVIDIA GPU with numba-cuda: {why}")
    return target


def n_chunks(n, target):
    """How many independent pieces a CPU driver cuts ``n`` items into: 1 for
    ``"cpu"``, else enough for ``prange`` to balance the threads. Results do not
    depend on it."""
    if target != "parallel":
        return 1
    return max(1, min(n, 8 * get_num_threads()))

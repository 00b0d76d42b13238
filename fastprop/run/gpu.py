"""Helpers shared by the engines' CUDA kernels (imported only for target "cuda")."""

from __future__ import annotations

from numba import config, cuda

__all__ = ["as_array"]

if config.ENABLE_CUDASIM:

    def as_array(a):
        """Under the simulator, the NumPy array behind a kernel argument, so that the
        shared ``@njit`` functions (run on the CPU there) can take it."""
        return a._item._ary

else:

    @cuda.jit(device=True, inline=True)
    def as_array(a):
        """A kernel argument as the array the shared ``@njit`` functions take."""
        return a

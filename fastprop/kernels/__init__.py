"""NNGP and NTK kernels of a batch of inputs through depth (:func:`nngp`, :class:`KernelResult`)."""

from .nngp import KernelResult, nngp

__all__ = ["nngp", "KernelResult"]

"""NNGP and NTK kernels of a batch of inputs through depth (:func:`nngp`, :class:`KernelResult`) and
the empirical kernels of finite-width networks (:func:`simulate_kernels`, :class:`EmpiricalKernels`)."""

from .nngp import KernelResult, nngp
from .simulate import EmpiricalKernels, simulate_kernels

__all__ = ["nngp", "KernelResult", "simulate_kernels", "EmpiricalKernels"]

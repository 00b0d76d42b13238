"""Argument checks shared by the public functions (DESIGN §6)."""

from __future__ import annotations

import numbers

import numpy as np


def real_array(value, name, *, low=None, high=None, low_open=False):
    """``value`` as a float64 array; every element finite and within [low, high].

    Booleans are refused (``True`` is not a standard deviation), as are strings,
    complex numbers and ragged nests; integers too large for a float are out of range.
    """
    if isinstance(value, (str, bytes, bool, np.bool_)) or value is None:
        raise TypeError(f"{name} must be a real number or array of real numbers, got {type(value).__name__}")
    try:
        raw = np.asarray(value)
        if raw.dtype.kind in "bSUOVMm" and raw.dtype != object:
            raise TypeError(f"{name} must hold real numbers, got {raw.dtype} values")
        if raw.dtype.kind == "c":
            raise TypeError(f"{name} must be real, got complex values")
        arr = np.asarray(value, dtype=np.float64)
    except OverflowError:
        raise ValueError(f"{name} must be finite (a float64, below 1.8e308 in size)") from None
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(name):
            raise
        raise TypeError(f"{name} must be a real number or array of real numbers: {exc}") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    if low is not None:
        bad = arr <= low if low_open else arr < low
        if np.any(bad):
            op = ">" if low_open else "≥"
            raise ValueError(f"{name} must be {op} {low}{_range(high)}; got {arr[bad].flat[0]!r}")
    if high is not None and np.any(arr > high):
        raise ValueError(f"{name} must be ≤ {high}; got {arr[arr > high].flat[0]!r}")
    return arr


def _range(high):
    return f" and ≤ {high}" if high is not None else ""


def axis(value, name):
    """A non-empty 1-D axis of finite σ ≥ 0."""
    arr = real_array(value, name, low=0.0)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D axis (a sequence of σ values), got an array of shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return np.ascontiguousarray(arr)


def positive_int(value, name, *, low=1):
    """``value`` as an int ≥ ``low`` (NumPy integers accepted, bools refused)."""
    return integer(value, name, low=low)


def real_scalar(value, name, *, low=None, high=None, low_open=False):
    """``value`` as a float: one finite real number within [low, high] (not an array)."""
    arr = real_array(value, name, low=low, high=high, low_open=low_open)
    if arr.ndim != 0:
        raise ValueError(f"{name} must be a single number, got an array of shape {arr.shape}")
    return float(arr)


def integer(value, name, *, low=None, high=None):
    """``value`` as an int (Python or NumPy integer, not bool) within [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if low is not None and value < low:
        raise ValueError(f"{name} must be ≥ {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be ≤ {high}, got {value}")
    return value


def boolean(value, name):
    """``value`` if it is a bool, else a TypeError naming ``name``."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value

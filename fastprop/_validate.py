"""Argument checks shared by the public functions (DESIGN §6)."""

from __future__ import annotations

import numbers

import numpy as np


def real_array(value, name, *, low=None, high=None, low_open=False):
    """``value`` as a float64 array; every element finite and within [low, high]."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real number or array of real numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a real number or array of real numbers: {exc}") from None
    if np.iscomplexobj(np.asarray(value)):
        raise TypeError(f"{name} must be real, got complex values")
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
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be ≥ {low}, got {value}")
    return int(value)

"""Atomic result files: a temporary file in the target directory, then a rename."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary(path, suffix):
    """A new temporary file beside ``path`` with the permissions a plain ``open`` would give."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".fastprop-", suffix=suffix, dir=directory)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files
    return fd, tmp


def _write_atomically(path, suffix, write):
    """Call ``write(fh)`` on a temporary file beside ``path``, then rename it over
    ``path``: ``path`` is either untouched or complete, and no temporary file is left.

    Ctrl-C (or SIGTERM mapped to KeyboardInterrupt) during the write is re-raised as the
    KeyboardInterrupt itself, even where the writer's cleanup then fails because of it
    (``zipfile`` refuses to close an archive whose member was being written, a
    ValueError raised while handling the interrupt), so that callers see the interrupt."""
    fd, tmp = _temporary(path, suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        interrupt = _interruption(exc)
        if interrupt is not None and interrupt is not exc:
            raise interrupt from None
        raise


def _interruption(exc):
    """The KeyboardInterrupt ``exc`` is, or was raised while handling; None if there is none."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__context__
    return None


def atomic_write(path, payload: bytes):
    """Write ``payload`` to ``path`` so that ``path`` is either untouched or complete."""
    _write_atomically(path, ".tmp", lambda fh: fh.write(payload))


def is_netcdf(path) -> bool:
    """Whether ``path`` names a netCDF file (``.nc``); anything else is written as ``.npz``."""
    return os.fspath(path).lower().endswith((".nc", ".nc4"))


def _xarray(netcdf=True):
    try:
        import xarray as xr

        if netcdf:
            import netCDF4  # noqa: F401  (the engine xarray uses; it keeps int64 counts exact)
    except ImportError as exc:
        missing = exc.name or "xarray"
        msg = f"this needs the xarray extra ({missing} is missing): pip install 'fastprop[xarray]'"
        raise ImportError(msg) from None
    return xr


def dataset(info: dict, arrays: dict, dims: dict, coords=()):
    """An ``xarray.Dataset`` of ``arrays`` (names → dims from ``dims``) with ``info`` as JSON
    in the attribute ``fastprop`` (and its flat entries as readable attributes)."""
    xr = _xarray(netcdf=False)
    variables = {k: (dims[k], v) for k, v in arrays.items() if k not in coords}
    attrs = {"fastprop": json.dumps(info)}
    attrs.update({k: v if isinstance(v, (str, int, float)) else json.dumps(v) for k, v in info.items()})
    return xr.Dataset(variables, coords={k: (dims[k], arrays[k]) for k in coords}, attrs=attrs)


def save(path, info: dict, arrays: dict, dims: dict, coords=()):
    """Write ``arrays`` and ``info`` atomically: netCDF for ``.nc`` paths, else ``.npz``."""
    if not is_netcdf(path):
        return save_npz(path, info, arrays)
    ds = dataset(info, arrays, dims, coords)
    fd, tmp = _temporary(path, ".nc")
    os.close(fd)
    try:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


class FileFormatError(ValueError):
    """A file that is not a readable fastprop result of the expected kind and version."""


def load(path, kind: str, version: int = 1):
    """(info, arrays) of a file written by :func:`save` (netCDF or ``.npz``).

    Every way a file can be wrong — missing, unreadable, truncated, corrupt, of
    another program, another kind or a newer format version — ends in one
    :class:`FileFormatError` (a ``ValueError``) naming the file and what is wrong,
    except a missing file, which is a ``FileNotFoundError``.
    """
    name = os.fspath(path)
    if not os.path.exists(name):
        raise FileNotFoundError(f"no such file: {name!r}")
    if os.path.isdir(name):
        raise FileFormatError(f"{name!r} is a directory, not a fastprop {kind} file")
    try:
        info, arrays = (_load_netcdf if is_netcdf(name) else _load_npz)(name)
    except FileFormatError as exc:
        raise FileFormatError(f"{name!r} is not a fastprop {kind} file: {exc}") from None
    except ImportError:
        raise
    except Exception as exc:  # zip, pickle, JSON, HDF5 and OS errors of a damaged file are many classes
        raise FileFormatError(
            f"{name!r} is not a readable fastprop {kind} file ({type(exc).__name__}: {exc})"
        ) from None
    fmt = info.get("format") if isinstance(info, dict) else None
    prefix = f"fastprop.{kind}/"
    if not isinstance(fmt, str) or not fmt.startswith(prefix):
        raise FileFormatError(f"{name!r} is not a fastprop {kind} file (format {fmt!r})")
    try:
        file_version = int(fmt[len(prefix) :])
    except ValueError:
        raise FileFormatError(f"{name!r}: unknown format {fmt!r}") from None
    if file_version > version or file_version < 1:
        raise FileFormatError(
            f"{name!r} has format version {file_version}; this fastprop reads {kind} files up to version {version}"
        )
    return info, arrays


def _load_netcdf(path):
    xr = _xarray()
    with xr.open_dataset(path, engine="netcdf4", mask_and_scale=False) as ds:
        if "fastprop" not in ds.attrs:
            raise FileFormatError("no fastprop record in its attributes")
        info = json.loads(ds.attrs["fastprop"])
        arrays = {k: ds[k].values for k in (*ds.data_vars, *ds.coords)}
    return info, arrays


def _load_npz(path):
    with np.load(path, allow_pickle=False) as data:
        if "__info__" not in data:
            raise FileFormatError("no __info__ record")
        info = json.loads(str(data["__info__"]))
        arrays = {k: data[k] for k in data.files if k != "__info__"}
    return info, arrays


def check_arrays(path, arrays: dict, shapes: dict, optional=()):
    """Each array of ``shapes`` (name → tuple of ints, or None for any length on that
    axis; a str is a named length that must agree across arrays) present, of that
    shape and of a real or integer dtype; returns the named lengths."""
    sizes: dict = {}
    unexpected = sorted(set(arrays) - set(shapes))
    if unexpected:
        raise FileFormatError(f"{os.fspath(path)!r}: unexpected arrays {unexpected}")
    for key, shape in shapes.items():
        if key not in arrays:
            if key in optional:
                continue
            raise FileFormatError(f"{os.fspath(path)!r}: the array {key!r} is missing")
        a = arrays[key]
        if a.dtype.kind not in "fiu" or a.ndim != len(shape):
            raise FileFormatError(f"{os.fspath(path)!r}: {key!r} has dtype {a.dtype} and {a.ndim} dimensions")
        for axis, want in enumerate(shape):
            have = a.shape[axis]
            if isinstance(want, str):
                want = sizes.setdefault(want, have)
            if want is not None and have != want:
                raise FileFormatError(
                    f"{os.fspath(path)!r}: {key!r} has shape {a.shape}, expected {want} on axis {axis}"
                )
    return sizes


def save_npz(path, info: dict, arrays: dict):
    """Arrays plus a JSON ``__info__`` record in one ``.npz``, written atomically
    (streamed to a temporary file beside ``path``, then renamed)."""
    _write_atomically(path, ".npz", lambda fh: np.savez(fh, __info__=np.array(json.dumps(info)), **arrays))
    return os.fspath(path)

"""Atomic result files: a temporary file in the target directory, then a rename."""

from __future__ import annotations

import io
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


def atomic_write(path, payload: bytes):
    """Write ``payload`` to ``path`` so that ``path`` is either untouched or complete."""
    fd, tmp = _temporary(path, ".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


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


def load(path, kind: str):
    """(info, arrays) of a file written by :func:`save` (netCDF or ``.npz``)."""
    if not is_netcdf(path):
        return load_npz(path, kind)
    xr = _xarray()
    with xr.open_dataset(path, engine="netcdf4", mask_and_scale=False) as ds:
        if "fastprop" not in ds.attrs:
            raise ValueError(f"{os.fspath(path)!r} is not a fastprop {kind} file")
        info = json.loads(ds.attrs["fastprop"])
        arrays = {k: ds[k].values for k in (*ds.data_vars, *ds.coords)}
    _check_kind(path, info, kind)
    return info, arrays


def _check_kind(path, info, kind):
    if not str(info.get("format", "")).startswith(f"fastprop.{kind}/"):
        raise ValueError(f"{os.fspath(path)!r} is not a fastprop {kind} file (format {info.get('format')!r})")


def save_npz(path, info: dict, arrays: dict):
    """Arrays plus a JSON ``__info__`` record in one ``.npz``, written atomically."""
    buf = io.BytesIO()
    np.savez(buf, __info__=np.array(json.dumps(info)), **arrays)
    atomic_write(path, buf.getvalue())
    return os.fspath(path)


def load_npz(path, kind: str):
    """(info, arrays) of a file written by :func:`save_npz` for ``kind``."""
    with np.load(path, allow_pickle=False) as data:
        if "__info__" not in data:
            raise ValueError(f"{os.fspath(path)!r} is not a fastprop {kind} file")
        info = json.loads(str(data["__info__"]))
        arrays = {k: data[k] for k in data.files if k != "__info__"}
    _check_kind(path, info, kind)
    return info, arrays

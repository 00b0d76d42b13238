"""Atomic result files: a temporary file in the target directory, then a rename."""

from __future__ import annotations

import io
import json
import os
import tempfile

import numpy as np


def atomic_write(path, payload: bytes):
    """Write ``payload`` to ``path`` so that ``path`` is either untouched or complete."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: directory {directory!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".fastprop-", suffix=".tmp", dir=directory)
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
    if not str(info.get("format", "")).startswith(f"fastprop.{kind}/"):
        raise ValueError(f"{os.fspath(path)!r} is not a fastprop {kind} file (format {info.get('format')!r})")
    return info, arrays

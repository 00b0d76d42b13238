"""The on-disk kernel cache: compiled kernels per (engine, activation, target).

Numba cannot cache a closure over another compiled function on disk (numba
issue #6264: the captured dispatcher's identity is part of the cache key), and
fastprop's kernels are specialised per activation. So every engine writes its
kernels as *templates*: ordinary modules of module-level ``@njit`` functions
whose activation-specific names (φ as ``eval3``, the quadrature's panel rule,
constants such as ``ODD``, and the template functions they build on) are bound
at the top by :func:`bound`. :func:`specialise` copies a template's source, byte
for byte, into a module file of the cache directory named by a hash of

* fastprop's version and the source of the whole package (so an upgrade or an
  edit of any formula the kernels call never reuses an old kernel),
* the template's source, and
* the identity of the bindings (the activation's
  :attr:`~fastprop.Activation.fingerprint`, the target, the modules built on),

imports it with those bindings, and Numba caches the compiled functions next
to it (``cache=True``). A new process that asks for the same kernels finds the
module and Numba's cache entries, and compiles nothing: the cached machine
code already contains φ and every function it calls.

Location and switches
---------------------
``FASTPROP_CACHE_DIR`` (default ``$XDG_CACHE_HOME/fastprop``, i.e.
``~/.cache/fastprop``) holds the cache; ``FASTPROP_CACHE_DIR=off`` turns it off
(kernels are then compiled in every process). ``fastprop info`` shows the
directory and its size, ``fastprop cache clear`` empties it.

Registered activations are cached like built-ins when their fingerprint is the
same in every process, i.e. when everything their functions use can be hashed
by value (source text, numbers, arrays, other functions); one that captures an
arbitrary object (known only by its identity in one process) is compiled in
every process instead, in a private temporary directory. Its φ, φ', φ'' are
compiled in every process anyway when it is registered (the derivative check).

Concurrency: a module file is created under a temporary name and linked into
place only if absent, so processes that fill an empty cache at once write the
same bytes once and never see a partial file; threads of one process import a
module once (a lock). Numba writes its own cache files atomically; the kernel
directory is per Python, Numba version and CPU, so processes sharing it (one
machine, or one NFS home on identical machines) ask Numba for the same entries.
A directory that cannot take a file (read-only, full, another user's) makes the
process compile privately, with one warning. The CUDA kernels are compiled in
each process (they take the compiled CPU functions as device functions).
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import threading
import warnings
from pathlib import Path

import numba
import numpy as np

from .._version import __version__

__all__ = ["specialise", "bound", "cache_dir", "clear", "report", "data_path"]

PREFIX = "fastprop_kernels"
"""Name prefix of the generated modules in ``sys.modules`` (and of their files)."""

TAG = "CACHEDIR.TAG"
"""Marks a directory as fastprop's kernel cache (the cachedir.org convention): backup
tools skip it, and :func:`clear` removes only a directory that carries it."""

_PENDING: dict[str, dict] = {}
_LOADED: dict[str, object] = {}
_PRIVATE: list[Path] = []
_LOCK = threading.RLock()
_UNWRITABLE: set[str] = set()


def cache_dir() -> Path | None:
    """The kernel cache directory (``FASTPROP_CACHE_DIR``), or None when turned off."""
    env = os.environ.get("FASTPROP_CACHE_DIR")
    if env is not None and env.strip().lower() in ("off", "0", "none", "false", "no"):
        return None
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastprop"


def _host() -> str:
    """What compiled code depends on besides the source: Python, Numba and the CPU
    (machine code for one CPU must not run on another sharing the directory, e.g. NFS)."""
    from llvmlite import binding

    cpu = numba.config.CPU_NAME or binding.get_host_cpu_name()
    return f"py{sys.version_info[0]}{sys.version_info[1]}-numba{numba.__version__}-{cpu}"


def _kernel_dir(root: Path) -> Path:
    return root / "kernels" / f"{__version__}-{_host()}"


def _source_digest() -> str:
    """sha256 of fastprop's version, NumPy's (it computes constants frozen into the
    kernels, e.g. the Gauss–Legendre nodes) and every source file of the package, read
    when this module is imported: the code this process runs, even if the files are
    edited later."""
    h = hashlib.sha256(f"{__version__} numpy {np.__version__}".encode())
    root = Path(__file__).resolve().parent.parent
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


_PACKAGE_DIGEST = _source_digest()


def _private_dir() -> Path:
    """A per-process directory for kernels that must not be shared (removed at exit)."""
    if not _PRIVATE:
        path = Path(tempfile.mkdtemp(prefix="fastprop-kernels-"))
        atexit.register(shutil.rmtree, path, True)
        _PRIVATE.append(path)
    return _PRIVATE[0]


def _writable_dir(shared: bool) -> tuple[Path, bool]:
    """(directory for a generated module, whether Numba may cache it on disk)."""
    root = cache_dir() if shared else None
    if root is not None and str(root) not in _UNWRITABLE:
        path = _kernel_dir(root)
        try:
            path.mkdir(parents=True, exist_ok=True)
            tag = root / "kernels" / TAG
            if not tag.exists():
                tag.write_text("Signature: 8a477f597d28d172789f06886806bc55\n# fastprop's compiled kernels\n")
            if os.access(path, os.W_OK):
                return path, True
        except OSError:
            pass
        _unwritable(root)
    return _private_dir(), False


def _unwritable(root):
    """Warn once that ``root`` cannot hold the cache; this process compiles privately."""
    if str(root) not in _UNWRITABLE:
        _UNWRITABLE.add(str(root))
        warnings.warn(
            f"fastprop: the kernel cache {str(root)!r} is not writable; kernels are compiled in this process "
            "(set FASTPROP_CACHE_DIR to a writable directory)",
            RuntimeWarning,
            stacklevel=4,
        )


def _write_once(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` unless it exists; never expose a partial file."""
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # readable like any file written here, not mkstemp's 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        try:
            os.link(tmp, path)  # atomic, and fails if another process got there first
        except FileExistsError:
            pass
        except OSError:  # no hard links here: rename (same bytes, so a race is harmless)
            if not path.exists():
                os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def specialise(template: str, label: str, identity: str, bindings: dict, *, shared: bool = True):
    """The module compiled from ``template`` with ``bindings``, cached on disk.

    ``template`` is the dotted name of a template module of fastprop, ``label`` a
    readable file name stem (e.g. ``"meanfield-tanh-moments"``), and ``identity``
    a string that determines every binding (an activation's fingerprint, a target,
    the names of the modules bound in). ``shared=False`` (an activation whose
    fingerprint is only valid in this process) compiles in a private directory
    without Numba's disk cache. The template gets ``CACHE`` (whether Numba may
    cache) in addition to ``bindings``.
    """
    source = _template_source(template)
    h = hashlib.sha256()
    for part in (_PACKAGE_DIGEST, template, source, identity, repr(sorted(_plain(bindings).items()))):
        h.update(part.encode())
        h.update(b"\0")
    digest = h.hexdigest()[:20]
    stem = f"{_safe(label)[:48]}_{digest}"
    name = f"{PREFIX}_{stem}"
    with _LOCK:  # one thread imports a module; the others find it loaded
        module = _LOADED.get(name)
        if module is None:
            header = f"# generated by fastprop {__version__} from {template} for {identity!r}; do not edit\n"
            module = _LOADED[name] = _load(name, stem, header + source, bindings, shared)
    return module


def data_path(label: str, identity: str, suffix: str) -> Path | None:
    """A file beside the kernels for data computed by fastprop's code (e.g. the
    mean-field tables), named from ``label`` and a hash of the package and
    ``identity`` like :func:`specialise`; None when the cache is off or not writable."""
    if cache_dir() is None:
        return None
    h = hashlib.sha256()
    for part in (_PACKAGE_DIGEST, identity):
        h.update(part.encode())
        h.update(b"\0")
    with _LOCK:
        folder, cache = _writable_dir(True)
    return folder / f"{_safe(label)[:48]}_{h.hexdigest()[:20]}{suffix}" if cache else None


def _load(name, stem, text, bindings, shared):
    """Write (once) and import the generated module; a directory that cannot take it
    (read-only, full, another user's files) falls back to this process's own."""
    folder, cache = _writable_dir(shared)
    try:
        _write_once(folder / f"{stem}.py", text)
        return _import(name, folder / f"{stem}.py", dict(bindings, CACHE=cache))
    except OSError:
        if not cache:
            raise
        _unwritable(cache_dir())
        path = _private_dir() / f"{stem}.py"
        _write_once(path, text)
        return _import(name, path, dict(bindings, CACHE=False))


def _import(name, path, bindings):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    _PENDING[name] = bindings
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        _PENDING.pop(name, None)
    return module


def bound(module_name: str, *names: str):
    """The values bound to ``names`` for the generated module ``module_name``
    (called at the top of a template: ``ev, ODD = bound(__name__, "ev", "ODD")``)."""
    values = _PENDING.get(module_name)
    if values is None:
        raise ImportError(
            f"{module_name} is a kernel template: it is compiled per activation by "
            "fastprop.run.compile.specialise (e.g. through fastprop.meanfield.kernels), not imported"
        )
    missing = [n for n in names if n not in values]
    if missing:
        raise ImportError(f"{module_name}: no binding for {', '.join(missing)}")
    out = tuple(values[n] for n in names)
    return out[0] if len(out) == 1 else out


def report() -> dict:
    """What this process's kernels did: ``{"loaded": n, "compiled": n, "modules": n}``
    — compiled functions loaded from Numba's disk cache, and compiled here."""
    from numba.core.registry import CPUDispatcher

    loaded = compiled = 0
    for module in _LOADED.values():
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.py_func.__module__ == module.__name__:
                hits = sum(value.stats.cache_hits.values())
                loaded += hits
                compiled += len(value.signatures) - hits
    return {"loaded": loaded, "compiled": compiled, "modules": len(_LOADED)}


def size() -> tuple[int, int]:
    """(files, bytes) in the kernel cache directory (0, 0 when off or empty)."""
    root = cache_dir()
    if root is None or not (root / "kernels").exists():
        return 0, 0
    files = [p for p in (root / "kernels").rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def clear() -> int:
    """Remove every cached kernel; returns the number of files removed. Safe while
    other processes run: they recompile what they miss. Only a directory marked as
    fastprop's cache (:data:`TAG`) is removed."""
    root = cache_dir()
    if root is None or not (root / "kernels" / TAG).exists():
        return 0
    n = sum(1 for p in (root / "kernels").rglob("*") if p.is_file())
    shutil.rmtree(root / "kernels", ignore_errors=True)
    return n


def _template_source(template: str) -> str:
    spec = importlib.util.find_spec(template)
    if spec is None or spec.origin is None:
        raise ImportError(f"no kernel template {template!r}")
    return Path(spec.origin).read_text(encoding="utf-8")


def _plain(bindings: dict) -> dict:
    """The bindings that are plain values (numbers, strings, tuples of them): they are
    hashed by value; functions and modules are covered by ``identity``."""
    plain = (bool, int, float, str, type(None))
    return {
        k: v
        for k, v in bindings.items()
        if isinstance(v, plain) or (isinstance(v, tuple) and all(isinstance(x, plain) for x in v))
    }


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in label)

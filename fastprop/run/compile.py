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
same bytes once and never see a partial file; Numba writes its own cache files
atomically (a lost race costs a compilation, never a wrong kernel). The CUDA
kernels are compiled in each process (they take the compiled CPU functions as
device functions).
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.util
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from .._version import __version__

__all__ = ["specialise", "bound", "cache_dir", "clear", "report"]

PREFIX = "fastprop_kernels"
"""Name prefix of the generated modules in ``sys.modules`` (and of their files)."""

_PENDING: dict[str, dict] = {}
_LOADED: dict[str, object] = {}
_PACKAGE_DIGEST: list[str] = []
_PRIVATE: list[Path] = []


def cache_dir() -> Path | None:
    """The kernel cache directory (``FASTPROP_CACHE_DIR``), or None when turned off."""
    env = os.environ.get("FASTPROP_CACHE_DIR")
    if env is not None and env.strip().lower() in ("off", "0", "none", "false", "no"):
        return None
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fastprop"


def _kernel_dir(root: Path) -> Path:
    return root / "kernels" / f"{__version__}-py{sys.version_info[0]}{sys.version_info[1]}"


def _package_digest() -> str:
    """sha256 of fastprop's version and of every source file of the package."""
    if not _PACKAGE_DIGEST:
        h = hashlib.sha256(__version__.encode())
        root = Path(__file__).resolve().parent.parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
        _PACKAGE_DIGEST.append(h.hexdigest())
    return _PACKAGE_DIGEST[0]


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
    if root is not None:
        path = _kernel_dir(root)
        try:
            path.mkdir(parents=True, exist_ok=True)
            if os.access(path, os.W_OK):
                return path, True
        except OSError:
            pass
        warnings.warn(
            f"fastprop: the kernel cache {str(root)!r} is not writable; kernels are compiled in every process "
            "(set FASTPROP_CACHE_DIR to a writable directory)",
            RuntimeWarning,
            stacklevel=3,
        )
        os.environ["FASTPROP_CACHE_DIR"] = "off"  # warn once
    return _private_dir(), False


def _write_once(path: Path, text: str) -> None:
    """Create ``path`` with ``text`` unless it exists; never expose a partial file."""
    if path.exists():
        return
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
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
    for part in (_package_digest(), template, source, identity, repr(sorted(_plain(bindings).items()))):
        h.update(part.encode())
        h.update(b"\0")
    digest = h.hexdigest()[:20]
    name = f"{PREFIX}_{_safe(label)}_{digest}"
    module = _LOADED.get(name)
    if module is not None:
        return module
    folder, cache = _writable_dir(shared)
    path = folder / f"{_safe(label)}_{digest}.py"
    header = f"# generated by fastprop {__version__} from {template} for {identity}; do not edit\n"
    _write_once(path, header + source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    _PENDING[name] = dict(bindings, CACHE=cache)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        _PENDING.pop(name, None)
    _LOADED[name] = module
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
    other processes run: they recompile what they miss."""
    root = cache_dir()
    if root is None or not (root / "kernels").exists():
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

"""The on-disk kernel cache (fastprop.run.compile): a new process compiles nothing
it compiled before, concurrent processes fill one cache safely, and a changed
activation never reuses an old kernel. Asserted through the cache's own records
(Numba's per-dispatcher cache hits), never through wall time."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastprop as fp
from fastprop.run import compile

BUILTIN_JOB = textwrap.dedent(
    """
    import json, numpy as np, fastprop as fp
    from numba.core import event
    from fastprop.run import compile
    with event.install_recorder("numba:compile") as numba_compiles:
        g = fp.meanfield_grid("relu", [0.5, 1.5, 3.0], [0.0, 0.4], target="cpu")
        r = fp.simulate_chains(4, 5, 300, activation="relu", sigma_b=0.2, target="cpu", keep_norms=True)
    print(json.dumps({"report": compile.report(), "q": g.q_star.tolist(), "c": g.c_star.tolist(),
                      "norms": r.norms.tolist(), "numba_compiles": len(numba_compiles.buffer)}))
    """
)


def _python(code, cache, extra_env=None, cwd=None):
    env = dict(os.environ, FASTPROP_CACHE_DIR=str(cache), NUMBA_NUM_THREADS="1", **(extra_env or {}))
    env.pop("NUMBA_CACHE_DIR", None)
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _result(proc):
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """An empty cache filled by two processes at once, then a third process."""
    cache = tmp_path_factory.mktemp("kernels")
    first = [_python(BUILTIN_JOB, cache) for _ in range(2)]  # started together, both on an empty cache
    both = [_result(p) for p in first]
    third = _result(_python(BUILTIN_JOB, cache))
    return cache, both, third


def test_two_processes_filling_an_empty_cache_both_succeed_and_agree(filled):
    cache, (a, b), _ = filled
    for key in ("q", "c", "norms"):
        assert a[key] == b[key]
    assert a["report"]["compiled"] > 0 and a["report"]["modules"] > 0
    generated = list((cache / "kernels").rglob("*.py"))
    assert generated and not [p for p in (cache / "kernels").rglob(".tmp-*")]  # no partial files left


def test_a_new_process_compiles_nothing_for_a_builtin_activation(filled):
    _, (a, _), third = filled
    assert third["report"]["compiled"] == 0, third["report"]
    assert third["numba_compiles"] == 0  # Numba's own events: nothing at all was compiled
    # the grid driver and its pending-panel scan, the chain batch and statistics kernels
    assert third["report"]["loaded"] == 4
    for key in ("q", "c", "norms"):
        assert third[key] == a[key]


USER_MODULE = """
import math

import helpers


def phi(h):
    return helpers.SCALE * math.tanh(h)


def dphi(h):
    return helpers.SCALE * (1.0 - math.tanh(h) ** 2)


def d2phi(h):
    t = math.tanh(h)
    return -2.0 * helpers.SCALE * t * (1.0 - t * t)
"""

USER_JOB = textwrap.dedent(
    """
    import json, fastprop as fp, user_act
    from fastprop.run import compile
    act = fp.register_activation("user_act", user_act.phi, user_act.dphi, user_act.d2phi)
    r = fp.simulate_chains(4, 3, 200, activation="user_act", sigma_w=1.2, layers=[1, 3], target="cpu", keep_norms=True)
    print(json.dumps({"report": compile.report(), "norms": r.norms.tolist(), "portable": act.portable}))
    """
)


def test_a_changed_registered_activation_does_not_reuse_the_old_kernel(tmp_path):
    cache = tmp_path / "cache"
    code = tmp_path / "code"
    code.mkdir()
    (code / "user_act.py").write_text(USER_MODULE)
    path = code / "helpers.py"  # φ reads helpers.SCALE: a module attribute, hashed by value
    path.write_text("SCALE = 1.0\n")
    one = _result(_python(USER_JOB, cache, cwd=code))
    again = _result(_python(USER_JOB, cache, cwd=code))
    assert one["portable"] and one["report"]["compiled"] > 0
    assert again["report"]["compiled"] == 0 and again["norms"] == one["norms"]  # registered ones are cached too
    path.write_text("SCALE = 2.0\n")  # the same functions, a different φ
    changed = _result(_python(USER_JOB, cache, cwd=code))
    assert changed["report"]["compiled"] > 0
    shift = np.asarray(changed["norms"])[0] - np.asarray(one["norms"])[0]
    np.testing.assert_allclose(shift, np.log(2.0), atol=1e-12)  # φ doubled: log‖x_1‖ up by ln 2, same streams


def test_an_activation_known_only_by_identity_compiles_privately(tmp_path, monkeypatch):
    """φ calling C's tanh through ctypes: the function pointer is known only by its
    identity in this process, so its kernels are compiled here and never shared."""
    import ctypes
    import ctypes.util
    import math

    name = ctypes.util.find_library("m")
    if name is None:
        pytest.skip("no C maths library to call")
    c_tanh = ctypes.CDLL(name).tanh
    c_tanh.restype, c_tanh.argtypes = ctypes.c_double, [ctypes.c_double]
    monkeypatch.setenv("FASTPROP_CACHE_DIR", str(tmp_path))
    act = fp.register_activation(
        "ctypes_tanh",
        lambda h: c_tanh(h),
        lambda h: 1.0 - c_tanh(h) ** 2,
        lambda h: -2.0 * c_tanh(h) * (1.0 - c_tanh(h) ** 2),
        overwrite=True,
    )
    assert not act.portable and fp.activation("tanh").portable
    kw = dict(sigma_w=1.3, sigma_b=0.2, method="dense", target="cpu", keep_norms=True)
    r = fp.simulate_chains(3, 2, 100, activation=act, **kw)
    ref = fp.simulate_chains(3, 2, 100, activation="tanh", **kw)
    np.testing.assert_allclose(r.norms, ref.norms, rtol=1e-13)
    assert not any("ctypes_tanh" in p.name for p in tmp_path.rglob("*"))
    assert math.isfinite(r.norms[0, 0])


def test_cache_location_switch_and_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTPROP_CACHE_DIR", "off")
    assert compile.cache_dir() is None and compile.clear() == 0
    monkeypatch.setenv("FASTPROP_CACHE_DIR", str(tmp_path / "c"))
    assert compile.cache_dir() == tmp_path / "c"
    fp.length_map([1.0], 1.0, 0.0, activation="linear")
    # kernels built earlier in this process are not rebuilt; a fresh template module is
    compile.specialise("fastprop.chains.statistics", "test-statistics", "test", {"PARALLEL": False})
    files, size = compile.size()
    assert files >= 1 and size > 0
    assert compile.clear() == files and compile.size() == (0, 0)
    monkeypatch.delenv("FASTPROP_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile.cache_dir() == tmp_path / "xdg" / "fastprop"


def test_cli_shows_and_clears_the_cache(tmp_path):
    env = dict(os.environ, FASTPROP_CACHE_DIR=str(tmp_path))
    (tmp_path / "kernels").mkdir()
    (tmp_path / "kernels" / "k.py").write_text("# a cached kernel\n")
    cmd = [sys.executable, "-m", "fastprop.cli"]
    clear = subprocess.run([*cmd, "cache", "clear"], env=env, capture_output=True, text=True)
    assert "removed 0 files" in clear.stdout and (tmp_path / "kernels" / "k.py").exists()  # not marked as ours
    (tmp_path / "kernels" / compile.TAG).write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    info = subprocess.run([*cmd, "info"], env=env, capture_output=True, text=True)
    assert info.returncode == 0 and f"kernel cache: {tmp_path} (2 files" in info.stdout
    show = subprocess.run([*cmd, "cache"], env=env, capture_output=True, text=True)
    assert show.returncode == 0 and str(tmp_path) in show.stdout
    clear = subprocess.run([*cmd, "cache", "clear"], env=env, capture_output=True, text=True)
    assert clear.returncode == 0 and "removed 2 files" in clear.stdout and not (tmp_path / "kernels").exists()
    off = subprocess.run([*cmd, "cache", "clear"], env=dict(env, FASTPROP_CACHE_DIR="off"), capture_output=True)
    assert off.returncode == 0 and b"kernel cache: off" in off.stdout


def test_a_file_edited_after_import_is_hashed_as_loaded(tmp_path):
    """The fingerprint is that of the code that runs: a process that imported the old
    file, then saw it edited, must not leave its kernels under the new file's key."""
    cache = tmp_path / "cache"
    code = tmp_path / "code"
    code.mkdir()
    src = code / "edited.py"
    src.write_text(USER_MODULE.replace("helpers.SCALE", "1.0").replace("import helpers", ""))
    job = textwrap.dedent(
        """
        import json, pathlib, fastprop as fp, edited
        path = pathlib.Path(edited.__file__)
        if EDIT:
            path.write_text(path.read_text().replace("1.0 *", "2.0 *"))
        act = fp.register_activation("edited", edited.phi, edited.dphi, edited.d2phi)
        r = fp.simulate_chains(4, 1, 50, activation="edited", target="cpu", keep_norms=True)
        print(json.dumps({"fingerprint": act.fingerprint, "norms": r.norms.tolist()}))
        """
    )
    stale = _result(_python("EDIT = True\n" + job, cache, cwd=code))  # runs φ = 1·tanh, file says 2·tanh
    fresh = _result(_python("EDIT = False\n" + job, cache, cwd=code))  # runs φ = 2·tanh
    assert fresh["fingerprint"] != stale["fingerprint"]
    shift = np.asarray(fresh["norms"])[-1] - np.asarray(stale["norms"])[-1]
    np.testing.assert_allclose(shift, np.log(2.0), atol=1e-12)


def test_dispatcher_options_are_part_of_the_fingerprint():
    import math

    from numba import njit

    def phi(h):
        return math.tanh(h)

    def dphi(h):
        return 1.0 - math.tanh(h) ** 2

    def d2phi(h):
        return -2.0 * math.tanh(h) * (1.0 - math.tanh(h) ** 2)

    plain = fp.register_activation("opt_plain", njit(phi), dphi, d2phi, overwrite=True)
    fast = fp.register_activation("opt_fast", njit(fastmath=True)(phi), dphi, d2phi, overwrite=True)
    assert plain.fingerprint != fast.fingerprint and plain.portable and fast.portable


def test_threads_asking_for_one_kernel_module_get_the_same_one(tmp_path, monkeypatch):
    import threading
    import uuid

    monkeypatch.setenv("FASTPROP_CACHE_DIR", str(tmp_path))
    identity = f"race-{uuid.uuid4().hex}"
    barrier = threading.Barrier(8)
    got = []

    def ask():
        barrier.wait()
        got.append(compile.specialise("fastprop.chains.statistics", "race", identity, {"PARALLEL": False}))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 8 and all(m is got[0] for m in got)


def test_an_unusable_cache_directory_falls_back_with_one_warning(monkeypatch):
    import uuid

    monkeypatch.setenv("FASTPROP_CACHE_DIR", "/dev/null/fastprop")  # below a file: can never be created
    identity = f"fallback-{uuid.uuid4().hex}"
    with pytest.warns(RuntimeWarning, match="not writable"):
        module = compile.specialise("fastprop.chains.statistics", "fallback", identity, {"PARALLEL": False})
    assert callable(module.update) and os.environ["FASTPROP_CACHE_DIR"] == "/dev/null/fastprop"
    assert not str(module.__file__).startswith("/dev/null")


def test_closures_in_cached_kernels_are_named_by_content():
    # Numba names compiled code module.qualname + a per-process counter: two cached
    # kernels from different processes could embed different closures under one name,
    # and a process loading both would link the wrong one (seen: hard_tanh's moments
    # with tanh's panel rule). Closures and lambdas are compiled under content names.
    from fastprop.quadrature import make_next_break

    a, b, a2 = make_next_break((1.0,), ()), make_next_break((2.0,), ()), make_next_break((1.0,), ())
    assert a.py_func.__qualname__ != b.py_func.__qualname__
    assert a.py_func.__qualname__ == a2.py_func.__qualname__  # same content, same name: harmless
    names = set()
    for scale in (2.0, 3.0):
        act = fp.register_activation(
            f"closure_{scale}", lambda h, s=scale: s * h, lambda h, s=scale: s, lambda h: 0.0, overwrite=True
        )
        names.add(act.eval3.py_func.__qualname__)
    assert len(names) == 2 and all("<" not in n for n in names)

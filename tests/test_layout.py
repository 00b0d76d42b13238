"""The layout stays as built: no import cycles (lazy imports count), no function
longer than 150 lines, and engines never import the Dask or checkpoint code."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "fastprop"
MAX_LINES = 150
ENGINES = ("fastprop.meanfield", "fastprop.chains")
EXECUTION_ONLY = ("fastprop.run.distributed", "fastprop.run.checkpoint", "dask", "distributed")


def _modules():
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = path
    return mods


MODULES = _modules()


def _imports(name, path, top_level_only=False):
    """Every module ``name`` imports, anywhere in its source (lazy imports included),
    or only at module level (what importing it runs)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body if top_level_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            for a in node.names:
                child = f"{target}.{a.name}"
                out.add(child if child in MODULES else target)
    return out


GRAPH = {
    name: {m for m in _imports(name, path) if m in MODULES and m != name
           and not (path.name == "__init__.py" and m.startswith(name + "."))}  # a package re-exporting its children
    for name, path in MODULES.items()
}  # fmt: skip


def test_the_layout_has_engines_shared_maths_and_an_execution_layer():
    for name in ("fastprop.activations", "fastprop.quadrature", "fastprop.meanfield", "fastprop.chains",
                 "fastprop.run", "fastprop.run.compile", "fastprop.run.schedule"):  # fmt: skip
        assert name in MODULES, name


def _cycles(graph):
    """Every import cycle of ``graph`` (module -> modules it imports) found by a depth-first walk."""
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == "open":
                cycles.append(" -> ".join(stack[stack.index(dep) :] + [dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_no_import_cycles():
    assert not _cycles(GRAPH)


def test_the_cycle_check_sees_lazy_imports(tmp_path):
    lazy = tmp_path / "lazy.py"
    lazy.write_text("def f():\n    from fastprop.run import distributed\n    return distributed\n")
    assert "fastprop.run.distributed" in _imports("fastprop.lazy", lazy)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_function_is_longer_than_150_lines(name):
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(MODULES[name].read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert not long, long


def _loaded_by_importing(name):
    """Every module that importing ``name`` runs: module-level imports, transitively."""
    seen, todo = set(), [name]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        if mod in MODULES:
            todo.extend(_imports(mod, MODULES[mod], top_level_only=True))
    return seen


def test_engines_never_import_dask_or_checkpoint_code():
    """Not in their source (lazily or not), and not through any module they import;
    Dask is reached only through run.schedule's function bodies, when a client is given."""
    for name, path in MODULES.items():
        if name.startswith(ENGINES):
            direct = {m for m in _imports(name, path) if m.startswith(EXECUTION_ONLY)}
            assert not direct, f"{name} imports {direct}"
            through = {m for m in _loaded_by_importing(name) if m.startswith(EXECUTION_ONLY)}
            assert not through, f"importing {name} imports {through}"


def test_a_local_run_never_loads_dask():
    import subprocess
    import sys

    code = (
        "import sys, fastprop as fp; fp.meanfield_grid('relu', [1.0], [0.0]); "
        "fp.simulate_chains(2, 2, 10, activation='relu'); "
        "print([m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_kernel_templates_are_not_importable_on_their_own():
    import importlib

    for template in ("fastprop.meanfield.moments", "fastprop.chains.samplers"):
        with pytest.raises(ImportError, match="kernel template"):
            importlib.import_module(template)

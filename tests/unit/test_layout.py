"""The package's plan: wings by stage, imports one way down, no circle.

Reads every module's imports with `ast` (function-level and TYPE_CHECKING imports
included, since a lazy import up a level is still a dependency up a level) and
holds them to the order in docs/development.md.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE_DIR = pathlib.Path(__file__).resolve().parents[2] / "components" / "embedding_guard"

# Lower levels never import higher ones. Modules at the package's root that are
# not listed here are faces.
LEVELS = {
    "errors": 0,
    "heavy_imports": 0,
    "spec": 0,
    "verdict": 1,
    "read": 2,
    "bounds": 3,
    "reports": 4,
    "run": 5,
    "component": 6,
    "cli": 6,
    "api": 6,
    "executor": 6,
}
FACE_LEVEL = 6
# About 600 lines at most per module (the house style).
MAX_MODULE_LINES = 600


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, pathlib.Path]:
    return {_module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py"))}


def _imports(path: pathlib.Path, known: set[str]) -> set[str]:
    """The package modules `path` imports, resolved to module names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from a.b import c` imports a.b.c when c is a module, else a.b.
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            if not name.startswith("embedding_guard"):
                continue
            while name not in known and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in known and name != "embedding_guard":
                found.add(name)
    return found


def _level(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return FACE_LEVEL
    return LEVELS.get(parts[1], FACE_LEVEL)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {imported for imported in _imports(path, known) if imported != name}
        for name, path in modules.items()
    }


def test_every_wing_and_root_module_has_a_level():
    roots = {path.stem for path in PACKAGE_DIR.glob("*.py")} - {"__init__"}
    wings = {path.name for path in PACKAGE_DIR.iterdir() if (path / "__init__.py").exists()}
    assert (roots | wings) - set(LEVELS) == set()


def test_no_import_runs_back_up():
    upward = [
        f"{module} (level {_level(module)}) imports {imported} (level {_level(imported)})"
        for module, imported_set in _graph().items()
        for imported in sorted(imported_set)
        if _level(imported) > _level(module)
    ]
    assert upward == []


def test_the_verdict_wing_imports_no_other_wing():
    outside = {
        (module, imported)
        for module, imported_set in _graph().items()
        if module.startswith("embedding_guard.verdict")
        for imported in imported_set
        if not imported.startswith("embedding_guard.verdict") and _level(imported) > 0
    }
    assert outside == set()


def test_no_circle_of_imports():
    graph = _graph()
    state: dict[str, int] = {}
    circles: list[list[str]] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for imported in sorted(graph[module]):
            if state.get(imported) == 1:
                circles.append(path[path.index(imported) :] + [imported])
            elif imported not in state:
                visit(imported, [*path, imported])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert circles == []


@pytest.mark.parametrize(
    "old_path, name",
    [
        ("embedding_guard.component", "EmbeddingIndexValidator"),
        ("embedding_guard.executor", "Executor"),
        ("embedding_guard", "EmbeddingIndexValidator"),
        ("embedding_guard", "ValidatorOptions"),
        ("embedding_guard", "check"),
        ("embedding_guard", "embedding_input_dims"),
    ],
)
def test_public_and_compiled_import_paths_still_import(old_path, name):
    # Compiled pipelines store the executor's class path, and MLMD the
    # component's type name: both must outlive the move into wings.
    import importlib

    assert getattr(importlib.import_module(old_path), name) is not None


def test_the_component_type_name_that_mlmd_records_is_unchanged():
    from embedding_guard.component import EmbeddingIndexValidator

    assert EmbeddingIndexValidator.get_class_type() == (
        "embedding_guard.component.EmbeddingIndexValidator"
    )


def test_no_module_is_over_the_line_budget():
    long = {
        name: lines
        for name, path in _modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}

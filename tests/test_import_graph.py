"""The package's import graph: no cycles (imports under TYPE_CHECKING and inside functions count too), and
services that know nothing of the app: they take a connection and explicit collaborators."""

import ast
import graphlib
from pathlib import Path

import voyagent

PACKAGE = Path(voyagent.__file__).parent


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every voyagent module ``name`` imports (``from pkg import module`` names the module itself)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


GRAPH = {name: _imports(name, path, _modules()) for name, path in _modules().items()}


def test_the_graph_is_read():
    assert "voyagent.keys" in GRAPH["voyagent.edge"]
    assert "voyagent.services.identity" in GRAPH["voyagent.handlers.auth"]


def test_no_module_imports_itself_back():
    graphlib.TopologicalSorter(GRAPH).prepare()  # raises CycleError naming the cycle


def test_services_know_nothing_of_the_app():
    modules = _modules()
    for name, imported in GRAPH.items():
        if name.startswith("voyagent.services."):
            assert not imported & {"voyagent.keys", "voyagent.edge", "voyagent.db"}, name
            assert not any(m.startswith(("voyagent.handlers", "voyagent.middleware", "voyagent.agent",
                                         "voyagent.demo")) for m in imported), name
            source = modules[name].read_text(encoding="utf-8")
            assert "web.Application" not in source and "web.Request" not in source, name

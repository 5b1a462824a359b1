"""DESIGN.md §2 dependency rules, checked on the source's import statements (AST)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tabstream"
CONCRETE_ADAPTERS = (
    "tabstream.adapters.bus.embedded",
    "tabstream.adapters.bus.kafka",
    "tabstream.adapters.artifacts.local",
    "tabstream.adapters.artifacts.pyarrow_fs",
    "tabstream.adapters.artifacts.s3_store",
    "tabstream.adapters.artifacts.factory",
    "tabstream.adapters.models.pipeline_server",
)
IO_LIBRARIES = ("aiokafka", "fastapi", "starlette", "httpx", "uvicorn", "sqlite3", "requests")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


def _ours(names: set[str]) -> set[str]:
    return {n for n in names if n == "tabstream" or n.startswith("tabstream.")}


def _starts(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_schemas_import_nothing_of_ours_and_no_io() -> None:
    for path in _modules("schemas"):
        names = _imports(path)
        bad = {n for n in _ours(names) if not n.startswith("tabstream.schemas")}
        assert not bad, f"{path.name} imports {bad}"
        assert not [n for n in names if _starts(n, IO_LIBRARIES)], path.name


def test_pipeline_imports_only_schemas_and_no_io() -> None:
    for path in _modules("pipeline"):
        names = _imports(path)
        bad = {
            n for n in _ours(names) if not _starts(n, ("tabstream.schemas", "tabstream.pipeline"))
        }
        assert not bad, f"pipeline/{path.relative_to(SRC / 'pipeline')} imports {bad}"
        assert not [n for n in names if _starts(n, IO_LIBRARIES)], path.name


@pytest.mark.parametrize("service", ["producer_api", "consumer", "projection"])
def test_services_do_not_import_each_other_or_concrete_adapters(service: str) -> None:
    others = tuple(
        f"tabstream.{s}" for s in ("producer_api", "consumer", "projection") if s != service
    )
    for path in _modules(service):
        names = _ours(_imports(path))
        assert not [n for n in names if _starts(n, others)], f"{service}/{path.name}: {names}"
        assert not [n for n in names if _starts(n, CONCRETE_ADAPTERS)], f"{service}/{path.name}"


def test_only_the_composition_roots_pick_concrete_adapters() -> None:
    for path in SRC.rglob("*.py"):
        if path.is_relative_to(SRC / "bootstrap") or path.is_relative_to(SRC / "adapters"):
            continue
        names = _ours(_imports(path))
        assert not [n for n in names if _starts(n, CONCRETE_ADAPTERS)], path.relative_to(SRC)


SERVICES = ("producer_api", "consumer", "projection")
# What each package of the house may import of ours (beyond itself): downward only.
MAY_IMPORT = {
    "schemas": (),
    "common": ("schemas",),
    "settings": (),
    "data": (),
    "pipeline": ("schemas",),
    "adapters": ("schemas", "common", "settings", "pipeline"),
    "producer_api": ("schemas", "common", "adapters"),
    "consumer": ("schemas", "common", "settings", "adapters", "pipeline"),
    "projection": ("schemas", "common", "adapters"),
    "client": ("schemas", "settings"),
    "bootstrap": ("schemas", "common", "settings", "adapters", "pipeline", *SERVICES),
    "cli": ("bootstrap", "client", "common", "settings", "schemas"),
}


def _package(path: Path) -> str:
    return path.relative_to(SRC).parts[0].removesuffix(".py")


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_packages_import_only_downward(package: str) -> None:
    allowed = tuple(f"tabstream.{p}" for p in (package, *MAY_IMPORT[package]))
    paths = [SRC / f"{package}.py"] if (SRC / f"{package}.py").exists() else _modules(package)
    for path in paths:
        bad = {n for n in _ours(_imports(path)) if not _starts(n, allowed) and n != "tabstream"}
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


def test_every_module_belongs_to_a_known_package() -> None:
    top = {_package(p) for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC}
    assert top <= set(MAY_IMPORT), sorted(top - set(MAY_IMPORT))


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(name: str, known: set[str]) -> str | None:
    """The most specific module of ours that an imported dotted name refers to."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in SRC.rglob("*.py")}
    known = set(paths)
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets.update(f"{node.module}.{a.name}" for a in node.names)
        resolved = {_resolve(t, known) for t in targets if t.startswith("tabstream")}
        graph[name] = {r for r in resolved if r and r != name and not name.startswith(r + ".")}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (a package's own ``__init__`` excluded), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_the_import_graph_has_no_circles() -> None:
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_no_two_modules_share_a_name() -> None:
    """Except by convention: each port package's ``port.py``, the API's routers (named after
    their resource: ``routers/datasets.py`` beside ``schemas/datasets.py``) and the
    composition roots (named after their entry point: ``bootstrap/worker.py``)."""
    conventional = ("__init__.py", "__main__.py", "port.py")
    by_convention = (SRC / "producer_api" / "routers", SRC / "bootstrap")
    names = [
        p.name
        for p in SRC.rglob("*.py")
        if p.name not in conventional and not any(p.is_relative_to(d) for d in by_convention)
    ]
    shared = sorted({n for n in names if names.count(n) > 1})
    assert not shared, shared


def test_modules_stay_short_or_say_why() -> None:
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        long_ok = "Longer than 400 lines because" in (ast.get_docstring(ast.parse(text)) or "")
        assert len(text.splitlines()) <= 400 or long_ok, path.relative_to(SRC)


def test_the_bus_adapters_have_no_import_cycle() -> None:
    """``adapters/bus`` on its own (TYPE_CHECKING imports included): the backends' group
    members, followers and helpers never import their log module back."""
    bus = ("tabstream.adapters.bus",)
    graph = {
        name: {t for t in targets if _starts(t, bus)}
        for name, targets in _graph().items()
        if _starts(name, bus)
    }
    assert len(graph) > 10, sorted(graph)  # the backends' modules are all there
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


ENV_READS = frozenset({"environ", "environb", "getenv", "getenvb"})


def test_the_pipeline_reads_no_environment() -> None:
    """The pipeline is told its configuration (``pipeline.options``, built from ``settings`` by
    the composition roots): no ``os.environ`` / ``os.getenv`` anywhere under ``pipeline/``."""
    for path in _modules("pipeline"):
        tree = ast.parse(path.read_text(), filename=str(path))
        reads = [
            node.lineno
            for node in ast.walk(tree)
            if (isinstance(node, ast.Attribute) and node.attr in ENV_READS)
            or (
                isinstance(node, ast.ImportFrom)
                and node.module == "os"
                and any(alias.name in ENV_READS for alias in node.names)
            )
        ]
        assert not reads, f"pipeline/{path.relative_to(SRC / 'pipeline')} lines {reads}"

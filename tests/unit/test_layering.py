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
    "tabstream.adapters.artifacts.factory",
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


def test_only_the_composition_root_and_cli_pick_concrete_adapters() -> None:
    for path in SRC.rglob("*.py"):
        if path.is_relative_to(SRC / "bootstrap") or path.is_relative_to(SRC / "adapters"):
            continue
        names = _ours(_imports(path))
        assert not [n for n in names if _starts(n, CONCRETE_ADAPTERS)], path.relative_to(SRC)

"""Imports go one way: from the entry points (app, cli) through the API and the domain down to the adapters.

The table is the architecture of docs/architecture.md as data; a package missing from it, or an import it does
not allow, fails with the offending module and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "kboss"
CORE = {"", "errors", "ids", "settings", "redaction", "crypto", "logs", "messages"}
ADAPTERS = {"db", "ssh", "kube"}
DOMAIN = {
    "common",
    "audit",
    "accounts",
    "customers",
    "billing",
    "pricing",
    "sites",
    "operations",
    "catalog",
    "instances",
    "clusters",
}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "db": {"core"},
    "ssh": {"core"},
    "kube": {"core"},
    "wire": {"core"},
    "agent": {"core", "ssh", "kube", "wire"},
    "common": {"core", "db"},
    "audit": {"core", "db", "common"},
    "accounts": {"core", "db", "common"},
    "customers": {"core", "db", "common", "accounts"},
    "billing": {"core", "db", "common", "customers", "pricing"},
    "pricing": {"core", "db", "kube", "common"},
    "sites": {"core", "db", "kube", "wire", "common", "audit"},
    "operations": {"core", "db", "common", "audit"},
    "catalog": {"core", "db", "kube", "common", "audit", "customers", "pricing", "sites", "operations"},
    "instances": {"core", "db", "kube", "common", "audit", "customers", "billing", "pricing", "sites", "catalog"},
    "clusters": {
        "core",
        *ADAPTERS,
        "wire",
        "common",
        "audit",
        "pricing",
        "sites",
        "operations",
        "catalog",
        "instances",
    },
    "api": {"core", *ADAPTERS, "wire", *DOMAIN},
    "web": {"core"},
    "app": {"core", *ADAPTERS, "wire", *DOMAIN, "api", "agent", "web"},
    "cli": {"core", *ADAPTERS, "wire", *DOMAIN, "api", "app"},
}


def layer_of(module: str) -> str:
    """`kboss.catalog.devices` → `catalog`; the core modules (`kboss.errors`, ...) → `core`."""
    first = module.removeprefix("kboss").removeprefix(".").split(".")[0]
    return "core" if first in CORE else first


def module_name(path: Path) -> str:
    parts = ["kboss", *path.relative_to(SRC).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return [(line, name) for line, name in found if name == "kboss" or name.startswith("kboss.")]


def sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def test_every_package_has_a_layer() -> None:
    unknown = {layer_of(module_name(p)) for p in sources()} - ALLOWED.keys()
    assert not unknown, f"packages missing from the layer table: {sorted(unknown)}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_the_layers(path: Path) -> None:
    own = layer_of(module_name(path))
    allowed = ALLOWED.get(own, set()) | {own}
    wrong = [
        f"{path.name}:{line} imports {name}"
        for line, name in imported(ast.parse(path.read_text()))
        if layer_of(name) not in allowed
    ]
    assert not wrong, f"{own} may import only {sorted(allowed)}: {wrong}"

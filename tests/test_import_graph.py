"""The house's import rules: no cycles between modules or folders, services stay protocol-only.

Read from the source with ``ast`` (module-level and function-level imports alike), so a
cycle hidden inside a function still counts: it is the same coupling, only later.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "simdaemon"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports() -> dict[str, set[str]]:
    """simdaemon module -> the simdaemon modules it imports (``from simdaemon import x`` too)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module not in modules:
                    continue
                subs = {f"{node.module}.{a.name}" for a in node.names}
                # `from simdaemon import status` imports the module simdaemon.status
                found.update(subs & modules.keys() or {node.module})
        graph[name] = found - {name, "simdaemon"}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def folder(module: str) -> str:
    """A sub-package's modules as one node (``simdaemon.services``); a top-level module alone.

    Collapsing each folder finds a cycle that runs through it, such as services.move ->
    injection -> services.peer: the folder as a whole then depends on itself through a
    module outside it.
    """
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else module


def test_no_import_cycle_between_modules() -> None:
    assert cycles(imports()) == []


def test_no_import_cycle_between_folders() -> None:
    graph: dict[str, set[str]] = {}
    for module, targets in imports().items():
        graph.setdefault(folder(module), set()).update(folder(t) for t in targets)
    for node, targets in graph.items():
        targets.discard(node)
    assert cycles(graph) == []


def test_services_import_neither_the_injector_nor_the_network_internals() -> None:
    # The C-MOVE service's own association to the destination: its AE, the C-STORE exchange
    # on its socket, the hand-encoded pending responses. Never the acceptor or the listener.
    allowed_net = {"simdaemon.net.outgoing", "simdaemon.net.direct", "simdaemon.net.commands"}
    for module, targets in imports().items():
        if module.startswith("simdaemon.services"):
            assert "simdaemon.injection" not in targets, module
            assert "simdaemon.server" not in targets, module
            assert {t for t in targets if t.startswith("simdaemon.net")} <= allowed_net, module


def test_the_checker_sees_a_cycle() -> None:
    """So the tests above cannot pass by reading nothing."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert len(imports()) > 20
    assert "simdaemon.net.acceptor" in imports()["simdaemon.server"]
    # imports inside functions count too (the services' entry points load them so)
    assert "simdaemon.services.move" in imports()["simdaemon.services"]

"""The shape of the code, read with `ast` alone: no import cycle among the modules of bot/ and
storage/ (counting every import: at the top, inside functions, under `if TYPE_CHECKING:`), and a
top level of bot/ small enough to read at a glance (the rest lives in folders by concept)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import REPO

PACKAGES = ("bot", "storage")
# bot/'s own modules beside its folders: app, cli, config, errors, ids, clock, ...
MAX_TOP_LEVEL_MODULES = 12


def module_names() -> dict[str, Path]:
    """Every module under the packages, by dotted name (a package by its __init__.py)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imported(module: str, path: Path, known: set[str]) -> Iterator[str]:
    """The modules of ours that `module` imports, wherever in it the import statement is."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _ours(alias.name, known)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node.module, node.level)
            for alias in node.names:
                # `from pkg import name`: the module pkg.name when there is one, else pkg.
                candidate = f"{base}.{alias.name}"
                yield from _ours(candidate if candidate in known else base, known)


def _absolute(module: str, is_package: bool, name: str | None, level: int) -> str:
    """The absolute name a (possibly relative) `from ... import` starts from."""
    if level == 0:
        assert name is not None
        return name
    package = module.split(".") if is_package else module.split(".")[:-1]
    anchor = package[: len(package) - (level - 1)]
    return ".".join([*anchor, name] if name else anchor)


def _ours(name: str, known: set[str]) -> Iterator[str]:
    """`name` if it is one of our modules; for `import a.b.attr`, the longest module in it."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            yield candidate
            return
        parts.pop()


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    known = set(modules)
    return {
        module: {target for target in imported(module, path, known) if target != module}
        for module, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle through each group of modules that import each other (Tarjan's strongly
    connected components, then a path around each), as module -> ... -> the same module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_loop_through(graph, group) for group in groups]


def _loop_through(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return [*paths[node], start]
                if target not in paths:
                    paths[target] = [*paths[node], target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no loop through {sorted(group)}")


def test_the_graph_sees_every_kind_of_import() -> None:
    """The reader itself: function-level and TYPE_CHECKING imports count, and `from pkg import
    name` means the module pkg.name when there is one."""
    graph = import_graph()
    assert "bot.app" in graph and "storage.db" in graph
    assert "bot.slack.gateway" in graph["bot.slack.socket_mode"]
    assert "storage.migrate" in graph["bot.cli"], "imported inside cmd_serve"
    assert "storage.db" in graph["bot.cli"], "imported under TYPE_CHECKING (and in functions)"
    known = set(graph)
    assert list(_ours("bot.slack.pacing.ChannelPacer", known)) == ["bot.slack.pacing"]
    assert _absolute("bot.slack.listeners", True, "home", 1) == "bot.slack.listeners.home"
    assert _absolute("bot.slack.gateway", False, None, 2) == "bot"


def test_a_cycle_is_found_and_named() -> None:
    """The finder itself, on a made-up graph: the two-module loop that bot.home.service and
    bot.slack.blocks.home made before d55c4ed, and a longer one; a chain is no cycle."""
    graph = {
        "bot.home.service": {"bot.slack.blocks.home", "storage.db"},
        "bot.slack.blocks.home": {"bot.home.service"},
        "storage.db": set(),
        "a": {"b"},
        "b": {"c"},
        "c": {"a", "storage.db"},
    }
    assert cycles(graph) == [
        ["a", "b", "c", "a"],
        ["bot.home.service", "bot.slack.blocks.home", "bot.home.service"],
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(loop) for loop in found)


def test_bot_has_few_modules_at_its_top_level() -> None:
    top = sorted(p.name for p in (REPO / "bot").glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL_MODULES, f"{len(top)} modules at bot/'s top level: {top}"

"""The floors of the house point down, checked from the imports themselves.

Every ``import`` statement counts, those inside functions and ``TYPE_CHECKING`` blocks too:
a lazy import is still a dependency, only a later one. The floors (docs/architecture.md):

- the foundation, ``labmeter``'s own modules and its packages ``inventory``, ``bookings`` and
  ``archive``, imports no role;
- the roles ``agent``, ``collector`` and ``api`` import the foundation and not each other;
- ``evidence`` closes and verifies periods with the report and the collector's rollup code;
- ``server`` assembles the API process (the read API and the evidence routes);
- ``cli`` and ``simulators`` sit on top; ``simulators`` never imports the CLI.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "labmeter"
ROLES = ("agent", "collector", "api")
# Folders that were top-level packages once: read as labmeter's subpackages, so that the same
# check judges a tree of either layout (and fails on one whose floors point up).
TOP_LEVEL = ("agent", "collector", "api", "simulators")
FLOORS: dict[str, set[str]] = {
    # floor: the floors it may import (besides itself and the foundation)
    "foundation": set(),
    "agent": set(),
    "collector": set(),
    "api": set(),
    "evidence": {"api", "collector"},
    "server": {"api", "evidence"},
    "simulators": {"agent", "collector", "api", "evidence", "server"},
    "cli": {"agent", "collector", "api", "evidence", "server", "simulators"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return canonical(".".join(parts))


def canonical(module: str) -> str:
    """``agent.queue`` (a top-level package) -> ``labmeter.agent.queue``."""
    return f"labmeter.{module}" if module.split(".")[0] in TOP_LEVEL else module


def floor_of(module: str) -> str:
    """``labmeter.api.plan`` -> ``api``; ``labmeter.schema``, ``labmeter.inventory.load`` ->
    ``foundation``."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in FLOORS:
        return parts[1]
    return "foundation"


def imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module ``path`` imports (line, name), however deep in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, canonical(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = canonical(node.module or "")
            yield node.lineno, module
            for alias in node.names:  # ``from labmeter.api import analysis`` is a module
                yield node.lineno, f"{module}.{alias.name}"


def modules() -> dict[str, Path]:
    folders = [PACKAGE, *(ROOT / t for t in TOP_LEVEL if (ROOT / t).is_dir())]
    return {module_name(p): p for folder in folders for p in folder.rglob("*.py")}


def graph(found: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the labmeter modules it imports (names that are not modules are dropped)."""
    return {
        name: {m for _, m in imports(path) if m in found and m != name}
        for name, path in found.items()
    }


def upward(found: dict[str, Path]) -> list[str]:
    out = []
    for name, path in sorted(found.items()):
        mine = floor_of(name)
        allowed = FLOORS[mine] | {mine, "foundation"}
        for line, imported in imports(path):
            if imported.split(".")[0] != "labmeter" or imported not in found:
                continue
            theirs = floor_of(imported)
            if theirs not in allowed:
                rel = path.relative_to(ROOT)
                out.append(f"{rel}:{line}: {mine} imports {imported} ({theirs})")
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(edges.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return out


def test_every_floor_imports_only_the_floors_below() -> None:
    assert upward(modules()) == []


def test_no_import_cycle_between_modules() -> None:
    """A package's ``__init__`` re-exporting its own modules is not a cycle of floors."""
    edges = graph(modules())
    for name in edges:
        edges[name] = {m for m in edges[name] if not (m + ".").startswith(name + ".")}
    assert cycles(edges) == []


def test_the_roles_do_not_import_each_other() -> None:
    for role in ROLES:
        assert not FLOORS[role] & set(ROLES)


def test_the_check_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    """The check can fail: a lazy import in a function, a TYPE_CHECKING import and a
    package-relative one are all seen, and an upward one is reported."""
    here = {m for _, m in imports(Path(__file__))}
    assert {"ast", "pathlib", "collections.abc.Iterator"} <= here
    fake = PACKAGE / "agent" / "_layers_probe.py"
    fake.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from labmeter.api.plan import Filters\n"
        "def f() -> None:\n    from ..collector import service\n"
    )
    try:
        found = upward(modules())
    finally:
        fake.unlink()
    assert any("imports labmeter.api.plan (api)" in f for f in found), found
    assert any("imports labmeter.collector.service (collector)" in f for f in found), found
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Distributions of the server extra (pyproject.toml) and the top-level modules they bring.
SERVER_ONLY = (
    "httpx", "fastapi", "starlette", "uvicorn", "pydantic", "yaml", "holidays", "openpyxl",
    "fpdf", "cryptography", "icalendar", "recurring_ical_events", "influxdb_client",
    "prometheus_client", "mqtt5",
)  # fmt: skip


def test_the_cli_and_the_agent_start_without_the_server_extra() -> None:
    """A lab PC installs ``labmeter[agent]`` only: the CLI and the agent's modules must import
    nothing of the server extra when they start (a role's command imports it when it runs)."""
    import subprocess
    import sys

    probe = (
        "import sys, labmeter.cli.main, labmeter.agent.runner, labmeter.agent.check; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SERVER_ONLY!r}))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert found == "[]"


def test_the_agent_command_starts_without_typer_rich_or_pydantic(tmp_path: Path) -> None:
    """``labmeter agent`` is what a lab PC runs for months: its entry parses its options
    itself (``labmeter/cli/entry.py``), so the agent holds none of the CLI's libraries; a bad
    config still exits 2 saying why."""
    import subprocess
    import sys

    probe = (
        "import sys, labmeter.cli.entry as e, labmeter.agent.runner; "
        "assert e._agent_args(['-c', 'a.toml', '-v']) is not None; "
        "assert e._agent_args(['check']) is None and e._agent_args(['--help']) is None; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{(*SERVER_ONLY, 'typer', 'click', 'rich')!r}))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    assert found == "[]"
    bad = subprocess.run(
        [sys.executable, "-c", "from labmeter.cli.entry import main; main()", "agent", "-c",
         str(tmp_path / "missing.toml")],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert bad.returncode == 2 and "config error" in bad.stderr and "missing.toml" in bad.stderr

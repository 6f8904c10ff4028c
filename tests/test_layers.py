"""The API reads InfluxDB through its own modules: it never imports the collector, so that a
read-only API host needs none of the ingest code and a change there cannot move a figure."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_the_api_imports_nothing_from_the_collector() -> None:
    found = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "labmeter" / "api").rglob("*.py")
        if any(i.startswith("labmeter.collector") for i in _imports(path))
    )
    assert found == []


def test_the_check_sees_an_import() -> None:
    here = _imports(Path(__file__))
    assert {"ast", "pathlib"} <= here

"""What Grafana does to a dashboard's InfluxQL before sending it, done here without Grafana.

Grafana's InfluxDB datasource replaces ``$timeFilter`` with ``time >= <from>ms and time <=
<to>ms``, the interval macros with the panel's interval, and each ``/^$var$/`` with the
variable's values as a regex alternation (``(a|b)``, values regex-escaped).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "dashboards" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCE_UID = "labmeter-influxdb"
# Grafana's own variables, which need no definition in the dashboard.
BUILTIN = {"timeFilter", "__interval", "__interval_ms", "interval", "__range_s", "__range"}
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


@dataclass(frozen=True)
class Target:
    dashboard: str
    panel: dict[str, Any]
    query: str

    @property
    def name(self) -> str:
        return f"{self.dashboard}: {self.panel['title']}"


def targets(board: dict[str, Any]) -> Iterator[Target]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield Target(board["uid"], panel, target["query"])


def used_variables(query: str) -> set[str]:
    return {a or b for a, b in VARIABLE.findall(query)}


def interval_s(panel: dict[str, Any]) -> int:
    """The panel's minimum interval; the datasource's timeInterval (60s) when it has none."""
    text = panel.get("interval", "1m")
    number, unit = int(text[:-1]), text[-1]
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def interpolate(
    query: str, values: dict[str, list[str]], start_ms: int, end_ms: int, every_s: int = 60
) -> str:
    """The query as Grafana sends it for this window, interval and variable values."""
    fixed = {
        "timeFilter": f"time >= {start_ms}ms and time <= {end_ms}ms",
        "__interval": f"{every_s}s",
        "interval": f"{every_s}s",
        "__interval_ms": str(every_s * 1000),
        "__range_s": str(round((end_ms - start_ms) / 1000)),
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in fixed:
            return fixed[name]
        chosen = values[name]
        if len(chosen) == 1 and not match.string[: match.start()].endswith("/^"):
            return chosen[0]  # a textbox or single value outside a regex
        return "(" + "|".join(re.escape(v) for v in chosen) + ")"

    return VARIABLE.sub(substitute, query)

"""Equipment from a spreadsheet: technicians keep their asset lists in Excel or Calc.

Rows become inventory entries merged into the YAML (``labmeter inventory import``); every
problem names the CSV's row, and amounts are read in Italian or English notation
(``money.py``), never guessed.
"""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from labmeter.inventory.model import InventoryError
from labmeter.inventory.money import parse_cost

CSV_COLUMNS = (
    "id", "site", "lab", "kind", "description", "fund", "call", "cup", "cost", "purchased",
    "collaudo", "final_payment", "pnrr",
)  # fmt: skip


def _csv_date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    for fmt in ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            pass
    raise ValueError(f"{text!r} is not a date (YYYY-MM-DD or DD/MM/YYYY)")


def _csv_cost(text: str) -> float | None:
    return parse_cost(text) if text.strip() else None


def equipment_from_csv(path: Path) -> list[dict[str, Any]]:
    """Rows of a spreadsheet export (``,`` or ``;``) as inventory entries; errors name the row."""
    text = path.read_text(encoding="utf-8-sig")
    dialect = csv.Sniffer().sniff(text.splitlines()[0] if text else ",", delimiters=",;")
    reader = csv.DictReader(text.splitlines(), dialect=dialect)
    unknown = set(reader.fieldnames or ()) - set(CSV_COLUMNS)
    problems = []
    if unknown:
        problems.append(f"{path}:1: unknown columns {sorted(unknown)} (known: {CSV_COLUMNS})")
    out: list[dict[str, Any]] = []
    for row in reader:
        line = reader.line_num
        entry: dict[str, Any] = {}
        try:
            for key in CSV_COLUMNS:
                value = (row.get(key) or "").strip()
                if not value:
                    continue
                if key in ("purchased", "collaudo", "final_payment"):
                    entry[key] = _csv_date(value)
                elif key == "cost":
                    entry[key] = _csv_cost(value)
                elif key == "pnrr":
                    entry[key] = value.lower() in ("1", "true", "yes", "si", "sì", "x")
                else:
                    entry[key] = value
        except ValueError as exc:
            problems.append(f"{path}:{line}: {exc}")
            continue
        out.append(entry)
    if problems:
        raise InventoryError(problems)
    return out


# Kept from the YAML when a row replaces an entry: a spreadsheet lists assets as they are now,
# their former identities (moves, renames) are written in the YAML only.
YAML_ONLY = ("history", "since")


def merge_equipment(doc_text: str, entries: list[dict[str, Any]]) -> str:
    """The inventory text with ``entries`` added or replacing those with the same site/lab/id
    (keeping the replaced entry's history)."""
    doc: dict[str, Any] = yaml.safe_load(doc_text) if doc_text.strip() else {"version": 1}
    equipment: list[dict[str, Any]] = list(doc.get("equipment") or [])
    index = {(e.get("site"), e.get("lab"), e.get("id")): n for n, e in enumerate(equipment)}
    for entry in entries:
        key = (entry.get("site"), entry.get("lab"), entry.get("id"))
        if key in index:
            old = equipment[index[key]]
            equipment[index[key]] = entry | {k: old[k] for k in YAML_ONLY if k in old}
        else:
            index[key] = len(equipment)
            equipment.append(entry)
    doc["equipment"] = equipment
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)

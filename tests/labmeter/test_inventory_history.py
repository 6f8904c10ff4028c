"""Assets that move and are renamed: their identities over time, and the checks on them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from labmeter.cli.main import app
from labmeter.inventory import InventoryError, parse

ROME = ZoneInfo("Europe/Rome")
HEAD = """version: 1
timezone: Europe/Rome
sites: [{id: s}]
labs:
  - {id: lab-cad, site: s, hours: {mon-fri: "08:00-18:00"}}
  - {id: lab-fab, site: s, hours: {mon-fri: "08:00-18:00"}}
equipment:
"""


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=ROME).timestamp() * 1000)


def _problems(equipment: str) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        parse(HEAD + equipment, "inv.yaml")
    return exc.value.problems


def test_a_moved_and_renamed_asset_keeps_one_id_and_its_identities_by_date() -> None:
    inv = parse(
        HEAD
        + """  - id: pc-07
    site: s
    lab: lab-fab
    kind: pc
    history:
      - {lab: lab-cad, until: 2026-03-15}
  - id: cnc-mill-01
    site: s
    lab: lab-fab
    kind: cnc
    history:
      - {device: cnc-01, until: 2026-02-01}
  - {id: pc-01, site: s, lab: lab-cad, kind: pc}
""",
        "inv.yaml",
    )
    assert inv.warnings == []
    assert set(inv.equipment) == {
        ("s", "lab-fab", "pc-07"), ("s", "lab-fab", "cnc-mill-01"), ("s", "lab-cad", "pc-01")
    }  # fmt: skip
    moved = inv.equipment[("s", "lab-fab", "pc-07")]
    assert [i.key for i in moved.identities] == [
        ("s", "lab-cad", "pc-07"),
        ("s", "lab-fab", "pc-07"),
    ]
    # The old identity until local midnight starting 15 March, the new one from then.
    move = _ms("2026-03-15T00:00")
    old = inv.tenures[("s", "lab-cad", "pc-07")]
    assert [(t.asset, t.start_ms, t.end_ms) for t in old] == [(moved.key, None, move)]
    assert [(t.start_ms, t.end_ms) for t in inv.tenures[moved.key]] == [(move, None)]
    for key in (("s", "lab-cad", "pc-07"), moved.key):
        assert inv.owner(key, move - 1) is moved and inv.owner(key, move) is moved
    assert inv.owner(("s", "lab-fab", "cnc-01"), _ms("2025-06-01T00:00")).id == "cnc-mill-01"
    assert inv.owner(("s", "lab-cad", "pc-99"), move) is None
    assert inv.edges(0, 2**62) == [_ms("2026-02-01T00:00"), move]
    assert inv.held(("s", "lab-cad", "pc-07"), move - 1)
    assert not inv.held(("s", "lab-cad", "pc-07"), move)  # still pc-07's, but flagged


def test_an_identity_reused_by_another_asset_changes_owner_on_its_date() -> None:
    inv = parse(
        HEAD
        + """  - id: pc-07
    site: s
    lab: lab-fab
    kind: pc
    history: [{lab: lab-cad, until: 2026-03-15}]
  - id: pc-08
    site: s
    lab: lab-cad
    kind: pc
    history: [{device: pc-07, since: 2026-03-15, until: 2026-04-01}]
""",
        "inv.yaml",
    )
    key = ("s", "lab-cad", "pc-07")
    assert inv.owner(key, _ms("2026-03-14T23:59")).id == "pc-07"
    assert inv.owner(key, _ms("2026-03-15T00:00")).id == "pc-08"
    assert inv.owner(key, _ms("2026-05-01T00:00")).id == "pc-08"  # after every period: the last
    assert inv.edges(0, 2**62) == [_ms("2026-03-15T00:00"), _ms("2026-04-01T00:00")]


def test_history_problems_each_with_file_and_line() -> None:
    problems = _problems(
        """  - id: pc-07
    site: s
    lab: lab-fab
    kind: pc
    history:
      - {lab: lab-cad, until: 2026-03-15}
      - {lab: lab-nope, until: 2026-03-01}
  - id: pc-08
    site: s
    lab: lab-cad
    kind: pc
    history:
      - {device: pc-07, since: 2026-03-10, until: 2026-04-01}
  - id: pc-09
    site: s
    lab: lab-cad
    kind: pc
    since: 2026-01-10
    history:
      - {device: pc-x, until: 2026-02-01}
      - {lab: lab-fab}
"""
    )
    # An unknown lab, dates out of order, a missing 'until', an overlap within one asset and
    # two assets claiming lab-cad/pc-07 at once: each with its line.
    assert problems == [
        "inv.yaml:14: equipment[0].history[1].lab: s/lab-nope is not among labs",
        "inv.yaml:14: equipment[0]: lab-nope/pc-07 ends (2026-03-01) on or before it begins "
        "(2026-03-15)",
        "inv.yaml:28: equipment[2].history[1]: missing 'until'",
        "inv.yaml:25: equipment[2]: lab-cad/pc-09 from 2026-01-10 overlaps lab-cad/pc-x until "
        "2026-02-01 (line 27): history is oldest first, one identity at a time",
        "inv.yaml:20: s/lab-cad/pc-07 is claimed by asset 'pc-08' and by asset 'pc-07' "
        "(line 13) over the same period: give each a 'since' or 'until' that tells them apart",
    ]


def test_a_gap_between_two_identities_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(
        HEAD
        + """  - id: pc-07
    site: s
    lab: lab-fab
    kind: pc
    since: 2026-04-01
    history:
      - {lab: lab-cad, until: 2026-03-15}
"""
    )
    result = CliRunner().invoke(app, ["inventory", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert (
        f"{path}:12: warning: equipment[0]: no identity from 2026-03-15 to 2026-04-01 "
        "(between lab-cad/pc-07 and lab-fab/pc-07)" in result.output
    )
    inv = parse(path.read_text(), str(path))
    gap = _ms("2026-03-20T12:00")
    assert inv.owner(("s", "lab-cad", "pc-07"), gap).id == "pc-07"  # data in the gap: still its


def test_an_inventory_without_history_is_read_as_before() -> None:
    inv = parse(HEAD + "  - {id: pc-01, site: s, lab: lab-cad, kind: pc}\n", "inv.yaml")
    eq = inv.equipment[("s", "lab-cad", "pc-01")]
    assert (eq.history, eq.since) == ((), None)
    assert [(t.start_ms, t.end_ms) for t in inv.tenures[eq.key]] == [(None, None)]


def test_a_spreadsheet_import_keeps_an_entrys_history(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(
        HEAD
        + """  - id: pc-07
    site: s
    lab: lab-fab
    kind: pc
    history: [{lab: lab-cad, until: 2026-03-15}]
"""
    )
    sheet = tmp_path / "equipment.csv"
    sheet.write_text("id;site;lab;kind;cost\npc-07;s;lab-fab;pc;1.200,00\n")
    result = CliRunner().invoke(app, ["inventory", "import", str(sheet), "--into", str(inv)])
    assert result.exit_code == 0, result.output
    eq = parse(inv.read_text(), str(inv)).equipment[("s", "lab-fab", "pc-07")]
    assert eq.cost == 1200
    assert [(i.lab, str(i.until)) for i in eq.history] == [("lab-cad", "2026-03-15")]

"""The inventory: holidays, opening hours across DST, errors with file and line, CSV import."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labmeter.cli import app
from labmeter.inventory import InventoryError, easter, italian_holidays, load, parse

EXAMPLE = Path(__file__).parents[2] / "deploy" / "inventory.example.yaml"


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_easter_and_holidays() -> None:
    assert [easter(y) for y in (2024, 2025, 2026, 2027)] == [
        date(2024, 3, 31), date(2025, 4, 20), date(2026, 4, 5), date(2027, 3, 28),
    ]  # fmt: skip
    days = italian_holidays(2026, patron=(6, 24))
    assert date(2026, 4, 6) in days  # Pasquetta
    assert date(2026, 6, 24) in days  # San Giovanni, Firenze
    assert date(2026, 10, 4) in days  # San Francesco, national again from 2026
    assert date(2025, 10, 4) not in italian_holidays(2025)
    assert len(italian_holidays(2026)) == 13


def test_example_inventory_matches_the_simulated_lab() -> None:
    inv = load(EXAMPLE)
    devices = {k[2] for k in inv.equipment}
    assert {f"pc-{i:02d}" for i in range(1, 8)} <= devices
    assert {"cnc-01", "printer3d-02", "laser-03"} <= devices
    assert inv.equipment[("its-prime", "lab-fab", "cnc-01")].pnrr


def test_available_hours_follow_wall_clock_across_dst_and_skip_holidays() -> None:
    inv = load(EXAMPLE)
    # lab-fab: Mon-Fri 08:00-19:00. Week of 23 March 2026: DST starts Sunday 29 March.
    week = inv.available_ms("its-prime", "lab-fab", _ms(2026, 3, 22, 23), _ms(2026, 3, 29, 22))
    assert week == 5 * 11 * 3600_000
    # Monday 6 April 2026 is Easter Monday; Tuesday is open; 08:00 Rome = 06:00 UTC in summer.
    assert inv.available_ms("its-prime", "lab-fab", _ms(2026, 4, 5, 22), _ms(2026, 4, 6, 22)) == 0
    assert (
        inv.available_ms("its-prime", "lab-fab", _ms(2026, 4, 7, 6), _ms(2026, 4, 7, 7)) == 3600_000
    )
    # San Giovanni (the site's patron day, a Wednesday) and the summer closure.
    assert inv.available_ms("its-prime", "lab-fab", _ms(2026, 6, 23, 22), _ms(2026, 6, 24, 22)) == 0
    assert inv.available_ms("its-prime", "lab-fab", _ms(2026, 8, 10), _ms(2026, 8, 15)) == 0


def test_errors_name_file_and_line() -> None:
    text = """version: 1
sites:
  - id: its-prime
labs:
  - id: lab-cad
    site: its-prime
    hours:
      mon-fri: "08:00-13:00, 12:00-18:00"
      sun: "8-9"
equipment:
  - id: pc-01
    site: its-prime
    lab: lab-nope
    kind: pc
    cost: lots
    fund: ESF
    collaudo: 2025-01-01
    purchased: 2025-06-01
  - {id: pc-02, site: its-prime, lab: lab-cad}
"""
    with pytest.raises(InventoryError) as info:
        parse(text, "inv.yaml")
    assert info.value.problems == [
        "inv.yaml:8: labs[0].hours.mon-fri: spans overlap",
        "inv.yaml:9: labs[0].hours.sun: '8-9' is not HH:MM-HH:MM",
        "inv.yaml:13: equipment[0].lab: its-prime/lab-nope is not among labs",
        "inv.yaml:16: equipment[0].fund: 'ESF' is not one of ('FESR', 'FSE+', 'FSE', 'PNRR', "
        "'regione', 'fondazione', 'altro')",
        "inv.yaml:15: equipment[0].cost: must be a number >= 0",
        "inv.yaml:17: equipment[0].collaudo: before the purchase",
        "inv.yaml:19: equipment[1]: missing 'kind'",
    ]


def test_hours_off_the_half_hour_and_odd_time_zones_are_refused() -> None:
    text = """version: 1
timezone: Asia/Kathmandu
sites: [{id: s}]
labs:
  - {id: l, site: s, hours: {mon: "08:15-13:00", tue: "08:30-13:00"}}
"""
    with pytest.raises(InventoryError) as info:
        parse(text, "inv.yaml")
    assert info.value.problems == [
        "inv.yaml:2: timezone: 'Asia/Kathmandu' is not a whole or half hour from UTC (opening "
        "hours are kept per half hour of UTC)",
        "inv.yaml:5: labs[0].hours.mon: '08:15-13:00' must start and end on the hour or half "
        "hour (in-use time is split at opening hours per half hour)",
    ]


def test_yaml_syntax_error_and_duplicate_keys_have_lines() -> None:
    with pytest.raises(InventoryError) as info:
        parse("version: 1\nsites: [\n", "x.yaml")
    assert info.value.problems[0].startswith("x.yaml:3:")
    with pytest.raises(InventoryError) as info:
        parse("version: 1\nversion: 2\n", "x.yaml")
    assert info.value.problems[0] == "x.yaml:2: duplicate key 'version'"


def test_cli_check_and_csv_import(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["inventory", "check", str(EXAMPLE)])
    assert ok.exit_code == 0, ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nsites:\n  - id: Bad Site\n")
    result = runner.invoke(app, ["inventory", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:3: sites[0].id: 'Bad Site' is not [a-z0-9_-]{{1,64}}" in result.output

    inv = tmp_path / "inventory.yaml"
    inv.write_text(EXAMPLE.read_text())
    sheet = tmp_path / "equipment.csv"
    sheet.write_text(
        "id;site;lab;kind;description;fund;cup;cost;purchased;collaudo;pnrr\n"
        "pc-08;its-prime;lab-cad;pc;Workstation 8;FESR;J19J21000120007;1.234,50;10/02/2025;"
        "05/03/2025;no\n"
        "pc-01;its-prime;lab-cad;pc;Workstation 1 (sostituita);FESR;;2000;2025-02-10;;\n"
    )
    result = runner.invoke(app, ["inventory", "import", str(sheet), "--into", str(inv)])
    assert result.exit_code == 0, result.output
    merged = load(inv)
    pc8 = merged.equipment[("its-prime", "lab-cad", "pc-08")]
    assert (pc8.cost, pc8.purchased, pc8.collaudo) == (1234.5, date(2025, 2, 10), date(2025, 3, 5))
    assert merged.equipment[("its-prime", "lab-cad", "pc-01")].cost == 2000
    assert len(merged.equipment) == 13

    sheet.write_text("id,site,lab,kind,purchased\npc-09,its-prime,lab-cad,pc,ieri\n")
    result = runner.invoke(app, ["inventory", "import", str(sheet)])
    assert result.exit_code == 1
    assert f"{sheet}:2: 'ieri' is not a date" in result.output

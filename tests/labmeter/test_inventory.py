"""The inventory: holidays, opening hours across DST, errors with file and line, CSV import."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from labmeter.cli.main import app
from labmeter.inventory import InventoryError, load, parse
from labmeter.inventory.calendar import public_holidays
from labmeter.inventory.money import parse_cost

EXAMPLE = Path(__file__).parents[2] / "deploy" / "inventory.example.yaml"


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_holidays_follow_the_law_and_the_province() -> None:
    easter_mondays = [date(2024, 4, 1), date(2025, 4, 21), date(2026, 4, 6), date(2027, 3, 29)]
    for day in easter_mondays:
        assert day in public_holidays(day.year)
    assert date(2026, 10, 4) in public_holidays(2026)  # San Francesco, national from 2026
    assert date(2025, 10, 4) not in public_holidays(2025)
    assert len(public_holidays(2026)) == 13
    assert date(2026, 6, 24) in public_holidays(2026, "FI")  # San Giovanni, Firenze
    assert date(2026, 6, 24) not in public_holidays(2026, "PI")
    assert date(2026, 6, 17) in public_holidays(2026, "PI")  # San Ranieri, Pisa
    assert date(2026, 5, 3) in public_holidays(2026, "", (5, 3))  # a town's own patron


def test_example_inventory_matches_the_simulated_lab() -> None:
    inv = load(EXAMPLE)
    devices = {k[2] for k in inv.equipment}
    assert {f"pc-{i:02d}" for i in range(1, 8)} <= devices
    assert {"cnc-01", "printer3d-02", "laser-03"} <= devices
    assert inv.equipment[("its-prime", "lab-fab", "cnc-01")].funding.pnrr


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
        "inv.yaml:15: equipment[0].cost: 'lots' is not an amount in euro (write it as 1234, "
        "1234,50, 1234.50, 1.234, 1.234,50, 1,234.50 (euro, at most two decimals))",
        "inv.yaml:17: equipment[0].collaudo: 2025-01-01 is before purchased (2025-06-01)",
        "inv.yaml:19: equipment[1]: missing 'kind'",
    ]


def test_hours_off_the_half_hour_and_odd_time_zones_are_refused() -> None:
    text = """version: 1
timezone: Asia/Kolkata
sites: [{id: s}]
labs:
  - {id: l, site: s, hours: {mon: "08:15-13:00", tue: "08:30-13:00"}}
"""
    with pytest.raises(InventoryError) as info:
        parse(text, "inv.yaml")
    assert info.value.problems == [
        "inv.yaml:2: timezone: 'Asia/Kolkata' is not a whole number of hours from UTC (daily "
        "rollups are made of whole UTC hours)",
        "inv.yaml:5: labs[0].hours.mon: '08:15-13:00' must start and end on the hour or half "
        "hour (in-use time is split at opening hours per half hour)",
    ]


def test_asset_mistakes_a_technician_makes_are_refused_with_their_line() -> None:
    text = """version: 1
sites: [{id: s, province: ZZ}]
labs:
  - {id: cad, site: s, hours: {mon: "09:00-13:00"}}
  - {id: fab, site: s, hours: {mon: "09:00-13:00"}}
equipment:
  - {id: pc-01, site: s, lab: cad, kind: pc, cup: not-a-cup, cost: 24.500}
  - {id: pc-01, site: s, lab: fab, kind: pc, cup: "j19 j21 000120007", cost: "0.500"}
  - {id: cnc-01, site: s, lab: fab, kind: cnc, purchased: 2025-03-01, collaudo: 2025-04-01,
     final_payment: 2025-02-01, cost: "€ 24.500"}
"""
    with pytest.raises(InventoryError) as info:
        parse(text, "inv.yaml")
    forms = "1234, 1234,50, 1234.50, 1.234, 1.234,50, 1,234.50 (euro, at most two decimals)"
    assert info.value.problems == [
        "inv.yaml:2: sites[0].province: 'ZZ' is not an Italian province code (FI, PI, LU, ...)",
        "inv.yaml:7: equipment[0].cup: 'not-a-cup' is not a CUP (15 characters: a letter, two "
        "digits, a letter, two digits of the year, nine digits; e.g. J19J21000120007)",
        f"inv.yaml:8: equipment[1].cost: '0.500' is not an amount in euro (write it as {forms})",
        "inv.yaml:8: equipment[1]: asset id 'pc-01' is already used in s/cad (line 7): give "
        "each asset of a site its own id",
        "inv.yaml:10: equipment[2].final_payment: 2025-02-01 is before collaudo (2025-04-01)",
    ]
    fixed = text.replace("province: ZZ", "province: FI").replace("not-a-cup", "J19J21000120007")
    fixed = fixed.replace("id: pc-01, site: s, lab: fab", "id: pc-02, site: s, lab: fab")
    fixed = fixed.replace('"0.500"', "1850.00").replace("2025-02-01", "2025-05-01")
    inv = parse(fixed, "inv.yaml")
    assert inv.equipment[("s", "cad", "pc-01")].cost == 24500  # YAML's 24.5, as typed
    assert inv.equipment[("s", "fab", "pc-02")].funding.cup == "J19J21000120007"
    assert inv.equipment[("s", "fab", "cnc-01")].cost == 24500


@pytest.mark.parametrize(
    ("text", "amount"),
    [("1.234", 1234), ("1.234,50", 1234.5), ("1234.50", 1234.5), ("€ 24.500", 24500),
     ("1,234.50", 1234.5), ("1234,5", 1234.5), ("1.234.567", 1234567), ("2000", 2000)],
)  # fmt: skip
def test_amounts_in_italian_and_english_notation(text: str, amount: float) -> None:
    assert parse_cost(text) == amount


@pytest.mark.parametrize("text", ["0.500", "1234.567", "1.23.456", "1,234,5", "12k", "1.5e3"])
def test_ambiguous_amounts_are_refused_not_guessed(text: str) -> None:
    with pytest.raises(ValueError, match="is not an amount in euro"):
        parse_cost(text)


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


def test_a_grants_own_durability_period_is_a_number_of_years() -> None:
    text = """version: 1
sites: [{id: s}]
labs: [{id: cad, site: s, hours: {mon: "09:00-13:00"}}]
equipment:
  - {id: pc-01, site: s, lab: cad, kind: pc, durability_years: 0}
  - {id: pc-02, site: s, lab: cad, kind: pc, durability_years: five}
  - {id: pc-03, site: s, lab: cad, kind: pc, durability_years: 3}
"""
    with pytest.raises(InventoryError) as info:
        parse(text, "inv.yaml")
    assert info.value.problems == [
        "inv.yaml:5: equipment[0].durability_years: 0 is not a number of years (1 to 30)",
        "inv.yaml:6: equipment[1].durability_years: 'five' is not a number of years (1 to 30)",
    ]
    fixed = parse(text.replace("durability_years: 0", "durability_years: 7").replace(
        "durability_years: five", "final_payment: 2025-06-30"), "inv.yaml")  # fmt: skip
    assert [
        fixed.equipment[("s", "cad", d)].durability_years for d in ("pc-01", "pc-02", "pc-03")
    ] == [7, None, 3]

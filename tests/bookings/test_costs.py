"""Cost per hour of use, checked by hand: straight-line depreciation from the collaudo over
the useful life of the asset's kind, plus yearly running and licence costs; a year cut into
months costs what the year costs."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from labmeter.api.costs import costs
from labmeter.inventory import InventoryError, parse
from labmeter.inventory.depreciation import DEFAULT_USEFUL_LIFE
from tests.helpers import utc_ms

INVENTORY = """version: 1
timezone: Europe/Rome
sites: [{id: its-prime}]
labs:
  - {id: lab-fab, site: its-prime, hours: {mon-fri: "08:00-19:00"}}
equipment:
  - {id: cnc-01, site: its-prime, lab: lab-fab, kind: cnc, fund: PNRR, cost: "24.000,00",
     purchased: 2025-05-10, collaudo: 2025-07-01, running_cost: 1200}
  - {id: laser-03, site: its-prime, lab: lab-fab, kind: laser, fund: FESR, cost: 11200,
     purchased: 2025-02-10}
software:
  - {id: tia_portal, site: its-prime, seats: 4, fund: PNRR, cost: 6100, purchased: 2024-11-15,
     licence_cost: 500}
"""
YEAR = (utc_ms("2025-01-01T00:00+01:00"), utc_ms("2026-01-01T00:00+01:00"))
KEY = ("its-prime", "lab-fab", "cnc-01")


def test_cost_per_hour_by_hand_with_collaudo_inside_the_window() -> None:
    inv = parse(INVENTORY)
    got = costs(inv, *YEAR, {KEY: 250 * 3600.0}, {("its-prime", "tia_portal"): 100 * 3600.0}, {})
    rows = {r["asset"]: r for r in got["assets"]}
    cnc = rows["cnc-01"]
    # 24,000 € over 10 years (the default for a CNC) is 2,400 € a year; in service from
    # 1 July: 184 of 2025's 365 days. Running costs 1,200 € a year, from the same day.
    assert cnc["useful_life_years"] == DEFAULT_USEFUL_LIFE["cnc"] == 10
    assert cnc["collaudo"] == date(2025, 7, 1)
    assert cnc["depreciation_eur"] == pytest.approx(2400 * 184 / 365, abs=1e-9)  # 1,209.86
    assert cnc["running_eur"] == pytest.approx(1200 * 184 / 365, abs=1e-9)  # 604.93
    assert cnc["total_eur"] == pytest.approx(1814.794520547945, abs=1e-9)
    assert cnc["hours"] == 250
    assert cnc["cost_per_hour"] == pytest.approx(7.259178082191781, abs=1e-12)  # € per hour
    # No collaudo: no depreciation counted, and the report says why.
    laser = rows["laser-03"]
    assert (laser["total_eur"], laser["cost_per_hour"], laser["note"]) == (0.0, None, "no_collaudo")
    # A licence: 6,100 € over 3 years from its purchase, plus 500 € a year; 100 hours open.
    tia = rows["tia_portal"]
    assert tia["total_eur"] == pytest.approx(6100 / 3 + 500, abs=1e-9)
    assert tia["cost_per_hour"] == pytest.approx((6100 / 3 + 500) / 100, abs=1e-12)
    (fab,) = got["labs"]
    assert fab["total_eur"] == pytest.approx(cnc["total_eur"]) and fab["hours"] == 250
    funds = {g["name"]: g for g in got["funds"]}
    assert funds["PNRR"]["assets"] == 2
    assert funds["PNRR"]["cost_per_hour"] == pytest.approx(
        (cnc["total_eur"] + tia["total_eur"]) / 350, abs=1e-12
    )


def test_a_year_cut_into_months_sums_to_the_year() -> None:
    inv = parse(INVENTORY.replace("collaudo: 2025-07-01", "collaudo: 2025-07-17"))
    year = costs(inv, *YEAR, {}, {}, {})
    rome = ZoneInfo("Europe/Rome")
    bounds = [int(datetime(2025, m, 1, tzinfo=rome).timestamp() * 1000) for m in range(1, 13)]
    bounds.append(YEAR[1])
    months = [costs(inv, a, b, {}, {}, {}) for a, b in itertools.pairwise(bounds)]
    for n, row in enumerate(year["assets"]):
        for key in ("depreciation_eur", "running_eur", "licence_eur", "total_eur"):
            parts = [m["assets"][n][key] for m in months]
            assert sum(parts) == pytest.approx(row[key], rel=1e-12, abs=1e-9), (row["asset"], key)
    june = months[5]["assets"][0]
    assert (june["asset"], june["total_eur"]) == ("cnc-01", 0.0)  # before its collaudo
    # Over the whole useful life, depreciation is the cost.
    life = (utc_ms("2025-07-17T00:00+02:00"), utc_ms("2035-07-17T00:00+02:00"))
    whole = costs(inv, *life, {}, {}, {})["assets"][0]
    assert whole["depreciation_eur"] == pytest.approx(24000, abs=1e-6)


def test_useful_life_per_kind_from_the_inventory_and_its_errors() -> None:
    inv = parse(INVENTORY.replace("sites:", "useful_life: {cnc: 8, software: 5}\nsites:"))
    assert (inv.life_of("cnc"), inv.life_of("software"), inv.life_of("pc")) == (8, 5, 5)
    with pytest.raises(InventoryError) as caught:
        parse(INVENTORY.replace("sites:", "useful_life: {cnc: 0}\nsites:"), "inv.yaml")
    assert caught.value.problems == [
        "inv.yaml:3: useful_life.cnc: 0 is not a number of years (0 < years <= 50)"
    ]

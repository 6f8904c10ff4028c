"""Utilisation, openness, software and sessions on a hand-checkable lab in real InfluxDB."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from labmeter.api.keys import Role
from labmeter.api.plan import Filters, make_plan
from labmeter.collector.daily import backfill
from labmeter.config import Config
from labmeter.influx import InfluxV1, line
from labmeter.inventory import load
from labmeter.opening import OpeningHours
from tests.api import lab_data as d
from tests.api.client import Api, make_api

DAY = {"start": d.T0 // 1000, "end": (d.T0 + 24 * d.HOUR) // 1000}
OPEN_S = 4 * 3600  # 09:00-13:00 on a Monday


def _by(rows: Any, key: str) -> dict[str, dict[str, Any]]:
    return {r[key]: r for r in rows}


def test_device_utilisation_uses_opening_hours_and_lists_unregistered_apart(
    lab_api: Api,
) -> None:
    rows = _by(lab_api.get("/api/v1/utilisation", **DAY), "device")
    assert set(rows) == {"pc-01", "pc-02", "pc-03", "pc-99"}
    assert rows["pc-01"]["in_use_s"] == 120 * 60
    assert rows["pc-01"]["observed_s"] == 180 * 60
    assert rows["pc-01"]["available_s"] == OPEN_S
    assert rows["pc-01"]["utilisation"] == pytest.approx(7200 / OPEN_S)
    assert rows["pc-01"]["coverage"] == pytest.approx(10800 / OPEN_S)
    # A registered device that never reported stays in the denominator with zero coverage.
    assert rows["pc-03"]["available_s"] == OPEN_S
    assert rows["pc-03"]["coverage"] == 0
    # Seen on MQTT, not in the inventory: listed, flagged, no denominator.
    assert rows["pc-99"]["registered"] is False
    assert rows["pc-99"]["available_s"] is None
    assert rows["pc-99"]["in_use_s"] == 600

    lab = lab_api.get("/api/v1/utilisation", group_by="lab", **DAY)
    assert len(lab) == 1
    assert lab[0]["devices"] == 3  # pc-99 is never merged
    assert lab[0]["in_use_s"] == 7200 + 1800
    assert lab[0]["available_s"] == 3 * OPEN_S

    equipment = lab_api.get("/api/v1/equipment", **DAY)
    assert [u["device"] for u in equipment["unregistered"]] == ["pc-99"]
    assert {e["device"]: e["seen"] for e in equipment["equipment"]} == {
        "pc-01": True, "pc-02": True, "pc-03": False,
    }  # fmt: skip


def test_only_use_within_opening_hours_counts_and_after_hours_use_is_shown_apart(
    config: Config, influx: InfluxV1, tmp_path: Path
) -> None:
    influx.write_lines(d.raw_lines() + d.status_lines())
    api = make_api(config, tmp_path, d.inventory_file(tmp_path, d.SPLIT_HOURS))
    rows = _by(api.get("/api/v1/utilisation", Role.viewer, **DAY), "device")
    open_s = 9000  # 09:30-10:30 and 11:30-13:00
    pc01 = rows["pc-01"]  # in use 09:00-11:00, idle 11:00-12:00
    assert (pc01["in_use_s"], pc01["in_use_open_s"], pc01["after_hours_s"]) == (7200, 3600, 3600)
    assert (pc01["observed_s"], pc01["observed_open_s"]) == (10800, 5400)
    assert pc01["available_s"] == open_s
    assert pc01["utilisation"] == pytest.approx(3600 / open_s)
    assert pc01["coverage"] == pytest.approx(5400 / open_s)
    pc02 = rows["pc-02"]  # in use 10:00-10:30: all within hours
    assert (pc02["in_use_open_s"], pc02["after_hours_s"]) == (1800, 0)
    assert rows["pc-99"]["after_hours_s"] is None  # unregistered: no hours to be after
    lab = api.get("/api/v1/utilisation", Role.viewer, group_by="lab", **DAY)[0]
    assert (lab["in_use_open_s"], lab["after_hours_s"]) == (5400, 3600)
    assert lab["utilisation"] == pytest.approx(5400 / (3 * open_s))
    # Openness counts all use: an evening course for a company is use by the outside world.
    assert api.get("/api/v1/openness", **DAY)["total"]["in_use_s"] == 9000


def test_every_day_splits_at_local_midnight_and_sums_to_the_window(lab_api: Api) -> None:
    week = {"start": d.T0 // 1000 - 2 * 86400, "end": d.T0 // 1000 + 3 * 86400}
    days = lab_api.get("/api/v1/utilisation", group_by="site", every="day", **week)
    # Local midnight in Rome is 23:00 UTC in winter; the first day starts with the window.
    assert [r["period_start"] for r in days] == [
        "2026-02-28T00:00:00Z", "2026-02-28T23:00:00Z", "2026-03-01T23:00:00Z",
        "2026-03-02T23:00:00Z", "2026-03-03T23:00:00Z", "2026-03-04T23:00:00Z",
    ]  # fmt: skip
    # Saturday and Sunday closed; the last day is Thursday 00:00-01:00, before opening.
    assert [r["available_s"] for r in days] == [0, 0, 3 * OPEN_S, 3 * OPEN_S, 3 * OPEN_S, 0]
    whole = lab_api.get("/api/v1/utilisation", group_by="site", **week)[0]
    assert sum(r["in_use_s"] for r in days) == whole["in_use_s"] == 9000
    months = lab_api.get("/api/v1/utilisation", group_by="kind", every="month", **week)
    assert [(r["kind"], r["period_start"], r["in_use_s"]) for r in months] == [
        ("pc", "2026-02-28T00:00:00Z", 0), ("pc", "2026-02-28T23:00:00Z", 9000),
    ]  # fmt: skip


def test_openness_software_and_sessions(lab_api: Api) -> None:
    openness = lab_api.get("/api/v1/openness", **DAY)
    total = openness["total"]
    assert total["in_use_s"] == 9000  # pc-99 is unregistered: not counted
    assert total["categories"]["school"]["in_use_s"] == 7200
    assert total["categories"]["company"]["in_use_s"] == 1800
    assert total["quota_esterna"] == 1.0
    assert openness["labs"][0]["lab"] == "lab-cad"

    software = _by(lab_api.get("/api/v1/software", **DAY), "app")
    sw = software["solidworks"]
    assert sw["hours"] == pytest.approx((75 + 30) / 60)
    assert sw["peak_seats"] == 2  # pc-01 and pc-02 both ran it 10:00-10:15
    assert sw["seats_owned"] == 5
    assert sw["peak_share"] == pytest.approx(2 / 5)

    sessions = lab_api.get("/api/v1/sessions", **DAY)
    got = sorted(
        (s["device"], s["user"], s["duration_s"], s["in_use_s"], s["source"]) for s in sessions
    )
    assert got == [
        ("pc-01", d.USER_A, 7200, 7200, "samples"),
        ("pc-02", d.USER_B, 1800, 1800, "event"),
        ("pc-99", d.USER_C, 600, 600, "samples"),
    ]
    assert all(s["user"].startswith("p_") for s in sessions)


@pytest.mark.parametrize("hours", ["09:00-13:00", d.SPLIT_HOURS])
def test_rollups_for_closed_hours_give_the_same_figures_as_raw_points(
    config: Config, influx: InfluxV1, tmp_path: Path, hours: str
) -> None:
    influx.write_lines(d.raw_lines() + d.status_lines() + d.event_lines())
    lab_api = make_api(config, tmp_path, d.inventory_file(tmp_path, hours))
    other = dataclasses.replace(
        config, influx=dataclasses.replace(config.influx, database=config.influx.database + "_r")
    )
    rolled_db = InfluxV1(other.influx)
    rolled_db.create_database()
    try:
        # Hours before 09:30 UTC rolled up, the rest raw: the split falls inside sessions.
        rollups, raw = d.rollup_lines(d.raw_lines(), d.T0 + 9 * d.HOUR)
        assert rollups and raw
        rolled_db.write_lines(rollups + raw + d.status_lines())
        now = d.T0 + 48 * d.HOUR
        plan = make_plan(rolled_db, OpeningHours(None), d.T0, now, Filters(), now)
        assert plan.rolled_until == d.T0 + 9 * d.HOUR
        # A site without rollups (its collector is behind or new): raw points everywhere.
        rolled_db.write_lines(
            [
                line(
                    "status",
                    {"site": "its-other", "lab": "l", "device": "x"},
                    {"online": True},
                    d.T0,
                )
            ]
        )
        plan = make_plan(rolled_db, OpeningHours(None), d.T0, now, Filters(), now)
        assert plan.rolled_until is None
        rolled_db.query("DROP SERIES FROM status WHERE site = 'its-other'")
        rolled = make_api(other, tmp_path / "r", d.inventory_file(tmp_path, hours))
        # A window with unaligned edges reads raw edges around the rolled hours.
        window = {"start": d.T0 // 1000 + 1234, "end": d.T0 // 1000 + 20 * 3600 + 17}
        for path, params in [
            ("/api/v1/utilisation", {}),
            ("/api/v1/utilisation", {"group_by": "category", "every": "day"}),
            ("/api/v1/openness", {}),
            ("/api/v1/software", {}),
        ]:
            assert rolled.get(path, **window, **params) == lab_api.get(path, **window, **params)
    finally:
        rolled_db.query(f'DROP DATABASE "{other.influx.database}"')
        rolled_db.close()


def test_without_inventory_the_window_is_the_denominator(
    config: Config, influx: InfluxV1, tmp_path: Path
) -> None:
    influx.write_lines(d.raw_lines() + d.status_lines())
    api = make_api(config, tmp_path, None)
    rows = _by(api.get("/api/v1/utilisation", Role.viewer, **DAY), "device")
    assert set(rows) == {"pc-01", "pc-02", "pc-99"}
    assert all(r["available_s"] == 86400 for r in rows.values())


@pytest.mark.parametrize(
    "start", ["1e400", "nan", "-inf", "99999999999999999999", "0001-01-01T00:00:00+14:00"]
)
def test_absurd_epoch_is_a_422_not_a_crash(lab_api: Api, start: str) -> None:
    response = lab_api.client.get(
        "/api/v1/utilisation",
        params={"start": start},
        headers={"X-API-Key": lab_api.tokens[Role.viewer]},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("hours", "collector_hours", "tz", "collector_tz"),
    [
        ("09:00-13:00", "09:00-13:00", "Europe/Rome", "Europe/Rome"),
        (d.SPLIT_HOURS, d.SPLIT_HOURS, "Europe/Rome", "Europe/Rome"),
        # the inventory was edited after the days were rolled up
        (d.SPLIT_HOURS, "09:00-13:00", "Europe/Rome", "Europe/Rome"),
        # a deployment in another zone: its days and months are its own
        (d.SPLIT_HOURS, d.SPLIT_HOURS, "America/New_York", "America/New_York"),
        # the API's zone is not the one the days were cut in: none of them is used
        (d.SPLIT_HOURS, d.SPLIT_HOURS, "America/New_York", "Europe/Rome"),
    ],
)
def test_daily_rollups_give_the_same_figures_as_raw_points(
    config: Config,
    influx: InfluxV1,
    tmp_path: Path,
    hours: str,
    collector_hours: str,
    tz: str,
    collector_tz: str,
) -> None:
    """The lab on six days around the whole of March, one of them Rome's 23-hour day; March
    is read from monthly rollups, closed days from daily ones (the collector's code derives
    both), the edges from hourly and raw points; days the collector split at other opening
    hours than the API's (and so their month) are read from hourly ones, and so is every
    day when the collector cut its days in another time zone than the API's."""
    day = 24 * d.HOUR
    # Fri 27 Feb, Mon 2, Tue 3, Sun 29 (summer time), Mon 30 March, Wed 1 April.
    shifts = (-3 * day, 0, day, 27 * day, 28 * day, 30 * day)
    raw = [_shift(text, by) for by in shifts for text in d.raw_lines()]
    influx.write_lines(raw + d.status_lines())
    inventory = d.inventory_file(tmp_path, hours, tz)
    plain = make_api(config, tmp_path / "p", inventory)
    collector_inventory = load(d.inventory_file(tmp_path / "c", collector_hours, collector_tz))
    other = dataclasses.replace(
        config, influx=dataclasses.replace(config.influx, database=config.influx.database + "_d")
    )
    rolled_db = InfluxV1(other.influx)
    rolled_db.create_database()
    try:
        cutoff = d.T0 + 30 * day + 9 * d.HOUR  # an hour inside the last day's sessions
        rollups, _ = d.rollup_lines(raw, cutoff)
        rolled_db.write_lines(rollups + raw + d.status_lines())  # raw points stay, as in life
        opening = OpeningHours(collector_inventory)
        first = d.T0 - 3 * day
        assert backfill(rolled_db, rolled_db, first, cutoff, d.SITE, opening) > 0
        api_opening = OpeningHours(load(inventory))
        day_of = api_opening.calendar.day_of
        window = {
            "start": first // 1000 + 9 * 3600 + 1234,
            "end": (d.T0 + 30 * day) // 1000 + 20 * 3600,
        }
        plan = make_plan(rolled_db, api_opening, day_of(first), cutoff, Filters(), cutoff + day)
        assert plan.rolled_until == cutoff
        rolled = make_api(other, tmp_path / "r", inventory)
        parts = plan.parts(window["start"] * 1000, window["end"] * 1000)
        if tz != collector_tz:
            assert plan.daily_from is None
            assert {p.source for p in parts} == {"raw", "hourly"}
        else:
            # backfill computes whole months: every day of them is labelled, data or not
            assert plan.daily_from == api_opening.calendar.month_of(first)
            # Stale: every day whose hours differ, with data (the weekdays of the lab's
            # sessions) or without (the other open days of those months).
            days, cal = [], api_opening.calendar
            at = day_of(first)
            while at < cutoff:
                days.append(at)
                at = cal.next_day(at)
            differ = {
                at
                for at in days
                if api_opening.label(d.SITE, "lab-cad", at) != opening.label(d.SITE, "lab-cad", at)
            }
            weekdays = {day_of(d.T0 + by + 8 * d.HOUR) for by in shifts if by != 27 * day}
            stale = plan.stale_days
            assert stale == differ
            assert (weekdays <= stale) == (hours != collector_hours)
            # Days without a sample are not read at all (here every whole day outside March).
            assert {p.source for p in parts} == (
                {"raw", "hourly", "monthly"} if not stale else {"raw", "hourly", "daily"}
            )
            assert plan.empty_days and not plan.empty_days & weekdays
        for path, params in [
            ("/api/v1/utilisation", {}),
            ("/api/v1/utilisation", {"group_by": "category", "every": "day"}),
            ("/api/v1/utilisation", {"group_by": "lab", "every": "week"}),
            ("/api/v1/utilisation", {"group_by": "site", "every": "month"}),
            ("/api/v1/openness", {"by_lab": True}),
            ("/api/v1/software", {}),
        ]:
            assert rolled.get(path, **window, **params) == plain.get(path, **window, **params)
        report = rolled.get("/api/v1/report", **window, format="json")
        expected = plain.get("/api/v1/report", **window, format="json")
        for data in (report, expected):
            del data["meta"]["generated_ms"], data["meta"]["rolled_until_ms"]
        assert report == expected
    finally:
        rolled_db.query(f'DROP DATABASE "{other.influx.database}"')
        rolled_db.close()


def _shift(text: str, by_ms: int) -> str:
    head, ts = text.rsplit(" ", 1)
    return f"{head} {int(ts) + by_ms}"


def test_days_rolled_up_before_the_per_asset_and_per_lab_rollups_are_read_hourly(
    influx: InfluxV1,
) -> None:
    """A day whose daily rollups an older collector wrote (no per-asset or per-lab ones, no
    layout on its label) is not read from them: they would count as zero."""
    rollups, _ = d.rollup_lines(d.raw_lines(), d.T0 + 24 * d.HOUR)
    label = line("rollup_hours_daily", {"site": d.SITE, "lab": "lab-cad"}, {"hours": "*"}, d.T0)
    influx.write_lines([*rollups, label, *d.status_lines()])
    now = d.T0 + 48 * d.HOUR
    plan = make_plan(influx, OpeningHours(None), d.T0, now, Filters(), now)
    assert plan.rolled_until is not None
    assert plan.daily_from is None
    # Hours after the last rollup hold no raw sample: nothing to roll up, nothing read raw.
    assert {p.source for p in plan.parts(d.T0 - 3600_000, now)} == {"hourly"}

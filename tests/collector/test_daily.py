"""Daily rollups: the collector's recompute after each hour equals the raw points, late data too."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from labmeter.cli.main import app
from labmeter.collector.daily import rederive
from labmeter.collector.metrics import Metrics
from labmeter.collector.rollups import Rollups
from labmeter.config import Config
from labmeter.influx import InfluxV1, line
from labmeter.inventory import load
from labmeter.opening import OpeningHours
from labmeter.schema import DERIVED, LAYOUT_VERSION, Calendar, hour_of
from tests.api import lab_data as d

DAY = 24 * d.HOUR
ROME = Calendar("Europe/Rome")
day_of, first_day_within, month_of, next_day = (
    ROME.day_of,
    ROME.first_day_within,
    ROME.month_of,
    ROME.next_day,
)
# Sunday 29 March 2026: Rome moves to summer time, so that local day has 23 hours.
DST_SHIFT = 27 * DAY


def _shifted(lines: list[str], by_ms: int) -> list[str]:
    out = []
    for text in lines:
        head, ts = text.rsplit(" ", 1)
        out.append(f"{head} {int(ts) + by_ms}")
    return out


def _hours(lines: list[str]) -> set[int]:
    return {hour_of(int(text.rsplit(" ", 1)[1])) for text in lines}


def _raw_by_day(influx: InfluxV1) -> dict[tuple[int, str, str], tuple[float, float, int]]:
    """InfluxDB's own sums of the raw samples per Rome day, device and category."""
    out = {}
    for s in influx.query(
        "SELECT sum(in_use_s), sum(observed_s), count(observed_s) FROM sample WHERE time > 0 "
        "GROUP BY time(1d), device, category fill(none) tz('Europe/Rome')"
    ):
        for t, in_use, observed, n in s.values:
            out[(int(t), s.tags["device"], s.tags["category"])] = (in_use, observed, n)
    return out


def _daily(influx: InfluxV1) -> dict[tuple[int, str, str], tuple[float, float, int]]:
    out = {}
    for s in influx.query(
        "SELECT in_use_s, observed_s, samples FROM rollup_device_daily GROUP BY device, category"
    ):
        for t, in_use, observed, n in s.values:
            out[(int(t), s.tags["device"], s.tags["category"])] = (in_use, observed, n)
    return out


def _roll(rollups: Rollups, lines: list[str]) -> None:
    rollups.touch(_hours(lines))
    far = float("inf")  # after every due time: Rollups schedules them by the real clock
    rollups.run_due(far)  # computes
    rollups.run_due(far)  # confirms
    assert rollups.pending() == []


def test_day_boundaries_are_rome_midnights_across_summer_time() -> None:
    sunday = d.T0 + DST_SHIFT  # 00:00 UTC on 29 March = 01:00 in Rome
    start = day_of(sunday)
    assert start == sunday - d.HOUR  # 23:00 UTC the evening before
    assert next_day(start) - start == 23 * d.HOUR
    assert first_day_within(start) == start
    assert first_day_within(start + 1) == next_day(start)


def test_daily_rollups_equal_raw_and_hourly_sums_and_follow_late_data(
    influx: InfluxV1, tmp_path: Path
) -> None:
    lab = d.raw_lines()
    raw = lab + _shifted(lab, DAY) + _shifted(lab, DST_SHIFT)
    influx.write_lines(raw)
    rollups = Rollups(
        influx, influx, Metrics(), site=d.SITE, state_path=tmp_path / "r.json",
        grace_s=0, settle_s=0,
    )  # fmt: skip
    _roll(rollups, raw)
    daily = _daily(influx)
    assert daily == _raw_by_day(influx)
    assert {day for day, _d, _c in daily} == {
        day_of(d.T0),
        day_of(d.T0 + DAY),
        day_of(d.T0 + DST_SHIFT),
    }
    hourly = influx.query(
        "SELECT sum(in_use_s) FROM rollup_device_hourly WHERE time > 0 "
        "GROUP BY time(1d) fill(none) tz('Europe/Rome')"
    )[0].values
    assert [v for _t, v in hourly] == [
        sum(v[0] for (day, _d, _c), v in daily.items() if day == t) for t, _v in hourly
    ]
    apps = influx.query("SELECT running_s FROM rollup_app_daily GROUP BY device")
    assert {s.tags["device"]: [v for _t, v in s.values] for s in apps} == {
        "pc-01": [75 * 60.0] * 3,  # solidworks 09:00-10:15 Rome each day
        "pc-02": [30 * 60.0] * 3,
    }
    seats = influx.query("SELECT peak_seats, seat_hours FROM rollup_app_concurrency_daily")
    assert [(p, h) for _t, p, h in seats[0].values] == [(2, 105 / 60)] * 3

    # An agent replays a backlog into the first day: a late hour of pc-03, in a new hour.
    late = [
        line(
            "sample",
            {"site": d.SITE, "lab": "lab-cad", "device": "pc-03", "kind": "pc",
             "category": "staff"},
            {"in_use_s": 60.0, "idle_s": 0.0, "setup_s": 0.0, "paused_s": 0.0, "alarm_s": 0.0,
             "off_s": 0.0, "observed_s": 60.0, "interval_s": 60.0, "seq": m, "state": "in_use"},
            d.T0 + 14 * d.HOUR + m * d.MIN,
        )
        for m in range(30)
    ]  # fmt: skip
    influx.write_lines(late)
    _roll(rollups, late)
    daily = _daily(influx)
    assert daily == _raw_by_day(influx)
    assert daily[(day_of(d.T0), "pc-03", "staff")] == (1800.0, 1800.0, 30)
    # The month follows its days (late data included): March in one point per series.
    monthly = influx.query(
        "SELECT in_use_s, observed_s, samples FROM rollup_device_monthly GROUP BY device, category"
    )
    by_month = {
        (s.tags["device"], s.tags["category"]): (s.values[0][0], tuple(s.values[0][1:]))
        for s in monthly
    }
    sums: dict[tuple[str, str], list[float]] = {}
    for (_day, device, category), (in_use, observed, n) in daily.items():
        acc = sums.setdefault((device, category), [0.0, 0.0, 0])
        acc[0], acc[1], acc[2] = acc[0] + in_use, acc[1] + observed, acc[2] + n
    assert by_month == {k: (month_of(d.T0), tuple(v)) for k, v in sums.items()}


def test_daily_rollups_split_in_use_time_at_the_inventorys_opening_hours(
    influx: InfluxV1, tmp_path: Path
) -> None:
    influx.write_lines(d.raw_lines())
    opening = OpeningHours(load(d.inventory_file(tmp_path, d.SPLIT_HOURS)))
    rollups = Rollups(
        influx, influx, Metrics(), site=d.SITE, state_path=tmp_path / "r.json",
        grace_s=0, settle_s=0, opening=opening,
    )  # fmt: skip
    _roll(rollups, d.raw_lines())
    rows = influx.query(
        "SELECT in_use_s, in_use_open_s, observed_open_s FROM rollup_device_daily "
        "GROUP BY device, category"
    )
    got = {(s.tags["device"], s.tags["category"]): tuple(s.values[0][1:]) for s in rows}
    # pc-01 in use 09:00-11:00 and idle 11:00-12:00 Rome; open 09:30-10:30 and 11:30-13:00.
    assert got[("pc-01", "school")] == (7200.0, 3600.0, 3600.0)
    assert got[("pc-01", "unknown")] == (0.0, 0.0, 1800.0)
    assert got[("pc-02", "company")] == (1800.0, 1800.0, 1800.0)
    assert got[("pc-99", "its_student")] == (600.0, 0.0, 0.0)  # 09:00-09:10: before opening
    hours = influx.query('SELECT "hours" FROM rollup_hours_daily GROUP BY lab')
    assert [(s.tags["lab"], s.values[0][0], s.values[0][1]) for s in hours] == [
        ("lab-cad", day_of(d.T0), "09:30-10:30,11:30-13:00")
    ]


def test_rebuild_command_recomputes_days_with_the_edited_opening_hours(
    config: Config, influx: InfluxV1, tmp_path: Path
) -> None:
    influx.write_lines(d.raw_lines())
    rollups = Rollups(
        influx, influx, Metrics(), site=d.SITE, state_path=tmp_path / "r.json",
        grace_s=0, settle_s=0, opening=OpeningHours(load(d.inventory_file(tmp_path))),
    )  # fmt: skip
    _roll(rollups, d.raw_lines())
    edited = d.inventory_file(tmp_path / "edited", d.SPLIT_HOURS)
    toml = tmp_path / "server.toml"
    toml.write_text(
        f'[influx]\nurl = "{config.influx.url}"\ndatabase = "{config.influx.database}"\n'
        f'[collector]\ninventory = "{edited}"\n'
    )
    window = ["--start", str(d.T0 // 1000), "--end", str(d.T0 // 1000 + 86400)]
    result = CliRunner().invoke(app, ["rollups", "rebuild", "-c", str(toml), *window])
    assert result.exit_code == 0, result.output
    hours = influx.query(f'SELECT "hours" FROM rollup_hours_daily WHERE time = {day_of(d.T0)}ms')
    assert hours[0].values[0][1] == "09:30-10:30,11:30-13:00"
    # Every day of the rebuilt month is labelled, with data or without (a Sunday: closed).
    sunday = influx.query(
        f'SELECT "hours" FROM rollup_hours_daily WHERE time = {day_of(d.T0 - DAY)}ms'
    )
    assert sunday[0].values[0][1] == ""
    pc01 = influx.query(
        "SELECT in_use_open_s FROM rollup_device_daily WHERE device = 'pc-01' AND "
        "category = 'school'"
    )
    assert pc01[0].values[0][1] == 3600.0
    backwards = ["--start", window[3], "--end", window[1]]
    bad = CliRunner().invoke(app, ["rollups", "rebuild", "-c", str(toml), *backwards])
    assert bad.exit_code == 2
    assert "end must be after start" in bad.output


def _points(influx: InfluxV1, query: str, tags: tuple[str, ...]) -> dict[tuple[object, ...], float]:
    return {
        (t, *(s.tags[k] for k in tags)): v
        for s in influx.query(query)
        for t, v in s.values
        if v is not None
    }


def _three_days_rolled_up(influx: InfluxV1, tmp_path: Path) -> None:
    """The example lab's day, the next day and the DST day, written and rolled up by the
    collector's own code with opening hours that split the day."""
    lab = d.raw_lines()
    raw = lab + _shifted(lab, DAY) + _shifted(lab, DST_SHIFT)
    influx.write_lines(raw)
    opening = OpeningHours(load(d.inventory_file(tmp_path, d.SPLIT_HOURS)))
    rollups = Rollups(
        influx, influx, Metrics(), site=d.SITE, state_path=tmp_path / "r.json",
        grace_s=0, settle_s=0, opening=opening,
    )  # fmt: skip
    _roll(rollups, raw)


def test_asset_and_lab_rollups_are_the_device_rollups_summed(
    influx: InfluxV1, tmp_path: Path
) -> None:
    """Per asset (every category) and per lab (every device), day by day and for the month,
    equal InfluxDB's own sums of the per-device-and-category rollups; the days say so."""
    _three_days_rolled_up(influx, tmp_path)
    for period, per in (("daily", "GROUP BY time(1d), {} fill(none) tz('Europe/Rome')"),
                        ("monthly", "GROUP BY {}")):  # fmt: skip
        for field in ("in_use_s", "in_use_open_s", "observed_open_s", "samples"):
            for measurement, tags in (("asset", ("device", "kind")), ("lab", ("lab", "category"))):
                ours = _points(
                    influx, f"SELECT {field} FROM rollup_{measurement}_{period} GROUP BY *", tags
                )
                start = month_of(d.T0) if period == "monthly" else 0
                theirs = _points(
                    influx,
                    f"SELECT sum({field}) FROM rollup_device_daily WHERE time >= {start}ms "
                    "AND time < 1800000000000ms " + per.format(", ".join(tags)),
                    tags,
                )
                assert ours == pytest.approx(theirs), (period, field, measurement)
                assert ours, (period, field, measurement)
    apps = influx.query("SELECT running_s FROM rollup_app_asset_daily GROUP BY device")
    assert {s.tags["device"]: [v for _t, v in s.values] for s in apps} == {
        "pc-01": [75 * 60.0] * 3,
        "pc-02": [30 * 60.0] * 3,
    }
    layout = influx.query('SELECT "layout" FROM rollup_hours_daily')
    assert {v for _t, v in layout[0].values} == {LAYOUT_VERSION}


def test_rederive_sums_the_same_asset_and_lab_rollups_again(
    influx: InfluxV1, tmp_path: Path
) -> None:
    """A period's evidence holds the device rollups only: summed again, the per-asset and
    per-lab rollups of every period are the collector's, point for point."""
    _three_days_rolled_up(influx, tmp_path)

    def derived() -> dict[str, list[object]]:
        return {
            m.name: sorted((tuple(sorted(s.tags.items())), s.values) for s in rows)
            for m in DERIVED
            if (rows := influx.query(f"SELECT * FROM {m.name} GROUP BY *"))
        }

    written = derived()
    assert {"rollup_asset_hourly", "rollup_lab_daily", "rollup_app_asset_monthly"} <= set(written)
    for m in DERIVED:
        influx.query(f"DROP MEASUREMENT {m.name}")
    assert derived() == {}
    assert rederive(influx, influx, 0, 1_900_000_000_000) > 0
    assert derived() == written

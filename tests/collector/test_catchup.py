"""The collector brings days of older rollups up to date by itself: hourly rollups only, or a
layout without session rollups per lab; newest first, the figures exact before, during and
after, closed periods and backlogs left alone.

Time is pinned: the example lab's day (Monday 2 March 2026), the next day and the Sunday of
the change to summer time, with "now" some weeks later.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from labmeter.api import scope as scope_mod
from labmeter.api.plan import Filters
from labmeter.collector.catchup import CatchUp
from labmeter.collector.metrics import Metrics
from labmeter.collector.rollups import Rollups, rollup_lines
from labmeter.config import Config
from labmeter.influx import InfluxV1, line
from labmeter.inventory import load
from labmeter.opening import OpeningHours
from labmeter.schema import DERIVED, LAYOUT_VERSION, Calendar, Period, busy_rollup, hour_of
from tests.api import lab_data as d
from tests.api.client import make_api
from tests.helpers import wait_for

DAY = 24 * d.HOUR
ROME = Calendar("Europe/Rome")
DST = 27 * DAY  # Sunday 29 March: 23 hours in Rome
NOW = d.T0 + 40 * DAY
WINDOW = {"start": ROME.month_of(d.T0) // 1000, "end": ROME.day_of(NOW) // 1000}


def _lab(influx: InfluxV1) -> list[str]:
    """Three days of the example lab, with session events, written raw."""
    raw = []
    for shift in (0, DAY, DST):
        raw += [_shift(text, shift) for text in (*d.raw_lines(), *d.event_lines())]
    influx.write_lines([*raw, *d.status_lines()])
    return raw


def _shift(text: str, by_ms: int) -> str:
    head, ts = text.rsplit(" ", 1)
    return f"{head} {int(ts) + by_ms}"


def _hourly_only(influx: InfluxV1, raw: list[str]) -> None:
    """What a collector from before daily rollups left: hourly rollups of every hour."""
    for hour in sorted({hour_of(int(text.rsplit(" ", 1)[1])) for text in raw}):
        influx.write_lines(rollup_lines(influx, hour, d.SITE))


def _figures(api: Any) -> tuple[Any, ...]:
    report = api.get("/api/v1/report", **WINDOW, format="json")
    del report["meta"]["generated_ms"], report["meta"]["rolled_until_ms"]
    return (
        report,
        api.get("/api/v1/utilisation", **WINDOW, group_by="lab", every="day"),
        api.get("/api/v1/sessions/summary", **WINDOW),
    )


def _catch_up(influx: InfluxV1, opening: OpeningHours, **kw: Any) -> CatchUp:
    return CatchUp(influx, influx, Metrics(), site=d.SITE, opening=opening, rest=0.0, **kw)


def _labelled(influx: InfluxV1) -> dict[int, int]:
    rows = influx.query('SELECT "layout" FROM rollup_hours_daily')
    return {int(t): int(v) for s in rows for t, v in s.values}


def test_hourly_rollups_only_are_caught_up_newest_first_with_the_same_figures(
    config: Config, influx: InfluxV1, tmp_path: Path
) -> None:
    inventory = d.inventory_file(tmp_path, d.SPLIT_HOURS)
    opening = OpeningHours(load(inventory))
    _hourly_only(influx, _lab(influx))
    api = make_api(config, tmp_path / "api", inventory)
    before = _figures(api)
    plan = scope_mod.open_scope(influx, opening, WINDOW["start"] * 1000, NOW, Filters(), NOW).plan
    assert plan.daily_from is None  # read hourly per device, sessions from raw points

    catchup = _catch_up(influx, opening)
    owed = catchup.scan(NOW)
    days = [o.day_ms for o in owed]
    assert days == sorted(days, reverse=True)  # newest first
    assert days[0] == ROME.day_of(NOW) - DAY and days[-1] == ROME.day_of(d.T0)
    assert not any(o.partial for o in owed)

    assert catchup.step(NOW)
    assert set(_labelled(influx)) == {days[0]}
    assert catchup.left == len(days) - 1
    assert _figures(api) == before  # halfway: the days done are read daily, the rest hourly
    while catchup.step(NOW):
        if catchup.left == len(days) // 2:
            assert _figures(api) == before
    done = catchup.metrics.registry.get_sample_value("labmeter_collector_catchup_done_total")
    assert catchup.left == 0 and done == len(days)
    assert set(_labelled(influx)) == set(days) and set(_labelled(influx).values()) == {
        LAYOUT_VERSION
    }
    assert _figures(api) == before
    plan = scope_mod.open_scope(influx, opening, WINDOW["start"] * 1000, NOW, Filters(), NOW).plan
    assert plan.daily_from == ROME.day_of(d.T0)
    assert "daily" in {p.source for p in plan.parts(plan.start_ms, plan.end_ms)}
    assert catchup.scan(NOW) == []  # nothing left, nothing done twice

    health = api.client.get("/healthz").json()
    assert health == {"status": "ok", "rollups": {"days_to_catch_up": 0, "catching_up": None}}


def test_a_day_of_layout_3_gets_its_session_rollups_per_lab_and_its_busy_rollups(
    influx: InfluxV1, tmp_path: Path
) -> None:
    """The days an older collector rolled up with sessions per device only: the catch-up sums
    those per asset and per lab, counts the busy devices from the hourly rollups per asset
    (their raw samples are not read again), and relabels them."""
    opening = OpeningHours(load(d.inventory_file(tmp_path)))
    raw = _lab(influx)
    rollups = Rollups(
        influx, influx, Metrics(), site=d.SITE, state_path=tmp_path / "r.json",
        grace_s=0, settle_s=0, opening=opening,
    )  # fmt: skip
    rollups.touch({hour_of(int(text.rsplit(" ", 1)[1])) for text in raw})
    far = float("inf")  # after every due time: Rollups schedules them by the real clock
    rollups.run_due(far)
    rollups.run_due(far)
    derived = [m.name for m in DERIVED if m.name.startswith("rollup_sessions_")]
    derived += [busy_rollup(p).name for p in Period]

    def sessions() -> dict[str, Any]:
        return {
            name: sorted((tuple(sorted(s.tags.items())), s.values) for s in rows)
            for name in derived
            if (rows := influx.query(f"SELECT * FROM {name} GROUP BY *"))
        }

    written = sessions()
    assert set(written) == set(derived)
    labels = influx.query('SELECT "hours", "tz", "samples" FROM rollup_hours_daily GROUP BY *')
    for name in derived:
        influx.query(f"DROP MEASUREMENT {name}")
    influx.write_lines(
        [
            line("rollup_hours_daily", s.tags, {"hours": h, "tz": tz, "samples": n, "layout": 3}, t)
            for s in labels
            for t, h, tz, n in s.values
        ]
    )
    for measurement in ("sample", "event"):  # the raw points are not read again
        influx.query(f"DROP MEASUREMENT {measurement}")
    catchup = _catch_up(influx, opening)
    owed = catchup.scan(NOW)
    three = {ROME.day_of(d.T0 + shift) for shift in (0, DAY, DST)}
    assert {o.day_ms for o in owed if o.partial} == {t for s in labels for t, *_ in s.values}
    assert three <= {o.day_ms for o in owed}
    while catchup.step(NOW):
        pass
    assert sessions() == written
    assert set(_labelled(influx).values()) == {LAYOUT_VERSION}


def test_the_catch_up_leaves_a_closed_period_alone_and_waits_while_a_backlog_drains(
    influx: InfluxV1, tmp_path: Path
) -> None:
    opening = OpeningHours(load(d.inventory_file(tmp_path)))
    _hourly_only(influx, _lab(influx))
    closed = ROME.day_of(d.T0), ROME.next_day(ROME.day_of(d.T0 + DAY))  # the first two days
    catchup = _catch_up(influx, opening, frozen=lambda day: closed[0] <= day < closed[1])
    while catchup.step(NOW):
        pass
    done = set(_labelled(influx))
    assert not [t for t in done if closed[0] <= t < closed[1]]
    assert ROME.day_of(d.T0 + DST) in done

    busy = [True]
    rollups = Rollups(
        influx, influx, Metrics(), site=d.SITE, state_path=tmp_path / "r.json", grace_s=0,
        settle_s=0, opening=opening, busy=lambda: busy[0], catch_up="test",
        clock=lambda: NOW / 1000,
    )  # fmt: skip
    assert rollups.catchup is not None
    rollups.catchup.rest = 0.0
    rollups.start()
    try:
        time.sleep(2.0)
        assert set(_labelled(influx)) == done  # a backlog drains: nothing recomputed
        busy[0] = False
        wait_for(lambda: ROME.day_of(d.T0) in _labelled(influx), timeout=60)
        wait_for(lambda: rollups.catchup is not None and rollups.catchup.left == 0, timeout=30)
    finally:
        rollups.stop()
    progress = influx.query("SELECT days_left, day_ms FROM rollup_catchup WHERE collector = 'test'")
    assert progress[0].values[-1][1:] == [0, -1]  # what /healthz reports

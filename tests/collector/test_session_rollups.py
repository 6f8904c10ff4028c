"""Sessions and distinct users over a simulated year: through the collector's session rollups
they equal the simulator's ground truth, and over windows up to 31 days the raw listing too.

The year's messages go through the collector's own decoder and line conversion into a real
InfluxDB; the daily and monthly rollups are computed by the collector's code (the live
recompute for one week, ``labmeter rollups rebuild``'s backfill for the year). Only the last
hour gets hourly rollups, which session counts do not read: it tells the API how far the
rollups go. Time is pinned: nothing reads the wall clock.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from labmeter.api import scope, session_counts, session_list
from labmeter.api.plan import Filters
from labmeter.api.records import SessionRow, SessionSummary
from labmeter.collector.convert import parse
from labmeter.collector.daily import backfill
from labmeter.collector.metrics import Metrics
from labmeter.collector.rollups import Rollups, rollup_lines
from labmeter.config import Config
from labmeter.contract import Sample, Topic, encode
from labmeter.influx import InfluxV1
from labmeter.inventory import load
from labmeter.opening import OpeningHours
from labmeter.schema import Calendar, hour_of
from labmeter.simulators.sessions import DEVICES, SessionYear, simulate_year
from tests.api.client import make_api

SITE = "its-sim"
TZ = "Europe/Rome"
CAL = Calendar(TZ)
FIRST = date(2025, 1, 1)
DAYS = 365
START = CAL.day_of(int(datetime(2025, 1, 1, 12, tzinfo=UTC).timestamp() * 1000))
END = CAL.day_of(int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp() * 1000))
DAY = 86_400_000

INVENTORY = f"""version: 1
timezone: {TZ}
sites:
  - {{id: {SITE}, name: "ITS Sim"}}
labs:
  - {{id: lab-a, site: {SITE}, hours: {{mon-fri: "08:00-18:00"}}}}
  - {{id: lab-b, site: {SITE}, hours: {{mon-fri: "08:00-18:00"}}}}
equipment:
""" + "".join(
    f"  - {{id: {d.device}, site: {SITE}, lab: {d.lab}, kind: {d.kind}}}\n" for d in DEVICES
)


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    """A local time in the lab's zone."""
    return int(datetime(year, month, day, hour, minute, tzinfo=CAL.zone).timestamp() * 1000)


Truth = dict[str, dict[str, tuple[int, int]]]


def _as_truth(summary: SessionSummary) -> Truth:
    """A summary in the simulator's truth's shape (groups without sessions left out)."""
    out: Truth = {"all": {}, "category": {}, "lab": {}, "lab_category": {}}
    if summary["sessions"]:
        out["all"][""] = (summary["sessions"], summary["users"])
    for c, v in summary["categories"].items():
        if v["sessions"]:
            out["category"][c] = (v["sessions"], v["users"])
    for lab in summary["labs"]:
        out["lab"][lab["lab"]] = (lab["sessions"], lab["users"])
        for c, v in lab["categories"].items():
            if v["sessions"]:
                out["lab_category"][f"{lab['lab']}/{c}"] = (v["sessions"], v["users"])
    return out


def _listing_truth(rows: list[SessionRow]) -> Truth:
    groups: dict[str, dict[str, list[str]]] = {
        k: defaultdict(list) for k in ("all", "category", "lab", "lab_category")
    }
    for r in rows:
        groups["all"][""].append(r["user"])
        groups["category"][r["category"]].append(r["user"])
        groups["lab"][r["lab"]].append(r["user"])
        groups["lab_category"][f"{r['lab']}/{r['category']}"].append(r["user"])
    return {
        name: {k: (len(users), len(set(users))) for k, users in found.items()}
        for name, found in groups.items()
    }


@pytest.fixture(scope="module")
def year() -> SessionYear:
    return simulate_year(SITE, FIRST, DAYS, TZ)


def test_a_simulated_year_of_sessions_equals_the_truth_through_the_rollups(
    year: SessionYear, influx: InfluxV1, config: Config, tmp_path: Path
) -> None:
    received = END + 3 * DAY  # the collector's clock for the decoder's future check
    lines = [
        text
        for topic, payload in year.messages
        for text in parse(topic.encode(), payload, received)[1]
    ]
    influx.write_lines(lines)
    sample_times = [int(t.rsplit(" ", 1)[1]) for t in lines if t.startswith("sample,")]
    last_hour = hour_of(max(sample_times))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY, encoding="utf-8")
    opening = OpeningHours(load(inventory))
    now = last_hour + 2 * 3_600_000

    # The live recompute for the first week of March (the summer-time change is on the 30th).
    week = (_ms(2025, 3, 3), _ms(2025, 3, 10))
    rollups = Rollups(
        influx, influx, Metrics(), site=SITE, state_path=tmp_path / "r.json",
        grace_s=0, settle_s=0, opening=opening,
    )  # fmt: skip
    rollups.touch(range(week[0], week[1], 3_600_000))
    far = float("inf")  # after every due time: Rollups schedules them by the real clock
    rollups.run_due(far)
    rollups.run_due(far)
    live = _points(influx, week)
    assert live  # sessions were rolled up that week

    influx.write_lines(rollup_lines(influx, last_hour, SITE))  # how far rollups go
    assert backfill(influx, influx, START, END, SITE, opening) > 0
    assert _points(influx, week) == live  # the rebuild agrees with the live recompute

    def counted(a: int, b: int, lab: str | None = None) -> Truth:
        found = scope.open_scope(influx, opening, a, b, Filters(site=SITE, lab=lab), now)
        assert found.plan.rolled_until is not None and found.plan.rolled_until > a
        return _as_truth(session_counts.summary(session_counts.count(found)))

    truth = year.truth(START, END)
    assert truth["all"][""][0] > 2000 and truth["all"][""][1] < 130  # users recur
    crossing = [s for s in year.sessions if CAL.day_of(s.start_ms) != CAL.day_of(s.end_ms - 1)]
    assert len(crossing) > 50  # sessions past midnight, counted once on their first day
    assert counted(START, END) == truth
    for lab in ("lab-a", "lab-b"):
        mine = counted(START, END, lab)
        assert mine["lab"] == {lab: truth["lab"][lab]}

    # Windows up to 31 days, with unaligned edges, across both clock changes: the rollups
    # and raw edges equal the raw listing and the truth.
    windows = [
        (_ms(2025, 1, 1), _ms(2025, 2, 1)),
        (_ms(2025, 3, 17, 13, 37), _ms(2025, 4, 6, 7, 11)),
        (_ms(2025, 10, 20, 22, 30), _ms(2025, 11, 3, 0, 45)),
        (_ms(2025, 6, 10, 23, 0), _ms(2025, 6, 11, 1, 0)),
    ]
    for a, b in windows:
        found = scope.open_scope(influx, opening, a, b, Filters(site=SITE), now)
        listed = session_list.sessions(found)
        assert _listing_truth(listed) == year.truth(a, b) == counted(a, b), (a, b)

    # Through the API and the report, over the year.
    api = make_api(config, tmp_path / "api", inventory)
    summary = api.get("/api/v1/sessions/summary", start=START // 1000, end=END // 1000)
    assert _as_truth(summary) == truth
    report = api.get("/api/v1/report", start=START // 1000, end=END // 1000, format="json")
    assert _as_truth(report["sessions"]) == truth
    assert sum(e["sessions"] for e in report["equipment"]) == truth["all"][""][0]

    # The whole months are read from the rollups: without June's raw samples and events the
    # year still counts June's sessions.
    june = (_ms(2025, 6, 1), _ms(2025, 7, 1))
    for raw in ("sample", "event"):
        influx.query(f'DELETE FROM "{raw}" WHERE time >= {june[0]}ms AND time < {june[1]}ms')
    assert counted(START, END) == truth
    assert counted(*june) == year.truth(*june)


def _points(influx: InfluxV1, span: tuple[int, int]) -> dict[tuple[object, ...], object]:
    out: dict[tuple[object, ...], object] = {}
    for series in influx.query(
        f'SELECT "sessions", "users" FROM rollup_sessions_daily WHERE time >= {span[0]}ms '
        f"AND time < {span[1]}ms GROUP BY device, category"
    ):
        for t, n, users in series.values:
            out[(t, series.tags["device"], series.tags["category"])] = (n, users)
    return out


def test_a_late_sample_that_joins_two_runs_across_midnight_moves_the_count(
    influx: InfluxV1, tmp_path: Path
) -> None:
    """A run 23:00-01:00 with its 23:55 sample late: first two sessions (one each day), then,
    when the late sample lands, one, on the day it began; the next day's point drops to 0."""
    topic = Topic(SITE, "lab-a", "pc-09", "sample")
    user = "p_00000000000000ab"
    night = _ms(2025, 5, 5, 23, 0)
    late = night + 55 * 60_000

    def sample(begin: int) -> list[str]:
        payload = encode(
            Sample(begin + 300_000, begin // 1000, 300.0, {"in_use": 300.0}, "school", user, "pc")
        )
        return parse(str(topic).encode(), payload, night + 10 * DAY)[1]

    lines = [text for t in range(night, night + 2 * 3_600_000, 300_000) if t != late
             for text in sample(t)]  # fmt: skip
    influx.write_lines(lines)
    rollups = Rollups(
        influx, influx, Metrics(), site=SITE, state_path=tmp_path / "r.json",
        grace_s=0, settle_s=0,
    )  # fmt: skip
    far = float("inf")  # after every due time: Rollups schedules them by the real clock

    def roll(hours: range | list[int]) -> dict[object, object]:
        rollups.touch(hours)
        rollups.run_due(far)
        rollups.run_due(far)
        return {k[0]: v for k, v in _points(influx, (night - DAY, night + 2 * DAY)).items()}

    first, second = CAL.day_of(night), CAL.next_day(CAL.day_of(night))
    assert roll(range(night, night + 2 * 3_600_000, 3_600_000)) == {
        first: (1, user), second: (1, user),
    }  # fmt: skip
    influx.write_lines(sample(late))
    assert roll([hour_of(late)]) == {first: (1, user), second: (0, "")}
    # Both days from their rollups: no raw sample lies after the last rolled-up hour.
    for a, b, expected in ((first, second + DAY, 1), (second, second + DAY, 0)):
        found = scope.open_scope(influx, OpeningHours(None), a, b, Filters(), second + 2 * DAY)
        assert found.plan.rolled_until == b
        assert a in found.plan.day_layouts[(SITE, "lab-a")]
        assert sum(session_counts.count(found).devices.values()) == expected

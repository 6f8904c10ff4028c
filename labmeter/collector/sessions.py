"""Session rollups: per device, category and local day, the sessions begun that day and their
distinct pseudonyms; per local month, the days' sums and unions.

Sessions are found in the raw samples and events (never in the hourly rollups, which hold no
pseudonym) by the one definition the API's listing uses (``labmeter/sessions.py``), so a
window's count from the rollups equals the count read from raw points. Distinct users do not
add up across days, so the day's pseudonyms are kept (already pseudonyms: HMACs made on the
agent) and a window's users are the exact union of its days' and months'. A day is read on its
own, one query for its samples and one for its events: a month of a region's samples at once
would not fit in memory.

Beside the points per device and category, each day and month gets the same sessions summed
per asset and per lab and category (``SessionSums``), from the very points written, so both
agree to the last pseudonym; the API reads a year of a region's labs from them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Protocol

from labmeter.influx import FieldValue, QueryResult, line
from labmeter.influxql import Select, col, select
from labmeter.schema import (
    DEVICE_TAGS,
    LAB_TAGS,
    SESSION_TAGS,
    SESSIONS,
    USERS,
    Calendar,
    Period,
    sessions_asset_rollup,
    sessions_lab_rollup,
    sessions_rollup,
)
from labmeter.sessions import events_query, join_users, samples_query, sessions, split_users

Key = tuple[str, ...]  # SESSION_TAGS' values


class Reader(Protocol):
    def query(self, influxql: Select | str, *, epoch: str = "ms") -> list[QueryResult]: ...


class SessionSums:
    """Points per device and category summed per asset and per lab and category: sessions
    added, pseudonyms joined. A key whose points are all zero gets a zero point, so a day
    recomputed to no session overwrites what it had."""

    def __init__(self) -> None:
        self.assets: dict[tuple[int, Key], int] = defaultdict(int)
        self.labs: dict[tuple[int, Key], int] = defaultdict(int)
        self.users: dict[tuple[int, Key], set[str]] = defaultdict(set)

    def add(self, tags: dict[str, str], t: int, sessions: int, users: set[str]) -> None:
        asset = (t, tuple(tags.get(k, "") for k in DEVICE_TAGS))
        lab = (t, tuple(tags.get(k, "") for k in LAB_TAGS))
        self.assets[asset] += sessions
        self.labs[lab] += sessions
        self.users[lab] |= users

    def lines(self, period: Period) -> list[str]:
        out = []
        asset, lab = sessions_asset_rollup(period), sessions_lab_rollup(period)
        for (t, key), n in sorted(self.assets.items()):
            out.append(line(asset.name, dict(zip(asset.tags, key, strict=True)), {SESSIONS: n}, t))
        for (t, key), n in sorted(self.labs.items()):
            fields: dict[str, FieldValue] = {SESSIONS: n, USERS: join_users(self.users[(t, key)])}
            out.append(line(lab.name, dict(zip(lab.tags, key, strict=True)), fields, t))
        return out


def _site(q: Select, site: str) -> Select:
    return q.where(site=None if site == "+" else site)


def day_lines(
    reader: Reader, first_day_ms: int, end_ms: int, site: str, cal: Calendar
) -> list[str]:
    """The daily session points of the local days from ``first_day_ms`` to ``end_ms``."""
    lines: list[str] = []
    summed = SessionSums()
    day = first_day_ms
    while day < end_ms:
        after = cal.next_day(day)
        samples = reader.query(_site(samples_query(day, after), site))
        events = reader.query(_site(events_query(day, after, cal), site))
        found = sessions(_records(samples), _records(events), day, after, cal)
        counts: dict[Key, int] = defaultdict(int)  # SESSION_TAGS' values -> sessions
        users: dict[Key, set[str]] = defaultdict(set)
        for s in found:
            counts[(s.site, s.lab, s.device, s.category)] += 1
            users[(s.site, s.lab, s.device, s.category)].add(s.user)
        name = sessions_rollup(Period.daily).name
        # A key that had sessions when the day was last computed and has none now (late data
        # joined two runs) gets a zero point: its old one must not stand.
        q = select(col(SESSIONS), source=sessions_rollup(Period.daily)).between(day, after)
        for series in reader.query(_site(q, site).group_by(*SESSION_TAGS)):
            key = tuple(series.tags.get(t, "") for t in SESSION_TAGS)
            counts.setdefault(key, 0)
        for key, n in sorted(counts.items()):
            tags = dict(zip(SESSION_TAGS, key, strict=True))
            fields: dict[str, FieldValue] = {SESSIONS: n, USERS: join_users(users[key])}
            lines.append(line(name, tags, fields, day))
            summed.add(tags, day, n, users[key])
        day = after
    return lines + summed.lines(Period.daily)


def month_lines(reader: Reader, month_ms: int, site: str, cal: Calendar) -> list[str]:
    """The monthly session points of the local month at ``month_ms``: its days summed."""
    q = select(col(SESSIONS), col(USERS), source=sessions_rollup(Period.daily))
    q = _site(q.between(month_ms, cal.next_month(month_ms)), site).group_by(*SESSION_TAGS)
    lines = []
    summed = SessionSums()
    for series in reader.query(q):
        counted, users = 0, set()
        for _t, n, names in series.values:
            counted += int(n or 0)
            users |= split_users(names)
        fields: dict[str, FieldValue] = {SESSIONS: counted, USERS: join_users(users)}
        lines.append(line(sessions_rollup(Period.monthly).name, series.tags, fields, month_ms))
        summed.add(series.tags, month_ms, counted, users)
    return lines + summed.lines(Period.monthly)


def coarse_lines(reader: Reader, start_ms: int, end_ms: int, period: Period) -> list[str]:
    """The session rollups per asset and per lab of ``period`` in [start, end), summed again
    from those per device and category (a period's evidence holds only those)."""
    summed = SessionSums()
    q = select(col(SESSIONS), col(USERS), source=sessions_rollup(period))
    for series in reader.query(q.between(start_ms, end_ms).group_by(*SESSION_TAGS)):
        for t, n, names in series.values:
            summed.add(series.tags, int(t), int(n or 0), split_users(names))
    return summed.lines(period)


def _records(results: list[QueryResult]) -> list[dict[str, object]]:
    return [record for series in results for record in series.records()]

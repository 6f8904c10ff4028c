"""The one place where identifiers and values become InfluxQL text.

Every read of the API and every rollup query is a ``Select`` built here, so the safety of a
query rests on two quoting functions tested against real InfluxDB, not on the care of each
caller. Identifiers are always double-quoted and string values single-quoted, with the
escapes InfluxQL's scanner knows (``\\\\``, ``\\'``, ``\\"`` and ``\\n``: a raw newline
ends a string with an error); numbers and times are formatted from ints and floats only.
InfluxQL over ``/query`` is the read language because it runs on InfluxDB 1.x, 2.x and 3.x.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from labmeter.schema import Measurement

Aggregate = Literal["sum", "count", "max", "min", "first", "last", "mean"]
Comparison = Literal["=", "!=", "<", "<=", ">", ">="]
_AGGREGATES = frozenset({"sum", "count", "max", "min", "first", "last", "mean"})
_COMPARISONS = frozenset({"=", "!=", "<", "<=", ">", ">="})


def _escape(text: str, quote: str) -> str:
    return text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def ident(name: str) -> str:
    """An identifier (measurement, tag, field, alias) as InfluxQL text."""
    return '"' + _escape(name, '"') + '"'


def string(value: str) -> str:
    """A string value as InfluxQL text."""
    return "'" + _escape(value, "'") + "'"


def number(value: int | float) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("InfluxQL has no NaN or infinity")
    return repr(value)


def _ms(value: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"a time must be integer milliseconds: {value!r}")
    return f"{value}ms"


STAR = "*"  # every field (and, in GROUP BY, every tag)


def col(name: str, alias: str | None = None) -> str:
    """A plain field or tag column (``STAR``: every field)."""
    if name == STAR:
        return STAR
    return ident(name) + (f" AS {ident(alias)}" if alias else "")


def agg(function: Aggregate, name: str, alias: str | None = None) -> str:
    """``function(name) AS alias`` (alias defaults to the field's own name); ``name`` may be
    ``STAR`` (every field, one column each: no alias)."""
    if function not in _AGGREGATES:
        raise ValueError(f"unknown aggregate {function!r}")
    if name == STAR:
        return f"{function}({STAR})"
    return f"{function}({ident(name)}) AS {ident(alias or name)}"


def sums(names: Iterable[str]) -> tuple[str, ...]:
    """``sum(x) AS x`` for each field."""
    return tuple(agg("sum", n) for n in names)


@dataclass(frozen=True)
class Select:
    """One SELECT statement, immutable: each method returns a narrower copy, e.g.
    ``select(agg("sum", IN_USE), source=SAMPLE).between(a, b).where(site=s).group_by(LAB)``.
    """

    columns: tuple[str, ...]
    source: Measurement | Select
    conditions: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    every_ms: int | None = None
    fill_none: bool = False
    zone: str | None = None
    latest: int | None = None  # ORDER BY time DESC LIMIT n

    def between(self, start_ms: int, end_ms: int) -> Select:
        """``start <= time < end``: half-open, as every window in labmeter."""
        return self._and(f"time >= {_ms(start_ms)} AND time < {_ms(end_ms)}")

    def since(self, start_ms: int) -> Select:
        return self._and(f"time >= {_ms(start_ms)}")

    def before(self, end_ms: int) -> Select:
        return self._and(f"time < {_ms(end_ms)}")

    def last(self, rows: int = 1) -> Select:
        """Only the newest ``rows`` points of each series."""
        if rows < 1:
            raise ValueError("at least one row")
        return replace(self, latest=rows)

    def where(self, **tags: str | None) -> Select:
        """Tags equal to values; a None or empty value does not filter."""
        return self.where_tags(tags)

    def where_tags(self, tags: Mapping[str, str | None]) -> Select:
        out = self
        for key, value in tags.items():
            if value:
                out = out._and(f"{ident(key)} = {string(value)}")
        return out

    def where_field(self, name: str, op: Comparison, value: int | float) -> Select:
        if op not in _COMPARISONS:
            raise ValueError(f"unknown comparison {op!r}")
        return self._and(f"{ident(name)} {op} {number(value)}")

    def where_in(self, key: str, values: Collection[str]) -> Select:
        """``key`` equal to one of ``values`` (none: nothing matches)."""
        if not values:
            return self._and(f"{ident(key)} = '' AND {ident(key)} != ''")
        return self._and("(" + " OR ".join(f"{ident(key)} = {string(v)}" for v in values) + ")")

    def where_any(self, keys: Iterable[tuple[str, ...]], tags: tuple[str, ...]) -> Select:
        """Series whose ``tags`` equal one of ``keys`` (none: nothing matches)."""
        terms = [
            "("
            + " AND ".join(f"{ident(t)} = {string(v)}" for t, v in zip(tags, key, strict=True))
            + ")"
            for key in keys
        ]
        if not terms:
            return self._and(f"{ident(tags[0])} = '' AND {ident(tags[0])} != ''")
        return self._and("(" + " OR ".join(terms) + ")")

    def excluding(self, keys: Iterable[tuple[str, ...]], tags: tuple[str, ...]) -> Select:
        """Leave out the series whose ``tags`` equal each key (e.g. unregistered devices)."""
        out = self
        for key in keys:
            parts = (f"{ident(t)} != {string(v)}" for t, v in zip(tags, key, strict=True))
            out = out._and("(" + " OR ".join(parts) + ")")
        return out

    def group_by(
        self,
        *tags: str,
        every_ms: int | None = None,
        fill_none: bool = False,
        zone: str | None = None,
    ) -> Select:
        """GROUP BY tags, and by time buckets of ``every_ms`` (local to ``zone``) if given."""
        if every_ms is not None and (every_ms <= 0 or every_ms % 60_000):
            raise ValueError("time buckets must be whole minutes")
        if zone is not None:
            try:
                ZoneInfo(zone)  # only an IANA zone's name becomes query text
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown time zone {zone!r}") from exc
        return replace(self, groups=tags, every_ms=every_ms, fill_none=fill_none, zone=zone)

    def _and(self, condition: str) -> Select:
        return replace(self, conditions=(*self.conditions, condition))

    def __str__(self) -> str:
        source = (
            ident(self.source.name) if isinstance(self.source, Measurement) else f"({self.source})"
        )
        text = f"SELECT {', '.join(self.columns)} FROM {source}"
        if self.conditions:
            text += " WHERE " + " AND ".join(self.conditions)
        groups = [STAR if t == STAR else ident(t) for t in self.groups]
        if self.every_ms is not None:
            groups.insert(0, f"time({self.every_ms // 60_000}m)")
        if groups:
            text += " GROUP BY " + ", ".join(groups)
        if self.fill_none:
            text += " fill(none)"
        if self.latest is not None:
            text += f" ORDER BY time DESC LIMIT {self.latest}"
        if self.zone:
            text += f" tz({string(self.zone)})"
        return text


def select(*columns: str, source: Measurement | Select) -> Select:
    """Start a query: ``select(agg("sum", "in_use_s"), source=SAMPLE)``."""
    if not columns:
        raise ValueError("a query needs at least one column")
    return Select(columns, source)


def statements(queries: Iterable[Select]) -> str:
    """Several SELECTs as one request's text: InfluxDB answers each apart, in order, and many
    small reads (a booking's edges) cost one round trip instead of one each."""
    return ";\n".join(str(q) for q in queries)


def create_database(name: str, shard_weeks: int | None = None) -> str:
    """``shard_weeks``: the default policy's shard duration (1.x's own: 1 week)."""
    shards = f" WITH SHARD DURATION {int(shard_weeks)}w" if shard_weeks else ""
    return f"CREATE DATABASE {ident(name)}{shards}"


def show_measurements() -> str:
    return "SHOW MEASUREMENTS"


def show_series(
    measurement: Measurement,
    tags: Mapping[str, str | None],
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> str:
    """The series keys of a measurement (``name,tag=value,...``) whose tags equal ``tags``;
    with a window, those of the shards that overlap it (InfluxDB does not look at points)."""
    terms = [f"{ident(k)} = {string(v)}" for k, v in tags.items() if v]
    if start_ms is not None:
        terms.append(f"time >= {_ms(start_ms)}")
    if end_ms is not None:
        terms.append(f"time < {_ms(end_ms)}")
    where = " AND ".join(terms)
    return f"SHOW SERIES FROM {ident(measurement.name)}" + (f" WHERE {where}" if where else "")


def show_field_keys(measurement: Measurement) -> str:
    return f"SHOW FIELD KEYS FROM {ident(measurement.name)}"


def show_retention_policies(database: str) -> str:
    return f"SHOW RETENTION POLICIES ON {ident(database)}"


def retention_policy(
    name: str, database: str, duration_s: int, *, create: bool, default: bool = True
) -> str:
    """CREATE (replication 1) or ALTER a retention policy; ``duration_s`` 0 keeps forever."""
    if duration_s < 0 or duration_s % 3600:
        raise ValueError("a retention is whole hours (0: forever)")
    duration = f"{duration_s // 3600}h" if duration_s else "INF"
    verb, replication = ("CREATE", " REPLICATION 1") if create else ("ALTER", "")
    text = f"{verb} RETENTION POLICY {ident(name)} ON {ident(database)} DURATION {duration}"
    return text + replication + (" DEFAULT" if default else "")


Privilege = Literal["READ", "WRITE", "ALL"]
_PRIVILEGES = frozenset({"READ", "WRITE", "ALL"})


def show_users() -> str:
    return "SHOW USERS"


def create_user(name: str, password: str) -> str:
    """A user without privileges (``grant`` gives them): never an admin."""
    return f"CREATE USER {ident(name)} WITH PASSWORD {string(password)}"


def grant(privilege: Privilege, database: str, user: str) -> str:
    if privilege not in _PRIVILEGES:
        raise ValueError(f"unknown privilege {privilege!r}")
    return f"GRANT {privilege} ON {ident(database)} TO {ident(user)}"


def revoke_all(database: str, user: str) -> str:
    return f"REVOKE ALL ON {ident(database)} FROM {ident(user)}"

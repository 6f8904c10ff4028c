"""The InfluxQL builder against real InfluxDB: hostile values select exactly their own point."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from labmeter.errors import QueryError
from labmeter.influx import InfluxV1, line
from labmeter.influxql import agg, col, ident, select, string
from labmeter.schema import ALL, Measurement

ODD = Measurement('odd "measure", with\\back and spaces', ("site",), ("v",))
VALUES = [
    "it's",
    "back\\slash",
    '"quoted"',
    "' OR '1'='1",
    '" OR 1=1',
    "a' OR site =~ /.*/ OR site = 'b",
    "ünïcødé 日本 🚀",
    "lungo-" + "è" * 2000,
    "x",
]


@pytest.fixture
def odd(influx: InfluxV1) -> InfluxV1:
    influx.write_lines(
        [line(ODD.name, {"site": v, 'ta"g': v}, {"v": float(i)}, i) for i, v in enumerate(VALUES)]
    )
    return influx


def test_each_hostile_value_selects_exactly_its_own_point(odd: InfluxV1) -> None:
    for i, value in enumerate(VALUES):
        q = select(col("v"), source=ODD).since(0).where(site=value)
        rows = [row for series in odd.query(q) for row in series.values]
        assert rows == [[i, float(i)]], value
        q = select(agg("sum", "v", 'we"ird alias'), source=ODD).since(0)
        q = q.where_tags({'ta"g': value})
        assert odd.query(q)[0].values[0][1] == float(i)


def test_values_no_point_can_hold_are_an_empty_answer_not_an_error(odd: InfluxV1) -> None:
    # A newline or a trailing backslash cannot be written in a tag value (line protocol).
    for value in ("x\n", "x\nOR 1=1", "\n", "x\\", "\\"):
        assert odd.query(select(col("v"), source=ODD).since(0).where(site=value)) == []


def test_where_in_and_excluding_quote_every_value(odd: InfluxV1) -> None:
    q = select(col("v"), source=ODD).since(0).where_in("site", ["it's", '" OR 1=1'])
    assert sorted(r[1] for s in odd.query(q) for r in s.values) == [0.0, 4.0]
    q = select(col("v"), source=ODD).since(0).where_in("site", [])
    assert odd.query(q) == []
    q = select(col("v"), source=ODD).since(0).excluding([(v,) for v in VALUES[1:]], ("site",))
    assert [r[1] for s in odd.query(q) for r in s.values] == [0.0]


def test_time_buckets_in_a_zone(odd: InfluxV1) -> None:
    q = select(agg("count", "v"), source=ODD).between(0, 86_400_000)
    rows = odd.query(q.group_by(every_ms=86_400_000, fill_none=True, zone="Europe/Rome"))
    assert rows[0].values[0] == [-3_600_000, len(VALUES)]  # Rome's midnight, 23:00 UTC
    with pytest.raises(ValueError):
        select(col("v"), source=ODD).group_by(every_ms=1500)
    with pytest.raises(ValueError, match="unknown time zone"):
        select(col("v"), source=ODD).group_by(every_ms=60_000, zone="Europe/Nowhere'")


def test_line_protocol_refuses_what_influxdb_cannot_store() -> None:
    for value in ("trailing\\", "a\\,b", "a\\ b", "a\\=b"):
        with pytest.raises(ValueError):
            line("m", {"site": value}, {"v": 1.0}, 0)


def test_quoting_functions() -> None:
    assert ident('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'
    assert string("it's\\\n") == "'it\\'s\\\\\\n'"
    with pytest.raises(TypeError):
        select(col("v"), source=ODD).between(1.5, 2)  # type: ignore[arg-type]


def test_bad_query_text_is_a_query_error_not_a_crash(influx: InfluxV1) -> None:
    with pytest.raises(QueryError):
        influx.query("SELECT FROM WHERE")


SOURCES = [Path(__file__).parents[2] / "labmeter"]
OWNERS = {"schema.py", "influxql.py"}


def test_measurement_names_and_query_text_live_in_one_place() -> None:
    """No production module names a measurement or writes InfluxQL itself. ``sample``,
    ``event`` and ``status`` are also MQTT channels and fields, so for those only their use
    as a measurement counts: a line of line protocol, ``line("...")``, ``FROM ...``."""
    shared = {"sample", "event", "status"}
    unique = "|".join(re.escape(m.name) for m in ALL if m.name not in shared)
    every = "|".join(re.escape(m.name) for m in ALL)
    patterns = [
        re.compile(rf"""["'](?:{unique})["',]"""),  # a rollup's or app_usage's name
        re.compile(r"""\bline\(\s*["'](?:sample|event|status)["']"""),
        re.compile(r"""\bf?["'](?:sample|event|status),[{a-z]"""),  # hand-built line protocol
        re.compile(rf"""FROM\s+"?(?:{every})\b"""),
        re.compile(r"""["'](?:CREATE|DROP) (?:DATABASE|SERIES|MEASUREMENT|RETENTION)"""),
        re.compile(r"""["']SHOW (?:MEASUREMENTS|TAG|FIELD|SERIES|RETENTION)"""),
    ]
    found = []
    for folder in SOURCES:
        for path in folder.rglob("*.py"):
            if path.name in OWNERS:
                continue
            for n, text in enumerate(path.read_text().splitlines(), start=1):
                found += [f"{path.name}:{n}: {text.strip()}" for p in patterns if p.search(text)]
    assert found == []

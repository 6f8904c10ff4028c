"""Property-based tests of the collector's parsing (``collector.convert.parse``, and
``collector.convert.convert``, which the collector runs on chunks of messages).

Any topic and payload: nothing but ``PayloadRejected`` (with a reason) escapes. Any valid
message: its lines are accepted by the real InfluxDB and read back with the same values.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from labmeter.collector.convert import convert, parse
from labmeter.contract import CATEGORIES, EVENT_TYPES, STATES
from labmeter.errors import PayloadRejected
from labmeter.influx import InfluxV1
from labmeter.influxql import string

NOW_MS = int(time.time() * 1000)
_devices = itertools.count()

segment = st.from_regex(r"[a-z0-9_-]{1,12}", fullmatch=True)
name = st.from_regex(r"[a-z0-9_.-]{1,12}", fullmatch=True)
text = st.text(max_size=256)  # any unicode: quotes, backslashes, newlines, NULs
finite = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def valid_sample(draw: st.DrawFn) -> dict[str, Any]:
    interval = draw(st.floats(min_value=0.001, max_value=3600))
    states = draw(st.lists(st.sampled_from(STATES), unique=True, max_size=6))
    shares = [draw(st.floats(min_value=0, max_value=1)) for _ in states]
    total = sum(shares) or 1.0
    body: dict[str, Any] = {
        "v": 1,
        "ts": draw(st.integers(min_value=round(interval * 1000), max_value=NOW_MS)),
        "seq": draw(st.integers(min_value=0, max_value=2**53)),
        "interval_s": interval,
        "state_s": {s: interval * w / total * 0.999 for s, w in zip(states, shares, strict=True)},
        "category": draw(st.sampled_from(CATEGORIES)),
        "apps_s": draw(
            st.dictionaries(name, st.floats(min_value=0, max_value=interval), max_size=3)
        ),
        "metrics": draw(st.dictionaries(name, finite, max_size=3)),
    }
    if draw(st.booleans()):
        body["user"] = "p_" + draw(st.from_regex(r"[0-9a-f]{16}", fullmatch=True))
    if draw(st.booleans()):
        body["kind"] = draw(segment)
    if draw(st.booleans()):
        body["state"] = draw(st.sampled_from(STATES))
    return body


@st.composite
def valid_event(draw: st.DrawFn) -> dict[str, Any]:
    # Each data key carries one type, so two examples cannot clash on a field's type (that
    # clash is a real InfluxDB 400, handled by the writer, not by parsing).
    typed = st.one_of(
        st.tuples(st.just("s_"), text),
        st.tuples(st.just("i_"), st.integers(min_value=-(2**63), max_value=2**63 - 1)),
        st.tuples(st.just("f_"), finite),
        st.tuples(st.just("b_"), st.booleans()),
    )
    data = {f"{p}{k}": v for k, (p, v) in draw(st.dictionaries(name, typed, max_size=4)).items()}
    return {
        "v": 1,
        "ts": draw(st.integers(min_value=0, max_value=NOW_MS)),
        "seq": draw(st.integers(min_value=0, max_value=2**53)),
        "type": draw(st.sampled_from(EVENT_TYPES)),
        "category": draw(st.sampled_from(CATEGORIES)),
        "data": data,
    }


@st.composite
def valid_status(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "status": draw(st.sampled_from(["online", "offline"]))}
    if draw(st.booleans()):
        body["ts"] = draw(st.integers(min_value=0, max_value=NOW_MS))
    if draw(st.booleans()):
        body["agent"] = draw(st.text(max_size=64))
    if draw(st.booleans()):
        body["interval_s"] = draw(st.floats(min_value=0.001, max_value=3600))
    return body


VALID = {"sample": valid_sample(), "event": valid_event(), "status": valid_status()}


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A valid payload with one key changed, removed or added: the near misses."""
    channel = draw(st.sampled_from(sorted(VALID)))
    body = draw(VALID[channel])
    key = draw(st.sampled_from(sorted(body)) | st.text(max_size=10))
    if draw(st.booleans()):
        body.pop(key, None)
    else:
        body[key] = draw(json_value)
    return channel, body


topics = st.one_of(
    st.builds(
        lambda site, lab, dev, ch: f"labmeter/v1/{site}/{lab}/{dev}/{ch}",
        segment,
        segment,
        segment,
        st.sampled_from(["sample", "event", "status"]),
    ),
    st.builds(lambda parts: "/".join(parts), st.lists(st.text(max_size=10), max_size=8)),
)


any_message = st.one_of(
    st.tuples(topics.map(str.encode), st.binary(max_size=300)),
    st.tuples(st.binary(max_size=80), st.binary(max_size=80)),
    mutated().map(
        lambda cb: (f"labmeter/v1/site/lab/dev/{cb[0]}".encode(), json.dumps(cb[1]).encode())
    ),
    st.tuples(topics.map(str.encode), json_value.map(lambda v: json.dumps(v).encode())),
)


@given(any_message)
@settings(max_examples=300, deadline=None)
def test_anything_parses_or_is_rejected_with_a_reason(message: tuple[bytes, bytes]) -> None:
    topic, payload = message
    try:
        _, lines = parse(topic, payload, NOW_MS)
    except PayloadRejected as exc:
        assert exc.reason and isinstance(exc.reason, str)
        return
    assert lines and all(isinstance(x, str) for x in lines)


@given(st.lists(any_message, max_size=12))
@settings(max_examples=100, deadline=None)
def test_a_chunk_converts_to_what_its_messages_parse_to(
    messages: list[tuple[bytes, bytes]],
) -> None:
    """What the collector runs: each message is either in the lines or rejected."""
    chunk = [(i, 1, topic, payload, b"") for i, (topic, payload) in enumerate(messages)]
    expected_lines: list[str] = []
    expected_rejected: list[tuple[int, str, str]] = []
    for i, (topic, payload) in enumerate(messages):
        try:
            expected_lines += parse(topic, payload, NOW_MS)[1]
        except PayloadRejected as exc:
            expected_rejected.append((i, exc.reason, exc.detail))
    converted = convert(chunk, NOW_MS)
    assert converted.lines == expected_lines
    assert converted.rejected == expected_rejected
    assert all(reason for _, reason, _ in converted.rejected)


@given(st.sampled_from(sorted(VALID)).flatmap(lambda c: st.tuples(st.just(c), VALID[c])))
@example(
    ("event", {"v": 1, "ts": 1, "seq": 0, "type": "alarm", "data": {"s_m": 'a\nb "q" \\ \r\x00'}})
)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_valid_message_is_written_and_reads_back(
    influx: InfluxV1, uid: str, channel_body: tuple[str, dict[str, Any]]
) -> None:
    channel, body = channel_body
    device = f"d{next(_devices)}"
    _, lines = parse(
        f"labmeter/v1/{uid}/lab/{device}/{channel}".encode(), orjson.dumps(body), NOW_MS
    )
    influx.write_lines(lines)  # raises WriteError on any refused line
    rows = influx.query(
        "SELECT * FROM sample, app_usage, device_metrics, event, status "
        f"WHERE device = {string(device)} AND time >= 0 GROUP BY *"
    )
    assert sum(len(s.values) for s in rows) == len(lines)
    records = [r for s in rows for r in s.records()]
    if channel == "event":
        for key, value in body["data"].items():
            assert records[0][f"d_{key}"] == value  # strings survive escaping intact
    if channel == "status" and "agent" in body:
        assert records[0]["agent"] == body["agent"]

"""Valid messages -> line protocol. Tags stay low-cardinality: never a user, seq or session id.

A point's identity is measurement + tags + time, and time comes from the agent's payload: a
replayed message overwrites its own point instead of being counted twice. A sample's point is
stamped at the *start* of its interval (``ts - interval_s``): the agent cuts samples on every
interval boundary, so each one then falls whole inside InfluxQL's ``GROUP BY time()`` buckets
and inside any aligned ``time >= start AND time < end`` window. Stamped at its end, the
sample covering 08:59-09:00 would be counted in the 09:00 hour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import orjson

from labmeter.collector.admission import NO_LIMITS, Admission
from labmeter.contract import (
    MAX_PAYLOAD_BYTES,
    STATES,
    Event,
    Message,
    Sample,
    Status,
    Topic,
    decode,
    plain_sample,
)
from labmeter.errors import PayloadRejected
from labmeter.influx import FieldValue, line
from labmeter.schema import (
    APP_USAGE,
    DEVICE_METRICS,
    EVENT,
    EVENT_DATA_PREFIX,
    HOUR_MS,
    SAMPLE,
    STATUS,
    hour_of,
)
from labmeter.sessions import SESSION_EVENTS

_SAMPLE, _APP_USAGE, _METRICS = SAMPLE.name, APP_USAGE.name, DEVICE_METRICS.name

# mid (0 for QoS 0), qos, topic, payload, properties (raw, b"" for none): one PUBLISH as the
# MQTT session hands it over
Delivery = tuple[int, int, bytes, bytes, bytes]


def _tags(message: Message) -> dict[str, str]:
    t = message.topic
    return {"site": t.site, "lab": t.lab, "device": t.device}


# Field templates by the names a sample's map has, in their order: "in_use_s=%r,idle_s=%r,
# setup_s=0.0,..." for its states (every state is written, 0.0 when absent, so each point has
# the same float fields), "cpu_pct=%r,..." for its metrics. One ``%`` then writes every value
# in C, where a list of f-strings and a join cost twice as much. Emptied when full: input
# full of distinct metric names cannot grow them without limit.
_STATES_FMT: dict[tuple[str, ...], str] = {}
_METRICS_FMT: dict[tuple[str, ...], str] = {}
_FMT_LIMIT: Final = 4096


def _states_fmt(names: tuple[str, ...]) -> str:
    fmt = _STATES_FMT.get(names)
    if fmt is None:
        if len(_STATES_FMT) >= _FMT_LIMIT:
            _STATES_FMT.clear()
        absent = [f"{s}_s=0.0" for s in STATES if s not in names]
        fmt = _STATES_FMT[names] = ",".join([f"{s}_s=%r" for s in names] + absent)
    return fmt


def _metrics_fmt(names: tuple[str, ...]) -> str:
    fmt = _METRICS_FMT.get(names)
    if fmt is None:
        if len(_METRICS_FMT) >= _FMT_LIMIT:
            _METRICS_FMT.clear()
        fmt = _METRICS_FMT[names] = ",".join([f"{k}=%r" for k in names])
    return fmt


class _Place(NamedTuple):
    """A sample topic and the parts of its lines that come from it."""

    topic: Topic
    device: str  # ",device=<device>"
    lab_site: str  # ",lab=<lab>,site=<site>"
    metrics: str  # a device_metrics line up to its fields


def _place(topic: Topic) -> _Place:
    device, lab_site = f",device={topic.device}", f",lab={topic.lab},site={topic.site}"
    return _Place(topic, device, lab_site, f"{_METRICS}{device}{lab_site} ")


# Raw sample topic -> its place (None: a valid topic of another channel). Only valid topics
# are kept, and it is emptied when full: input full of distinct topics cannot grow it.
_PLACES: dict[bytes, _Place | None] = {}
_PLACES_LIMIT: Final = 65536
_NONE: Final[dict[str, Any]] = {}  # an absent map; never mutated


# Longer intervals go through ``parse``: near float's limit, ``ts - interval_s * 1000``
# overflows and ``parse`` refuses the sample as unwritable.
_LONGEST_S: Final = 1e300
_UNKNOWN: Final = _place(Topic("unknown", "unknown", "unknown", "sample"))  # a topic not seen


def _sample_place(topic: bytes) -> _Place | None:
    """The place of a sample topic; None for any other topic (``parse`` then decides)."""
    try:
        parsed = Topic.parse(topic.decode("utf-8"))
    except (UnicodeDecodeError, PayloadRejected):
        return None  # not kept: parse refuses it, with its reason
    if len(_PLACES) >= _PLACES_LIMIT:
        _PLACES.clear()
    place = _PLACES[topic] = _place(parsed) if parsed.channel == "sample" else None
    return place


def _sample(message: Message, sample: Sample) -> list[str]:
    return _sample_lines(
        _place(message.topic),
        sample.start_ms,
        sample.interval_s,
        sample.seq,
        sample.state_s,
        sample.apps_s,
        sample.metrics,
        sample.category,
        sample.kind,
        sample.state,
        sample.user,
        sample.substate,
    )


def _sample_lines(
    place: _Place,
    start: int,
    interval_s: float,
    seq: int,
    state_s: Mapping[str, float],
    apps_s: Mapping[str, float],
    metrics: Mapping[str, float],
    category: str,
    kind: str | None,
    state: str | None,
    user: str | None,
    substate: str | None = None,
) -> list[str]:
    """A sample's lines, from a ``Sample`` or straight from a payload ``plain_sample`` passed
    (numbers may then be JSON integers: ``float()`` makes them what the contract makes them).

    The hot path (a backlog is almost all samples), so the lines are built by hand rather
    than through ``line()``: every tag value and field key here was already checked by the
    contract against [a-z0-9_.-] (topic segments, kind, app and metric names, categories),
    so nothing needs escaping, and tag keys are written in sorted order (InfluxDB's fast
    path). String values are a state name and a p_<hex> pseudonym: nothing to escape either.
    """
    seconds = tuple(map(float, state_s.values()))
    tags = (
        f"category={category}{place.device},kind={kind}{place.lab_site}"
        if kind
        else f"category={category}{place.device}{place.lab_site}"
    )
    end = f',user="{user}" {start}' if user is not None else f" {start}"
    at = f',state="{state}"' if state is not None else ""
    if substate is not None:  # SUBSTATE_PATTERN: no quote or backslash to escape
        at += f',substate="{substate}"'
    lines = [
        # observed_s: the contract's sum (of the same floats, in the same order)
        f"{_SAMPLE},{tags} {_states_fmt(tuple(state_s)) % seconds},"
        f"observed_s={float(sum(seconds))!r},interval_s={interval_s!r},seq={seq}i{at}{end}"
    ]
    if apps_s:
        for app in sorted(apps_s) if len(apps_s) > 1 else apps_s:
            lines.append(f"{_APP_USAGE},app={app},{tags} running_s={float(apps_s[app])!r}{end}")
    if metrics:
        values = _metrics_fmt(tuple(metrics)) % tuple(map(float, metrics.values()))
        lines.append(f"{place.metrics}{values} {start}")
    return lines


def _event(message: Message, event: Event) -> list[str]:
    tags = _tags(message) | {"type": event.type, "category": event.category}
    fields: dict[str, FieldValue] = {"seq": event.seq}
    if event.user is not None:
        fields["user"] = event.user
    fields.update({f"{EVENT_DATA_PREFIX}{k}": v for k, v in event.data.items()})
    return [line(EVENT.name, tags, fields, event.ts)]


def _status(message: Message, status: Status, received_ms: int) -> list[str]:
    fields: dict[str, FieldValue] = {"online": status.status == "online", "status": status.status}
    if status.kind is not None:
        fields["kind"] = status.kind
    if status.interval_s is not None:
        fields["interval_s"] = float(status.interval_s)
    if status.agent is not None:
        fields["agent"] = status.agent
    # The last will carries no ts (it was set at connect): it happened when it reached us.
    ts = status.ts if status.ts is not None else received_ms
    return [line(STATUS.name, _tags(message), fields, ts)]


def parse(topic: bytes, payload: bytes, received_ms: int) -> tuple[Message, list[str]]:
    """One MQTT message -> its decoded form and lines, or ``PayloadRejected`` with a reason."""
    try:
        text = topic.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadRejected("topic_invalid", "topic is not UTF-8") from exc
    message = decode(text, payload, received_ms)
    try:
        return message, to_lines(message, received_ms)
    # Valid JSON that line protocol cannot carry, or an interval so long that its start
    # overflows (``Sample.start_ms``).
    except (ValueError, OverflowError) as exc:
        raise PayloadRejected("unwritable", str(exc)[:200]) from exc


def to_lines(message: Message, received_ms: int) -> list[str]:
    payload = message.payload
    if isinstance(payload, Sample):
        return _sample(message, payload)
    if isinstance(payload, Event):
        return _event(message, payload)
    return _status(message, payload, received_ms)


class Converted(NamedTuple):
    """A chunk's lines, the hours its samples fall in, and its refusals."""

    lines: list[str]
    hours: set[int]
    rejected: list[tuple[int, str, str]]  # index in the chunk, reason, detail


def convert(chunk: list[Delivery], received_ms: int, admission: Admission = NO_LIMITS) -> Converted:
    """The lines of ``chunk``'s messages; a refusal's index is its place in ``chunk``.

    ``admission`` refuses closed periods and data older than the horizon.
    """
    lines: list[str] = []
    hours: set[int] = set()
    rejected: list[tuple[int, str, str]] = []
    places = _PLACES
    for i, (_mid, _qos, topic, payload, _props) in enumerate(chunk):
        try:
            # The fast path: a well-formed sample (most of a backlog) goes from its payload
            # to its lines without a Message; anything else, or anything unusual in it,
            # through ``parse`` and the full checker, which give the reason of a refusal.
            place = places.get(topic, _UNKNOWN)
            if place is _UNKNOWN:
                place = _sample_place(topic)
            obj = _load(payload) if place is not None else None
            if (
                place is not None
                and obj is not None
                and plain_sample(obj, received_ms)
                and (interval_s := float(obj["interval_s"])) < _LONGEST_S
            ):
                ts = obj["ts"]
                start = ts - round(interval_s * 1000)
                admission.check_span(place.topic.site, start, ts, received_ms)
                lines += _sample_lines(
                    place,
                    start,
                    interval_s,
                    obj["seq"],
                    obj["state_s"],
                    obj.get("apps_s", _NONE),
                    obj.get("metrics", _NONE),
                    obj.get("category", "unknown"),
                    obj.get("kind"),
                    obj.get("state"),
                    obj.get("user"),
                    obj.get("substate"),
                )
                hours.add(start - start % HOUR_MS)
                continue
            message, out = parse(topic, payload, received_ms)
            admission.check(message, received_ms)
        except PayloadRejected as exc:
            rejected.append((i, exc.reason, exc.detail))
            continue
        lines += out
        body = message.payload
        if isinstance(body, Sample):
            hours.add(hour_of(body.start_ms))
        elif isinstance(body, Event) and body.type in SESSION_EVENTS:
            hours.add(hour_of(body.ts))  # its day's session rollups follow it
    return Converted(lines, hours, rejected)


def _load(payload: bytes) -> dict[str, Any] | None:
    """The payload's JSON object, or None for anything else (``parse`` says why)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    return obj if type(obj) is dict else None

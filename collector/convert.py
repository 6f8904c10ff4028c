"""Valid messages -> line protocol. Tags stay low-cardinality: never a user, seq or session id.

A point's identity is measurement + tags + time, and time comes from the agent's payload: a
replayed message overwrites its own point instead of being counted twice. A sample's point is
stamped at the *start* of its interval (``ts - interval_s``): the agent cuts samples on every
interval boundary, so each one then falls whole inside InfluxQL's ``GROUP BY time()`` buckets
and inside any aligned ``time >= start AND time < end`` window. Stamped at its end, the
sample covering 08:59-09:00 would be counted in the 09:00 hour.
"""

from __future__ import annotations

from typing import NamedTuple

from collector.admission import NO_LIMITS, Admission
from labmeter.contract import STATES, Event, Message, Sample, Status, decode
from labmeter.errors import PayloadRejected
from labmeter.influx import FieldValue, line
from labmeter.schema import (
    APP_USAGE,
    DEVICE_METRICS,
    EVENT,
    EVENT_DATA_PREFIX,
    SAMPLE,
    STATUS,
    hour_of,
)

_SAMPLE, _APP_USAGE, _METRICS = SAMPLE.name, APP_USAGE.name, DEVICE_METRICS.name

# mid (0 for QoS 0), qos, topic, payload: one PUBLISH as the MQTT session hands it over
Delivery = tuple[int, int, bytes, bytes]


def _tags(message: Message) -> dict[str, str]:
    t = message.topic
    return {"site": t.site, "lab": t.lab, "device": t.device}


_ZERO = {s: f"{s}_s=0.0" for s in STATES}
# The zero fields of the states a sample leaves out, by the states it has: at most 1,957
# orderings of at most six states, so the cache stays small.
_ABSENT: dict[tuple[str, ...], list[str]] = {}


def _absent_states(present: tuple[str, ...]) -> list[str]:
    zeros = _ABSENT.get(present)
    if zeros is None:
        zeros = _ABSENT[present] = [_ZERO[s] for s in STATES if s not in present]
    return zeros


def _sample(message: Message, sample: Sample) -> list[str]:
    # The hot path (a backlog is almost all samples), so the lines are built by hand rather
    # than through ``line()``: every tag value and field key here was already checked by the
    # contract against [a-z0-9_.-] (topic segments, kind, app and metric names, categories),
    # so nothing needs escaping, and tag keys are written in sorted order (InfluxDB's fast
    # path). String values are a state name and a p_<hex> pseudonym: nothing to escape either.
    # The contract already made every number a float; float repr is the costliest step left
    # (~0.2 us each), so the states a sample leaves out are written as a ready-made 0.0.
    t = message.topic
    state_s = sample.state_s
    # Every state is written (0.0 when absent) so each point has the same float fields.
    present = [f"{s}_s={v!r}" for s, v in state_s.items()]
    fields = ",".join(present + _absent_states(tuple(state_s)))
    kind = f",kind={sample.kind}" if sample.kind else ""
    state = f',state="{sample.state}"' if sample.state is not None else ""
    user = f',user="{sample.user}"' if sample.user is not None else ""
    start = sample.start_ms
    tags = f"category={sample.category},device={t.device}{kind},lab={t.lab},site={t.site}"
    lines = [
        f"{_SAMPLE},{tags} {fields},observed_s={float(sample.observed_s)!r},"
        f"interval_s={sample.interval_s!r},seq={sample.seq}i{state}{user} {start}"
    ]
    apps = sample.apps_s
    for app in sorted(apps) if len(apps) > 1 else apps:
        lines.append(f"{_APP_USAGE},app={app},{tags} running_s={apps[app]!r}{user} {start}")
    if sample.metrics:
        values = ",".join([f"{k}={v!r}" for k, v in sample.metrics.items()])
        lines.append(f"{_METRICS},device={t.device},lab={t.lab},site={t.site} {values} {start}")
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
    except ValueError as exc:  # valid JSON that line protocol cannot carry
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
    for i, (_mid, _qos, topic, payload) in enumerate(chunk):
        try:
            message, out = parse(topic, payload, received_ms)
            admission.check(message, received_ms)
        except PayloadRejected as exc:
            rejected.append((i, exc.reason, exc.detail))
            continue
        lines.extend(out)
        body = message.payload
        if isinstance(body, Sample):
            hours.add(hour_of(body.start_ms))
    return Converted(lines, hours, rejected)

"""Wire contract v1: topics and payloads, built by agents and enforced by the collector.

One module so the agent, the collector and the simulators cannot drift apart. Decoding is
hand-written rather than pydantic so the agent stays light (DESIGN.md: pydantic adds ~4 MB
RSS) and every rejection carries a short, stable reason code that a counter can use.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import orjson

from labmeter.errors import PayloadRejected

VERSION: Final = 1
ROOT: Final = "labmeter"
CHANNELS: Final = ("sample", "event", "status")
STATES: Final = ("in_use", "idle", "setup", "paused", "alarm", "off")
CATEGORIES: Final = ("its_student", "school", "company", "training_agency", "staff", "unknown")
EXTERNAL_CATEGORIES: Final = ("school", "company", "training_agency")
EVENT_TYPES: Final = (
    "agent_start",
    "session_start",
    "session_end",
    "badge",
    "job_start",
    "job_end",
    "alarm",
    "queue_eviction",
    "source_error",
)
MAX_PAYLOAD_BYTES: Final = 64 * 1024
MAX_FUTURE_MS: Final = 5 * 60 * 1000
# Seconds are rounded to milliseconds at the edge; allow that rounding when summing states.
SUM_TOLERANCE_S: Final = 0.001

# A topic segment (site, lab, device) and a device kind: the one definition, which the
# inventory, the API's filters and the collector's byte-level fast path all use.
SEGMENT_PATTERN: Final = "[a-z0-9_-]{1,64}"
SEGMENT: Final = re.compile(SEGMENT_PATTERN)
_NAME = re.compile(r"[a-z0-9_.-]{1,64}")
_PSEUDONYM = re.compile(r"p_[0-9a-f]{16}")
# A machine's own name for its state (``Executing/Processing``, ``PRINTING``, ``RUNNING``):
# kept for the evaluator's drill-down beside the contract's state. Nothing in it needs
# escaping in line protocol or InfluxQL, and it has no room for a name or a free text.
SUBSTATE_PATTERN: Final = "[A-Za-z0-9][A-Za-z0-9_.:/ -]{0,63}"

Channel = Literal["sample", "event", "status"]


def _check_segment(name: str, value: object) -> str:
    if not isinstance(value, str) or not SEGMENT.fullmatch(value):
        raise PayloadRejected("topic_invalid", f"{name} {value!r} is not {SEGMENT_PATTERN}")
    return value


@dataclass(frozen=True, slots=True)
class Topic:
    """``labmeter/v1/<site>/<lab>/<device>/<channel>``; validates itself on creation."""

    site: str
    lab: str
    device: str
    channel: Channel

    def __post_init__(self) -> None:
        for name in ("site", "lab", "device"):
            _check_segment(name, getattr(self, name))
        if self.channel not in CHANNELS:
            raise PayloadRejected("topic_invalid", f"unknown channel {self.channel!r}")

    def __str__(self) -> str:
        return f"{ROOT}/v{VERSION}/{self.site}/{self.lab}/{self.device}/{self.channel}"

    def with_channel(self, channel: Channel) -> Topic:
        return Topic(self.site, self.lab, self.device, channel)

    @classmethod
    def parse(cls, topic: str) -> Topic:
        parts = topic.split("/")
        if len(parts) != 6 or parts[0] != ROOT:
            raise PayloadRejected(
                "topic_invalid", f"{topic[:200]!r} is not {ROOT}/v1/site/lab/device/channel"
            )
        if parts[1] != f"v{VERSION}":
            raise PayloadRejected("version_unknown", f"topic version {parts[1][:20]!r}")
        return cls(parts[2], parts[3], parts[4], parts[5])  # type: ignore[arg-type]


def subscription(site: str = "+") -> str:
    """Topic filter for everything labmeter publishes (optionally one site)."""
    return f"{ROOT}/v{VERSION}/{site}/+/+/+"


# --- confirmations (collector -> agent) -----------------------------------------------------
#
# Added within v1, and additive: an agent labels each row it publishes from its durable queue
# with an MQTT 5 user property (ROW_PROPERTY = "<queue>:<row>", the queue file's own id and the
# row's id in it; the payload is unchanged, so a collector that does not know it writes the
# message as before). Once the message is settled (written to InfluxDB, or in the collector's
# dead letters with its reason), the collector publishes a ``Confirmation`` of those row ids,
# retained, on ``labmeter/v1/<site>/<lab>/<device>/confirm/<collector>``, the device of the
# message's own topic (the broker's ACL lets only that device read it and only the collector
# write it). It lists row ids, never a "highest written": rows the broker dropped, or that
# another collector of a shared subscription holds, are simply absent from it. Seven levels,
# so no subscription to ``subscription()`` (six) ever receives a confirmation.

CONFIRM: Final = "confirm"
ROW_PROPERTY: Final = "row"
QUEUE_ID_PATTERN: Final = "[0-9a-f]{16}"
MAX_ROW_ID: Final = 2**63 - 1  # SQLite's largest row id
MAX_CONFIRM_RANGES: Final = 1000  # per message: a bigger set is split over several
_QUEUE_IDS = re.compile(QUEUE_ID_PATTERN)
_NOT_SEGMENT = re.compile(r"[^a-z0-9_-]+")


def confirm_filter(topic: Topic) -> str:
    """What an agent subscribes to: every collector's confirmations for its device."""
    return f"{ROOT}/v{VERSION}/{topic.site}/{topic.lab}/{topic.device}/{CONFIRM}/+"


def confirm_writer(client_id: str) -> str:
    """A collector session's name in its confirmation topics: its client id as a segment."""
    return _NOT_SEGMENT.sub("-", client_id.lower())[:64].strip("-") or "collector"


@functools.lru_cache(maxsize=8192)
def confirm_topic(topic: bytes, writer: str) -> str | None:
    """Where the collector ``writer`` confirms the rows of a message received on ``topic``
    (raw bytes, as the collector's session hands it over); None if the topic is not valid."""
    try:
        parsed = Topic.parse(topic.decode("utf-8"))
    except (UnicodeDecodeError, PayloadRejected):
        return None
    return f"{ROOT}/v{VERSION}/{parsed.site}/{parsed.lab}/{parsed.device}/{CONFIRM}/{writer}"


def row_label(queue: str, row: int) -> str:
    """The ROW_PROPERTY an agent gives the message of row ``row`` of queue ``queue``."""
    return f"{queue}:{row}"


def parse_row_label(value: bytes) -> tuple[str, int] | None:
    """(queue, row) of a ROW_PROPERTY value; None for anything else (nothing is confirmed)."""
    if len(value) < 18 or len(value) > 36 or value[16:17] != b":" or not value[17:].isdigit():
        return None
    queue = value[:16].decode("ascii", "replace")
    if queue not in _QUEUE_LABELS.seen and not _QUEUE_LABELS.check(queue):
        return None
    row = int(value[17:])
    return (queue, row) if 0 < row <= MAX_ROW_ID else None


def row_ranges(rows: Iterable[int]) -> list[tuple[int, int]]:
    """Row ids as sorted inclusive ranges: [3, 4, 5, 9] -> [(3, 5), (9, 9)]."""
    out: list[tuple[int, int]] = []
    for row in sorted(set(rows)):
        if out and out[-1][1] == row - 1:
            out[-1] = (out[-1][0], row)
        else:
            out.append((row, row))
    return out


@dataclass(frozen=True, slots=True)
class Confirmation:
    """Rows of one agent queue that a collector settled: written, or dead-lettered with a
    reason. Inclusive ranges of the queue's own row ids; nothing outside them is implied."""

    queue: str
    rows: tuple[tuple[int, int], ...]

    def to_json(self) -> dict[str, Any]:
        return {"v": VERSION, "queue": self.queue, "rows": [list(r) for r in self.rows]}


def encode_confirmations(queue: str, rows: Iterable[int]) -> list[bytes]:
    """The confirmation payloads for ``rows`` of ``queue``, MAX_CONFIRM_RANGES ranges each."""
    ranges = row_ranges(rows)
    return [
        orjson.dumps(Confirmation(queue, tuple(ranges[i : i + MAX_CONFIRM_RANGES])).to_json())
        for i in range(0, len(ranges), MAX_CONFIRM_RANGES)
    ]


def _json_object(payload: bytes) -> dict[str, Any]:
    """The payload as a JSON object, or ``PayloadRejected`` saying why not."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise PayloadRejected("not_json", str(exc)[:200]) from exc
    if not isinstance(obj, dict):
        raise PayloadRejected("not_object", f"payload is a JSON {type(obj).__name__}")
    return obj


def decode_confirmation(payload: bytes) -> Confirmation:
    """A confirmation as the agent reads it, or ``PayloadRejected`` (the agent ignores it)."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadRejected("oversized", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    obj = _json_object(payload)
    if obj.get("v") != VERSION or not _is_int(obj.get("v")):
        raise PayloadRejected("version_unknown", f"v={str(obj.get('v'))[:20]}")
    if obj.keys() - {"v", "queue", "rows"}:
        raise PayloadRejected("unknown_field", ", ".join(sorted(obj.keys() - {"v"}))[:200])
    queue, rows = obj.get("queue"), obj.get("rows")
    if not isinstance(queue, str) or not _QUEUE_IDS.fullmatch(queue):
        raise PayloadRejected("field_type", f"queue must be {QUEUE_ID_PATTERN}")
    if not isinstance(rows, list) or len(rows) > MAX_CONFIRM_RANGES:
        raise PayloadRejected("field_type", f"rows must be a list of <= {MAX_CONFIRM_RANGES}")
    ranges: list[tuple[int, int]] = []
    for pair in rows:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(_is_int(x) for x in pair)
            or not (ranges[-1][1] if ranges else 0) < pair[0] <= pair[1] <= MAX_ROW_ID
        ):
            raise PayloadRejected(
                "field_type", "rows must be [first, last] row ids, ascending, not overlapping"
            )
        ranges.append((int(pair[0]), int(pair[1])))
    return Confirmation(queue, tuple(ranges))


@dataclass(frozen=True, slots=True)
class Sample:
    """How the seconds of one interval ending at ``ts`` were spent; unobserved time is absent."""

    ts: int
    seq: int
    interval_s: float
    state_s: Mapping[str, float]
    category: str = "unknown"
    user: str | None = None
    kind: str | None = None
    state: str | None = None  # the state at ``ts``, for live occupancy
    apps_s: Mapping[str, float] = field(default_factory=dict)
    metrics: Mapping[str, float] = field(default_factory=dict)
    substate: str | None = None  # the machine's own name for ``state`` (SUBSTATE_PATTERN)

    @property
    def observed_s(self) -> float:
        return sum(self.state_s.values())

    @property
    def start_ms(self) -> int:
        """Where the interval began: its point's time in InfluxDB (``collector/convert.py``)."""
        return self.ts - round(self.interval_s * 1000)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": VERSION,
            "ts": self.ts,
            "seq": self.seq,
            "interval_s": self.interval_s,
            "state_s": dict(self.state_s),
            "category": self.category,
        }
        for key in ("user", "kind", "state", "substate"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.apps_s:
            out["apps_s"] = dict(self.apps_s)
        if self.metrics:
            out["metrics"] = dict(self.metrics)
        return out


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened at ``ts``: a session, a badge, a job, an alarm, an agent start."""

    ts: int
    seq: int
    type: str
    category: str = "unknown"
    user: str | None = None
    data: Mapping[str, str | int | float | bool] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "v": VERSION,
            "ts": self.ts,
            "seq": self.seq,
            "type": self.type,
            "category": self.category,
        }
        if self.user is not None:
            out["user"] = self.user
        if self.data:
            out["data"] = dict(self.data)
        return out


@dataclass(frozen=True, slots=True)
class Status:
    """``online`` (retained, on connect) or ``offline`` (the retained last will, no ``ts``)."""

    status: Literal["online", "offline"]
    ts: int | None = None
    kind: str | None = None
    interval_s: float | None = None
    agent: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"v": VERSION, "status": self.status}
        for key in ("ts", "kind", "interval_s", "agent"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


Payload = Sample | Event | Status


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded, valid message: where it came from and what it says."""

    topic: Topic
    payload: Payload


def encode(payload: Payload) -> bytes:
    return orjson.dumps(payload.to_json())


# --- decoding -------------------------------------------------------------------------------

_SAMPLE_KEYS: Final = frozenset(
    {
        "v",
        "ts",
        "seq",
        "interval_s",
        "state_s",
        "apps_s",
        "user",
        "category",
        "kind",
        "state",
        "substate",
        "metrics",
    }
)
_EVENT_KEYS: Final = frozenset({"v", "ts", "seq", "type", "user", "category", "data"})
_STATUS_KEYS: Final = frozenset({"v", "status", "ts", "kind", "interval_s", "agent"})
_EMPTY: Final[dict[str, Any]] = {}  # the default of an absent map; never mutated


def _is_int(value: object) -> bool:
    return type(value) is int


def _is_number(value: object) -> bool:
    return type(value) in (int, float)


class _Known:
    """Strings already matched against a pattern: a set lookup instead of a regex per message.

    Names, kinds and pseudonyms repeat from message to message; a regex per name was a fifth
    of decoding a sample in a collector drain. Bounded (emptied when full) so input full of
    distinct names cannot grow it without limit.
    """

    __slots__ = ("pattern", "seen")
    LIMIT: Final = 65536

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)
        self.seen: set[str] = set()

    def check(self, value: object) -> bool:
        """``value`` is a string matching the pattern (the slow path, after a miss in ``seen``)."""
        if not isinstance(value, str) or self.pattern.fullmatch(value) is None:
            return False
        if len(self.seen) >= self.LIMIT:
            self.seen.clear()
        self.seen.add(value)
        return True


_NAMES: Final = _Known(_NAME.pattern)
_KINDS: Final = _Known(SEGMENT.pattern)
_USERS: Final = _Known(_PSEUDONYM.pattern)
_SUBSTATES: Final = _Known(SUBSTATE_PATTERN)
_QUEUE_LABELS: Final = _Known(QUEUE_ID_PATTERN)


def _ts(obj: Mapping[str, Any], now_ms: int, *, required: bool = True) -> int | None:
    if "ts" not in obj:
        if required:
            raise PayloadRejected("missing_field", "ts")
        return None
    ts = obj["ts"]
    if not _is_int(ts):
        raise PayloadRejected(
            "ts_invalid", f"ts must be integer epoch milliseconds, got {type(ts).__name__}"
        )
    if ts < 0:
        raise PayloadRejected("ts_invalid", "ts is negative")
    if ts > now_ms + MAX_FUTURE_MS:
        raise PayloadRejected("ts_future", f"ts is {(ts - now_ms) / 1000:.0f} s in the future")
    return int(ts)


def _seq(obj: Mapping[str, Any]) -> int:
    seq = obj.get("seq")
    if not _is_int(seq) or seq < 0:  # type: ignore[operator]
        raise PayloadRejected("field_type", "seq must be a non-negative integer")
    return int(seq)  # type: ignore[arg-type]


def _identity(obj: Mapping[str, Any]) -> tuple[str | None, str]:
    user = obj.get("user")
    if user is not None and (
        type(user) is not str or (user not in _USERS.seen and not _USERS.check(user))
    ):
        # Guard against an agent leaking a login name or badge id.
        raise PayloadRejected("user_not_pseudonym", "user must be p_ + 16 hex digits")
    category = obj.get("category", "unknown")
    if category not in CATEGORIES:
        raise PayloadRejected("category_unknown", f"category {str(category)[:40]!r}")
    return user, category


def _seconds_map(
    obj: Mapping[str, Any], key: str, allowed: tuple[str, ...] | None, interval_s: float
) -> dict[str, float]:
    raw = obj.get(key, _EMPTY)
    if type(raw) is not dict:
        raise PayloadRejected("field_type", f"{key} must be an object")
    if len(raw) > 64:
        raise PayloadRejected("field_type", f"{key} has more than 64 entries")
    limit = interval_s + SUM_TOLERANCE_S
    out: dict[str, float] = {}
    for name, secs in raw.items():
        if allowed is not None:
            if name not in allowed:
                raise PayloadRejected("state_unknown", f"{key} has unknown state {name[:40]!r}")
        elif name not in _NAMES.seen and not _NAMES.check(name):
            raise PayloadRejected(
                "field_type", f"{key} name {name[:40]!r} is not [a-z0-9_.-]{{1,64}}"
            )
        kind = type(secs)
        if kind is not float and kind is not int:
            raise PayloadRejected("field_type", f"{key}.{name} must be a number")
        # One chained comparison on the common path; NaN and infinities fail it too.
        if not 0 <= secs <= limit:
            if not math.isfinite(secs) or secs < 0:
                raise PayloadRejected("seconds_invalid", f"{key}.{name} must be finite and >= 0")
            raise PayloadRejected("seconds_invalid", f"{key}.{name} exceeds interval_s")
        out[name] = float(secs)
    return out


def _decode_sample(obj: Mapping[str, Any], now_ms: int) -> Sample:
    if not obj.keys() <= _SAMPLE_KEYS:
        unknown = obj.keys() - _SAMPLE_KEYS
        raise PayloadRejected("unknown_field", ", ".join(sorted(unknown))[:200])
    ts = _ts(obj, now_ms)
    assert ts is not None
    seq = _seq(obj)
    interval: Any = obj.get("interval_s")
    if not _is_number(interval):
        raise PayloadRejected("field_type", "interval_s must be a number")
    if not math.isfinite(interval) or interval <= 0:
        raise PayloadRejected("interval_invalid", "interval_s must be finite and > 0")
    interval_s = float(interval)
    if "state_s" not in obj:
        raise PayloadRejected("missing_field", "state_s")
    state_s = _seconds_map(obj, "state_s", STATES, interval_s)
    if sum(state_s.values()) > interval_s + SUM_TOLERANCE_S:
        raise PayloadRejected("state_overflow", "state seconds add up to more than interval_s")
    apps_s = _seconds_map(obj, "apps_s", None, interval_s)
    user, category = _identity(obj)
    kind = obj.get("kind")
    if kind is not None and (
        type(kind) is not str or (kind not in _KINDS.seen and not _KINDS.check(kind))
    ):
        raise PayloadRejected("field_type", f"kind must be {SEGMENT_PATTERN}")
    state = obj.get("state")
    if state is not None and state not in STATES:
        raise PayloadRejected("state_unknown", f"state {str(state)[:40]!r}")
    substate = obj.get("substate")
    if substate is not None and (
        type(substate) is not str
        or (substate not in _SUBSTATES.seen and not _SUBSTATES.check(substate))
    ):
        raise PayloadRejected("field_type", f"substate must be {SUBSTATE_PATTERN}")
    metrics_raw = obj.get("metrics", _EMPTY)
    if type(metrics_raw) is not dict or len(metrics_raw) > 32:
        raise PayloadRejected("field_type", "metrics must be an object of at most 32 numbers")
    metrics: dict[str, float] = {}
    for name, value in metrics_raw.items():
        number = type(value)
        if (
            (number is not float and number is not int)
            or not math.isfinite(value)
            or (name not in _NAMES.seen and not _NAMES.check(name))
        ):
            raise PayloadRejected("field_type", f"metrics.{name[:40]} must be a finite number")
        metrics[name] = float(value)
    return Sample(
        ts, seq, interval_s, state_s, category, user, kind, state, apps_s, metrics, substate
    )


_STATE_SET: Final = frozenset(STATES)
_CATEGORY_SET: Final = frozenset(CATEGORIES)
_INF: Final = math.inf


def plain_sample(obj: dict[str, Any], now_ms: int) -> bool:
    """True when ``obj`` (a parsed payload, ``v`` included) is a sample the full checker accepts.

    The collector's fast path (``collector/convert.py``): type checks and chained comparisons,
    names looked up in the caches of names already matched, no copies and no dataclasses. It
    only says yes to what ``decode`` accepts (with the same values once ``float()`` has made
    JSON integers floats); anything unusual (a name not seen yet, any fault) answers False,
    and the full checker decides, with its reason. A backlog is almost all samples: checking
    each through the full decoder and building its ``Sample`` was most of the collector's
    Python per message. (Checking whole maps at once in C, with sets and ``min``/``max``,
    measured a third slower than these loops.)
    """
    if obj.get("v") != VERSION or type(obj["v"]) is not int or not obj.keys() <= _SAMPLE_KEYS:
        return False
    ts: Any = obj.get("ts")
    seq: Any = obj.get("seq")
    interval: Any = obj.get("interval_s")
    kind = type(interval)
    if (
        type(ts) is not int
        or not 0 <= ts <= now_ms + MAX_FUTURE_MS
        or type(seq) is not int
        or seq < 0
        or (kind is not float and kind is not int)
        or not 0 < interval < _INF
    ):
        return False
    limit = float(interval) + SUM_TOLERANCE_S
    state_s = obj.get("state_s")
    if type(state_s) is not dict or len(state_s) > 6:
        return False
    for name, secs in state_s.items():
        kind = type(secs)
        if (kind is not float and kind is not int) or name not in _STATE_SET:
            return False
        if not 0 <= secs <= limit:
            return False
    # The same sum as the full checker's (of the same floats, in the same order).
    if len(state_s) > 1 and not sum(map(float, state_s.values())) <= limit:
        return False
    apps = obj.get("apps_s", _EMPTY)
    if type(apps) is not dict or len(apps) > 64:
        return False
    seen = _NAMES.seen
    for name, secs in apps.items():
        kind = type(secs)
        if (kind is not float and kind is not int) or not 0 <= secs <= limit or name not in seen:
            return False
    metrics = obj.get("metrics", _EMPTY)
    if type(metrics) is not dict or len(metrics) > 32:
        return False
    for name, value in metrics.items():
        kind = type(value)
        if (kind is not float and kind is not int) or not -_INF < value < _INF or name not in seen:
            return False
    user = obj.get("user")
    category = obj.get("category", "unknown")
    kind_name = obj.get("kind")
    state = obj.get("state")
    substate = obj.get("substate")
    return (
        (user is None or (type(user) is str and user in _USERS.seen))
        and (substate is None or (type(substate) is str and substate in _SUBSTATES.seen))
        and type(category) is str
        and category in _CATEGORY_SET
        and (kind_name is None or (type(kind_name) is str and kind_name in _KINDS.seen))
        and (state is None or (type(state) is str and state in _STATE_SET))
    )


def _decode_event(obj: Mapping[str, Any], now_ms: int) -> Event:
    unknown = obj.keys() - _EVENT_KEYS
    if unknown:
        raise PayloadRejected("unknown_field", ", ".join(sorted(unknown))[:200])
    ts = _ts(obj, now_ms)
    assert ts is not None
    seq = _seq(obj)
    etype = obj.get("type")
    if etype not in EVENT_TYPES:
        raise PayloadRejected("event_type_unknown", f"type {str(etype)[:40]!r}")
    user, category = _identity(obj)
    data_raw = obj.get("data", {})
    if not isinstance(data_raw, dict) or len(data_raw) > 32:
        raise PayloadRejected("field_type", "data must be an object of at most 32 scalars")
    data: dict[str, str | int | float | bool] = {}
    for name, value in data_raw.items():
        if not _NAME.fullmatch(name):
            raise PayloadRejected(
                "field_type", f"data key {name[:40]!r} is not [a-z0-9_.-]{{1,64}}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise PayloadRejected("field_type", f"data.{name} is not finite")
        if not isinstance(value, str | int | float | bool) or (
            isinstance(value, str) and len(value) > 256
        ):
            raise PayloadRejected(
                "field_type", f"data.{name} must be a scalar (strings <= 256 chars)"
            )
        data[name] = value
    return Event(ts, seq, str(etype), category, user, data)


def _decode_status(obj: Mapping[str, Any], now_ms: int) -> Status:
    unknown = obj.keys() - _STATUS_KEYS
    if unknown:
        raise PayloadRejected("unknown_field", ", ".join(sorted(unknown))[:200])
    status = obj.get("status")
    if status not in ("online", "offline"):
        raise PayloadRejected("field_type", "status must be 'online' or 'offline'")
    ts = _ts(obj, now_ms, required=False)
    kind = obj.get("kind")
    if kind is not None and (not isinstance(kind, str) or not SEGMENT.fullmatch(kind)):
        raise PayloadRejected("field_type", f"kind must be {SEGMENT_PATTERN}")
    interval: Any = obj.get("interval_s")
    if interval is not None and (
        not _is_number(interval) or not math.isfinite(interval) or interval <= 0
    ):
        raise PayloadRejected("interval_invalid", "interval_s must be finite and > 0")
    agent = obj.get("agent")
    if agent is not None and (not isinstance(agent, str) or len(agent) > 64):
        raise PayloadRejected("field_type", "agent must be a version string")
    return Status(status, ts, kind, None if interval is None else float(interval), agent)


_DECODERS: Final[dict[str, Callable[[Mapping[str, Any], int], Payload]]] = {
    "sample": _decode_sample,
    "event": _decode_event,
    "status": _decode_status,
}


# A site's topics repeat (one per device and channel) and a Topic is immutable: validating
# each one once instead of per message was ~15% of the collector's parsing time in a drain.
# Rejected topics raise, so they are never cached.
_parse_topic = functools.lru_cache(maxsize=8192)(Topic.parse)


def decode(topic: str, payload: bytes, now_ms: int) -> Message:
    """Parse and validate one MQTT message, or raise ``PayloadRejected`` with its reason."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadRejected("oversized", f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}")
    parsed = _parse_topic(topic)
    obj = _json_object(payload)
    if "v" not in obj:
        raise PayloadRejected("version_missing", "no 'v' field")
    if not _is_int(obj["v"]) or obj["v"] != VERSION:
        raise PayloadRejected("version_unknown", f"v={str(obj['v'])[:20]}")
    return Message(parsed, _DECODERS[parsed.channel](obj, now_ms))

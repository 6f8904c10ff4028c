"""A closed period has no edges to slip through: properties over stamps and intervals around
both ends of a closure (and the hour before it), through the converter the collector runs.

Whatever is admitted writes no point inside the closed period or the hour before it, and
covers none of its time; whatever lies wholly outside is admitted; the horizon holds for the
point's own time, however long the interval.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from labmeter.collector.admission import Admission
from labmeter.collector.convert import convert
from labmeter.contract import Event, Message, Sample, Status, Topic
from labmeter.periods import Closure
from tests.collector.test_admission import _raw

HOUR = 3_600_000
DAY = 24 * HOUR
T0 = 1_767_222_000_000  # 2025-12-31T23:00:00Z
END = T0 + 2 * HOUR
GUARD = T0 - HOUR  # the hour before the period is closed with it
CLOSED = Admission(7, (Closure(7, T0, END, site="s1", state="closed"),))
NOW = T0 + 10 * HOUR

# Stamps within a few minutes (and a few milliseconds) of each edge.
near = st.sampled_from([GUARD, T0, END]).flatmap(
    lambda edge: st.one_of(
        st.integers(edge - 3, edge + 3), st.integers(edge - 10 * 60_000, edge + 10 * 60_000)
    )
)
# Intervals from a fraction of a millisecond (rounded to a zero-length span) to hours.
intervals = st.one_of(
    st.sampled_from([0.0001, 0.0004, 0.0005, 0.0006, 0.001, 0.0015, 1.0, 60.0, 3600.0]),
    st.floats(min_value=1e-6, max_value=3 * 3600, allow_nan=False, allow_infinity=False),
)


def _times(lines: list[str]) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in lines]


def _convert(message: Message, now: int = NOW, admission: Admission = CLOSED) -> list[str] | str:
    """The lines written, or the reason of the refusal."""
    converted = convert([_raw(message)], now, admission)
    if converted.rejected:
        return converted.rejected[0][1]
    return converted.lines


def _sample(ts: int, interval_s: float, site: str = "s1") -> Message:
    sample = Sample(ts, 1, interval_s, {"in_use": interval_s}, "school", "p_0123456789abcdef",
                    "pc", "in_use", {"cad": interval_s}, {"cpu_pct": 5.0})  # fmt: skip
    return Message(Topic(site, "lab-a", "pc-1", "sample"), sample)


def test_a_zero_length_sample_at_a_closures_first_instant_is_refused() -> None:
    """The finding: an interval of a fraction of a millisecond stamped at the period's start
    has an empty span, and its sample, app and metrics points landed in the sealed period."""
    assert _convert(_sample(T0, 0.0001)) == "period_closed"
    assert _convert(_sample(END - 1, 0.0001)) == "period_closed"
    assert isinstance(_convert(_sample(END, 0.0001)), list)  # the period's end is open


@settings(max_examples=600, deadline=None)
@given(ts=near, interval_s=intervals)
@example(ts=T0, interval_s=0.0001)
@example(ts=GUARD, interval_s=0.0004)
@example(ts=END, interval_s=3600.0)
def test_no_admitted_sample_touches_a_closed_period_and_none_outside_is_refused(
    ts: int, interval_s: float
) -> None:
    start = ts - round(interval_s * 1000)
    found = _convert(_sample(ts, interval_s))
    if isinstance(found, list):
        assert found and all(not GUARD <= t < END for t in _times(found)), (start, ts, found)
        assert ts <= GUARD or start >= END, (start, ts)  # its time lies wholly outside
    else:
        assert found == "period_closed"
        # Refused only when its point or its span lies inside.
        assert GUARD <= start < END or (start < END and ts > GUARD), (start, ts)
    # Another site's closure never refuses it.
    assert isinstance(_convert(_sample(ts, interval_s, site="s2")), list)


@settings(max_examples=300, deadline=None)
@given(ts=near)
def test_no_admitted_event_or_status_lies_in_a_closed_period(ts: int) -> None:
    topic = Topic("s1", "lab-a", "pc-1", "event")
    for message in (
        Message(topic, Event(ts, 1, "session_start", "school", "p_0123456789abcdef")),
        Message(topic.with_channel("status"), Status("online", ts, "pc", 60.0, "1.0")),
    ):
        found = _convert(message)
        inside = GUARD <= ts < END
        assert (found == "period_closed") if inside else isinstance(found, list), (ts, found)
        if isinstance(found, list):
            assert all(not GUARD <= t < END for t in _times(found))


@settings(max_examples=300, deadline=None)
@given(
    age=st.integers(-10 * 60_000, 10 * 60_000),
    interval_s=intervals,
    channel=st.sampled_from(["sample", "event", "status"]),
)
def test_nothing_admitted_has_a_point_older_than_the_horizon(
    age: int, interval_s: float, channel: str
) -> None:
    horizon = Admission(max_age_ms=3 * DAY)
    ts = NOW - 3 * DAY + age
    topic = Topic("s1", "lab-a", "pc-1", channel)
    payload: Sample | Event | Status = (
        _sample(ts, interval_s).payload
        if channel == "sample"
        else Event(ts, 1, "alarm")
        if channel == "event"
        else Status("online", ts)
    )
    found = _convert(Message(topic, payload), NOW, horizon)
    if isinstance(found, list):
        assert all(t >= NOW - 3 * DAY for t in _times(found)), found
    else:
        assert found == "too_old"


def test_a_long_interval_cannot_carry_a_point_past_the_horizon() -> None:
    horizon = Admission(max_age_ms=3 * DAY)
    assert _convert(_sample(NOW, 30 * 86_400.0), NOW, horizon) == "too_old"
    assert isinstance(_convert(_sample(NOW, 60.0), NOW, horizon), list)

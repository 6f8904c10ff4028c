"""The meter accounts every millisecond once, and unobserved time as unknown."""

from __future__ import annotations

from labmeter.agent.meter import UNKNOWN, Meter, Reading

T0 = 1_764_147_600_000  # on a minute boundary


def test_seconds_per_state_split_at_interval_boundaries() -> None:
    meter = Meter(60, T0, kind="pc")
    assert meter.observe(T0, Reading("idle")) == []
    assert meter.observe(T0 + 20_000, Reading("in_use")) == []
    samples = meter.observe(T0 + 150_000, Reading("idle"))
    assert [(s.ts, s.interval_s, dict(s.state_s), s.state) for s in samples] == [
        (T0 + 60_000, 60.0, {"idle": 20.0, "in_use": 40.0}, "in_use"),
        (T0 + 120_000, 60.0, {"in_use": 60.0}, "in_use"),
    ]
    assert [s.seq for s in samples] == [0, 1]
    last = meter.flush(T0 + 180_000)
    assert [dict(s.state_s) for s in last] == [{"in_use": 30.0, "idle": 30.0}]


def test_unobserved_time_is_in_no_state() -> None:
    meter = Meter(60, T0)
    meter.observe(T0, Reading("in_use"))
    meter.observe(T0 + 10_000, UNKNOWN)
    (sample,) = meter.observe(T0 + 60_000, Reading("idle"))
    assert dict(sample.state_s) == {"in_use": 10.0}
    assert sample.observed_s == 10.0 and sample.interval_s == 60.0


def test_a_new_user_cuts_the_sample_so_each_belongs_to_one_category() -> None:
    meter = Meter(60, T0)
    meter.observe(T0, Reading("in_use", "p_0000000000000001", "school"))
    (first,) = meter.observe(T0 + 25_000, Reading("in_use", "p_0000000000000002", "company"))
    assert (first.ts, first.interval_s, first.category, first.user) == (
        T0 + 25_000,
        25.0,
        "school",
        "p_0000000000000001",
    )
    (second,) = meter.observe(T0 + 60_000, Reading("idle", "p_0000000000000002", "company"))
    assert (second.interval_s, second.category, dict(second.state_s)) == (
        35.0,
        "company",
        {"in_use": 35.0},
    )


def test_apps_are_counted_while_running() -> None:
    meter = Meter(60, T0)
    meter.observe(T0, Reading("in_use", apps=frozenset({"matlab", "autocad"})))
    meter.observe(T0 + 15_000, Reading("idle", apps=frozenset({"matlab"})))
    (sample,) = meter.observe(T0 + 60_000, Reading("idle"))
    assert dict(sample.apps_s) == {"autocad": 15.0, "matlab": 60.0}


def test_clock_going_backwards_counts_nothing_twice() -> None:
    meter = Meter(60, T0)
    meter.observe(T0, Reading("in_use"))
    meter.observe(T0 + 30_000, Reading("in_use"))
    assert meter.observe(T0 + 10_000, Reading("idle")) == []
    (sample,) = meter.observe(T0 + 60_000, Reading("idle"))
    assert dict(sample.state_s) == {"in_use": 30.0, "idle": 30.0}
    assert sum(sample.state_s.values()) <= sample.interval_s

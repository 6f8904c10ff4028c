import pytest
from hypothesis import given
from hypothesis import strategies as st

from labmeter.agent.sources.clamp.protocol import Classifier, Thresholds, parse_amps


@pytest.mark.parametrize(
    "line,amps",
    [("A=3.42", 3.42), ("A: 3.42", 3.42), ("I=0.5", 0.5), ("3.42", 3.42), ("3.42A", 3.42),
     ("  7 \r", 7.0), ("1e-2", 0.01), ("0", 0.0)],
)  # fmt: skip
def test_readings(line: str, amps: float) -> None:
    assert parse_amps(line) == pytest.approx(amps)


@pytest.mark.parametrize(
    "line", ["", "A=", "A=-1.0", "-3", "A=3.4.5", "nan", "inf", "V=230", "ERR sensor", "3,42"]
)
def test_not_readings(line: str) -> None:
    assert parse_amps(line) is None


@given(st.text(max_size=40))
def test_any_text_without_raising(line: str) -> None:
    amps = parse_amps(line)
    assert amps is None or amps >= 0


def test_thresholds_without_hysteresis_or_dwell() -> None:
    c = Classifier(Thresholds(off_below_a=0.3, run_above_a=4.0))
    assert [c.update(a, t) for t, a in enumerate([0.1, 0.3, 3.99, 4.0, 0.29])] == [
        "off", "idle", "idle", "in_use", "off"
    ]  # fmt: skip


def test_hysteresis_keeps_a_state_near_its_threshold() -> None:
    c = Classifier(Thresholds(off_below_a=0.3, run_above_a=4.0, hysteresis_a=0.5))
    states = [c.update(a, t) for t, a in enumerate([4.1, 3.6, 3.51, 3.49, 3.9, 4.0])]
    assert states == ["in_use", "in_use", "in_use", "idle", "idle", "in_use"]
    c = Classifier(Thresholds(off_below_a=0.3, run_above_a=4.0, hysteresis_a=0.5))
    states = [c.update(a, t) for t, a in enumerate([0.1, 0.7, 0.79, 0.8, 0.29])]
    assert states == ["off", "off", "off", "idle", "off"]


def test_minimum_dwell_absorbs_spikes() -> None:
    c = Classifier(Thresholds(off_below_a=0.3, run_above_a=4.0, min_dwell_s=1.0))
    assert c.update(1.0, 0.0) == "idle"  # the first reading is taken at once
    assert c.update(9.0, 0.5) == "idle"  # inrush
    assert c.update(1.0, 0.6) == "idle"
    assert c.update(6.0, 1.0) == "idle"
    assert c.update(6.0, 1.9) == "idle"
    assert c.update(6.0, 2.0) == "in_use"  # held for 1.0 s
    assert c.update(0.0, 2.1) == "in_use"
    assert c.update(1.0, 2.5) == "in_use"  # a different candidate restarts the dwell
    assert c.update(1.0, 3.4) == "in_use"
    assert c.update(1.0, 3.5) == "idle"
    c.reset()
    assert c.state is None and c.update(6.0, 10.0) == "in_use"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"off_below_a": 2.0, "run_above_a": 1.0},
        {"off_below_a": -1.0, "run_above_a": 1.0},
        {"off_below_a": 0.5, "run_above_a": 1.0, "hysteresis_a": 0.3},
        {"off_below_a": 0.5, "run_above_a": 4.0, "min_dwell_s": -1},
    ],
)
def test_bad_thresholds(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Thresholds(**kwargs)

"""The simulated lab's plan looks like a school lab's, on pinned days (never the wall clock)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from labmeter.agent.sources.opcua.protocol import Tag, decide, item_state, operation_mode
from labmeter.config import Config, MqttConfig
from labmeter.contract import STATES
from labmeter.influx import InfluxV1
from labmeter.machinery import ITEM_STATE_IDS, OPERATION_MODE_IDS, SHOWN_AS
from labmeter.simulators import lab, schedule
from tests.helpers import utc_ms

ROME = ZoneInfo("Europe/Rome")
INVENTORY = Path(__file__).parents[2] / "deploy" / "inventory.example.yaml"
HOUR = 3600_000
# Monday 24 November to Monday 1 December 2025 (no holiday), Rome time.
WEEK = (utc_ms("2025-11-24T00:00+01:00"), utc_ms("2025-12-01T00:00+01:00"))


def _local(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, ROME)


def _halves(act: schedule.Activity) -> range:
    """The half hours (by their start) that the activity touches."""
    return range(act.start_ms - act.start_ms % (HOUR // 2), act.end_ms, HOUR // 2)


def _per_lab(truth: dict[str, object]) -> dict[str, tuple[float, float]]:
    """Per lab: hours in use within opening hours, and after hours."""
    out: dict[str, tuple[float, float]] = {}
    for dev in truth["devices"].values():  # type: ignore[attr-defined]
        within, after = out.get(dev["lab"], (0.0, 0.0))
        out[dev["lab"]] = (
            within + dev["in_use_open_s"] / 3600,
            after + (dev["in_use_s"] - dev["in_use_open_s"]) / 3600,
        )
    return out


def test_a_week_follows_the_inventory_hours() -> None:
    opening = lab.inventory_opening(INVENTORY)
    sim = lab.build_lab(12, *WEEK, seed=1, opening=opening)
    truth = lab.ground_truth(sim.devices, *WEEK, 60, opening)
    for lab_id, (within, after) in _per_lab(truth).items():
        assert 0 < after < within / 4, lab_id  # after-hours use is a minority

    seen = [a for a in sim.activities if a.end_ms > WEEK[0] and a.start_ms < WEEK[1]]
    assert {a.kind for a in seen} >= {"class", "booking", "walk_in", "evening"}
    assert {a.category for a in seen} >= {"its_student", "school", "company", "training_agency"}
    for act in seen:
        start = _local(act.start_ms)
        if act.kind in ("class", "booking", "walk_in"):  # planned within opening hours
            assert all(opening(act.lab, half) for half in _halves(act)), act
        elif act.kind == "evening":
            assert start.weekday() < 4 and start.hour >= 18, act
        else:  # a technician on a closed day (Saturday for the fab lab, Sunday)
            assert not any(opening(act.lab, half) for half in _halves(act)), act
        assert act.booked == (act.kind not in ("walk_in", "maintenance"))
    sunday = [a for a in seen if _local(a.start_ms).weekday() == 6]
    assert all(a.kind == "maintenance" for a in sunday)


def test_a_day_is_the_same_in_any_window() -> None:
    day = (utc_ms("2025-11-26T00:00+01:00"), utc_ms("2025-11-27T00:00+01:00"))
    narrow = lab.build_lab(10, *day, seed=3)
    wide = lab.build_lab(10, WEEK[0], WEEK[1], seed=3)
    inside = [a for a in wide.activities if a.start_ms >= day[0] and a.end_ms <= day[1]]
    assert inside and inside == [
        a for a in narrow.activities if a.start_ms >= day[0] and a.end_ms <= day[1]
    ]
    assert lab.build_lab(10, *day, seed=4).activities != narrow.activities


@pytest.mark.parametrize(
    ("day", "hours"), [("2025-03-30", 23), ("2025-10-26", 25), ("2025-11-26", 24)]
)
def test_dst_days_are_planned_whole(day: str, hours: int) -> None:
    """Open at every hour: the plan covers the local day, 23 or 25 hours long."""
    start = int(datetime.fromisoformat(day).replace(tzinfo=ROME).timestamp() * 1000)
    end = start + hours * HOUR
    assert _local(end).strftime("%H:%M") == "00:00"

    def always(_lab: str, _half: int) -> bool:
        return True

    assert schedule.open_spans("lab-cad", start, end, always) == [(start, end)]
    acts = schedule.plan(
        "lab-cad", ["pc-01", "pc-02", "pc-03"], machines=False, start_ms=start, end_ms=end,
        seed=1, opening=always,
    )  # fmt: skip
    today = [a for a in acts if start <= a.start_ms < end]
    assert today and all(a.end_ms <= end for a in today)
    assert max(a.end_ms for a in today) > end - 4 * HOUR  # to the day's last hours


def test_a_live_lab_cannot_be_pinned() -> None:
    with pytest.raises(ValueError, match="live"):
        lab.run(
            MqttConfig(url="mqtt://127.0.0.1:1"), devices=1, hours=1, seed=1, speed=0,
            live=True, end_ms=WEEK[1],
        )  # fmt: skip


@pytest.mark.e2e
def test_the_networked_printer_goes_through_moonraker_and_keeps_the_truth(
    config: Config, influx: InfluxV1
) -> None:
    """The lab's first 3D printer is read by the real Moonraker source from its emulator: its
    seconds are the truth's and its samples carry Klipper's own words as substates."""
    from tests.helpers import simulate_through_collector, utc_ms

    site = config.collector.site
    truth, _ = simulate_through_collector(
        config, influx, devices=5, hours=6, seed=3, end_ms=utc_ms("2025-11-25T16:00+00:00")
    )
    key = f"{site}/{lab.FAB}/printer3d-02"
    fields = ", ".join(f"sum({s}_s)" for s in STATES)
    rows = influx.query(f"SELECT {fields} FROM sample WHERE device = 'printer3d-02'")
    seconds = dict(zip(STATES, (v or 0.0 for v in rows[0].values[0][1:]), strict=True))
    assert seconds["in_use"] == pytest.approx(truth["devices"][key]["in_use_s"], abs=1e-6)
    assert sum(seconds.values()) == pytest.approx(truth["devices"][key]["observed_s"], abs=1e-6)
    words = influx.query("SELECT substate FROM sample WHERE device = 'printer3d-02'")
    assert truth["devices"][key]["in_use_s"] > 0  # the printer did work in these hours
    assert "printing" in {v[1] for v in words[0].values}


def test_the_fab_lab_has_an_opcua_machine_whose_substates_read_back_as_its_states() -> None:
    sims = lab.layout(12)
    opcua = [d for d in sims if d.source == "opcua"]
    assert [d.topic.device for d in opcua] == ["cnc-01"]
    ids = {v: k for k, v in ITEM_STATE_IDS.items()}
    modes = {v: k for k, v in OPERATION_MODE_IDS.items()}

    class Id:  # a NodeId as asyncua gives it: namespace and identifier
        def __init__(self, ident: int) -> None:
            self.NamespaceIndex, self.Identifier = 2, ident

    for state, shown in SHOWN_AS.items():
        # What the opcua source makes of the machine showing ``state`` (its Held tag first).
        held = () if not shown.held else (("ns=3;s=Held", "Held", {"true": "paused"}),)
        tags = tuple(Tag(n, name, m) for n, name, m in held)
        item = item_state(2, Id(ids[shown.item]))
        mode = operation_mode(2, Id(modes[shown.mode]))
        read = decide(tags, {"ns=3;s=Held": True} if held else {}, item, mode)
        assert read == (state, opcua[0].substate(state)), state
    assert opcua[0].substate(None) is None and sims[0].substate("in_use") is None

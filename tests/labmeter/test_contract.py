"""The wire contract: what is valid, and a reason for each kind of invalid."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from paho.mqtt.client import topic_matches_sub

from labmeter.contract import (
    MAX_CONFIRM_RANGES,
    MAX_PAYLOAD_BYTES,
    Confirmation,
    Event,
    Sample,
    Status,
    Topic,
    confirm_filter,
    confirm_topic,
    confirm_writer,
    decode,
    decode_confirmation,
    encode,
    encode_confirmations,
    parse_row_label,
    row_label,
    subscription,
)
from labmeter.errors import PayloadRejected

NOW = 1_764_147_600_000
TOPIC = "labmeter/v1/its-prime/lab-cad/pc-01/sample"


def sample(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "ts": NOW,
        "seq": 812,
        "interval_s": 60,
        "state_s": {"in_use": 41.5, "idle": 18.5},
        "apps_s": {"solidworks": 41.5},
        "user": "p_3f9a0c1d2e4b5a69",
        "category": "school",
        "metrics": {"cpu_pct": 23.1, "mem_pct": 48.0, "gpu_pct": 0.0},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


def reason(topic: str, payload: bytes | dict[str, Any]) -> str:
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    with pytest.raises(PayloadRejected) as info:
        decode(topic, body, NOW)
    assert info.value.reason
    return info.value.reason


def test_design_example_sample_is_valid() -> None:
    msg = decode(TOPIC, orjson.dumps(sample()), NOW)
    assert msg.topic == Topic("its-prime", "lab-cad", "pc-01", "sample")
    assert isinstance(msg.payload, Sample)
    assert msg.payload.state_s == {"in_use": 41.5, "idle": 18.5}
    assert msg.payload.observed_s == 60.0


@pytest.mark.parametrize(
    "payload",
    [
        Sample(NOW, 1, 60.0, {"in_use": 60.0}, "company", None, "cnc", "in_use"),
        Event(
            NOW, 2, "job_start", "school", "p_0123456789abcdef", {"file": "part.nc", "lines": 812}
        ),
        Status("online", NOW, "pc", 60.0, "0.1.0"),
        Status("offline"),
    ],
)
def test_encode_decode_round_trip(payload: Sample | Event | Status) -> None:
    channel = {Sample: "sample", Event: "event", Status: "status"}[type(payload)]
    topic = str(Topic("s", "l", "d", channel))  # type: ignore[arg-type]
    assert decode(topic, encode(payload), NOW).payload == payload


def test_topic_round_trip_and_segments() -> None:
    topic = Topic.parse(TOPIC)
    assert str(topic) == TOPIC
    for bad in ("Lab", "lab cad", "", "x" * 65, "lab/x", "läb"):
        with pytest.raises(PayloadRejected):
            Topic("site", bad, "dev", "sample")


@pytest.mark.parametrize(
    ("topic", "payload", "expected"),
    [
        (TOPIC, b"not json at all", "not_json"),
        (TOPIC, b"\xff\xfe\x00garbage", "not_json"),
        (TOPIC, b"[1, 2, 3]", "not_object"),
        (TOPIC, sample(v=...), "version_missing"),
        (TOPIC, sample(v=2), "version_unknown"),
        (TOPIC, sample(v="1"), "version_unknown"),
        (TOPIC, sample(ts=...), "missing_field"),
        (TOPIC, sample(ts="1764147600000"), "ts_invalid"),
        (TOPIC, sample(ts=1764147600000.5), "ts_invalid"),
        (TOPIC, sample(ts=-5), "ts_invalid"),
        (TOPIC, sample(ts=NOW + 3600_000), "ts_future"),
        (TOPIC, sample(seq="812"), "field_type"),
        (TOPIC, sample(interval_s="60"), "field_type"),
        (TOPIC, sample(interval_s=0), "interval_invalid"),
        (TOPIC, sample(interval_s=-60), "interval_invalid"),
        (TOPIC, sample(state_s={"in_use": -1}), "seconds_invalid"),
        (TOPIC, sample(state_s={"in_use": "41"}), "field_type"),
        (TOPIC, sample(state_s={"busy": 41}), "state_unknown"),
        (TOPIC, sample(state_s={"in_use": 40, "idle": 30}), "state_overflow"),
        (TOPIC, sample(state_s=[41]), "field_type"),
        (TOPIC, sample(state_s=...), "missing_field"),
        (TOPIC, sample(user="mario.rossi"), "user_not_pseudonym"),
        (TOPIC, sample(category="visitor"), "category_unknown"),
        (TOPIC, sample(window_title="Budget 2026.xlsx"), "unknown_field"),
        (TOPIC, sample(metrics={"cpu_pct": "high"}), "field_type"),
        (TOPIC, sample(metrics={"CPU": 1.0}), "field_type"),
        (TOPIC, sample(apps_s={"Solid Works": 1.0}), "field_type"),
        (TOPIC, sample(state_s={"in_use": 61}), "seconds_invalid"),
        (TOPIC, sample(state_s={"in_use": True}), "field_type"),
        (TOPIC, sample(user=["p_3f9a0c1d2e4b5a69"]), "user_not_pseudonym"),
        (TOPIC, sample(kind={"pc": 1}), "field_type"),
        (TOPIC, sample(kind="PC"), "field_type"),
        (TOPIC, sample(apps_s=None), "field_type"),
        ("labmeter/v1/its-prime/Lab CAD/pc-01/sample", sample(), "topic_invalid"),
        ("labmeter/v1/its-prime/lab-cad/pc-01", sample(), "topic_invalid"),
        ("labmeter/v1/its-prime/lab-cad/pc-01/telemetry", sample(), "topic_invalid"),
        ("labmeter/v2/its-prime/lab-cad/pc-01/sample", sample(), "version_unknown"),
        (
            "labmeter/v1/its-prime/lab-cad/pc-01/event",
            {"v": 1, "ts": NOW, "seq": 1, "type": "party"},
            "event_type_unknown",
        ),
        ("labmeter/v1/its-prime/lab-cad/pc-01/status", {"v": 1, "status": "sleepy"}, "field_type"),
    ],
)
def test_each_kind_of_invalid_message_has_its_reason(
    topic: str, payload: bytes | dict[str, Any], expected: str
) -> None:
    assert reason(topic, payload) == expected


def test_oversized_payload_is_rejected_before_parsing() -> None:
    big = orjson.dumps(sample(metrics={f"m{i}": 1.0 for i in range(30)})) + b" " * MAX_PAYLOAD_BYTES
    assert reason(TOPIC, big) == "oversized"


def test_nan_and_infinity_are_not_json_numbers() -> None:
    assert reason(TOPIC, orjson.dumps(sample()).replace(b"41.5,", b"NaN,", 1)) == "not_json"
    huge = orjson.dumps(sample()).replace(b'"interval_s":60', b'"interval_s":1e400')
    assert reason(TOPIC, huge) in ("not_json", "interval_invalid")


def test_names_seen_before_still_leave_invalid_ones_rejected() -> None:
    """The cache of valid names, kinds and pseudonyms only ever holds strings that matched."""
    ok = sample(kind="pc", user="p_0123456789abcdef", metrics={"cpu_pct": 1.0})
    for _ in range(2):  # the second time from the cache
        decode(TOPIC, orjson.dumps(ok), NOW)
    assert reason(TOPIC, sample(kind="pc ")) == "field_type"
    assert reason(TOPIC, sample(user="p_0123456789abcdeF")) == "user_not_pseudonym"
    assert reason(TOPIC, sample(metrics={"cpu_pct ": 1.0})) == "field_type"


def test_name_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from labmeter import contract

    monkeypatch.setattr(contract._Known, "LIMIT", 10)
    for i in range(25):
        decode(TOPIC, orjson.dumps(sample(apps_s={f"app{i}": 1.0})), NOW)
        assert len(contract._NAMES.seen) <= 10


@pytest.mark.parametrize("substate", ["Executing/Processing", "PRINTING", "RUNNING", "M30 done"])
def test_a_machine_may_name_its_own_state(substate: str) -> None:
    sample = Sample(1_000, 1, 60.0, {"in_use": 60.0}, kind="cnc", state="in_use", substate=substate)
    message = decode("labmeter/v1/s/l/cnc-01/sample", encode(sample), 2_000)
    assert message.payload == sample


@pytest.mark.parametrize("substate", ["", " lead", 'a"b', "x\\y", "x" * 65, 3, "riga\nnuova"])
def test_a_substate_is_a_short_name_not_a_text(substate: object) -> None:
    payload = orjson.dumps({"v": 1, "ts": 1_000, "seq": 1, "interval_s": 60.0,
                            "state_s": {"idle": 60.0}, "substate": substate})  # fmt: skip
    with pytest.raises(PayloadRejected) as info:
        decode("labmeter/v1/s/l/cnc-01/sample", payload, 2_000)
    assert info.value.reason == "field_type"


# --- confirmations (collector -> agent) -----------------------------------------------------

QUEUE = "3f9a0c1d2e4b5a69"


def test_a_confirmation_names_rows_as_ranges_and_round_trips() -> None:
    payloads = encode_confirmations(QUEUE, [9, 3, 4, 5, 12, 4])
    assert [orjson.loads(p) for p in payloads] == [
        {"v": 1, "queue": QUEUE, "rows": [[3, 5], [9, 9], [12, 12]]}
    ]
    assert decode_confirmation(payloads[0]) == Confirmation(QUEUE, ((3, 5), (9, 9), (12, 12)))
    # Every other row (two collectors sharing a subscription): split, never merged across gaps.
    many = encode_confirmations(QUEUE, range(1, 2 * MAX_CONFIRM_RANGES + 10, 2))
    decoded = [decode_confirmation(p) for p in many]
    assert [len(c.rows) for c in decoded] == [MAX_CONFIRM_RANGES, 5]
    assert all(first == last for c in decoded for first, last in c.rows)


@pytest.mark.parametrize(
    "body",
    [
        {"v": 1, "queue": "3F9A0C1D2E4B5A69", "rows": [[1, 2]]},  # not lower-case hex
        {"v": 1, "queue": QUEUE[:15], "rows": [[1, 2]]},
        {"v": 1, "queue": QUEUE, "rows": [[2, 1]]},  # backwards
        {"v": 1, "queue": QUEUE, "rows": [[1, 5], [5, 9]]},  # overlapping
        {"v": 1, "queue": QUEUE, "rows": [[5, 9], [1, 2]]},  # not ascending
        {"v": 1, "queue": QUEUE, "rows": [[0, 2]]},  # row ids start at 1
        {"v": 1, "queue": QUEUE, "rows": [[1, True]]},
        {"v": 1, "queue": QUEUE, "rows": [[1, 2.0]]},
        {"v": 1, "queue": QUEUE, "rows": [[1, 2, 3]]},
        {"v": 1, "queue": QUEUE, "rows": "1-2"},
        {"v": 1, "queue": QUEUE, "rows": [[1, 2]], "upto": 99},  # no watermark, ever
        {"v": 2, "queue": QUEUE, "rows": [[1, 2]]},
    ],
)
def test_a_confirmation_that_could_cover_the_wrong_rows_is_refused(body: dict[str, Any]) -> None:
    with pytest.raises(PayloadRejected):
        decode_confirmation(orjson.dumps(body))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"3f9a0c1d2e4b5a69:812", (QUEUE, 812)),
        (b"3f9a0c1d2e4b5a69:0", None),
        (b"3f9a0c1d2e4b5a69:+812", None),
        (b"3f9a0c1d2e4b5a69:8_12", None),
        (b"3f9a0c1d2e4b5a69: 812", None),
        (b"3f9a0c1d2e4b5a69:99999999999999999999", None),  # beyond SQLite's row ids
        (b"3F9A0C1D2E4B5A69:812", None),
        (b"3f9a0c1d2e4b5a6:812", None),
        (b"3f9a0c1d2e4b5a69-812", None),
        (b"", None),
    ],
)
def test_row_labels_parse_strictly(value: bytes, expected: tuple[str, int] | None) -> None:
    assert parse_row_label(value) == expected
    if expected is not None:
        assert row_label(*expected).encode() == value


def test_confirmations_go_to_the_device_of_the_message_and_no_collector_receives_them() -> None:
    sample_topic = TOPIC.encode()
    where = confirm_topic(sample_topic, confirm_writer("Labmeter Collector-w1"))
    assert where == "labmeter/v1/its-prime/lab-cad/pc-01/confirm/labmeter-collector-w1"
    assert confirm_topic(b"labmeter/v1/its-prime/lab-cad/pc-01/event", "c") == (
        "labmeter/v1/its-prime/lab-cad/pc-01/confirm/c"
    )
    for bad in (b"labmeter/v1/a/b/c/bogus", b"labmeter/v1/a/b/sample", b"\xff/x"):
        assert confirm_topic(bad, "c") is None
    device = Topic.parse(TOPIC)
    assert topic_matches_sub(confirm_filter(device), where)
    assert not topic_matches_sub(
        confirm_filter(Topic("its-prime", "lab-cad", "pc-02", "sample")), where
    )
    # Seven levels: the collector's own subscriptions (all sites, one site) never match.
    for own in (subscription(), subscription("its-prime")):
        assert not topic_matches_sub(own, where)
    assert confirm_writer("???") == "collector"

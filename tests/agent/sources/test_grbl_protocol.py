import pytest
from hypothesis import given
from hypothesis import strategies as st

from labmeter.agent.sources.grbl.protocol import (
    STATE_MAP,
    Alarm,
    Banner,
    Error,
    Feedback,
    Garbage,
    Ok,
    Status,
    parse_line,
)
from labmeter.contract import STATES

# The README's table, written out again so that a change to the mapping fails here.
EXPECTED = {
    "<Idle|MPos:0.000,0.000,0.000|FS:0,0>": ("Idle", None, "idle"),
    "<Run|MPos:10.000,2.000,-1.000|FS:600,12000|Ov:100,100,100>": ("Run", None, "in_use"),
    "<Hold:0|MPos:0.000,0.000,0.000|FS:0,0>": ("Hold", 0, "paused"),
    "<Hold:1|MPos:0.000,0.000,0.000|FS:120,0>": ("Hold", 1, "paused"),
    "<Jog|MPos:5.000,0.000,0.000|FS:500,0>": ("Jog", None, "setup"),
    "<Alarm|MPos:0.000,0.000,0.000|FS:0,0|Pn:X>": ("Alarm", None, "alarm"),
    "<Door:0|MPos:0.000,0.000,0.000|FS:0,0>": ("Door", 0, "paused"),
    "<Door:1|MPos:0.000,0.000,0.000|FS:0,0>": ("Door", 1, "paused"),
    "<Door:2|MPos:0.000,0.000,0.000|FS:0,0>": ("Door", 2, "paused"),
    "<Door:3|MPos:0.000,0.000,0.000|FS:0,0>": ("Door", 3, "paused"),
    "<Check|MPos:0.000,0.000,0.000|FS:0,0>": ("Check", None, "setup"),
    "<Home|MPos:0.000,0.000,0.000|FS:800,0>": ("Home", None, "setup"),
    "<Sleep|MPos:0.000,0.000,0.000|FS:0,0>": ("Sleep", None, "off"),
    "<Tool|MPos:0.000,0.000,0.000|FS:0,0>": ("Tool", None, "setup"),
}


@pytest.mark.parametrize("line", sorted(EXPECTED))
def test_every_state_maps_as_documented(line: str) -> None:
    msg = parse_line(line)
    assert isinstance(msg, Status)
    assert (msg.machine_state, msg.sub_state, msg.state) == EXPECTED[line]


def test_every_grbl_state_is_covered_and_maps_to_a_contract_state() -> None:
    assert {v[0] for v in EXPECTED.values()} == set(STATE_MAP)
    assert set(STATE_MAP.values()) <= set(STATES)


def test_feed_and_spindle() -> None:
    msg = parse_line("<Run|WPos:1.0,2.0,3.0|Bf:15,128|FS:600.5,12000|WCO:0,0,0>\r")
    assert isinstance(msg, Status)
    assert (msg.feed, msg.spindle) == (600.5, 12000.0)
    msg = parse_line("<Run|MPos:0,0,0|F:300>")
    assert isinstance(msg, Status) and msg.feed == 300.0 and msg.spindle is None


def test_grbl_09_report() -> None:
    msg = parse_line("<Idle,MPos:0.000,0.000,0.000,WPos:0.000,0.000,0.000>")
    assert isinstance(msg, Status) and msg.state == "idle"


@pytest.mark.parametrize(
    "line,firmware",
    [
        ("Grbl 1.1h ['$' for help]", "Grbl 1.1h"),
        ("Grbl 0.9j ['$' for help]", "Grbl 0.9j"),
        ("GrblHAL 1.1f ['$' or '$HELP' for help]", "GrblHAL 1.1f"),
        ("grblHAL 1.1f ['$' or '$HELP' for help]", "grblHAL 1.1f"),
    ],
)
def test_banner(line: str, firmware: str) -> None:
    assert parse_line(line) == Banner(firmware)


def test_replies() -> None:
    assert parse_line("ok") == Ok()
    assert parse_line("error:20") == Error(20)
    assert parse_line("ALARM:1") == Alarm(1)
    assert parse_line("[MSG:'$H'|'$X' to unlock]") == Feedback("[MSG:'$H'|'$X' to unlock]")
    assert parse_line("$110=500.000") == Feedback("$110=500.000")


@pytest.mark.parametrize(
    "line",
    [
        "<Running|MPos:0,0,0>",  # unknown state
        "<Hold:x|MPos:0,0,0>",  # bad sub-state
        "<Run|FS:abc,0>",  # bad numbers
        "<Run|FS:1>",  # FS needs two values
        "<Idle|MPos:0.000,0.0",  # truncated report (no closing bracket)
        "Idle|MPos:0.000>",
        "\x00\xff\x13ok",
        "okk",
        "error:",
        "",
    ],
)
def test_garbage(line: str) -> None:
    assert isinstance(parse_line(line), Garbage)


@given(st.text(max_size=80))
def test_any_text_is_classified_without_raising(line: str) -> None:
    parse_line(line)


def test_numbers_too_long_to_be_finite_are_garbage() -> None:
    assert isinstance(parse_line("<Run|MPos:0,0,0|FS:" + "9" * 400 + ",0>"), Garbage)

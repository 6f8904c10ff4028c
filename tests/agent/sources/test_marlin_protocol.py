import pytest
from hypothesis import given
from hypothesis import strategies as st

from labmeter.agent.sources.marlin.protocol import (
    Busy,
    DonePrinting,
    Garbage,
    Info,
    MarlinError,
    NotSdPrinting,
    Ok,
    SdProgress,
    Start,
    Temperatures,
    parse_line,
)


def test_m105_reply_in_ok() -> None:
    msg = parse_line("ok T:210.0 /210.0 B:60.0 /60.0 @:127 B@:0")
    assert msg == Ok(Temperatures(210.0, 210.0, 60.0, 60.0))


def test_plain_and_advanced_ok() -> None:
    assert parse_line("ok") == Ok(None)
    assert parse_line("ok N10 P15 B3") == Ok(None)


def test_autoreport_with_multiple_hotends_and_chamber() -> None:
    msg = parse_line(" T:24.51 /0.00 B:23.80 /0.00 T0:24.51 /0.00 T1:30.00 /0.00 @:0 B@:0 C:25.0")
    assert msg == Temperatures(24.51, 0.0, 23.8, 0.0)
    assert isinstance(msg, Temperatures) and not msg.heating
    msg = parse_line("T0:200.0 /215.0 B:59.0 /60.0")
    assert isinstance(msg, Temperatures) and msg.hotend == 200.0 and msg.heating


def test_temperature_without_target() -> None:
    assert parse_line("T:24.5 B:23.0") == Temperatures(24.5, None, 23.0, None)


def test_sd_progress() -> None:
    assert parse_line("SD printing byte 1234/5678") == SdProgress(1234, 5678)
    assert parse_line("Not SD printing") == NotSdPrinting()
    assert isinstance(parse_line("SD printing byte 9999/5678"), Garbage)
    assert isinstance(parse_line("SD printing byte 12a4/5678"), Garbage)


@pytest.mark.parametrize(
    "line,reason",
    [
        ("busy: processing", "processing"),
        ("echo:busy: processing", "processing"),
        ("echo:busy: paused for user", "paused for user"),
        ("echo:busy: paused for input", "paused for input"),
    ],
)
def test_busy(line: str, reason: str) -> None:
    assert parse_line(line) == Busy(reason)


def test_start_done_info() -> None:
    assert parse_line("start") == Start()
    assert parse_line("Done printing file") == DonePrinting()
    for line in ("echo:Marlin 2.1.2.1", "File opened: job.gcode Size: 1234", "//action:pause"):
        assert isinstance(parse_line(line), Info)


@pytest.mark.parametrize(
    "line,fatal",
    [
        ("Error:Printer halted. kill() called!", True),
        ("Error:Thermal Runaway, system stopped! Heater_ID: 0", True),
        ("Error:MINTEMP triggered, system stopped! Heater_ID: bed", True),
        ("Error:Heating failed, system stopped! Heater_ID: 0", True),
        ("Error:No Checksum with line number, Last Line: 12", False),
        ("Error:Line Number is not Last Line Number+1, Last Line: 3", False),
    ],
)
def test_errors(line: str, fatal: bool) -> None:
    msg = parse_line(line)
    assert isinstance(msg, MarlinError) and msg.fatal is fatal


@pytest.mark.parametrize("line", ["\xff\xfe\x00", "T:abc", "okay", "stat", "SD printing"])
def test_garbage(line: str) -> None:
    assert isinstance(parse_line(line), Garbage)


@given(st.text(max_size=80))
def test_any_text_is_classified_without_raising(line: str) -> None:
    parse_line(line)


def test_numbers_too_long_to_be_finite_are_garbage() -> None:
    assert isinstance(parse_line("T:" + "9" * 400 + " /0.0 B:20.0 /0.0"), Garbage)
    assert parse_line("ok T:" + "9" * 400) == Ok(None)

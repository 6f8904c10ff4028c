import os
import time
import tty

import pytest
import serial

from labmeter.agent.sources.serial_link import LineBuffer, open_port


def test_line_buffer_splits_joins_and_cuts() -> None:
    b = LineBuffer(max_line=8)
    assert b.feed(b"ok\r\n<Id") == ["ok"]
    assert b.feed(b"le>\n\n") == ["<Idle>", ""]
    assert b.feed(b"\xff\xfe\n") == ["\ufffd\ufffd"]  # decoded, never raising
    assert b.feed(b"x" * 9) == [] and b.overflows == 1
    assert b.feed(b"ok\n") == ["ok"]
    assert b.feed(b"y" * 9 + b"\nok\n") == ["ok"] and b.overflows == 2  # long, in one chunk


def test_open_port_is_exclusive_and_leaves_dtr_and_rts_low() -> None:
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        port = open_port(os.ttyname(slave), 115200)
        assert port.is_open and port.dtr is False and port.rts is False
        port.write(b"?")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline and not (got := os.read(master, 16)):
            pass
        assert got == b"?"
        with pytest.raises(serial.SerialException):
            open_port(os.ttyname(slave), 115200)  # one reader per port
        port.close()
    finally:
        os.close(master)
        os.close(slave)

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labmeter.agent.sources.badge.protocol import (
    Change,
    Debouncer,
    FrameDecoder,
    Sessions,
    checksum,
    encode_frame,
)


def test_checksum_is_xor_of_the_five_bytes() -> None:
    assert checksum("0415AB12CD") == 0x04 ^ 0x15 ^ 0xAB ^ 0x12 ^ 0xCD


def test_frame_layouts() -> None:
    rdm = encode_frame("0415AB12CD", "rdm6300")
    assert len(rdm) == 14 and rdm[0] == 0x02 and rdm[-1] == 0x03
    id12 = encode_frame("0415ab12cd", "id12la")
    assert len(id12) == 16 and id12[-3:] == b"\r\n\x03"


@pytest.mark.parametrize("reader", ["rdm6300", "id12la"])
def test_valid_frames_in_any_chunking(reader: str) -> None:
    stream = encode_frame("0415AB12CD", reader) + encode_frame("1A2B3C4D5E", reader)
    for size in (1, 3, len(stream)):
        d = FrameDecoder()
        ids = [i for k in range(0, len(stream), size) for i in d.feed(stream[k : k + size])]
        assert ids == ["0415AB12CD", "1A2B3C4D5E"]
        assert (d.bad_checksum, d.malformed, d.stray_bytes) == (0, 0, 0)


def test_bad_input_is_counted_not_raised() -> None:
    good = encode_frame("0415AB12CD")
    d = FrameDecoder()
    wrong = good[:11] + b"00" + good[13:]
    assert d.feed(wrong) == [] and d.bad_checksum == 1
    assert d.feed(good[:6] + good) == ["0415AB12CD"] and d.malformed == 1  # truncated, resync
    assert d.feed(b"\x02ZZ15AB12CD00\x03") == [] and d.malformed == 2  # not hex
    assert d.feed(b"\x020415AB12\x03") == [] and d.malformed == 3  # too short
    assert d.feed(b"\x02" + b"0" * 20) == [] and d.malformed == 4  # runaway frame
    assert d.feed(b"noise\x03") == [] and d.stray_bytes == (20 - 15) + 6  # cut at 15
    assert d.feed(good) == ["0415AB12CD"]


@given(st.binary(max_size=200))
def test_random_bytes_never_raise(data: bytes) -> None:
    d = FrameDecoder()
    for badge in d.feed(data):
        assert len(badge) == 10


def test_debouncer_merges_repeats_of_a_held_card() -> None:
    d = Debouncer(hold_s=1.0)
    assert d.swipe("A", 0.0) is True
    assert d.swipe("A", 0.1) is False
    assert d.swipe("A", 1.0) is False  # still in the field: each repeat extends the hold
    assert d.swipe("A", 2.5) is True  # taken away and presented again
    assert d.swipe("B", 2.6) is True
    assert d.repeats == 2


def test_sessions_open_close_and_switch() -> None:
    s = Sessions()
    assert s.swipe("A") == [Change("start", "A")]
    assert s.swipe("B") == [Change("end", "A"), Change("start", "B")]
    assert s.swipe("B") == [Change("end", "B")]
    assert s.current is None

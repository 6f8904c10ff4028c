import struct

import pytest

from labmeter.agent.sources.modbus.protocol import Register, parse_register_map
from labmeter.errors import ConfigError
from labmeter.simulators.devices.modbus_meter import crc16, with_crc


def test_float32_word_orders() -> None:
    hi, lo = struct.unpack(">HH", struct.pack(">f", 2200.5))
    assert Register("p", 12).decode([hi, lo]) == 2200.5
    assert Register("p", 12, word_order="little").decode([lo, hi]) == 2200.5


@pytest.mark.parametrize(
    "rtype,words,scale,value",
    [
        ("int16", [0xFFFE], 1.0, -2.0),
        ("uint16", [0xFFFE], 0.1, 6553.4),
        ("int32", [0xFFFF, 0xFFFF], 1.0, -1.0),
        ("uint32", [0x0001, 0xE240], 0.01, 1234.56),
    ],
)
def test_integer_types_and_scale(rtype: str, words: list[int], scale: float, value: float) -> None:
    reg = Register("x", 0, rtype, scale)
    assert reg.decode(words) == pytest.approx(value)
    assert reg.encode(value) == words


def test_wrong_register_count_is_an_error() -> None:
    with pytest.raises(ValueError):
        Register("p", 0).decode([1])
    with pytest.raises(ValueError):
        Register("p", 0, "int16").decode([70000])


def test_not_finite_is_an_error_not_a_value() -> None:
    with pytest.raises(ValueError):
        Register("power", 12).decode([0xFFFF, 0xFFFF])  # NaN: meters say "no value" so
    with pytest.raises(ValueError):
        Register("power", 12).decode([0x7F80, 0x0000])  # +inf


def test_register_map_from_config() -> None:
    regs = parse_register_map(
        {
            "power": {"address": 12},
            "energy": {"address": 342, "type": "uint32", "scale": 0.01, "function": "holding",
                       "word_order": "little"},
        }
    )  # fmt: skip
    assert regs == [
        Register("power", 12, "float32", 1.0, "big", "input"),
        Register("energy", 342, "uint32", 0.01, "little", "holding"),
    ]
    assert [r.count for r in regs] == [2, 2]


@pytest.mark.parametrize(
    "spec,key",
    [
        ({"power": 12}, "agent.options.registers.power"),
        ({"power": {}}, "agent.options.registers.power.address"),
        ({"power": {"address": 70000}}, "agent.options.registers.power.address"),
        ({"power": {"address": 1, "type": "float64"}}, "agent.options.registers.power.type"),
        ({"power": {"address": 1, "scale": 0}}, "agent.options.registers.power.scale"),
        ({"power": {"address": 1, "word_order": "middle"}},
         "agent.options.registers.power.word_order"),
        ({"power": {"address": 1, "function": "coil"}}, "agent.options.registers.power.function"),
        ({"power": {"address": 1, "adress": 2}}, "agent.options.registers.power.adress"),
        ({"Power W": {"address": 1}}, "agent.options.registers.Power W"),
        ({f"r{i}": {"address": i} for i in range(25)}, "agent.options.registers"),
    ],
)  # fmt: skip
def test_register_map_errors_name_the_key(spec: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_register_map(spec)
    assert err.value.key == key


def test_crc16_known_frame() -> None:
    # Read holding registers, slave 1, address 0, count 10: the textbook frame ends C5 CD.
    assert with_crc(bytes.fromhex("01030000000A")) == bytes.fromhex("01030000000AC5CD")
    assert crc16(b"") == 0xFFFF

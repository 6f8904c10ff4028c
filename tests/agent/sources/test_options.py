import pytest

from labmeter.agent.sources.options import Options
from labmeter.errors import ConfigError


def error(call: object) -> str:
    with pytest.raises(ConfigError) as err:
        call()  # type: ignore[operator]
    return str(err.value)


def test_each_error_names_its_key() -> None:
    o = Options({"port": "", "hz": "5", "n": 2.5, "flag": True, "t": 3, "sub": {"x": 1}})
    assert (
        error(lambda: o.string("port")) == "agent.options.port: must be a non-empty string, got ''"
    )
    assert error(lambda: o.string("missing")) == "agent.options.missing: is required"
    assert error(lambda: o.number("hz")) == "agent.options.hz: must be a number, got '5'"
    assert error(lambda: o.number("flag")) == "agent.options.flag: must be a number, got True"
    assert error(lambda: o.number("n", maximum=2)) == "agent.options.n: must be <= 2, got 2.5"
    assert error(lambda: o.integer("n")) == "agent.options.n: must be an integer, got 2.5"
    assert error(lambda: o.integer("missing")) == "agent.options.missing: is required"
    assert error(lambda: o.table("t")) == "agent.options.t: must be a table"
    assert error(lambda: o.sub("sub").string("y")) == "agent.options.sub.y: is required"
    assert "agent.options.hz: unknown option" in error(lambda: o.reject_unknown({"port"}))


def test_values_and_defaults() -> None:
    o = Options({"port": "/dev/ttyUSB0", "hz": 5, "v": "grblhal"})
    assert o.string("port") == "/dev/ttyUSB0"
    assert o.string("v", choices=("grbl", "grblhal")) == "grblhal"
    assert o.number("hz", minimum=0.1, maximum=5) == 5.0
    assert o.number("missing", 1.5) == 1.5
    assert o.integer("baud", 115200) == 115200
    assert o.table("none") == {}

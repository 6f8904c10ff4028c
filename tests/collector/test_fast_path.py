"""The converter's fast path for well-formed samples (``contract.plain_sample`` and the lines
``convert`` builds straight from a payload) against the full checker and ``parse``.

The fast path may only say yes to what the full checker accepts, and must then give the same
lines; everything else it hands to the full checker, so refusals keep their reasons.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labmeter.collector.admission import Admission
from labmeter.collector.convert import convert, parse
from labmeter.contract import decode, plain_sample
from labmeter.errors import PayloadRejected
from labmeter.periods import Closure
from tests.collector.test_parsing_properties import NOW_MS, valid_sample

TOPIC = "labmeter/v1/site/lab/dev/sample"
EXAMPLE: dict[str, Any] = {  # DESIGN.md's example, with every optional field
    "v": 1,
    "ts": NOW_MS - 60_000,
    "seq": 812,
    "interval_s": 60,
    "state_s": {"in_use": 41.5, "idle": 18.5},
    "apps_s": {"solidworks": 41.5},
    "user": "p_3f9a0c1d2e4b5a69",
    "category": "school",
    "kind": "pc",
    "state": "idle",
    "substate": "Executing/Processing",
    "metrics": {"cpu_pct": 23.1, "mem_pct": 48.0, "gpu_pct": 0.0},
}
VALUES: list[Any] = [
    *[0, -0.0, -1, -1e-9, 0.0005, 1e308, -1e308, 2**53 + 1, 2**63, 2**64 - 1, -(2**63)],
    *[True, False, None, "", "x", "41.5", [], [1.0], {}, {"a": 1.0}, 60, 60.0, 60.0009, 60.002],
    *["in_use", "p_0123456789abcdef", "p_0123456789ABCDEF", "school", "visitor", "pc", "PC"],
    *["PRINTING", 'a"b', "x\\y", " lead", "x" * 64, "x" * 65, "Maria Rossi\n"],
    *[NOW_MS, NOW_MS + 300_000, NOW_MS + 300_001, 59, 59.999, 18.5, 41.5, 61],
]


def _paths() -> list[tuple[str, ...]]:
    """Every place of the example, and a few it does not have."""
    paths: list[tuple[str, ...]] = [(k,) for k in [*EXAMPLE, "extra"]]
    for key in ("state_s", "apps_s", "metrics"):
        paths += [(key, k) for k in [*EXAMPLE[key], "setup", "busy", "CPU", "a b", "x.y"]]
    return paths


PATHS = _paths()


@st.composite
def near_miss(draw: st.DrawFn) -> dict[str, Any]:
    """A valid sample with one to three values changed, added or removed, at any depth."""
    body = copy.deepcopy(draw(valid_sample()))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        target = body if len(path) == 1 else body.get(path[0])
        if not isinstance(target, dict):
            continue
        if draw(st.integers(0, 3)) == 0:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = draw(st.sampled_from(VALUES) | st.floats(allow_nan=False))
    return body


def _outcome(payload: bytes) -> tuple[str, list[str] | str]:
    """What ``parse`` (the full checker) makes of it: lines, or the reason and detail."""
    try:
        return "lines", parse(TOPIC.encode(), payload, NOW_MS)[1]
    except PayloadRejected as exc:
        return "refused", f"{exc.reason}: {exc.detail}"


def _converted(payload: bytes, admission: Admission | None = None) -> tuple[str, list[str] | str]:
    chunk = [(1, 1, TOPIC.encode(), payload, b"")]
    out = convert(chunk, NOW_MS) if admission is None else convert(chunk, NOW_MS, admission)
    if out.rejected:
        (_, reason, detail), *_ = out.rejected
        return "refused", f"{reason}: {detail}"
    return "lines", out.lines


@given(st.one_of(valid_sample(), near_miss()))
@settings(max_examples=600, deadline=None)
def test_fast_path_accepts_only_what_the_checker_accepts_with_the_same_lines(
    body: dict[str, Any],
) -> None:
    payload = orjson.dumps(body)
    try:
        decode(TOPIC, payload, NOW_MS)  # the names it holds are now seen (the cache's case)
        accepted = True
    except PayloadRejected:
        accepted = False
    if plain_sample(orjson.loads(payload), NOW_MS):
        assert accepted
    assert _converted(payload) == _outcome(payload)


@given(valid_sample())
@settings(max_examples=200, deadline=None)
def test_every_valid_sample_takes_the_fast_path_once_its_names_are_known(
    body: dict[str, Any],
) -> None:
    payload = orjson.dumps(body)
    decode(TOPIC, payload, NOW_MS)
    assert plain_sample(orjson.loads(payload), NOW_MS)


@pytest.mark.parametrize("path", PATHS, ids="/".join)
def test_each_value_anywhere_takes_the_same_way(path: tuple[str, ...]) -> None:
    """Every value of ``VALUES`` (and its absence) at every place of the example."""
    for value in [*VALUES, ...]:
        body = copy.deepcopy(EXAMPLE)
        target = body if len(path) == 1 else body[path[0]]
        if value is ...:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
        payload = orjson.dumps(body)
        if plain_sample(orjson.loads(payload), NOW_MS):
            decode(TOPIC, payload, NOW_MS)  # accepted by the full checker too
        assert _converted(payload) == _outcome(payload), (path, value)


@pytest.mark.parametrize(
    "text",
    [
        b'{"v":1,"ts":1,"seq":1,"interval_s":1e400,"state_s":{}}',  # infinity
        b'{"v":1,"ts":1,"seq":1,"interval_s":60,"state_s":{"in_use":1e400}}',
        b'{"v":1,"ts":1,"seq":1,"interval_s":60,"state_s":{},"metrics":{"m":-1e400}}',
        b'{"v":1,"ts":1,"seq":1,"interval_s":60,"state_s":{"in_use":30,"in_use":61}}',  # twice
        b'{"v":1,"ts":1,"seq":1,"interval_s":60,"state_s":{"in_use":30,"idle":30.0005}}',
        b'{"v":1,"ts":1,"seq":1,"interval_s":60,"state_s":{"in_use":30,"idle":30.002}}',
        b'{"v":1,"ts":1,"seq":18446744073709551615,"interval_s":60,"state_s":{}}',
        b'{"v":1.0,"ts":1,"seq":1,"interval_s":60,"state_s":{}}',
        b'{"v":true,"ts":1,"seq":1,"interval_s":60,"state_s":{}}',
        b'{"v":1,"ts":1,"seq":1,"interval_s":60,"state_s":{},"category":null}',
        b'{"v":1,"ts":1,"seq":1,"interval_s":60,"state_s":{},"user":null,"kind":null}',
        b'{"v":1,"ts":1,"seq":1,"interval_s":60,"state_s":{},"apps_s":null}',
        b'{"v":1,"ts":1,"seq":1,"interval_s":60}',
        b'{"v":1,"ts":1,"seq":1,"interval_s":60,"state_s":{}} ',
    ],
)
def test_edges_of_json_take_the_same_way(text: bytes) -> None:
    assert _converted(text) == _outcome(text)


def test_refusals_beyond_the_contract_keep_their_reasons() -> None:
    """The fast path asks the admission too: closed periods and the horizon refuse."""
    hour = 3_600_000
    end = NOW_MS - NOW_MS % hour
    body = {"v": 1, "ts": end, "seq": 1, "interval_s": 60.0, "state_s": {"in_use": 60.0}}
    payload = orjson.dumps(body)
    closed = Admission(3, (Closure(3, end - hour, end, site="site"),))
    horizon = Admission(max_age_ms=1000)
    for admission, reason in ((closed, "period_closed"), (horizon, "too_old")):
        expected = _converted_reason(payload, admission)
        assert expected.startswith(reason)
        assert _converted(payload, admission) == ("refused", expected)
    elsewhere = Admission(3, (Closure(3, end - hour, end, site="other"),))
    assert _converted(payload, elsewhere) == _outcome(payload)


def _converted_reason(payload: bytes, admission: Admission) -> str:
    """The refusal of the full way: ``parse``, then the admission's ``check``."""
    message, _ = parse(TOPIC.encode(), payload, NOW_MS)
    try:
        admission.check(message, NOW_MS)
    except PayloadRejected as exc:
        return f"{exc.reason}: {exc.detail}"
    raise AssertionError("admitted")

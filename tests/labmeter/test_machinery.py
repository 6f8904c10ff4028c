"""The machine state model, stated once: OPC 40001-1 to the contract's states."""

from __future__ import annotations

import itertools

import pytest

from labmeter.contract import STATES, SUBSTATE_PATTERN
from labmeter.machinery import (
    ISO_22400,
    SHOWN_AS,
    ItemState,
    MachineState,
    OperationMode,
    availability,
    contract_state,
    substate,
)

TABLE = {
    # (item, mode, held) -> state, as docs/numbers.md states it
    (ItemState.EXECUTING, OperationMode.PROCESSING, False): "in_use",
    (ItemState.EXECUTING, OperationMode.NONE, False): "in_use",
    (ItemState.EXECUTING, OperationMode.SETUP, False): "setup",
    (ItemState.EXECUTING, OperationMode.MAINTENANCE, False): "setup",
    (ItemState.EXECUTING, OperationMode.PROCESSING, True): "paused",
    (ItemState.NOT_EXECUTING, OperationMode.PROCESSING, True): "paused",
    (ItemState.NOT_EXECUTING, OperationMode.PROCESSING, False): "idle",
    (ItemState.NOT_EXECUTING, OperationMode.SETUP, False): "idle",
    (ItemState.OUT_OF_SERVICE, OperationMode.PROCESSING, True): "alarm",
    (ItemState.NOT_AVAILABLE, OperationMode.PROCESSING, True): "off",
}


@pytest.mark.parametrize(("key", "state"), TABLE.items(), ids=str)
def test_the_mapping(key: tuple[ItemState, OperationMode, bool], state: str) -> None:
    assert contract_state(*key) == state


def test_every_combination_gives_a_contract_state_and_never_unknown() -> None:
    for item, mode, held in itertools.product(ItemState, OperationMode, (False, True)):
        assert contract_state(item, mode, held) in STATES


def test_each_state_is_shown_as_something_that_reads_back_as_itself() -> None:
    assert set(SHOWN_AS) == set(STATES)
    for state, shown in SHOWN_AS.items():
        assert shown.state == state


def test_the_names_are_opc_40001_1s() -> None:
    assert [s.value for s in ItemState] == ["NotAvailable", "OutOfService", "NotExecuting",
                                            "Executing"]  # fmt: skip
    assert [m.value for m in OperationMode] == ["None", "Maintenance", "Setup", "Processing"]
    assert MachineState(ItemState.EXECUTING).mode is OperationMode.NONE


@pytest.mark.parametrize(
    ("parts", "want"),
    [
        (("Executing", "Processing"), "Executing/Processing"),
        (("RUN", 'Mode:"2"'), "RUN/Mode:2"),
        (("", None, "READY"), "READY"),
        (("x" * 100,), "x" * 64),
        (('"\\\n',), None),
    ],
)
def test_substates_fit_the_contract(parts: tuple[object, ...], want: str | None) -> None:
    import re

    got = substate(*parts)
    assert got == want
    assert got is None or re.fullmatch(SUBSTATE_PATTERN, got)


def test_iso_22400_availability_is_utilisation() -> None:
    assert availability(1800, 3600) == 0.5
    assert availability(0, 0) is None
    assert [e.code for e in ISO_22400] == ["PBT", "APT", "AUST", "A"]

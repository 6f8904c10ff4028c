"""OctoPrint's ``/api/job`` state text (and ``/api/printer`` heater targets) mapped to the contract.

OctoPrint is the printer's host: its ``Offline`` means it has no connection to the printer
(switched off, or unplugged), which it knows and says, so that is ``off``; while it is still
opening or detecting the connection it cannot tell. An error's message is never kept (it can
quote a file name): only the word ``Error``.
"""

from __future__ import annotations

from typing import Any, Final

from labmeter.agent.sources.printer import Snapshot, heated, substate

IN_USE: Final = frozenset({"Printing", "Printing from SD", "Resuming", "Finishing", "Cancelling"})
PAUSED: Final = frozenset({"Paused", "Pausing"})
SETUP: Final = frozenset(
    {"Starting", "Starting print from SD", "Transferring file to SD", "Sending file to SD"}
)
JOB_STATES: Final = IN_USE | PAUSED | SETUP


def snapshot(job: dict[str, Any], printer: dict[str, Any] | None) -> Snapshot:
    """``job``: the body of ``/api/job``; ``printer``: of ``/api/printer`` (None: 409, the
    printer is not operational)."""
    text = str(job["state"])
    metrics: dict[str, float] = {}
    temps = (printer or {}).get("temperature", {})
    for heater, key in (("hotend", "tool0"), ("bed", "bed")):
        reading = temps.get(key) or {}
        for suffix, field in (("", "actual"), ("_target", "target")):
            if isinstance(reading.get(field), int | float):
                metrics[heater + suffix] = float(reading[field])
    completion = (job.get("progress") or {}).get("completion")
    name: str | None = None
    if text in JOB_STATES:
        name = str(((job.get("job") or {}).get("file") or {}).get("name") or "") or None
        if isinstance(completion, int | float):
            metrics["progress_pct"] = round(float(completion), 2)
    if text.startswith("Error") or text == "Offline after error":
        word = "Error" if text.startswith("Error") else text
        return Snapshot("alarm", substate(word), None, metrics)
    if text == "Offline":
        return Snapshot("off", text, None, metrics)
    if text in IN_USE:
        return Snapshot("in_use", substate(text), name, metrics)
    if text in PAUSED:
        return Snapshot("paused", substate(text), name, metrics)
    if text in SETUP:
        return Snapshot("setup", substate(text), name, metrics)
    if text == "Operational":
        preheat = heated(metrics.get("hotend_target"), metrics.get("bed_target"))
        return Snapshot("setup" if preheat else "idle", text, None, metrics)
    # Opening serial connection, Detecting baudrate, Connecting, Unknown, ...
    return Snapshot(None, substate(text), None, metrics)

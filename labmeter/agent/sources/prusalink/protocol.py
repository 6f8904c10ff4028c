"""PrusaLink's ``/api/v1/status`` printer state mapped to the contract.

The printer states of the PrusaLink API (the same as Prusa Connect's): ``PRINTING``;
``PAUSED``; ``BUSY`` (working, not printing: a calibration, a filament load, a preheat from the
menu); ``ATTENTION`` (the print waits for a person: a filament runout, a crash, a question on
the screen) and ``ERROR``; ``IDLE``, ``READY`` (marked ready for the next job), ``FINISHED``
and ``STOPPED`` (a job ended, the printer is free).
"""

from __future__ import annotations

from typing import Any, Final

from labmeter.agent.sources.printer import Snapshot, heated, substate

STATES: Final = {
    "PRINTING": "in_use",
    "PAUSED": "paused",
    "BUSY": "setup",
    "ATTENTION": "alarm",
    "ERROR": "alarm",
    "IDLE": "idle",
    "READY": "idle",
    "FINISHED": "idle",
    "STOPPED": "idle",
}
JOB_STATES: Final = frozenset({"PRINTING", "PAUSED", "ATTENTION"})


def job_id(status: dict[str, Any]) -> int | None:
    """The id of the job the status names while one runs (a finished job keeps its id)."""
    state = str(status["printer"]["state"])
    found = (status.get("job") or {}).get("id")
    return int(found) if state in JOB_STATES and isinstance(found, int) else None


def snapshot(status: dict[str, Any], job_name: str | None) -> Snapshot:
    """``status``: the body of ``/api/v1/status``; ``job_name``: of the job it names, if any."""
    printer = status["printer"]
    word = str(printer["state"])
    metrics: dict[str, float] = {}
    for name, key in (("hotend", "temp_nozzle"), ("hotend_target", "target_nozzle"),
                      ("bed", "temp_bed"), ("bed_target", "target_bed")):  # fmt: skip
        if isinstance(printer.get(key), int | float):
            metrics[name] = float(printer[key])
    found = job_id(status)
    if found is not None and isinstance((status.get("job") or {}).get("progress"), int | float):
        metrics["progress_pct"] = float(status["job"]["progress"])
    job = None if found is None else job_name or f"job {found}"
    state = STATES.get(word)
    if state == "idle" and heated(metrics.get("hotend_target"), metrics.get("bed_target")):
        state = "setup"  # preheated and waiting for its job
    return Snapshot(state, substate(word), job, metrics)

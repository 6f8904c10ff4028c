"""Moonraker's answers (Klipper) mapped to the contract's states; the job history as fill spans.

``/printer/info`` says whether Klippy runs (``ready``, ``startup``, ``shutdown``, ``error``);
``/printer/objects/query`` gives ``print_stats`` (``standby``, ``printing``, ``paused``,
``complete``, ``cancelled``, ``error``), ``idle_timeout`` (``Printing`` while any G-code runs,
a calibration macro included) and the heaters' targets. Klipper counts ``print_duration``
only from a job's first extrusion, so a job with no filament used yet is still heating,
homing or levelling: setup, as the printer itself tells it.
"""

from __future__ import annotations

from typing import Any, Final

from labmeter.agent.backfill import Filled, Outage
from labmeter.agent.sources.printer import Snapshot, heated, substate

OBJECTS: Final = (
    "print_stats=state,filename,print_duration,total_duration,filament_used"
    "&idle_timeout=state&virtual_sdcard=progress"
    "&extruder=temperature,target&heater_bed=temperature,target"
)
# Klippy's own words when it cannot reach the printer's board: the printer is switched off.
MCU_ABSENT: Final = ("Unable to connect",)


def klippy(info: dict[str, Any]) -> Snapshot | None:
    """The state when Klippy is not ``ready`` (None: it is, ask ``print_stats``)."""
    state = str(info["state"])
    if state == "ready":
        return None
    if state == "shutdown":  # emergency stop, MCU error, thermal runaway: needs a restart
        return Snapshot("alarm", substate("klippy", state))
    if state == "error":
        message = str(info.get("state_message", ""))
        if any(word in message for word in MCU_ABSENT):
            return Snapshot("off", substate("klippy", state, "mcu_absent"))
        return Snapshot("alarm", substate("klippy", state))
    return Snapshot(None, substate("klippy", state))  # startup: cannot tell yet


def objects(status: dict[str, Any]) -> Snapshot:
    """The state of a ready Klipper from its objects."""
    ps = status["print_stats"]
    state = str(ps["state"])
    extruder, bed = status.get("extruder", {}), status.get("heater_bed", {})
    metrics: dict[str, float] = {}
    for name, obj, key in (
        ("hotend", extruder, "temperature"), ("hotend_target", extruder, "target"),
        ("bed", bed, "temperature"), ("bed_target", bed, "target"),
    ):  # fmt: skip
        if isinstance(obj.get(key), int | float):
            metrics[name] = float(obj[key])
    progress = status.get("virtual_sdcard", {}).get("progress")
    job: str | None = None
    if state in ("printing", "paused"):
        job = str(ps.get("filename") or "") or None
        if isinstance(progress, int | float):
            metrics["progress_pct"] = round(100 * float(progress), 2)
    if state == "printing":
        before_extrusion = float(ps.get("filament_used") or 0.0) <= 0.0
        return Snapshot("setup" if before_extrusion else "in_use", state, job, metrics)
    if state == "paused":
        return Snapshot("paused", state, job, metrics)
    busy = status.get("idle_timeout", {}).get("state") == "Printing"  # a macro, a calibration
    if busy or heated(metrics.get("hotend_target"), metrics.get("bed_target")):
        return Snapshot("setup", state, None, metrics)
    # standby, complete, cancelled, error (a job that failed; Klippy itself is ready)
    return Snapshot("idle", state, None, metrics)


def history_fill(
    jobs: list[dict[str, Any]], live: dict[str, Any] | None, outage: Outage, now_ms: int
) -> list[tuple[Filled, dict[str, Any]]]:
    """Spans of the outage that the job history vouches for as printing, with each job.

    A job's ``print_duration`` is the time it really printed (pauses and the heating before the
    first extrusion excluded), but not *when*: it is placed at the job's end. A job that began
    before the outage may have printed before it (the agent saw that part), so only what it
    printed beyond its time before the outage is filled: a lower bound, never a second counted
    twice. A job still running is filled from the live ``print_stats`` if it is printing now
    (a job paused now: its pause has no known start, nothing is filled).
    """
    out: list[tuple[Filled, dict[str, Any]]] = []
    for job in jobs:
        start = int(float(job["start_time"]) * 1000)
        status = str(job.get("status", ""))
        printed = float(job.get("print_duration") or 0.0)
        if status == "in_progress":
            if live is None or live.get("state") != "printing":
                continue
            if str(live.get("filename", "")) != str(job.get("filename", "")):
                continue
            printed, end = float(live.get("print_duration") or 0.0), now_ms
        elif job.get("end_time"):
            end = int(float(job["end_time"]) * 1000)
        else:
            continue
        if end <= outage.start_ms or start >= outage.end_ms:
            continue
        fill_ms = int(printed * 1000) - max(0, outage.start_ms - start)
        fill_ms = min(fill_ms, end - max(start, outage.start_ms))
        if fill_ms <= 0:
            continue
        span = Filled(end - fill_ms, end, "in_use", substate("history", status))
        out.append((span, job))
    return out

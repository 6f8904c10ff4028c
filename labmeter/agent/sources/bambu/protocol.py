"""Bambu Lab's ``device/<serial>/report`` messages mapped to the contract's states.

The printer publishes its ``print`` object: all of it after a ``pushall`` request, then only
what changed (P1 and A1 series), so the reports are merged into one picture. ``gcode_state``
says ``IDLE``, ``PREPARE``, ``SLICING``, ``RUNNING``, ``PAUSE``, ``FINISH`` or ``FAILED``;
``stg_cur`` the stage within a job (heating the bed, levelling, homing, cleaning the nozzle,
calibrating: setup), and ``print_error`` a non-zero code when the printer stopped on its own.
"""

from __future__ import annotations

from typing import Any, Final

from labmeter.agent.sources.printer import Snapshot, heated, substate

# stg_cur values that prepare a job rather than print it (Bambu firmware's stage numbers):
# 1 auto bed levelling, 2 heatbed preheating, 3 vibration compensation, 7 heating hotend,
# 8 calibrating extrusion, 9 scanning bed surface, 11 identifying build plate, 12 and 18
# calibrating the micro lidar, 13 homing, 14 cleaning the nozzle, 15 checking extruder
# temperature, 19 calibrating extrusion flow.
SETUP_STAGES: Final = frozenset({1, 2, 3, 7, 8, 9, 11, 12, 13, 14, 15, 18, 19})
JOB_STATES: Final = frozenset({"PREPARE", "SLICING", "RUNNING", "PAUSE"})


def merge(picture: dict[str, Any], message: dict[str, Any]) -> bool:
    """Fold one report into the picture; False when it holds no ``print`` status."""
    found = message.get("print")
    if not isinstance(found, dict):
        return False
    picture.update(found)
    return True


def _number(picture: dict[str, Any], key: str) -> float | None:
    value = picture.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def snapshot(picture: dict[str, Any]) -> Snapshot:
    state = str(picture.get("gcode_state", ""))
    stage = _number(picture, "stg_cur")
    error = _number(picture, "print_error") or 0
    metrics: dict[str, float] = {}
    for name, key in (("hotend", "nozzle_temper"), ("hotend_target", "nozzle_target_temper"),
                      ("bed", "bed_temper"), ("bed_target", "bed_target_temper")):  # fmt: skip
        value = _number(picture, key)
        if value is not None:
            metrics[name] = value
    job: str | None = None
    if state in JOB_STATES:
        job = str(picture.get("subtask_name") or picture.get("gcode_file") or "") or None
        progress = _number(picture, "mc_percent")
        if progress is not None:
            metrics["progress_pct"] = progress
    word = substate(state, None if stage is None else f"stg{int(stage)}")
    if state == "RUNNING":
        preparing = stage is not None and int(stage) in SETUP_STAGES
        return Snapshot("setup" if preparing else "in_use", word, job, metrics)
    if state in ("PREPARE", "SLICING"):
        return Snapshot("setup", word, job, metrics)
    if state == "PAUSE":  # stopped by the printer itself (runout, clog, AMS): needs a person
        return Snapshot("alarm" if error else "paused", word, job, metrics)
    if state in ("IDLE", "FINISH", "FAILED"):
        preheat = heated(metrics.get("hotend_target"), metrics.get("bed_target"))
        return Snapshot("setup" if preheat else "idle", word, None, metrics)
    return Snapshot(None, word, None, metrics)

"""A Klipper printer behind Moonraker: ``/printer/info``, ``/printer/objects/query``,
``/server/info`` and ``/server/history/list`` with Moonraker's JSON shapes, and its API key
(``X-Api-Key``) when one is set.

Klipper's ``print_stats`` counts ``print_duration`` from a job's first extrusion, so a job
still heating shows ``printing`` with no filament used. Switched off with its host up,
Klippy reports ``error`` with "Unable to connect"; in ``error`` it is ``shutdown``.
"""

from __future__ import annotations

from typing import Any

from labmeter.simulators.devices.printer import HttpPrinter, Job, PrinterModel, Reply, json_reply

_END_STATE = {
    "completed": "complete",
    "cancelled": "cancelled",
    "klippy_shutdown": "error",
    "klippy_disconnect": "error",
}


class MoonrakerPrinter(HttpPrinter):
    def __init__(self, model: PrinterModel, port: int = 0, api_key: str = "") -> None:
        super().__init__(model, port)
        self.api_key = api_key

    def apply(self, phase: str) -> None:
        self.model.set(phase)

    def route(self, method: str, path: str, query: dict[str, str], headers: Any) -> Reply:
        if self.api_key and headers.get("X-Api-Key") != self.api_key:
            self.auth_failures += 1
            return json_reply({"error": {"code": 401, "message": "Unauthorized"}}, 401)
        now = self.model.clock()
        if path == "/server/info":
            return json_reply(
                {
                    "result": {
                        "klippy_connected": True,
                        "klippy_state": self._klippy()[0],
                        "components": ["history"],
                        "api_version": [1, 5, 0],
                    }
                }
            )
        if path == "/printer/info":
            state, message = self._klippy()
            return json_reply(
                {
                    "result": {
                        "state": state,
                        "state_message": message,
                        "hostname": "voron",
                        "software_version": "v0.12.0",
                    }
                }
            )
        if path == "/printer/objects/query":
            if self._klippy()[0] != "ready":
                return json_reply({"error": {"code": 400, "message": "Klippy not ready"}}, 400)
            objects = self._objects(now)
            return json_reply(
                {
                    "result": {
                        "eventtime": now / 1000,
                        "status": {k: objects[k] for k in query if k in objects},
                    }
                }
            )
        if path == "/server/history/list":
            jobs = sorted(
                self.model.history,
                key=lambda j: j.start_ms,
                reverse=query.get("order", "desc") == "desc",
            )
            limit = int(query.get("limit", 50))
            return json_reply(
                {
                    "result": {
                        "count": len(jobs),
                        "jobs": [self._history(j, now) for j in jobs[:limit]],
                    }
                }
            )
        return json_reply({"error": {"code": 404, "message": "Not Found"}}, 404)

    def _klippy(self) -> tuple[str, str]:
        if self.model.phase == "off":
            return "error", "mcu 'mcu': Unable to connect\nOnce the issue is corrected, restart"
        if self.model.phase == "error":
            return "shutdown", "Heater extruder not heating at expected rate"
        return "ready", "Printer is ready"

    def _objects(self, now: int) -> dict[str, Any]:
        model, job = self.model, self.model.job
        phase = model.phase
        last = model.history[-1] if model.history else None
        shown = job or last
        if job is not None and phase in ("heating", "printing"):
            state = "printing"
        elif job is not None and phase == "paused":
            state = "paused"
        else:
            state = _END_STATE.get(last.status, "standby") if last else "standby"
        printed = model.print_s()
        working = phase in ("heating", "printing", "paused")
        return {
            "print_stats": {
                "state": state,
                "filename": shown.name if shown else "",
                "print_duration": printed,
                "total_duration": (now - job.start_ms) / 1000 if job else 0.0,
                # Extruding from the first moment of ``printing`` (the heat-up has none).
                "filament_used": round(printed * 0.04 + (0.01 if phase == "printing" else 0), 3),
                "message": "",
            },
            "idle_timeout": {"state": "Printing" if phase in ("heating", "printing") else "Ready"},
            "virtual_sdcard": {"progress": min(1.0, printed / 3600)},
            "extruder": {
                "temperature": 215.0 if working else 24.0,
                "target": 215.0 if working else 0.0,
            },
            "heater_bed": {
                "temperature": 60.0 if working else 23.0,
                "target": 60.0 if working else 0.0,
            },
        }

    def _history(self, job: Job, now: int) -> dict[str, Any]:
        end = job.end_ms
        printed = job.print_ms / 1000 if end is not None else 0.0  # Moonraker: set at the end
        return {
            "job_id": f"{job.id:06X}",
            "exists": True,
            "filename": job.name,
            "status": job.status,
            "start_time": job.start_ms / 1000,
            "end_time": None if end is None else end / 1000,
            "print_duration": printed,
            "total_duration": ((end or now) - job.start_ms) / 1000,
            "filament_used": round(printed * 0.04, 3),
            "metadata": {"size": 812345, "slicer": "PrusaSlicer"},
        }

"""OctoPrint driving a printer over USB: ``/api/job``, ``/api/printer`` (409 when the printer
is not operational) and ``/api/version``, behind its ``X-Api-Key`` (403 without it).

OctoPrint cannot tell the heat-up inside a job from printing, so the printer's heating phase
is a preheat before the job is started (``Operational`` with heater targets). Switched off,
the printer leaves OctoPrint ``Offline``; after an error it is ``Offline after error``.
"""

from __future__ import annotations

from typing import Any

from labmeter.simulators.devices.printer import HttpPrinter, PrinterModel, Reply, json_reply

_TEXT = {"idle": "Operational", "heating": "Operational", "printing": "Printing",
         "paused": "Paused", "error": "Offline after error", "off": "Offline"}  # fmt: skip


class OctoPrintServer(HttpPrinter):
    def __init__(self, model: PrinterModel, api_key: str, port: int = 0) -> None:
        super().__init__(model, port)
        self.api_key = api_key

    def apply(self, phase: str) -> None:
        self.model.set(phase)

    def route(self, method: str, path: str, query: dict[str, str], headers: Any) -> Reply:
        if headers.get("X-Api-Key") != self.api_key:
            self.auth_failures += 1
            return json_reply({"error": "You don't have the permission to access the "
                               "requested resource."}, 403)  # fmt: skip
        phase, job = self.model.phase, self.model.job
        if path == "/api/version":
            return json_reply({"api": "0.1", "server": "1.10.2", "text": "OctoPrint 1.10.2"})
        if path == "/api/job":
            last = self.model.history[-1] if self.model.history else None
            printed = self.model.print_s()
            shown = job or last
            body: dict[str, Any] = {
                "job": {"file": {"name": shown.name if shown else None,
                                 "origin": "local", "size": 812345},
                        "estimatedPrintTime": 3600.0, "user": "_api"},
                "progress": {"completion": min(100.0, printed / 36) if job else None,
                             "printTime": printed if job else None, "printTimeLeft": None,
                             "filepos": int(printed * 200)},
                "state": _TEXT[phase],
            }  # fmt: skip
            if phase == "error":
                body["error"] = "Printer halted. kill() called!"
            return json_reply(body)
        if path == "/api/printer":
            if phase in ("off", "error"):
                return json_reply({"error": "Printer is not operational"}, 409)
            hot = phase in ("heating", "printing", "paused")
            return json_reply({
                "temperature": {"tool0": {"actual": 210.0 if hot else 24.0,
                                          "target": 210.0 if hot else 0.0, "offset": 0},
                                "bed": {"actual": 60.0 if hot else 23.0,
                                        "target": 60.0 if hot else 0.0, "offset": 0}},
                "state": {"text": _TEXT[phase],
                          "flags": {"operational": True, "printing": phase == "printing",
                                    "paused": phase == "paused", "ready": phase == "idle",
                                    "error": False, "closedOrError": False}},
            })  # fmt: skip
        return json_reply({"error": "Not found"}, 404)

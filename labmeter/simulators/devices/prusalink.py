"""A Prusa printer's built-in PrusaLink (Buddy firmware): ``/api/version``, ``/api/v1/status``
and ``/api/v1/job`` (204 without a job), behind HTTP digest authentication as the firmware
does it (realm ``Printer API``, no ``qop``) or the ``X-Api-Key`` of older PrusaLink.

The printer is its own web server: switched off, it answers nothing. Its heating phase is a
preheat from the menu (``BUSY``); in ``error`` a job waits for a person (``ATTENTION``).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any

from labmeter.simulators.devices.printer import OwnHost, PrinterModel, Reply, json_reply

REALM = "Printer API"
_STATE = {"idle": "IDLE", "heating": "BUSY", "printing": "PRINTING", "paused": "PAUSED",
          "error": "ATTENTION"}  # fmt: skip
_PAIR = re.compile(r'(\w+)="?([^",]*)"?')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class PrusaLinkPrinter(OwnHost):
    def __init__(
        self, model: PrinterModel, password: str = "", api_key: str = "", port: int = 0
    ) -> None:
        super().__init__(model, port)
        self.username = "maker"
        self.password = password
        self.api_key = api_key
        self.nonce = secrets.token_hex(8)
        self.challenges = 0

    def _authorised(self, method: str, headers: Any) -> bool:
        if self.api_key:
            return bool(headers.get("X-Api-Key") == self.api_key)
        found = headers.get("Authorization", "")
        if not found.startswith("Digest "):
            return False
        fields = dict(_PAIR.findall(found[7:]))
        ha1 = _md5(f"{fields.get('username')}:{REALM}:{self.password}")
        ha2 = _md5(f"{method}:{fields.get('uri')}")
        return (
            fields.get("username") == self.username
            and fields.get("nonce") == self.nonce
            and fields.get("response") == _md5(f"{ha1}:{self.nonce}:{ha2}")
        )

    def route(self, method: str, path: str, query: dict[str, str], headers: Any) -> Reply:
        if not self._authorised(method, headers):
            if headers.get("Authorization") or headers.get("X-Api-Key"):
                self.auth_failures += 1
            self.challenges += 1
            status, head, denied = json_reply({"title": "Unauthorized"}, 401)
            if not self.api_key:
                head["WWW-Authenticate"] = f'Digest realm="{REALM}", nonce="{self.nonce}"'
            return status, head, denied
        model, job = self.model, self.model.job
        phase = model.phase
        last = model.history[-1] if model.history else None
        state = _STATE.get(phase, "IDLE")
        if phase == "idle" and last is not None and last.end_ms is not None:
            state = "FINISHED" if last.status == "completed" else "STOPPED"
        in_job = job is not None and phase in ("printing", "paused", "error")
        printed = model.print_s()
        hot = phase in ("heating", "printing", "paused")
        if path == "/api/version":
            return json_reply({"api": "2.0.0", "server": "2.1.2", "nozzle_diameter": 0.4,
                               "text": "PrusaLink", "hostname": "prusa-mk4",
                               "capabilities": {"upload-by-put": True}})  # fmt: skip
        if path == "/api/v1/status":
            body: dict[str, Any] = {
                "storage": {"path": "/usb/", "name": "usb", "read_only": False},
                "printer": {"state": state, "temp_nozzle": 215.0 if hot else 24.1,
                            "target_nozzle": 215.0 if hot else 0.0,
                            "temp_bed": 60.0 if hot else 23.5,
                            "target_bed": 60.0 if hot else 0.0, "axis_z": 1.2, "flow": 100,
                            "speed": 100, "fan_hotend": 0, "fan_print": 0},
            }  # fmt: skip
            if in_job or (last is not None and state in ("FINISHED", "STOPPED")):
                shown = job or last
                assert shown is not None
                body["job"] = {"id": shown.id, "progress": min(100.0, printed / 36),
                               "time_remaining": 600, "time_printing": int(printed)}  # fmt: skip
            return json_reply(body)
        if path == "/api/v1/job":
            if not in_job or job is None:
                return 204, {}, b""
            return json_reply({
                "id": job.id, "state": state, "progress": min(100.0, printed / 36),
                "time_remaining": 600, "time_printing": int(printed),
                "file": {"name": "SUPPOR~1.BGC", "display_name": job.name, "path": "/usb",
                         "size": 812345, "m_timestamp": 1700000000,
                         "refs": {"download": "/usb/SUPPOR~1.BGC"}},
            })  # fmt: skip
        return json_reply({"title": "Not Found"}, 404)

"""A Bambu Lab printer in LAN mode: its MQTT broker over TLS (a real Mosquitto with a
self-signed certificate for the printer's serial, user ``bblp``, the access code as password)
and the printer publishing its ``print`` report on ``device/<serial>/report``: all of it when
asked with ``pushall`` on ``device/<serial>/request``, then only what changed, as the P1 and A1
series do.

On a real printer the broker runs on the printer, so the printer switched off or unreachable
is the broker gone: ``broker.stop()``. Heating is a job's first stage (``RUNNING``, stage 2:
heatbed preheating); an error is a job paused by the printer itself with ``print_error`` set.
"""

from __future__ import annotations

import datetime
import ssl
import threading
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from labmeter.localstack import Service, free_port, require_binary
from labmeter.simulators.devices.printer import PrinterModel

SERIAL = "01P00A391800123"
RUNOUT = 117473297  # 0x07008011: filament runout, the printer paused itself

BROKER_CONF = """\
listener {port} 127.0.0.1
user root
certfile {dir}/printer.crt
keyfile {dir}/printer.key
password_file {dir}/passwd
allow_anonymous false
persistence false
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
connection_messages false
"""


def certificate(folder: Path, serial: str = SERIAL) -> Path:
    """A self-signed certificate for the printer (issued to its serial, as Bambu's are)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, serial)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (folder / "printer.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path = folder / "printer.crt"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def printer_broker(folder: Path, access_code: str, port: int | None = None) -> Service:
    """The printer's broker, not yet started: TLS only, ``bblp`` with the access code."""
    import subprocess

    folder.mkdir(parents=True, exist_ok=True)
    certificate(folder)
    passwd = folder / "passwd"
    passwd.write_text("")
    subprocess.run(
        [require_binary("mosquitto_passwd"), "-b", str(passwd), "bblp", access_code],
        check=True,
        capture_output=True,
    )
    passwd.chmod(0o600)
    port = port or free_port()
    conf = folder / "mosquitto.conf"
    conf.write_text(BROKER_CONF.format(port=port, dir=folder))
    return Service("mosquitto", [require_binary("mosquitto"), "-c", str(conf)], port, folder)


class BambuPrinter:
    """The printer's side: publishes its report through the broker it runs."""

    def __init__(
        self, model: PrinterModel, port: int, access_code: str, serial: str = SERIAL
    ) -> None:
        self.model = model
        self.serial = serial
        self.sequence = 0
        self.pushalls = 0
        self._sent: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"printer-{serial}")
        self.client.username_pw_set("bblp", access_code)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.client.tls_set_context(context)
        self.client.reconnect_delay_set(1, 1)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.port = port

    def start(self) -> BambuPrinter:
        self.client.connect_async("127.0.0.1", self.port, keepalive=30)
        self.client.loop_start()
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    @property
    def connected(self) -> bool:
        return bool(self.client.is_connected())

    def apply(self, phase: str) -> None:
        """The printer goes to ``phase`` and reports what changed."""
        self.model.set(phase)
        self.report(full=False)

    def picture(self) -> dict[str, Any]:
        model, job = self.model, self.model.job
        phase = model.phase
        last = model.history[-1] if model.history else None
        state, stage, error = {
            "heating": ("RUNNING", 2, 0), "printing": ("RUNNING", 0, 0),
            "paused": ("PAUSE", 16, 0), "error": ("PAUSE", 6, RUNOUT),
        }.get(phase, ("IDLE", -1, 0))  # fmt: skip
        if state == "IDLE" and last is not None and last.end_ms is not None:
            state = "FINISH" if last.status == "completed" else "FAILED"
        hot = phase in ("heating", "printing", "paused", "error")
        printed = model.print_s()
        return {
            "gcode_state": state, "stg_cur": stage, "print_error": error,
            "mc_percent": int(min(100, printed / 36)) if job else 0,
            "mc_remaining_time": 10 if job else 0,
            "subtask_name": job.name if job else "", "gcode_file": "/data/plate_1.gcode",
            "nozzle_temper": 220.0 if hot else 25.0,
            "nozzle_target_temper": 220.0 if hot else 0.0,
            "bed_temper": 55.0 if hot else 24.0, "bed_target_temper": 55.0 if hot else 0.0,
            "layer_num": int(printed // 30), "total_layer_num": 120,
            "wifi_signal": "-48dBm", "hms": [],
        }  # fmt: skip

    def report(self, full: bool) -> None:
        with self._lock:
            now = self.picture()
            changed = now if full else {k: v for k, v in now.items() if self._sent.get(k) != v}
            self._sent = now
            self.sequence += 1
            body = {"print": {"command": "push_status", "msg": 0 if full else 1,
                              "sequence_id": str(self.sequence), **changed}}  # fmt: skip
        self.client.publish(f"device/{self.serial}/report", orjson.dumps(body), qos=0)

    def _on_connect(self, client: mqtt.Client, *args: Any) -> None:
        client.subscribe(f"device/{self.serial}/request", qos=0)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            command = orjson.loads(message.payload).get("pushing", {}).get("command")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if command == "pushall":
            self.pushalls += 1
            self.report(full=True)

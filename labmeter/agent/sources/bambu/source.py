"""Bambu source: the printer's own MQTT broker (TLS, port 8883, user ``bblp``, the access code
shown on its screen in LAN mode), read only.

The agent subscribes to ``device/<serial>/report``; the one message it ever publishes is the
``pushall`` request that asks the printer for its whole status, sent on each connection (and
every ``pushall_s`` if set: Bambu advises against asking often on the P1 series). The broker
runs on the printer, so a lost connection is a printer that no longer answers: unknown from
its last report on. paho reconnects by itself, waiting longer after each failure up to
``reconnect_max_s``. Bambu keeps no job history on the printer, so an agent outage stays
unknown.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.bambu.protocol import merge, snapshot
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.printer import NET_KEYS, NetOptions, PrinterWatch, secret, wall_ms
from labmeter.config import AgentConfig

log = logging.getLogger(__name__)

USERNAME = "bblp"  # the printer's fixed LAN user; the access code is its password
PUSHALL = orjson.dumps({"pushing": {"sequence_id": "0", "command": "pushall"}})
# Connection refused for a wrong access code: MQTT 3.1.1 return codes 4 and 5.
AUTH_FAILURES = frozenset({"Bad user name or password", "Not authorized"})


class BambuSource:
    def __init__(
        self, config: AgentConfig, *, clock: Callable[[], int] = wall_ms, background: bool = True
    ) -> None:
        opts = Options(config.options)
        opts.reject_unknown(
            (NET_KEYS - {"query_s"}) | {"host", "port", "serial", "access_code", "ca_file",
                                        "pushall_s"}
        )  # fmt: skip
        self.host = opts.string("host")
        self.port = opts.integer("port", 8883, minimum=1, maximum=65535)
        self.serial = opts.string("serial")
        access_code = secret(opts, "access_code", required=True, hint=" (Settings > Network)")
        ca_file = str(opts.raw.get("ca_file", ""))
        self.pushall_s = opts.number("pushall_s", 0.0, minimum=0.0)
        self.net = NetOptions.read(Options({**opts.raw, "query_s": 1.0}), config)
        # The broker is the printer: an open connection is a printer that answers, and paho's
        # keepalive notices a dead one within 1.5 keepalives, so silence alone is no outage.
        self.keepalive = max(5, int(self.net.timeout_s * 2))
        self.lookback_s = 1.5 * self.keepalive + 1
        self.watch = PrinterWatch(self.net, stale_ms=2**62, clock=clock)
        self._picture: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.reports = 0
        self.bad_reports = 0
        self._stop = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"labmeter-{config.device or 'agent'}",
            protocol=mqtt.MQTTv311,
        )
        self.client.username_pw_set(USERNAME, access_code.reveal())
        context = ssl.create_default_context(cafile=ca_file or None)
        if not ca_file:
            # The printer's certificate is signed by Bambu's own CA for its serial number, not
            # for its address: without that CA (ca_file) the channel is encrypted, unverified.
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        else:
            context.check_hostname = False  # issued to the serial number, not the host name
        self.client.tls_set_context(context)
        self.client.reconnect_delay_set(1, max(1, int(self.net.reconnect_max_s)))
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.enable_logger(log)  # paho logs packets, never the password
        self._pusher: threading.Thread | None = None
        if background:
            self.start()

    def start(self) -> None:
        self.client.connect_async(self.host, self.port, keepalive=self.keepalive)
        self.client.loop_start()
        if self.pushall_s:
            self._pusher = threading.Thread(target=self._push_loop, daemon=True)
            self._pusher.start()

    def poll(self) -> Reading:
        if self.client.is_connected():
            self.watch.heard()  # the broker is the printer: a live connection is an answer
        return self.watch.reading()

    def drain_events(self) -> list[SourceEvent]:
        return self.watch.drain_events()

    def close(self) -> None:
        self._stop.set()
        if self.client.is_connected():
            self.client.disconnect()
        self.client.loop_stop()

    def pushall(self) -> None:
        self.client.publish(f"device/{self.serial}/request", PUSHALL, qos=0)

    def _push_loop(self) -> None:
        while not self._stop.wait(self.pushall_s):
            if self.client.is_connected():
                self.pushall()

    # --- paho's network thread: only the picture and the watch, nothing that blocks ----------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if reason.is_failure:
            self.watch.lost("auth" if str(reason) in AUTH_FAILURES else "refused")
            return
        with self._lock:
            self._picture = {}  # a new connection: the whole picture comes again
        client.subscribe(f"device/{self.serial}/report", qos=0)
        self.pushall()

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        if not self._stop.is_set():
            # A keepalive timeout is noticed 1.5 keepalives after the printer fell silent.
            late = "keep alive" in str(reason).lower()
            silent_ms = int(1500 * self.keepalive) if late else 0
            self.watch.lost("timeout" if late else "unreachable", silent_ms=silent_ms)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            body = orjson.loads(message.payload)
        except orjson.JSONDecodeError:
            self.bad_reports += 1
            return
        if not isinstance(body, dict):
            self.bad_reports += 1
            return
        with self._lock:
            if not merge(self._picture, body) or "gcode_state" not in self._picture:
                return  # not a print status, or only a delta before the first full one
            snap = snapshot(self._picture)
        self.watch.answered(snap)
        self.reports += 1

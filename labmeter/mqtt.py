"""One way to build a paho client from ``[mqtt]``: MQTT 5, credentials and TLS as configured.

The agent publishes through it (a message a minute: paho's per-packet cost does not matter
there); the collector reads through its own session, ``collector/subscriber.py``.
"""

from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from labmeter.config import MqttConfig


def make_client(config: MqttConfig, client_id: str, *, manual_ack: bool = False) -> mqtt.Client:
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5,
        manual_ack=manual_ack,
    )
    if config.username:
        password = config.password.reveal() if config.password is not None else None
        client.username_pw_set(config.username, password)
    if config.tls:
        client.tls_set(ca_certs=config.ca_file, tls_version=ssl.PROTOCOL_TLS_CLIENT)
    return client

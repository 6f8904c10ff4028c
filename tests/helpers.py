"""Small helpers shared by tests."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any


def utc_ms(text: str) -> int:
    """Epoch ms of an ISO 8601 time with its offset: how tests pin simulated times."""
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, f"{text}: say the offset"
    return int(moment.timestamp() * 1000)


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> Any:
    """Poll until ``check()`` is truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = check()
    assert value, f"condition not met within {timeout} s (last value {value!r})"
    return value


def publish_raw(url_host: str, port: int, messages: list[tuple[str, bytes]], qos: int = 1) -> None:
    """Publish arbitrary bytes (valid or not) with a plain paho client and wait for PUBACKs."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.connect(url_host, port)
    client.loop_start()
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def pinned_collector(config: Any, end_ms: int) -> Any:
    """The config with the collector's late-data horizon reckoned from ``end_ms``, as if
    now were the end of a lab pinned in the past (its samples are older than the horizon)."""
    offset_s = (end_ms - time.time() * 1000) / 1000
    return dataclasses.replace(
        config, collector=dataclasses.replace(config.collector, clock_offset_s=offset_s)
    )


def simulate_through_collector(
    config: Any,
    influx: Any,
    *,
    devices: int,
    hours: float,
    seed: int,
    end_ms: int,
    opening: Callable[[str, int], bool] | None = None,
    rollups: Path | None = None,
    **lab_options: Any,
) -> tuple[dict[str, Any], Any]:
    """Run a simulated lab that ended at ``end_ms`` through real Mosquitto and a collector
    into InfluxDB (a pinned end: no figure may depend on the hour the test runs at).

    With ``rollups`` (an inventory file) the collector also writes its hourly, daily and
    monthly rollups, with that inventory's opening hours, before it stops. Returns the ground
    truth and the (stopped) collector once every published sample is queryable, so a test can
    compare API figures with the truth and read its dead letters.
    """
    from labmeter.collector.service import Collector
    from labmeter.simulators import lab

    config = pinned_collector(config, end_ms)
    if rollups is not None:
        config = dataclasses.replace(
            config,
            collector=dataclasses.replace(
                config.collector, rollup_grace_s=0, rollup_settle_s=0.2, inventory=str(rollups)
            ),
        )
    collector = Collector(config, influx, reader=influx if rollups else None)
    collector.start()
    assert collector.connected.wait(10)
    time.sleep(0.2)  # let the SUBSCRIBE land before the lab publishes
    try:
        truth = lab.run(
            config.mqtt,
            devices=devices,
            hours=hours,
            seed=seed,
            speed=0,
            site=config.collector.site,
            end_ms=end_ms,
            opening=opening,
            **lab_options,
        )
        expected = truth["samples_published"]
        site = config.collector.site

        def written() -> bool:
            rows = influx.query("SELECT count(seq) FROM sample")
            if not (rows and rows[0].values[0][1] == expected):
                return False
            # Each agent's last word ("offline", said as it closes) trails its samples: a
            # collector stopped once the samples are in takes nothing more and would leave
            # some in the broker. Once it keeps pace with the lab, that happened.
            last = influx.query(
                f"SELECT last(status) FROM status WHERE site = '{site}' GROUP BY device"
            )
            return len(last) == len(truth["devices"]) and all(
                series.values[0][1] == "offline" for series in last
            )

        wait_for(written, timeout=60)
        owed = collector.rollups
        if owed is not None:  # every hour rolled up and confirmed, its day and month too
            wait_for(lambda: not owed.pending(), timeout=120)
    finally:
        collector.stop()
    return truth, collector

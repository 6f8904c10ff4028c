"""What a Mosquitto killed with SIGKILL mid-stream loses, and what each remedy costs.

A fleet of agents (their real durable queue and publisher, ``simulators/fleet.py``) streams
distinct samples through a real mosquitto to a real collector and InfluxDB. Mid-stream the
broker gets SIGKILL (no save on the way out) and is started again on the same store; at the end
InfluxDB's point count is compared with what the agents published. Two situations:

- ``live``: the collector keeps pace, so the broker holds little when it dies;
- ``away``: the collector was stopped a while before the crash (restarting, or held back by a
  slow InfluxDB), so the broker held the stream for it in memory.

Three set-ups:

- ``shipped``: the shipped persistence (``autosave_interval 60``) and the collector's
  confirmations: agents keep each row until the collector confirms it is written;
- ``unconfirmed``: the same broker, a collector that does not confirm (``confirm = false``, as
  one older than confirmations): agents delete a row on the broker's PUBACK;
- ``save-each``: the broker saving after every change (``autosave_on_changes true``,
  ``autosave_interval 1``), the collector not confirming.

For each, the median over ``--runs`` of: samples lost, rows the agents sent again, and the
broker's CPU seconds per 1,000 messages until the kill (mosquitto 2.0 writes its whole store
at each save).

    .venv/bin/python bench/broker_crash.py --runs 3
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from labmeter.collector.service import Collector
from labmeter.config import CollectorConfig, Config, InfluxConfig, MqttConfig
from labmeter.influx import InfluxV1
from labmeter.localstack import Service, influxd, mosquitto, wait_influx_ready
from labmeter.simulators.fleet import Fleet, run_in_background, shipped_persistence

SETUPS = {  # the broker's persistence, and whether the collector confirms rows to agents
    "shipped": (shipped_persistence(), True),
    "unconfirmed": (shipped_persistence(), False),
    "save-each": ("persistence true\nautosave_on_changes true\nautosave_interval 1\n", False),
}


def count(influx: InfluxV1) -> int:
    rows = influx.query("SELECT count(seq) FROM sample")
    return int(rows[0].values[0][1]) if rows else 0


def collector(
    broker: Service, influx: InfluxV1, site: str, workdir: Path, confirm: bool
) -> Collector:
    config = Config(
        mqtt=MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}"),
        influx=influx.config,
        collector=CollectorConfig(
            client_id=f"collector-{site}",
            site=site,
            dead_letter_path=str(workdir / "deadletters.jsonl"),
            session_expiry_s=600,
            batch_interval_s=0.2,
            rollups=False,
            confirm=confirm,
        ),
    )
    service = Collector(config, influx)
    service.start()
    return service


def one_run(
    influx_url: str, workdir: Path, setup: str, situation: str, args: argparse.Namespace
) -> tuple[int, int, float]:
    """(samples lost, rows sent again, broker CPU-s per 1,000 messages before the kill)."""
    site = f"{setup}-{situation}-{workdir.name}".replace("_", "-").lower()[:60]
    influx = InfluxV1(InfluxConfig(url=influx_url, database=site.replace("-", "_")))
    influx.create_database()
    extra, confirm = SETUPS[setup]
    broker = mosquitto(workdir / "mosquitto", extra_conf=extra)
    broker.start()
    assert broker.proc is not None
    fleet: Fleet | None = None
    service = collector(broker, influx, site, workdir, confirm)
    try:
        assert service.connected.wait(10)
        broker.proc.send_signal(signal.SIGUSR1)  # the collector's session is saved, as it
        time.sleep(0.5)  # would be on any broker running longer than autosave_interval
        mqtt = MqttConfig(url=f"mqtt://127.0.0.1:{broker.port}")
        fleet = Fleet(mqtt, site, args.agents, workdir / "agents")
        stream = run_in_background(fleet, args.samples, args.seconds)
        cpu0 = psutil.Process(broker.proc.pid).cpu_times()
        if situation == "away":
            time.sleep(args.seconds / 4)
            service.stop()
            time.sleep(args.seconds / 4)
        else:
            time.sleep(args.seconds / 2)
        cpu1 = psutil.Process(broker.proc.pid).cpu_times()
        sent = fleet.published
        broker.stop(signal.SIGKILL)
        time.sleep(1.0)
        broker.start()
        if situation == "away":
            service = collector(broker, influx, site, workdir, confirm)
        stream.join(args.seconds * 4)
        if not fleet.drain(180):
            raise RuntimeError("the agents could not deliver their queues")
        expected = fleet.published
        deadline = time.monotonic() + 60
        while count(influx) < expected and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2.0)  # what still trickles in
        cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
        return expected - count(influx), fleet.resent, cpu_s / max(sent, 1) * 1000
    finally:
        if fleet is not None:
            fleet.close()
        service.stop()
        broker.stop(signal.SIGKILL)
        influx.query(f'DROP DATABASE "{influx.config.database}"')
        influx.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--samples", type=int, default=80, help="per agent, over --seconds")
    parser.add_argument("--seconds", type=float, default=12.0, help="length of the stream")
    args = parser.parse_args()
    load0 = os.getloadavg()[0]
    print(
        f"{args.agents} agents x {args.samples} samples over {args.seconds:.0f} s "
        f"({args.agents * args.samples / args.seconds:.0f} msg/s); broker SIGKILLed halfway"
    )
    with tempfile.TemporaryDirectory() as tmp:
        db = influxd(Path(tmp) / "influxd")
        db.start()
        url = f"http://127.0.0.1:{db.port}"
        wait_influx_ready(url)
        try:
            print(
                f"{'situation':9} {'set-up':11} {'lost':>6} {'resent':>9} {'broker CPU-s/1k':>16}"
            )
            for situation in ("live", "away"):
                for setup in SETUPS:
                    results = [
                        one_run(
                            url, Path(tmp) / f"{setup}-{situation}-{run}", setup, situation, args
                        )
                        for run in range(args.runs)
                    ]
                    lost = statistics.median(r[0] for r in results)
                    resent = statistics.median(r[1] for r in results)
                    cpu = statistics.median(r[2] for r in results)
                    print(
                        f"{situation:9} {setup:11} {lost:6.0f} {resent:9.0f} {cpu:16.3f}"
                        f"   (lost per run: {[r[0] for r in results]})"
                    )
        finally:
            db.stop()
    print(f"load average before/after: {load0:.1f} / {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)  # disconnects are the point here, not news
    main()

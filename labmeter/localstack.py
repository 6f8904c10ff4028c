"""Real ``mosquitto`` and ``influxd`` as child processes on free loopback ports.

Neither can be embedded in Python, so the demo, the test suite and the benchmarks all start
the distribution's binaries from here, each in its own temporary directory.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from labmeter.errors import ServiceError

INSTALL_HINT = {
    "mosquitto": "install Debian/Ubuntu package 'mosquitto' (apt-get install mosquitto)",
    "influxd": "install Debian/Ubuntu package 'influxdb' (apt-get install influxdb)",
}
DOCKER_HINT = "or run the whole stack with Docker: docker compose -f deploy/docker-compose.yml up"

# Sized on purpose (DESIGN.md): mosquitto's default of 1,000 queued messages per client
# silently drops QoS 1 messages of a stalled collector. 2M messages is days of a 300-device lab.
# Started as root (CI), mosquitto drops to user 'mosquitto', which cannot write the temporary
# directory: persistence and the log then fail ("Permission denied"). 'user root' keeps root;
# started as anyone else, mosquitto ignores the option.
MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
user root
allow_anonymous true
persistence true
persistence_location {dir}/
autosave_interval 1
max_queued_messages 2000000
max_queued_bytes 0
max_inflight_messages 0
persistent_client_expiration 14d
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
log_type notice
connection_messages false
"""

# Debian's influxd 1.6 also binds 127.0.0.1:8088 for backup RPC: give each instance its own.
INFLUXD_CONF = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{dir}/meta"
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
  wal-fsync-delay = "0s"
  index-version = "inmem"{cold}
[coordinator]
  log-queries-after = "0s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  max-body-size = 0
  auth-enabled = {auth}
[continuous_queries]
  enabled = false
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_binary(name: str) -> str:
    """Path of a binary, or a ServiceError that says which package to install."""
    path = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if Path(p).exists()), None
    )
    if path is None:
        raise ServiceError(f"'{name}' not found: {INSTALL_HINT[name]}; {DOCKER_HINT}")
    return path


def _wait_port(port: int, proc: subprocess.Popen[bytes], name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{name} exited with code {proc.returncode} at start")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise ServiceError(f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


@dataclass
class Service:
    """A child process that can be stopped, killed and started again on the same port and data."""

    name: str
    argv: list[str]
    port: int
    workdir: Path
    # In its own process group, a Ctrl-C in the terminal does not reach the process: whoever
    # started it stops it, after the parts that still need it (the demo: after the collector's
    # last write).
    own_group: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self, timeout: float = 30.0) -> None:
        log = (self.workdir / f"{self.name}.out").open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            process_group=0 if self.own_group else None,
        )
        log.close()
        _wait_port(self.port, self.proc, self.name, timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def mosquitto(workdir: Path, port: int | None = None, extra_conf: str = "") -> Service:
    """A configured (not yet started) mosquitto with persistence in ``workdir``."""
    binary = require_binary("mosquitto")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONF.format(port=port, dir=workdir) + extra_conf)
    return Service("mosquitto", [binary, "-c", str(conf)], port, workdir)


def influxd(
    workdir: Path, port: int | None = None, *, cold_s: int | None = None, auth: bool = False
) -> Service:
    """A configured (not yet started) influxd 1.x with its data in ``workdir``.

    ``cold_s``: seconds without writes after which a shard is fully compacted (InfluxDB's
    default is 4 hours), for benchmarks that read a database the way a quiet deployment
    holds it rather than straight after a bulk load. ``auth``: users and privileges enforced,
    as a deployment runs it (the first user made must be an admin).
    """
    binary = require_binary("influxd")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "influxdb.conf"
    cold = (
        ""
        if cold_s is None
        else f'\n  compact-full-write-cold-duration = "{cold_s}s"'
        f'\n  cache-snapshot-write-cold-duration = "{cold_s}s"'
    )
    conf.write_text(
        INFLUXD_CONF.format(
            port=port, rpc_port=free_port(), dir=workdir, cold=cold, auth=str(auth).lower()
        )
    )
    return Service("influxd", [binary, "-config", str(conf)], port, workdir)


def wait_compacted(workdir: Path, settle_s: float = 15.0, timeout: float = 300.0) -> float:
    """Wait until every shard of an ``influxd(..., cold_s=...)`` holds one TSM file (fully
    compacted) and its files stay as they are for ``settle_s`` (longer than ``cold_s``: the
    cache is written out first); the seconds waited. After a bulk load or a rewrite, reads
    merge many files and pay for it."""
    t0 = time.monotonic()
    seen: tuple[str, ...] = ()
    since = t0
    while time.monotonic() - t0 < timeout:
        files = tuple(sorted(str(f) for f in (workdir / "data").rglob("*.tsm*")))
        if files != seen:
            seen, since = files, time.monotonic()
        shards = [Path(f).parent for f in files]
        if len(set(shards)) == len(shards) and time.monotonic() - since >= settle_s:
            return time.monotonic() - t0
        time.sleep(1.0)
    raise ServiceError(f"influxd in {workdir} not compacted within {timeout:.0f} s")


def wait_influx_ready(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ping", timeout=1.0).status_code == 204:
                return
        time.sleep(0.1)
    raise ServiceError(f"InfluxDB at {url} not ready within {timeout:.0f} s")


@contextlib.contextmanager
def stack(workdir: Path, *, own_group: bool = False) -> Iterator[tuple[Service, Service]]:
    """Mosquitto and InfluxDB running for the duration of the block (``own_group``: see Service)."""
    broker = mosquitto(workdir / "mosquitto")
    db = influxd(workdir / "influxdb")
    broker.own_group = db.own_group = own_group
    try:
        broker.start()
        db.start()
        wait_influx_ready(f"http://127.0.0.1:{db.port}")
        yield broker, db
    finally:
        broker.stop()
        db.stop()

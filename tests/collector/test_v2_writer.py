"""The v2 write flavour (influxdb-client, SYNCHRONOUS) against a real /api/v2/write server.

No InfluxDB 2.x can be installed here (Debian's influxdb is 1.6.7), so the server is Debian's
VictoriaMetrics, which implements /api/v2/write; the points are read back through its export
API. ``labmeter influx init`` for 2.x needs a real 2.x: only its argument checks run here.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from labmeter.cli.main import app
from labmeter.collector.service import Collector
from labmeter.config import Config, InfluxConfig, load
from labmeter.errors import ConfigError, WriteError
from labmeter.influx import InfluxV2Writer, make_writer
from labmeter.localstack import Service, free_port
from tests.collector.test_write_errors import _now_minute, _publish, _samples
from tests.helpers import wait_for


@pytest.fixture(scope="module")
def victoria(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("victoria-metrics")
    assert binary, "apt-get install victoria-metrics (scripts/bootstrap.sh does)"
    workdir = tmp_path_factory.mktemp("victoria")
    port = free_port()
    service = Service(
        "victoria-metrics",
        # Its default retention (a month, by its own real clock) would silently drop the
        # points of a test run under scripts/at-clock.sh on a date more than a month back.
        [
            binary,
            f"-storageDataPath={workdir}/data",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
        ],
        port,
        workdir,
    )
    service.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: httpx.get(f"{url}/health").status_code == 200)
    yield url
    service.stop()


def _v2(url: str, bucket: str) -> InfluxConfig:
    return InfluxConfig(url=url, flavour="v2", org="its", bucket=bucket, token="write-token")


def _export(url: str, name: str, site: str) -> list[dict[str, object]]:
    httpx.get(f"{url}/internal/force_flush")
    reply = httpx.post(f"{url}/api/v1/export", data={"match[]": f'{name}{{site="{site}"}}'})
    return [orjson.loads(row) for row in reply.text.splitlines()]


def test_v2_writer_writes_what_reads_back(victoria: str, uid: str) -> None:
    writer = make_writer(_v2(victoria, uid))
    assert isinstance(writer, InfluxV2Writer)
    now = _now_minute()
    lines = [
        f"sample,site={uid},device=pc-{i} in_use_s={i}.5,seq={i}i {now - i * 60_000}"
        for i in range(5)
    ]
    writer.write_lines(lines)
    writer.close()
    rows = wait_for(lambda: _export(victoria, "sample_in_use_s", uid))
    got = {r["metric"]["device"]: (r["values"], r["timestamps"]) for r in rows}  # type: ignore[index]
    assert got == {f"pc-{i}": ([i + 0.5], [now - i * 60_000]) for i in range(5)}


def test_collector_through_the_v2_flavour(config: Config, victoria: str, uid: str) -> None:
    cfg = dataclasses.replace(config, influx=_v2(victoria, uid))
    writer = make_writer(cfg.influx)
    collector = Collector(cfg, writer)
    collector.start()
    try:
        assert collector.connected.wait(10)
        time.sleep(0.2)
        _publish(cfg, _samples(uid, 25, _now_minute()))
        wait_for(lambda: collector.metrics.acked == 25)
    finally:
        collector.stop()
        writer.close()
    rows = wait_for(lambda: _export(victoria, "sample_in_use_s", uid))
    assert sum(len(r["values"]) for r in rows) == 25  # type: ignore[arg-type]


def test_v2_connection_refused_is_a_retryable_write_error() -> None:
    writer = InfluxV2Writer(_v2(f"http://127.0.0.1:{free_port()}", "b"))
    with pytest.raises(WriteError) as caught:
        writer.write_lines(["m x=1 1"])
    writer.close()
    assert caught.value.status == 0 and caught.value.retryable


def test_v2_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "server.toml"
    path.write_text('[influx]\nflavour = "v2"\norg = "its"\nbucket = "labmeter"\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.key == "influx.token"
    path.write_text('[influx]\nflavour = "v3"\n')
    with pytest.raises(ConfigError, match=r"influx\.flavour"):
        load(path)
    path.write_text('[influx]\nflavour = "v2"\ntoken = "t"\n')
    result = CliRunner().invoke(app, ["influx", "init", "-c", str(path)])
    assert result.exit_code == 2 and "influx.org" in result.output

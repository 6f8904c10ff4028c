"""The collector's /metrics and /healthz, scraped over HTTP while it works."""

from __future__ import annotations

import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from labmeter.config import Config
from labmeter.influx import InfluxV1
from tests.collector.test_write_errors import _now_minute, _publish, _samples, running
from tests.helpers import wait_for


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_and_healthz_over_http(config: Config, influx: InfluxV1, uid: str) -> None:
    with running(config, influx, metrics_port=0) as collector:
        assert collector.health is not None
        base = f"http://127.0.0.1:{collector.health.port}"
        assert httpx.get(f"{base}/healthz").text == "ok\n"
        good = _samples(uid, 20, _now_minute())
        _publish(config, [*good, (good[0][0], b"{not json"), (good[0][0], b"[1]")])
        wait_for(lambda: collector.metrics.acked == 22)
        time.sleep(0.1)
        m = _scrape(f"{base}/metrics")
        assert httpx.get(f"{base}/nothing").status_code == 404
    p = "labmeter_collector_"
    assert m[(f"{p}received_total", ())] == 22
    assert m[(f"{p}acked_total", ())] == 22
    # 20 samples, and a ``refusals`` count point per reason refused (one message each here)
    assert m[(f"{p}written_lines_total", ())] == 22
    assert m[(f"{p}rejected_total", (("reason", "not_json"),))] == 1
    assert m[(f"{p}rejected_total", (("reason", "not_object"),))] == 1
    assert m[(f"{p}unacked", ())] == 0
    assert m[(f"{p}connected", ())] == 1
    assert m[(f"{p}write_held", ())] == 0
    assert m[(f"{p}batch_lines_count", ())] >= 1
    assert m[(f"{p}batch_lines_sum", ())] == 22
    assert m[(f"{p}batch_seconds_count", ())] == m[(f"{p}batch_lines_count", ())]
    assert (f"{p}rollup_lag_seconds", ()) in m
    assert not any(k[0] == f"{p}write_errors_total" for k in m)  # none happened
    counted = influx.query("SELECT sum(count) FROM refusals GROUP BY reason, site")
    assert {(s.tags["reason"], s.tags["site"], s.values[0][1]) for s in counted} == {
        ("not_json", uid, 1),
        ("not_object", uid, 1),
    }

"""The API against real InfluxDB, with an inventory file and a key per role."""

from __future__ import annotations

from pathlib import Path

import pytest

from labmeter.config import Config
from labmeter.influx import InfluxV1
from tests.api import lab_data
from tests.api.client import Api, make_api


@pytest.fixture
def lab_api(config: Config, influx: InfluxV1, tmp_path: Path) -> Api:
    """The hand-checkable lab of ``lab_data``, all raw points, with its inventory."""
    influx.write_lines(lab_data.raw_lines() + lab_data.status_lines() + lab_data.event_lines())
    return make_api(config, tmp_path, lab_data.inventory_file(tmp_path))

"""The board and the report page in headless Chromium, over real HTTP from a real server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from labmeter.api.keys import Role
from tests.api import lab_data as d
from tests.api.client import Api
from tests.browser import CHROMIUM, chromium, serve

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium")


@pytest.fixture
def server(lab_api: Api) -> Iterator[str]:
    with serve(lab_api.config) as url:
        yield url


def test_board_shows_a_tile_per_device_and_screenshots(
    server: str, lab_api: Api, tmp_path: Path
) -> None:
    url = f"{server}/board?key={lab_api.tokens[Role.viewer]}"
    dom = chromium(tmp_path, "--dump-dom", url)
    for device in ("pc-01", "pc-02", "pc-03", "pc-99"):
        assert f'data-device="{device}"' in dom, device
    assert "its-prime / lab-cad" in dom
    assert "aggiornato alle" in dom  # the fetch succeeded with the key from the URL

    shot = tmp_path / "board.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1024,640", url)
    with Image.open(shot) as image:
        assert image.size == (1024, 640)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is None or len(colours) > 20  # not blank: tiles, text, legend


def test_board_without_key_is_refused(server: str, tmp_path: Path) -> None:
    dom = chromium(tmp_path, "--dump-dom", f"{server}/board")
    assert "API key is required" in dom


def test_report_page_has_charts_and_download_links(
    server: str, lab_api: Api, tmp_path: Path
) -> None:
    start, end = d.T0 // 1000, (d.T0 + 24 * d.HOUR) // 1000
    url = f"{server}/report?key={lab_api.tokens[Role.evaluator]}&start={start}&end={end}"
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.count("<svg") == 3
    assert "4. Utilizzo per attrezzatura" in dom
    assert "format=pdf" in dom and "format=xlsx" in dom
    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", "--window-size=1024,1400", url)
    with Image.open(shot) as image:
        assert image.size == (1024, 1400)
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 20

"""``labmeter influx init`` sets the retention on purpose, never shorter than the evidence's
unless an archive folder keeps the closed periods' packages."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from labmeter.cli.main import app
from labmeter.config import Config
from labmeter.influx import InfluxV1


def _policies(influx: InfluxV1) -> dict[str, tuple[str, bool]]:
    rows = influx.query(f'SHOW RETENTION POLICIES ON "{influx.config.database}"')
    return {str(r[0]): (str(r[1]), bool(r[4])) for s in rows for r in s.values}


def _init(config: Config, tmp_path: Path, extra: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "server.toml"
    path.write_text(
        f'[influx]\nurl = "{config.influx.url}"\ndatabase = "{config.influx.database}"\n{extra}'
    )
    result = CliRunner().invoke(app, ["influx", "init", "-c", str(path), *args])
    return result.exit_code, " ".join(result.output.split())  # rich wraps long lines


def test_init_sets_ten_years_by_default_and_refuses_less_without_an_archive(
    config: Config, influx: InfluxV1, tmp_path: Path
) -> None:
    code, out = _init(config, tmp_path, "")
    assert code == 0, out
    assert _policies(influx)["autogen"] == ("87672h0m0s", True)  # 3653 days
    code, out = _init(config, tmp_path, "", "--retention-days", "400")
    assert code == 1 and "shorter than the evidence retention" in out
    assert _policies(influx)["autogen"][0] == "87672h0m0s"  # unchanged
    archive = f'[evidence]\narchive_dir = "{tmp_path / "archive"}"\n'
    code, out = _init(config, tmp_path, archive, "--retention-days", "400")
    assert code == 0, out
    assert _policies(influx)["autogen"] == ("9600h0m0s", True)
    code, out = _init(config, tmp_path, "", "--retention-days", "0")
    assert code == 0, out
    assert _policies(influx)["autogen"] == ("0s", True)  # forever


def test_init_creates_the_named_policy_as_default(
    config: Config, influx: InfluxV1, tmp_path: Path
) -> None:
    code, out = _init(config, tmp_path, 'retention_policy = "evidence"\n')
    assert code == 0, out
    assert _policies(influx)["evidence"] == ("87672h0m0s", True)
    assert _policies(influx)["autogen"][1] is False

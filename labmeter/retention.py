"""How long InfluxDB keeps data, set on purpose by ``labmeter influx init``.

Grants ask that evidence be kept 5-10 years after the final payment (DESIGN.md), so the
raw data and rollups are kept at least ``evidence.retention_years`` unless every closed
period's package (which restores exactly) is kept in ``evidence.archive_dir`` instead.
"""

from __future__ import annotations

import math

from labmeter import influxql
from labmeter.config import Config
from labmeter.errors import EvidenceError
from labmeter.influx import InfluxV1
from labmeter.privileges import RoleUser, ensure_users

DAY_S = 86_400
YEAR_DAYS = 365.25


def retention_s(config: Config, days: int | None) -> int:
    """The retention to set in seconds (0 = forever): ``days`` or the evidence retention;
    refused when shorter than the evidence retention and no archive folder keeps packages."""
    floor = math.ceil(config.evidence.retention_years * YEAR_DAYS)
    wanted = days if days is not None else floor
    if wanted < 0:
        raise EvidenceError("the retention must be >= 0 days (0 = keep forever)")
    if wanted and wanted < floor and not config.evidence.archive_dir:
        raise EvidenceError(
            f"a retention of {wanted} days is shorter than the evidence retention "
            f"({config.evidence.retention_years} years = {floor} days) and no "
            "evidence.archive_dir keeps the closed periods' packages: keep the data longer, "
            "or set evidence.archive_dir, close every period before it expires and back it up"
        )
    return wanted * DAY_S


def apply_v1(influx: InfluxV1, seconds: int) -> str:
    """Create the database and set its retention policy (``influx.retention_policy``, or
    ``autogen``) as the default; return what was set."""
    influx.create_database()
    db = influx.config.database
    name = influx.config.retention_policy or "autogen"
    existing = {
        str(row[0])
        for series in influx.query(influxql.show_retention_policies(db))
        for row in series.values
    }
    influx.query(influxql.retention_policy(name, db, seconds, create=name not in existing))
    duration = f"{seconds // 3600}h" if seconds else "INF"
    return f"retention policy {name!r} on {db!r}: {duration}"


def initialise(
    config: Config, days: int | None, users: dict[str, str] | None = None
) -> tuple[str, str | None, list[RoleUser]]:
    """``labmeter influx init``: 1.x the database, its retention policy and a user per role
    (``users``: role -> name, ``labmeter/privileges.py``); 2.x the bucket, the DBRP mapping
    and a write token. What was done, the token (2.x) and the users."""
    from labmeter.influx import init_v2

    seconds = retention_s(config, days)
    if config.influx.flavour == "v2":
        if users:
            raise EvidenceError(
                "on InfluxDB 2.x a role's user is a v1 authorization: `influx v1 auth create` "
                "as deploy/influxdb/init-labmeter.sh does (the API's with --read-bucket only)"
            )
        token = init_v2(config.influx, seconds)
        return (
            f"bucket {config.influx.bucket!r} (retention {seconds // DAY_S or 'forever'} days) "
            f"mapped to database {config.influx.database!r}",
            token,
            [],
        )
    influx = InfluxV1(config.influx)
    try:
        done = apply_v1(influx, seconds)
        made = ensure_users(influx, users) if users else []
    finally:
        influx.close()
    return f"database {config.influx.database!r} ready at {config.influx.url}; {done}", None, made

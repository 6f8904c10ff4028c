"""Least privilege in InfluxDB: one user per role, made by ``labmeter influx init`` (1.x).

- the collector writes samples, rollups, heartbeats and refusals, and reads closures and the
  points its rollups sum: ``ALL`` on the database, no more (not an admin);
- the API only reads: ``READ``, so whoever holds its credentials (a compromised API process,
  a Grafana datasource) can rewrite nothing, a closure least of all;
- closing a period writes the closure and reads everything: the admin who runs ``influx
  init`` (``[evidence] influx_username`` for the CLI and the API's admin route).

Closures stay points that the collector's user could write; the archive folder's own record
of each close (``archive/ledger.py``) is what shows a closure rewritten with those rights.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Final

from labmeter import influxql
from labmeter.config import Secret
from labmeter.errors import ConfigError, QueryError
from labmeter.influx import InfluxV1
from labmeter.influxql import Privilege

ROLE_PRIVILEGE: Final[dict[str, Privilege]] = {"collector": "ALL", "api": "READ"}


@dataclass(frozen=True)
class RoleUser:
    role: str  # a key of ROLE_PRIVILEGE
    name: str
    password: Secret | None  # set only when the user was made now


def ensure_users(influx: InfluxV1, names: dict[str, str]) -> list[RoleUser]:
    """Each role's user (``names``: role -> user name) exists with exactly its role's
    privilege on the database; a new one gets a random password, returned once."""
    db = influx.config.database
    found = {
        str(row[0]): bool(row[1]) for s in influx.query(influxql.show_users()) for row in s.values
    }
    out = []
    for role, name in names.items():
        if role not in ROLE_PRIVILEGE:
            raise ConfigError(role, f"no InfluxDB role {role!r} ({', '.join(ROLE_PRIVILEGE)})")
        if found.get(name):
            raise ConfigError(
                f"{role} user", f"{name!r} is an InfluxDB admin: a role's user must not be one"
            )
        password = None
        if name not in found:
            password = Secret(secrets.token_urlsafe(24))
            try:
                influx.query(influxql.create_user(name, password.reveal()))
            except QueryError as exc:  # never echo the statement, which holds the password
                why = f"cannot create user {name!r}"
                raise QueryError(exc.status, why, retryable=False) from None
        influx.query(influxql.revoke_all(db, name))
        influx.query(influxql.grant(ROLE_PRIVILEGE[role], db, name))
        out.append(RoleUser(role, name, password))
    return out

"""InfluxDB layer: line protocol, v1 ``/write`` with gzip, and InfluxQL reads over ``/query``.

InfluxQL over ``/query`` is the one read path because it runs on InfluxDB 1.x, 2.x (with a
DBRP mapping) and 3.x; Flux does not. Writes use millisecond precision, the contract's unit.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

from labmeter import influxql
from labmeter.config import InfluxConfig, Secret
from labmeter.errors import InfluxError, QueryError, WriteError
from labmeter.influxql import Select

FieldValue = float | int | str | bool


class LineWriter(Protocol):
    """What the collector writes through: v1 ``/write`` or v2 ``/api/v2/write``."""

    def write_lines(self, lines: Sequence[str]) -> None: ...

    def close(self) -> None: ...


# InfluxDB 1.x keeps a backslash in a name or tag as it is, unless it escapes one of , = and
# space: so a backslash before one of those, or at the end, cannot be written at all.
_UNWRITABLE = re.compile(r"\\(?:[,= ]|$)")


def _escape_key(value: str) -> str:
    if "\\" in value and _UNWRITABLE.search(value):
        raise ValueError(f"line protocol cannot carry {value!r} (a backslash before , = space)")
    return value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _escape_measurement(value: str) -> str:
    if "\\" in value and _UNWRITABLE.search(value):
        raise ValueError(f"line protocol cannot carry {value!r} (a backslash before , = space)")
    return value.replace(",", "\\,").replace(" ", "\\ ")


def _field(value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("line protocol cannot carry NaN or infinity")
        return repr(value)
    # Only backslash and quote are escaped: InfluxDB keeps a newline inside a quoted string
    # as is, while an escaped "\\n" would be stored as a backslash and an n.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def line(
    measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], ts_ms: int
) -> str:
    """One line of line protocol; tags sorted (InfluxDB's fast path), empty tags left out."""
    if not fields:
        raise ValueError("a point needs at least one field")
    tag_part = "".join(f",{_escape_key(k)}={_escape_key(v)}" for k, v in sorted(tags.items()) if v)
    field_part = ",".join(f"{_escape_key(k)}={_field(v)}" for k, v in fields.items())
    return f"{_escape_measurement(measurement)}{tag_part} {field_part} {ts_ms}"


def _revealed(secret: Secret | None) -> str:
    return secret.reveal() if secret is not None else ""


def _retry_after(response: httpx.Response) -> float | None:
    return _seconds(response.headers.get("Retry-After"))


def _seconds(value: str | None) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare from InfluxDB: treated as absent)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def classify(response: httpx.Response, error: type[InfluxError] = WriteError) -> InfluxError:
    """Turn a non-2xx response into an error that says whether a retry can help."""
    status = response.status_code
    try:
        message = str(response.json().get("error", response.text))
    except ValueError:
        message = response.text
    # 429 and 5xx are the server's trouble, not the data's: retry. 4xx is the data or the
    # credentials: retrying the same body cannot help (except 408, a timeout).
    retryable = status in (408, 429) or status >= 500
    return error(
        status, message.strip()[:500], retryable=retryable, retry_after=_retry_after(response)
    )


def _unreachable(exc: httpx.HTTPError, error: type[InfluxError]) -> InfluxError:
    """No answer (refused, reset, timed out): worth trying again."""
    return error(0, f"{type(exc).__name__}: {exc}", retryable=True)


@dataclass
class QueryResult:
    """One InfluxQL series: its tags, column names and rows."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) | self.tags for row in self.values]


def _series(raw: dict[str, Any]) -> QueryResult:
    return QueryResult(raw.get("name", ""), raw.get("tags") or {}, raw["columns"], raw["values"])


class InfluxV1:
    """InfluxDB 1.x API (also 2.x/3.x compatibility endpoints): /ping, /write, /query."""

    def __init__(self, config: InfluxConfig, client: httpx.Client | None = None) -> None:
        self.config = config
        auth = (config.username, _revealed(config.password)) if config.username else None
        self._client = client or httpx.Client(
            base_url=config.url, timeout=config.timeout_s, auth=auth
        )

    def close(self) -> None:
        self._client.close()

    def ping(self) -> bool:
        try:
            return self._client.get("/ping").status_code == 204
        except httpx.HTTPError:
            return False

    def _db_params(self) -> dict[str, str]:
        params = {"db": self.config.database}
        if self.config.retention_policy:
            params["rp"] = self.config.retention_policy
        return params

    def write_lines(self, lines: Sequence[str], precision: str = "ms") -> None:
        """Write one batch; raise ``WriteError`` (retryable or not) on any failure.
        ``precision``: the lines' time unit (the contract's ms; an archive's ns)."""
        if not lines:
            return
        body = gzip.compress("\n".join(lines).encode(), compresslevel=1)
        try:
            response = self._client.post(
                "/write",
                params={**self._db_params(), "precision": precision},
                content=body,
                headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"},
            )
        except httpx.HTTPError as exc:
            raise _unreachable(exc, WriteError) from exc
        if response.status_code >= 300:
            raise classify(response)

    def query(self, statement: Select | str, *, epoch: str = "ms") -> list[QueryResult]:
        """Run InfluxQL statements and return every series of every result.

        labmeter's own code passes ``Select``s (``labmeter/influxql.py`` is where query text
        is built); text is for tests, benchmarks and statements an operator typed.
        """
        return [s for result in self._results(str(statement), epoch) for s in result[1]]

    def query_each(
        self, queries: Sequence[Select], *, epoch: str = "ms"
    ) -> list[list[QueryResult]]:
        """Run several SELECTs in one request; the series of each, in the order given."""
        if not queries:
            return []
        out: list[list[QueryResult]] = [[] for _ in queries]
        for n, series in self._results(influxql.statements(queries), epoch):
            out[n] = series
        return out

    def _results(self, text: str, epoch: str) -> list[tuple[int, list[QueryResult]]]:
        try:
            response = self._client.post(
                "/query", data={"q": text, "db": self.config.database, "epoch": epoch}
            )
        except httpx.HTTPError as exc:
            raise _unreachable(exc, QueryError) from exc
        if response.status_code >= 300:
            raise classify(response, QueryError)
        out = []
        for n, result in enumerate(orjson.loads(response.content).get("results", [])):
            if "error" in result:
                raise QueryError(400, str(result["error"]), retryable=False)
            series = [_series(s) for s in result.get("series", [])]
            out.append((int(result.get("statement_id", n)), series))
        return out

    def stream(
        self, statement: Select | str, chunk_rows: int, *, epoch: str = "ns"
    ) -> Iterator[QueryResult]:
        """A query's series in chunks of at most ``chunk_rows`` rows (a series may come in
        several), so that a year of points never sits in memory at once."""
        params = {
            "q": str(statement),
            "db": self.config.database,
            "epoch": epoch,
            "chunked": "true",
            "chunk_size": str(chunk_rows),
        }
        try:
            with self._client.stream("POST", "/query", data=params) as response:
                if response.status_code >= 300:
                    response.read()
                    raise classify(response, QueryError)
                for text in response.iter_lines():
                    if not text.strip():
                        continue
                    for result in orjson.loads(text).get("results", []):
                        if "error" in result:
                            raise QueryError(400, str(result["error"]), retryable=False)
                        yield from (_series(s) for s in result.get("series", []))
        except httpx.HTTPError as exc:
            raise _unreachable(exc, QueryError) from exc

    def create_database(self) -> None:
        """Create the database (idempotent on 1.x)."""
        self.query(influxql.create_database(self.config.database))


class InfluxV2Writer:
    """``/api/v2/write`` (InfluxDB 2.x/3.x) through influxdb-client, in SYNCHRONOUS mode.

    Never the client's batching mode: it loses data at exit and when its retries run out
    (DESIGN.md). The collector batches, retries and acks itself; here retries are off so
    every failure reaches it as a ``WriteError``.
    """

    def __init__(self, config: InfluxConfig) -> None:
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self.config = config
        self._client = InfluxDBClient(
            url=config.url,
            token=_revealed(config.token),
            org=config.org,
            timeout=int(config.timeout_s * 1000),
            enable_gzip=True,
            retries=False,
        )
        self._write = self._client.write_api(write_options=SYNCHRONOUS)

    def write_lines(self, lines: Sequence[str]) -> None:
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        if not lines:
            return
        try:
            self._write.write(
                self.config.bucket, self.config.org, "\n".join(lines), WritePrecision.MS
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or "")
            try:
                message = str(json.loads(body).get("message", body))
            except (ValueError, AttributeError):
                message = body
            retry = (exc.headers or {}).get("Retry-After")
            raise WriteError(
                status,
                message.strip()[:500] or str(exc.reason),
                retryable=status in (408, 429) or status >= 500,
                retry_after=_seconds(retry),
            ) from exc
        except HTTPError as exc:
            raise WriteError(0, f"{type(exc).__name__}: {exc}", retryable=True) from exc

    def close(self) -> None:
        self._client.close()


def make_writer(config: InfluxConfig) -> LineWriter:
    """The configured write flavour."""
    return InfluxV2Writer(config) if config.flavour == "v2" else InfluxV1(config)


def init_v2(config: InfluxConfig, retention_s: int = 0) -> str:
    """On InfluxDB 2.x: the bucket with its retention (0 = forever), a DBRP mapping
    (database -> bucket, so InfluxQL over ``/query`` works) and a write+read token for the
    collector, which is returned.

    ``config.token`` must be an operator token allowed to create them. Idempotent for the
    bucket and the mapping; each call makes a new token.
    """
    from influxdb_client import InfluxDBClient
    from influxdb_client.domain.bucket_retention_rules import BucketRetentionRules
    from influxdb_client.domain.dbrp_create import DBRPCreate
    from influxdb_client.domain.permission import Permission
    from influxdb_client.domain.permission_resource import PermissionResource
    from influxdb_client.service.dbr_ps_service import DBRPsService

    with InfluxDBClient(url=config.url, token=_revealed(config.token), org=config.org) as client:
        orgs = client.organizations_api().find_organizations(org=config.org)
        if not orgs:
            raise QueryError(404, f"organization {config.org!r} not found", retryable=False)
        org_id = orgs[0].id
        buckets = client.buckets_api()
        bucket = buckets.find_bucket_by_name(config.bucket)
        rules = [BucketRetentionRules(type="expire", every_seconds=retention_s)]
        if bucket is None:
            bucket = buckets.create_bucket(
                bucket_name=config.bucket, org_id=org_id, retention_rules=rules
            )
        else:  # the retention is set on purpose (labmeter/retention.py), also on a bucket kept
            bucket.retention_rules = rules
            bucket = buckets.update_bucket(bucket)
        dbrps = DBRPsService(client.api_client)
        existing = dbrps.get_dbr_ps(org_id=org_id, bucket_id=bucket.id).content or []
        if not any(d.database == config.database for d in existing):
            dbrps.post_dbrp(
                DBRPCreate(
                    org_id=org_id,
                    bucket_id=bucket.id,
                    database=config.database,
                    retention_policy=config.retention_policy or "autogen",
                    default=True,
                )
            )
        resource = PermissionResource(type="buckets", id=bucket.id, org_id=org_id)
        auth = client.authorizations_api().create_authorization(
            org_id=org_id,
            permissions=[
                Permission(action="write", resource=resource),
                Permission(action="read", resource=resource),
            ],
        )
        return str(auth.token)

"""Configuration: one TOML file per role, then ``LABMETER_<SECTION>_<KEY>`` variables, then flags.

Typed dataclasses checked by hand instead of pydantic-settings because the agent shares this
module and must stay light; every error names the offending key (``mqtt.url``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from labmeter.errors import ConfigError

log = logging.getLogger(__name__)


class Secret(str):
    """A password, token or key: a string that shows as ``'********'`` in ``repr``, ``str``
    and formatting, so a config, an error or a log line never prints it. ``reveal()`` gives
    the value to the one call that needs it (a login, an HMAC)."""

    __slots__ = ()

    def __new__(cls, value: str = "") -> Secret:
        # str(value) of a Secret would be its mask: take the characters, not the display.
        return super().__new__(cls, str.__str__(value))

    def __repr__(self) -> str:
        return "'********'" if self else "''"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(repr(self), spec)

    def reveal(self) -> str:
        return str.__str__(self)


def _hide_secrets(config: Any) -> None:
    """A config built in code with plain strings still keeps its secrets as ``Secret``."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if f.name in _SECRET_FIELDS and isinstance(value, str) and not isinstance(value, Secret):
            object.__setattr__(config, f.name, Secret(value))


_SECRET_FIELDS = frozenset({"password", "token", "pseudonym_secret", "influx_password"})

# What examples put where a secret goes: ``change-me-*``, ``replace-me``, ``rotate-me-...``,
# ``...``, ``<password>``, ``xxxx``, a bare ``secret`` or ``password``, ``your-...``.
_PLACEHOLDER = re.compile(
    r"(?i)change[-_ ]?me|replace[-_ ]?me|rotate[-_ ]?me|^your[-_ ]|^example|"
    r"^(\.\.\.|<[^>]*>|x+|\*+|secret|password|passw0rd|token|changeit|admin)$"
)
MAKE_A_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"


def placeholder(value: str) -> bool:
    """``value`` is an example's stand-in for a secret, not a secret."""
    return bool(_PLACEHOLDER.search(str.__str__(value).strip()))


# A source's own credentials (``[agent.options]``: a printer's password, API key, access code).
_SECRET_OPTION = re.compile(r"(?i)password|secret|token|api_key|access_code")


def _secrets(key: str, value: Any) -> list[tuple[str, str]]:
    """Every secret-named string under a source's options, with its key."""
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in _secrets(f"{key}.{k}", v)]
    named = _SECRET_OPTION.search(key.rsplit(".", 1)[-1])
    return [(key, value)] if named and isinstance(value, str) else []


def refuse_placeholders(config: Config) -> None:
    """Refuse to start with a secret still holding an example's placeholder: ``ConfigError``
    naming the key (never the value) and how to make a real one."""
    found: list[tuple[str, str]] = _secrets("agent.options", config.agent.options)
    for section in dataclasses.fields(config):
        part = getattr(config, section.name)
        for f in dataclasses.fields(part):
            value = getattr(part, f.name)
            if f.name in _SECRET_FIELDS and isinstance(value, str):
                found.append((f"{section.name}.{f.name}", value))
    for key, value in found:
        if value and placeholder(value):
            how = (
                "put the device's own (its sample.toml says where it is shown)"
                if key.startswith("agent.options.")
                else f"make one with `{MAKE_A_SECRET}` (each secret its own)"
            )
            raise ConfigError(key, f"is still the example's placeholder, not a secret: {how}")


@dataclass(frozen=True)
class MqttConfig:
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password: Secret | None = None
    ca_file: str | None = None
    keepalive_s: int = 30

    def __post_init__(self) -> None:
        _hide_secrets(self)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    def check(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(
                "mqtt.url", f"{self.url!r} is not mqtt://host:port or mqtts://host:port"
            )


@dataclass(frozen=True)
class InfluxConfig:
    url: str = "http://127.0.0.1:8086"
    database: str = "labmeter"
    retention_policy: str | None = None
    username: str | None = None
    password: Secret | None = None
    timeout_s: float = 10.0
    # "v1": /write (1.x, and 2.x/3.x compatibility); "v2": /api/v2/write with org/bucket/token.
    flavour: str = "v1"
    org: str = ""
    bucket: str = ""
    token: Secret | None = None

    def __post_init__(self) -> None:
        _hide_secrets(self)

    def check(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("influx.url", f"{self.url!r} is not http(s)://host:port")
        if not self.database:
            raise ConfigError("influx.database", "must not be empty")
        if self.flavour not in ("v1", "v2"):
            raise ConfigError("influx.flavour", f"{self.flavour!r} is not 'v1' or 'v2'")
        if self.flavour == "v2":
            for key in ("org", "bucket", "token"):
                if not getattr(self, key):
                    raise ConfigError(f"influx.{key}", "is required when influx.flavour = 'v2'")


@dataclass(frozen=True)
class AgentConfig:
    site: str = ""
    lab: str = ""
    device: str = ""
    kind: str = "pc"
    source: str = "pc"
    interval_s: int = 60
    poll_s: float = 1.0
    idle_threshold_s: int = 180
    # HMAC key for pseudonyms; rotate it each reporting period. Never sent anywhere.
    pseudonym_secret: Secret = Secret()  # noqa: RUF009 - immutable, like a str default
    # login or group name -> stakeholder category, resolved on the agent: the login first,
    # then the first group listed here that the user is in (POSIX groups on Linux, local and
    # domain groups on Windows), then default_category. Names compare case-insensitively.
    categories: dict[str, str] = field(default_factory=dict)
    default_category: str = "its_student"
    # Source-specific settings ([agent.options]); each source checks its own keys.
    options: dict[str, Any] = field(default_factory=dict)
    # Durable queue (SQLite): everything is on disk before it is published; oldest go first.
    queue_path: str = "labmeter-agent-queue.db"
    queue_max_rows: int = 200_000
    queue_max_mb: float = 128.0
    queue_max_age_days: float = 90.0
    # A row stays queued until the collector confirms it is written. Sent again on every
    # connection, and this long after a row sent later was confirmed and it was not (or, as
    # a probe, after this long without any confirmation): longer than the collector's
    # confirmation delay and than the lag between collectors sharing a subscription.
    resend_s: float = 30.0
    # Rows sent and awaiting confirmation at most: while the collector is away the rest wait
    # on disk, not in the broker (which holds at most devices x send_window for it).
    send_window: int = 60
    # Licensed software: [agent.apps.<title>] patterns = ["sldworks.exe"], seats = 10.
    apps: dict[str, Any] = field(default_factory=dict)
    scan_s: float = 15.0  # process scans: a full scan costs ~0.7% of a core if done every second
    busy_cpu_pct: float = 25.0  # a catalogued app above this while the user is idle = in use
    # Folder where session helpers (``labmeter agent idle-helper``) report idle; "" = none.
    idle_dir: str = ""

    def __post_init__(self) -> None:
        _hide_secrets(self)

    def check(self) -> None:
        from labmeter.contract import CATEGORIES, Topic
        from labmeter.errors import PayloadRejected

        try:
            Topic(self.site, self.lab, self.device, "sample")
        except PayloadRejected as exc:
            raise ConfigError("agent.site/lab/device", exc.detail) from exc
        if self.interval_s <= 0 or 1800 % self.interval_s:
            raise ConfigError(
                "agent.interval_s",
                "must divide 1800 (e.g. 60, 300, 900): each sample must fall within one half "
                "hour, the unit in which use is split at opening hours",
            )
        if not 0 < self.poll_s <= self.interval_s:
            raise ConfigError("agent.poll_s", "must be > 0 and <= interval_s")
        if len(self.pseudonym_secret) < 16:
            raise ConfigError("agent.pseudonym_secret", "must be at least 16 characters")
        for name, category in {
            **self.categories,
            "default_category": self.default_category,
        }.items():
            if category not in CATEGORIES:
                raise ConfigError(
                    f"agent.categories.{name}", f"{category!r} is not one of {CATEGORIES}"
                )
        for key in ("queue_max_rows", "queue_max_mb", "queue_max_age_days", "scan_s"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"agent.{key}", "must be > 0")
        if self.resend_s <= 0:
            raise ConfigError("agent.resend_s", "must be > 0")
        if self.send_window < 1:
            raise ConfigError("agent.send_window", "must be >= 1")
        if not self.queue_path:
            raise ConfigError("agent.queue_path", "must not be empty")
        if not 0 < self.busy_cpu_pct <= 100 * (os.cpu_count() or 1):
            raise ConfigError("agent.busy_cpu_pct", "must be > 0 (percent of one core)")
        if self.idle_threshold_s <= 0:
            raise ConfigError("agent.idle_threshold_s", "must be > 0")
        for title, entry in self.apps.items():
            _check_app(title, entry)


def _check_app(title: str, entry: Any) -> None:
    """One licensed-software entry: a title as sent on the wire, patterns, optional seats."""
    import re

    key = f"agent.apps.{title}"
    if not re.fullmatch(r"[a-z0-9_.-]{1,64}", title):
        raise ConfigError(key, "title must be [a-z0-9_.-]{1,64} (it is sent as apps_s key)")
    if not isinstance(entry, dict):
        raise ConfigError(key, "must be a table with patterns = [...] and seats = N")
    unknown = set(entry) - {"patterns", "seats"}
    if unknown:
        raise ConfigError(f"{key}.{sorted(unknown)[0]}", "unknown key (known: patterns, seats)")
    patterns = entry.get("patterns")
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise ConfigError(f"{key}.patterns", "must be a non-empty list of executable patterns")
    seats = entry.get("seats", 0)
    if isinstance(seats, bool) or not isinstance(seats, int) or seats < 0:
        raise ConfigError(f"{key}.seats", "must be an integer >= 0")


@dataclass(frozen=True)
class CollectorConfig:
    client_id: str = "labmeter-collector"
    # "+" for every site, or one site's segment for a collector per site.
    site: str = "+"
    # Non-empty: subscribe through $share/<group>/ so N collectors split the stream.
    shared_group: str = ""
    batch_lines: int = 5000
    batch_interval_s: float = 1.0
    # A batch is written once its first message waited this long (or it is full): low latency
    # at a steady load, and big batches during a backlog because one write is in flight.
    batch_linger_s: float = 0.05
    # MQTT 5 Receive Maximum: unacked messages the broker may hand us (<= 65535), and the
    # most a collector (each worker) takes from its session before their acks: its memory
    # budget (~1.5 kB a sample in flight), whatever the backlog.
    max_unacked: int = 5000
    # Publish each agent's confirmations (the row ids written, retained, on its device's
    # confirmation topic), gathered per device over confirm_interval_s: in a drain at most one
    # per device and interval, in steady use one per sample. Keep it well below the agents'
    # resend_s (30 s).
    confirm: bool = True
    confirm_interval_s: float = 5.0
    session_expiry_s: int = 7 * 24 * 3600
    dead_letter_path: str = "labmeter-deadletters.jsonl"
    # Prometheus /metrics and /healthz; None = off, 0 = any free port (tests).
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # Hourly rollups from closed hours, recomputed when late data lands in one.
    rollups: bool = True
    rollup_grace_s: float = 300.0
    rollup_settle_s: float = 5.0
    rollup_state_path: str = ""  # "" = next to dead_letter_path
    # Days rolled up by an older version (or hourly only) recomputed in the background,
    # newest first, throttled (collector/catchup.py): no manual step after an upgrade.
    catch_up: bool = True
    # The inventory YAML whose opening hours split the daily rollups' in-use time (the same
    # file as api.inventory); empty: the API reads those days from the hourly rollups.
    inventory: str = ""
    # Late-data horizon: samples and events older than this are refused (``too_old``), so a
    # replay can complete the past but not rewrite it. Default: the agent queue's maximum
    # age, the oldest thing an honest agent can still hold; 0 = no horizon.
    max_age_days: float = AgentConfig.queue_max_age_days
    # Shifts the collector's clock for the horizon (seconds, may be negative): only for
    # tests and replays of a lab pinned in the past, where "now" is the lab's end.
    clock_offset_s: float = 0.0
    # How often closed periods are read from InfluxDB (and the heartbeat sent).
    periods_refresh_s: float = 5.0

    def check(self) -> None:
        if self.max_age_days < 0:
            raise ConfigError("collector.max_age_days", "must be >= 0 (0 = no horizon)")
        if not 0 < self.periods_refresh_s <= 10:
            raise ConfigError(
                "collector.periods_refresh_s",
                "must be > 0 and <= 10 (a period close waits for every collector's heartbeat)",
            )
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError("collector.metrics_port", "must be within 0..65535")
        if self.rollup_grace_s < 0 or self.rollup_settle_s < 0:
            raise ConfigError("collector.rollup_grace_s", "grace and settle must be >= 0")
        if not 1 <= self.max_unacked <= 65535:
            raise ConfigError(
                "collector.max_unacked", "must be within 1..65535 (MQTT 5 Receive Maximum)"
            )
        if self.batch_lines < 1:
            raise ConfigError("collector.batch_lines", "must be >= 1")
        if self.batch_interval_s <= 0:
            raise ConfigError("collector.batch_interval_s", "must be > 0")
        if self.batch_linger_s <= 0:
            raise ConfigError("collector.batch_linger_s", "must be > 0")
        if self.confirm_interval_s <= 0:
            raise ConfigError("collector.confirm_interval_s", "must be > 0")


@dataclass(frozen=True)
class ApiConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    # A device is offline when nothing came for this many of its intervals.
    stale_intervals: float = 2.0
    # The inventory YAML (labmeter/inventory/); empty: every window hour counts as available.
    inventory: str = ""
    # SQLite file of hashed API keys (`labmeter apikey create`) and browser sessions.
    keys_path: str = "labmeter-apikeys.sqlite"
    # A page opened with ?key= gets a session cookie (never the key); it ends after this
    # long unused, or when its key is revoked.
    session_idle_hours: float = 24.0
    # Proxies whose X-Forwarded-Proto/-For are believed (comma-separated addresses or
    # networks, "*" for any): behind a TLS proxy the cookie is then Secure.
    forwarded_allow_ips: str = "127.0.0.1,::1"
    # false: /docs and /openapi.json need a key, like every other route.
    public_docs: bool = True
    # Requests for the same window and filters within this many seconds share its plan,
    # facts and session counts; live occupancy is read at most once per this many seconds
    # (labmeter/api/recent.py). 0: every request reads for itself (benchmarks).
    share_s: float = 5.0
    live_s: float = 1.0

    def check(self) -> None:
        if self.share_s < 0 or self.live_s < 0:
            raise ConfigError("api.share_s", "share_s and live_s must be >= 0")
        if self.session_idle_hours <= 0:
            raise ConfigError("api.session_idle_hours", "must be > 0")
        import ipaddress

        for item in filter(None, (i.strip() for i in self.forwarded_allow_ips.split(","))):
            if item == "*":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ConfigError(
                    "api.forwarded_allow_ips", f"{item!r} is not an address or network"
                ) from exc


@dataclass(frozen=True)
class EvidenceConfig:
    """Closed periods and their evidence packages (``labmeter period close``)."""

    # Where evidence packages are written, one folder per closed period; back it up.
    archive_dir: str = ""
    # Ed25519 private key (PEM, unencrypted) that signs each manifest; "" = unsigned.
    signing_key: str = ""
    # The lab's published Ed25519 public key (PEM): ``period verify`` with this config
    # requires packages signed by it (the trust anchor; ``--public-key`` overrides it).
    public_key: str = ""
    # How long raw data must be kept: funds ask 5-10 years after the final payment.
    retention_years: int = 10
    # How long a close waits for every live collector to apply the closure.
    close_wait_s: float = 900.0
    # The InfluxDB user that closes periods (writes the closure): the admin, where the
    # collector's and the API's users may not ("" = influx.username, e.g. on the CLI).
    influx_username: str = ""
    influx_password: Secret | None = None

    def __post_init__(self) -> None:
        _hide_secrets(self)

    def check(self) -> None:
        if self.retention_years < 1:
            raise ConfigError("evidence.retention_years", "must be >= 1")
        if self.close_wait_s <= 0:
            raise ConfigError("evidence.close_wait_s", "must be > 0")


@dataclass(frozen=True)
class BookingsConfig:
    """Declared use: the calendars and feeds bookings come from (``labmeter/bookings``)."""

    # The sources file listing calendars (files, feeds) and their defaults; "" = no bookings.
    sources: str = ""
    # Where each feed's last good copy is kept; "" = a ``.feeds`` folder beside ``sources``.
    cache_dir: str = ""
    # How often the API fetches the feeds again, how long one fetch may take in all
    # (redirects and body included), and how large a feed may be.
    refresh_min: float = 60.0
    timeout_s: float = 20.0
    feed_max_mb: float = 16.0
    # A booking whose booked devices were in use for less than this share of it is a no-show.
    no_show_below: float = 0.10

    def check(self) -> None:
        if not 0 <= self.no_show_below <= 1:
            raise ConfigError("bookings.no_show_below", "must be a share within 0..1 (0.10)")
        if self.refresh_min <= 0 or self.timeout_s <= 0:
            raise ConfigError("bookings.refresh_min", "refresh_min and timeout_s must be > 0")
        if self.feed_max_mb <= 0:
            raise ConfigError("bookings.feed_max_mb", "must be > 0")


@dataclass(frozen=True)
class Config:
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    influx: InfluxConfig = field(default_factory=InfluxConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    collector: CollectorConfig = field(default_factory=CollectorConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    bookings: BookingsConfig = field(default_factory=BookingsConfig)


def _coerce(key: str, value: Any, hint: Any, from_env: bool) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (from_env and value == ""):
            return None
        return _coerce(key, value, args[0], from_env)
    if origin is dict:
        value_type = typing.get_args(hint)[1]
        if not isinstance(value, dict) or (
            value_type is str and not all(isinstance(v, str) for v in value.values())
        ):
            raise ConfigError(key, "must be a table" + (" of strings" if value_type is str else ""))
        return dict(value)
    if hint is bool:
        if from_env and isinstance(value, str):
            return value.lower() in ("1", "true", "yes", "on")
        if not isinstance(value, bool):
            raise ConfigError(key, f"must be true or false, got {value!r}")
        return value
    if hint in (int, float):
        if from_env and isinstance(value, str):
            try:
                return hint(value)
            except ValueError as exc:
                raise ConfigError(key, f"must be a number, got {value!r}") from exc
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key, f"must be a number, got {value!r}")
        if hint is int and not isinstance(value, int):
            raise ConfigError(key, f"must be an integer, got {value!r}")
        return hint(value)
    if hint in (str, Secret):
        if not isinstance(value, str):
            # Never the value itself: a secret typed as a number would be printed.
            shown = "a value" if hint is Secret else repr(value)
            raise ConfigError(key, f"must be a string, got {shown}")
        return hint(value)
    raise ConfigError(key, f"unsupported type {hint}")  # pragma: no cover - schema bug


# Keys a shipped sample config once had, whose job the software does another way: skipped
# with a warning rather than refused, so an upgraded agent does not stop measuring.
RETIRED = {
    "agent.replay_s": "rows stay queued until the collector confirms them written (resend_s)",
}


def _section(cls: type[Any], name: str, data: dict[str, Any], overrides: dict[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    for key in list(data):
        if f"{name}.{key}" in RETIRED:
            log.warning("config: %s.%s is ignored: %s", name, key, RETIRED[f"{name}.{key}"])
            data = {k: v for k, v in data.items() if k != key}
        elif key not in known:
            raise ConfigError(f"{name}.{key}", f"unknown key (known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        key = f"{name}.{f.name}"
        if f.name in data:
            values[f.name] = _coerce(key, data[f.name], hints[f.name], from_env=False)
        env = os.environ.get(f"LABMETER_{name}_{f.name}".upper())
        if env is not None and typing.get_origin(hints[f.name]) is not dict:
            values[f.name] = _coerce(key, env, hints[f.name], from_env=True)
        if overrides.get(key) is not None:
            values[f.name] = _coerce(key, overrides[key], hints[f.name], from_env=True)
    return cls(**values)


def load(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read the TOML file (if any), apply environment and flag overrides (``{"mqtt.url": ...}``)."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(str(path), "file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"invalid TOML: {exc}") from exc
    sections = {f.name: f.type for f in dataclasses.fields(Config)}
    for key in data:
        if key not in sections:
            raise ConfigError(key, f"unknown section (known: {', '.join(sections)})")
        if not isinstance(data[key], dict):
            raise ConfigError(key, "must be a table")
    hints = typing.get_type_hints(Config)
    parts = {
        name: _section(hints[name], name, data.get(name, {}), overrides or {}) for name in sections
    }
    config = Config(**parts)
    config.mqtt.check()
    config.influx.check()
    config.collector.check()
    config.api.check()
    config.evidence.check()
    config.bookings.check()
    return config

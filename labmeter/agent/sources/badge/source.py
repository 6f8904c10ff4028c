"""Badge source: swipes open and close a user session on the machine the reader is attached to.

The raw badge id stays here: it is looked up in the local badge table for the stakeholder
category and turned into an HMAC pseudonym; only the pseudonym and category are published.
"""

from __future__ import annotations

import csv
import threading
import tomllib
from pathlib import Path
from typing import Any

from labmeter.agent.identity import pseudonym
from labmeter.agent.meter import Reading
from labmeter.agent.sources import SourceEvent
from labmeter.agent.sources.badge.protocol import Debouncer, FrameDecoder, Sessions
from labmeter.agent.sources.options import Options
from labmeter.agent.sources.serial_link import SerialLink
from labmeter.agent.sources.stamp import EventLog, stamped
from labmeter.config import AgentConfig
from labmeter.contract import CATEGORIES
from labmeter.errors import ConfigError

OPTIONS = {"port", "baudrate", "debounce_s", "badges", "badge_table", "reconnect_s"}


def _check_table(table: dict[str, Any], key: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for badge, category in table.items():
        if category not in CATEGORIES:
            raise ConfigError(f"{key}.{badge}", f"{category!r} is not one of {CATEGORIES}")
        out[str(badge).strip().upper()] = category
    return out


def load_badge_table(opts: Options) -> dict[str, str]:
    """Badge id (10 hex chars, any case) -> category, from ``badges`` and/or ``badge_table``.

    ``badge_table`` is a CSV file (``badge,category`` per line, ``#`` comments, optional
    header) or a TOML file with a ``[badges]`` table.
    """
    table = _check_table(opts.table("badges"), opts.key("badges"))
    if "badge_table" not in opts.raw:
        return table
    path = Path(opts.string("badge_table"))
    key = opts.key("badge_table")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(key, f"cannot read {path}: {exc.strerror}") from exc
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text).get("badges", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(key, f"{path}: invalid TOML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(key, f"{path}: [badges] must be a table")
        return {**table, **_check_table(data, f"{path}:badges")}
    rows: dict[str, Any] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or row[0].strip().startswith("#") or row[0].strip().lower() == "badge":
            continue
        if len(row) != 2:
            raise ConfigError(key, f"{path}:{number}: expected `badge,category`")
        rows[row[0]] = row[1].strip()
    return {**table, **_check_table(rows, f"{path}:line")}


class BadgeSource:
    """On its own: in use while a session is open, idle otherwise (a manual workbench).

    Combined with a machine source (``with_badge``) it only says who is there.
    """

    def __init__(self, config: AgentConfig, opts: Options | None = None) -> None:
        opts = opts or Options(config.options)
        opts.reject_unknown(OPTIONS)
        self.secret = config.pseudonym_secret
        self.table = load_badge_table(opts)
        self._decoder = FrameDecoder()
        self._debouncer = Debouncer(opts.number("debounce_s", 1.0, minimum=0.0))
        self._sessions = Sessions()
        self._lock = threading.Lock()
        self._events = EventLog()
        self.link = SerialLink(
            opts.string("port"),
            opts.integer("baudrate", 9600, minimum=300),
            on_data=self._on_data,
            on_tick=lambda now: None,
            on_connect=lambda now: None,
            on_disconnect=self._on_disconnect,
            reconnect_s=opts.number("reconnect_s", 1.0, minimum=0.05),
            tick_s=0.5,
            name="badge",
        )
        self.link.start()

    def identity(self, badge: str) -> tuple[str, str]:
        """(pseudonym, category) for a raw badge id; unlisted badges are ``unknown``."""
        return pseudonym(self.secret, badge), self.table.get(badge, "unknown")

    def session(self) -> tuple[str, str] | None:
        with self._lock:
            current = self._sessions.current
        return self.identity(current) if current is not None else None

    def end_session(self, reason: str, expected: tuple[str, str]) -> None:
        """Close the open session without a swipe (the machine stood idle too long), unless
        a swipe has replaced ``expected`` meanwhile."""
        with self._lock:
            badge = self._sessions.current
            if badge is None or self.identity(badge) != expected:
                return
            self._sessions.current = None
            self._events.add(stamped("session_end", {"reason": reason}, *expected))

    def metrics(self) -> dict[str, float]:
        with self._lock:
            d = self._decoder
            return {
                "badge_bad_checksum": float(d.bad_checksum),
                "badge_malformed": float(d.malformed),
                "badge_stray_bytes": float(d.stray_bytes),
                "badge_repeats": float(self._debouncer.repeats),
            }

    def poll(self) -> Reading:
        session = self.session()
        metrics = self.metrics()
        if not self.link.connected:
            return Reading(state=None, metrics=metrics)  # a swipe-out could not be seen
        if session is None:
            return Reading(state="idle", metrics=metrics)
        return Reading(state="in_use", user=session[0], category=session[1], metrics=metrics)

    def drain_events(self) -> list[SourceEvent]:
        return self._events.drain()

    def close(self) -> None:
        self.link.close()

    def _on_disconnect(self, now: float, reason: str) -> None:
        self._events.add(stamped("source_error", {"reason": "badge reader lost"}))

    def _on_data(self, data: bytes, now: float) -> None:
        with self._lock:
            for badge in self._decoder.feed(data):
                if not self._debouncer.swipe(badge, now):
                    continue
                user, category = self.identity(badge)
                changes = self._sessions.swipe(badge)
                self._events.add(stamped("badge", {"known": badge in self.table}, user, category))
                for change in changes:
                    user, category = self.identity(change.badge)
                    detail: dict[str, str | int | float | bool] = (
                        {"reason": "badge"} if change.action == "end" else {}
                    )
                    self._events.add(stamped(f"session_{change.action}", detail, user, category))

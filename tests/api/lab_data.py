"""A small, hand-checkable lab written straight into InfluxDB in the collector's schema.

Monday 2 March 2026 (no holiday), lab-cad open 09:00-13:00 Europe/Rome (08:00-12:00 UTC):
- pc-01: 09:00-11:00 in use by a school pupil with solidworks from 09:00 to 10:15, then
  11:00-12:00 idle with nobody logged in, then silent;
- pc-02: 10:00-10:30 in use by a company employee with solidworks, with session events;
- pc-03: registered, never reports;
- pc-99: not in the inventory, 09:00-09:10 in use by a student.
Expected figures are derived in the tests from these facts, not from the code under test.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

from labmeter.influx import InfluxV1, line

SITE = "its-prime"
DAY_UTC = datetime(2026, 3, 2, tzinfo=UTC)
T0 = int(DAY_UTC.timestamp() * 1000)  # 00:00 UTC = 01:00 in Rome
HOUR = 3600_000
MIN = 60_000
USER_A = "p_00000000000000aa"
USER_B = "p_00000000000000bb"
USER_C = "p_00000000000000cc"

INVENTORY = """version: 1
timezone: Europe/Rome
sites:
  - {id: its-prime, name: "ITS Prime"}
labs:
  - id: lab-cad
    site: its-prime
    hours:
      mon-fri: "09:00-13:00"
equipment:
  - {id: pc-01, site: its-prime, lab: lab-cad, kind: pc, fund: FESR, cup: "J19J21000120007",
     cost: 1800, purchased: 2025-02-10, collaudo: 2025-03-05}
  - {id: pc-02, site: its-prime, lab: lab-cad, kind: pc, fund: PNRR, cost: 2000}
  - {id: pc-03, site: its-prime, lab: lab-cad, kind: pc}
software:
  - {id: solidworks, site: its-prime, seats: 5}
"""


def _minute(t: int, device: str, *, in_use: float, idle: float, user: str | None,
            category: str, apps: dict[str, float], lab: str = "lab-cad") -> list[str]:  # fmt: skip
    tags = {"site": SITE, "lab": lab, "device": device, "kind": "pc", "category": category}
    fields: dict[str, float | int | str] = {
        "in_use_s": in_use, "idle_s": idle, "setup_s": 0.0, "paused_s": 0.0, "alarm_s": 0.0,
        "off_s": 0.0, "observed_s": in_use + idle, "interval_s": 60.0, "seq": t // MIN,
        "state": "in_use" if in_use else "idle",
    }  # fmt: skip
    if user:
        fields["user"] = user
    out = [line("sample", tags, fields, t)]
    base = {k: v for k, v in tags.items() if k != "kind"}
    for app, secs in apps.items():
        out.append(line("app_usage", base | {"app": app}, {"running_s": secs}, t))
    return out


def raw_lines() -> list[str]:
    out: list[str] = []
    for m in range(8 * 60, 10 * 60):  # 09:00-11:00 Rome = 08:00-10:00 UTC
        apps = {"solidworks": 60.0} if m < 9 * 60 + 15 else {}
        out += _minute(T0 + m * MIN, "pc-01", in_use=60.0, idle=0.0, user=USER_A,
                       category="school", apps=apps)  # fmt: skip
    for m in range(10 * 60, 11 * 60):
        out += _minute(T0 + m * MIN, "pc-01", in_use=0.0, idle=60.0, user=None,
                       category="unknown", apps={})  # fmt: skip
    for m in range(9 * 60, 9 * 60 + 30):
        out += _minute(T0 + m * MIN, "pc-02", in_use=60.0, idle=0.0, user=USER_B,
                       category="company", apps={"solidworks": 60.0})  # fmt: skip
    for m in range(8 * 60, 8 * 60 + 10):
        out += _minute(T0 + m * MIN, "pc-99", in_use=60.0, idle=0.0, user=USER_C,
                       category="its_student", apps={})  # fmt: skip
    return out


def status_lines() -> list[str]:
    return [
        line("status", {"site": SITE, "lab": "lab-cad", "device": d},
             {"online": True, "status": "online", "kind": "pc", "agent": "0.1.0"}, T0)
        for d in ("pc-01", "pc-02", "pc-99")
    ]  # fmt: skip


def event_lines() -> list[str]:
    """pc-02's agent also sends session events (10:00-10:30 Rome); pc-01's does not."""
    tags = {"site": SITE, "lab": "lab-cad", "device": "pc-02", "category": "company"}
    return [
        line("event", tags | {"type": kind}, {"seq": n, "user": USER_B}, T0 + 9 * HOUR + offset)
        for n, (kind, offset) in enumerate([("session_start", 0), ("session_end", 30 * MIN)])
    ]


def rollup_lines(raw: list[str], before_ms: int) -> tuple[list[str], list[str]]:
    """Hourly rollups (the brief's schema) of the raw points before ``before_ms``; the rest raw.

    Built by parsing our own line protocol, so the rollups hold the same seconds as the raw.
    """
    device: dict[tuple[int, tuple[str, ...]], dict[str, float]] = defaultdict(
        lambda: defaultdict(float)
    )
    apps: dict[tuple[int, tuple[str, ...]], float] = defaultdict(float)
    minutes: dict[tuple[str, str, int], set[str]] = defaultdict(set)
    kept: list[str] = []
    for text in raw:
        head, fields_text, ts_text = text.rsplit(" ", 2)
        ts = int(ts_text)
        if ts >= before_ms:
            kept.append(text)
            continue
        name, *tag_parts = head.split(",")
        tags = tuple(tag_parts)
        fields = dict(f.split("=", 1) for f in fields_text.split(","))
        hour = ts // HOUR * HOUR
        if name == "sample":
            acc = device[(hour, tags)]
            for key in ("in_use_s", "idle_s", "setup_s", "paused_s", "alarm_s", "off_s",
                        "observed_s"):  # fmt: skip
                acc[key] += float(fields[key])
            for key in ("in_use", "observed"):  # the first half hour apart
                acc[f"{key}_h1_s"] += float(fields[f"{key}_s"]) if ts - hour < HOUR // 2 else 0.0
            acc["samples"] += 1
        elif name == "app_usage":
            apps[(hour, tags)] += float(fields["running_s"])
            tag_map = dict(t.split("=") for t in tags)
            minutes[(tag_map["site"], tag_map["app"], ts // MIN)].add(tag_map["device"])
    out: list[str] = []
    for (hour, tags), acc in device.items():
        body = ",".join(f"{k}={v!r}" for k, v in acc.items() if k != "samples")
        out.append(
            f"rollup_device_hourly,{','.join(tags)} {body},samples={int(acc['samples'])}i {hour}"
        )
    for (hour, tags), secs in apps.items():
        out.append(f"rollup_app_hourly,{','.join(tags)} running_s={secs!r} {hour}")
    peaks: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for (site, app, minute), devices in minutes.items():
        peaks[(site, app, minute * MIN // HOUR * HOUR)].append(len(devices))
    for (site, app, hour), counts in peaks.items():
        out.append(
            f"rollup_app_concurrency_hourly,app={app},site={site} "
            f"peak_seats={max(counts)}i,seat_hours={sum(counts) / 60!r} {hour}"
        )
    return out, kept


def write(influx: InfluxV1, lines: list[str]) -> None:
    influx.write_lines(lines)


# Opening hours on half hours that cut through pc-01's use: 09:00-09:30 and 10:30-11:00
# Rome are in use after hours.
SPLIT_HOURS = "09:30-10:30, 11:30-13:00"


def inventory_file(tmp: Path, hours: str = "09:00-13:00", tz: str = "Europe/Rome") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "inventory.yaml"
    text = INVENTORY.replace('"09:00-13:00"', f'"{hours}"').replace("Europe/Rome", tz)
    path.write_text(text, encoding="utf-8")
    return path

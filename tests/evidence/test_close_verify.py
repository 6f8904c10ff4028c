"""Closing a period on real Mosquitto, collector and InfluxDB; verifying its package.

The lab's day is pinned (2026-03-02, a Monday in Europe/Rome) and the collector's clock is
shifted to two days later (``collector.clock_offset_s``), so nothing here reads the wall
clock's date: only the close's wait for the collector's heartbeat runs in real time.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from labmeter.archive.manifest import SEALS, Trust, check, generate_key
from labmeter.collector.service import Collector
from labmeter.config import ApiConfig, Config, EvidenceConfig
from labmeter.contract import Event, Sample, Status, Topic, encode
from labmeter.errors import EvidenceError
from labmeter.evidence.close import Closed, close_period
from labmeter.evidence.report import REPORT_JSON, build_report
from labmeter.evidence.verify import differences, verify
from labmeter.influx import InfluxV1
from labmeter.schema import DERIVED
from tests.helpers import publish_raw, wait_for

pytestmark = pytest.mark.e2e

ROME = ZoneInfo("Europe/Rome")
DAY = int(datetime(2026, 3, 2, tzinfo=ROME).timestamp() * 1000)
NEXT = int(datetime(2026, 3, 3, tzinfo=ROME).timestamp() * 1000)
NOW = NEXT + 86_400_000  # the collector's and the close's "now"
DEVICES = ("pc-01", "pc-02", "cnc-01")
USERS = [("p_" + f"{i:016x}", cat) for i, cat in enumerate(("its_student", "school", "company"))]


def _inventory(path: Path, site: str) -> Path:
    equipment = "\n".join(
        f"  - {{id: {d}, site: {site}, lab: lab-a, kind: {d[:-3]}, fund: FESR, cost: 1000}}"
        for d in DEVICES
    )
    path.write_text(
        f"""version: 1
timezone: Europe/Rome
sites: [{{id: {site}}}]
labs:
  - {{id: lab-a, site: {site}, hours: {{mon-fri: "08:00-18:00"}}}}
equipment:
{equipment}
software:
  - {{id: solidworks, site: {site}, seats: 2}}
"""
    )
    return path


def _messages(site: str, day_ms: int, seed: int) -> list[tuple[str, bytes]]:
    """Ten-minute samples from 07:00 to 19:00 local on every device, with users, apps and
    session events; values drawn from ``seed``."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes]] = []
    for n, device in enumerate(DEVICES):
        topic = Topic(site, "lab-a", device, "sample")
        out.append(
            (
                str(topic.with_channel("status")),
                encode(Status("online", day_ms + 6 * 3_600_000, device[:-3], 600.0, "0.9.1")),
            )
        )
        user, category = USERS[n]
        for k in range(72):
            end = day_ms + 7 * 3_600_000 + (k + 1) * 600_000
            in_use = round(rng.uniform(0, 600), 3)
            apps = {"solidworks": in_use} if device.startswith("pc") and k % 3 else {}
            sample = Sample(end, k, 600.0, {"in_use": in_use, "idle": 600.0 - in_use}, category,
                            user, device[:-3], "in_use", apps)  # fmt: skip
            out.append((str(topic), encode(sample)))
        for k, kind in ((0, "session_start"), (71, "session_end")):
            event = Event(day_ms + 7 * 3_600_000 + k * 600_000, k, kind, category, user)
            out.append((str(topic.with_channel("event")), encode(event)))
    return out


def closing_config(
    config: Config,
    inventory: Path,
    now_ms: int,
    archive: Path,
    max_age_days: float,
    key: Path | None,
) -> Config:
    """A config whose collector rolls up at once, reads closures often and keeps ``now_ms``
    as its clock, with the inventory and an archive folder to close periods into."""
    return dataclasses.replace(
        config,
        collector=dataclasses.replace(
            config.collector,
            inventory=str(inventory),
            rollup_grace_s=0.0,
            rollup_settle_s=0.2,
            periods_refresh_s=0.5,
            max_age_days=max_age_days,
            clock_offset_s=(now_ms - time.time() * 1000) / 1000,
        ),
        api=ApiConfig(inventory=str(inventory)),
        evidence=EvidenceConfig(archive_dir=str(archive), signing_key=str(key) if key else ""),
    )


@pytest.fixture
def lab(
    config: Config, influx: InfluxV1, uid: str, tmp_path: Path
) -> Iterator[tuple[Config, Collector]]:
    """A collector with rollups, the inventory and a clock at ``NOW``, holding the lab's day."""
    inventory = _inventory(tmp_path / "inventory.yaml", uid)
    key = tmp_path / "signing.pem"
    generate_key(key)
    cfg = closing_config(config, inventory, NOW, tmp_path / "archive", 3.0, key)
    collector = Collector(cfg, influx, influx)
    collector.start()
    assert collector.connected.wait(10)
    time.sleep(0.2)
    try:
        # Devices the inventory does not list: one seen during the day (the report lists it
        # as unregistered), one first seen after it (the day's report knows nothing of it).
        during = Status("online", DAY + 8 * 3_600_000, "pc", 600.0, "0.9.2")
        late = Status("online", NEXT + 3 * 3_600_000, "pc", 600.0, "0.9.2")
        messages = [
            *_messages(uid, DAY, seed=1),
            (str(Topic(uid, "lab-a", "pc-98", "status")), encode(during)),
            (str(Topic(uid, "lab-a", "pc-99", "status")), encode(late)),
        ]
        publish_raw(cfg.mqtt.host, cfg.mqtt.port, messages)
        wait_for(lambda: collector.metrics.acked == len(messages))
        assert collector.rollups is not None
        wait_for(lambda: not collector.rollups.pending(), timeout=60)  # type: ignore[union-attr]
        yield cfg, collector
    finally:
        collector.stop()


@pytest.fixture
def pinned(tmp_path: Path) -> Trust:
    """The trust anchor of ``lab``'s packages: the public key of its signing key."""
    return Trust(tmp_path / "signing.pub.pem")


@pytest.fixture
def closed(lab: tuple[Config, Collector]) -> Closed:
    cfg, _collector = lab
    return close_period(cfg, DAY, NEXT, now_ms=NOW)


def test_a_closed_period_refuses_new_and_old_data_and_its_report_stays(
    lab: tuple[Config, Collector], closed: Closed, influx: InfluxV1, uid: str
) -> None:
    cfg, collector = lab
    before = collector.metrics.acked
    again = [m for m in _messages(uid, DAY, seed=2) if "/status" not in m[0]]  # other values
    old = [m for m in _messages(uid, DAY - 4 * 86_400_000, seed=3) if "/sample" in m[0]]
    publish_raw(cfg.mqtt.host, cfg.mqtt.port, again + old)
    wait_for(lambda: collector.metrics.acked == before + len(again) + len(old))
    assert collector.dead_letters.counts == {"period_closed": len(again), "too_old": len(old)}
    records = [orjson.loads(r) for r in collector.dead_letters.path.read_text().splitlines()]
    assert {r["reason"] for r in records} == {"period_closed", "too_old"}
    archived = orjson.loads((closed.folder / REPORT_JSON).read_bytes())
    assert archived["equipment"] and archived["equipment"][0]["in_use_s"] > 0
    assert archived["evidence"]["unregistered"] == [
        {"site": uid, "lab": "lab-a", "device": "pc-98"}
    ]
    now = build_report(cfg.influx, Path(cfg.api.inventory), DAY, NEXT, "", NOW)
    from labmeter.api.report.formats import Format, produce
    from labmeter.api.report.texts import Lang

    assert differences(archived, orjson.loads(produce(now, Format.json, Lang.it))) == []
    assert closed.closure.state == "closed" and len(closed.manifest_sha256) == 64


def test_the_package_holds_every_format_the_raw_data_and_verifies(
    closed: Closed, pinned: Trust
) -> None:
    files = {p.relative_to(closed.folder).as_posix() for p in closed.folder.rglob("*")}
    reports = [f for f in files if f.startswith("report/")]
    assert len(reports) == 9  # JSON once, then CSV, XLSX, HTML, PDF in Italian and English
    assert {f"data/{m}.lp.gz" for m in ("sample", "app_usage", "event", "status")} <= files
    assert {"data/rollup_device_hourly.lp.gz", "data/rollup_device_daily.lp.gz"} <= files
    assert set(SEALS) <= files and "settings.json" in files and "inventory/inventory.yaml" in files
    problems, signer = verify(closed.folder, pinned)
    assert problems == []
    assert signer.startswith("ed25519:")


def test_one_flipped_byte_in_any_file_or_a_missing_file_names_it(
    closed: Closed, pinned: Trust, tmp_path: Path
) -> None:
    for path in sorted(p for p in closed.folder.rglob("*") if p.is_file()):
        rel = path.relative_to(closed.folder).as_posix()
        copy = tmp_path / "copy"
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(closed.folder, copy)
        target = copy / rel
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        problems, _ = check(copy, pinned)
        assert problems and any(rel in p for p in problems), (rel, problems)
        target.unlink()
        problems, _ = check(copy, pinned)
        assert problems and any(rel in p for p in problems), (rel, problems)


def test_a_period_closed_while_the_next_day_flows_in_verifies(
    lab: tuple[Config, Collector], uid: str, pinned: Trust
) -> None:
    """The ordinary close: yesterday, while today's samples keep arriving and the collector
    keeps rolling them up, and a device first seen today. The fresh package verifies; a
    flipped byte in its data fails naming the file."""
    cfg, collector = lab
    today = _messages(uid, NEXT, seed=5)
    newcomer = Topic(uid, "lab-a", "pc-97", "sample")
    today += [
        (str(newcomer), encode(Sample(NEXT + k * 600_000, k, 600.0, {"in_use": 600.0})))
        for k in range(40, 60)
    ]
    stop = threading.Event()
    sent = [0]

    def keep_publishing() -> None:
        for n in range(0, len(today), 20):
            if stop.is_set():
                return
            publish_raw(cfg.mqtt.host, cfg.mqtt.port, today[n : n + 20])
            sent[0] = n + len(today[n : n + 20])
            time.sleep(0.05)

    before = collector.metrics.acked
    flowing = threading.Thread(target=keep_publishing)
    flowing.start()
    try:
        wait_for(lambda: sent[0] >= 100)
        closed = close_period(cfg, DAY, NEXT, now_ms=NOW)
    finally:
        flowing.join()
    wait_for(lambda: collector.metrics.acked == before + len(today))
    assert collector.dead_letters.counts == {}
    assert collector.rollups is not None
    wait_for(lambda: not collector.rollups.pending(), timeout=60)  # type: ignore[union-attr]
    archived = orjson.loads((closed.folder / REPORT_JSON).read_bytes())
    assert archived["meta"]["rolled_until_ms"] <= NEXT
    assert {e["device"] for e in archived["evidence"]["unregistered"]} == {"pc-98"}
    problems, _ = verify(closed.folder, pinned)
    assert problems == []
    target = closed.folder / "data" / "sample.lp.gz"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    problems, _ = verify(closed.folder, pinned)
    assert problems and all("data/sample.lp.gz" in p for p in problems), problems


def test_restored_data_altered_names_the_figure(closed: Closed, pinned: Trust) -> None:
    def tamper(influx: InfluxV1) -> None:
        # pc-01's day one hour longer in use: the package holds the device rollups, and
        # verify sums the per-asset ones the report reads again from them.
        for measurement in ("rollup_device_daily",):
            rows = influx.query(f"SELECT * FROM {measurement} WHERE device = 'pc-01' GROUP BY *")
            series = rows[0]
            record = series.records()[0]
            tags = ",".join(f"{k}={v}" for k, v in sorted(series.tags.items()))
            influx.write_lines(
                [f"{measurement},{tags} in_use_s={float(record['in_use_s']) + 3600.0} "
                 f"{record['time']}"]
            )  # fmt: skip

    problems, _ = verify(closed.folder, pinned, on_restored=tamper)
    assert any("pc-01" in p and "in_use_s" in p for p in problems), problems


def test_the_package_leaves_out_the_rollups_that_only_sum_others(closed: Closed) -> None:
    archived = {p.name.removesuffix(".lp.gz") for p in (closed.folder / "data").glob("*.lp.gz")}
    assert "rollup_device_hourly" in archived
    assert not archived & {m.name for m in DERIVED}, archived


def test_clear_errors_before_anything_is_written(
    lab: tuple[Config, Collector], closed: Closed, tmp_path: Path
) -> None:
    cfg, _ = lab
    with pytest.raises(EvidenceError, match="overlaps the period closed"):
        close_period(cfg, DAY - 86_400_000, NEXT, now_ms=NOW)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    readonly = dataclasses.replace(cfg.evidence, archive_dir=str(locked / "sub"))
    if not _writable(locked):  # root writes anywhere: a file in the way then
        with pytest.raises(EvidenceError, match="not writable"):
            close_period(dataclasses.replace(cfg, evidence=readonly), NEXT, NOW, now_ms=NOW)
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    in_the_way = dataclasses.replace(cfg.evidence, archive_dir=str(blocked / "sub"))
    with pytest.raises(EvidenceError, match="not writable"):
        close_period(dataclasses.replace(cfg, evidence=in_the_way), NEXT, NOW, now_ms=NOW)
    no_key = dataclasses.replace(cfg.evidence, signing_key=str(tmp_path / "missing.pem"))
    with pytest.raises(EvidenceError, match="does not exist"):
        close_period(dataclasses.replace(cfg, evidence=no_key), NEXT, NOW, now_ms=NOW)
    from rich.console import Console

    from labmeter.collector.rebuild import rebuild

    with pytest.raises(EvidenceError, match="is closed"):
        rebuild(cfg, DAY, NEXT, Console(stderr=True))
    with pytest.raises(EvidenceError, match="not a local midnight"):
        close_period(cfg, NEXT + 3_600_000, NOW, now_ms=NOW)


def _writable(folder: Path) -> bool:
    try:
        (folder / "probe").write_text("")
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


def test_an_admin_closes_a_period_over_the_api(
    lab: tuple[Config, Collector], tmp_path: Path, pinned: Trust
) -> None:
    from labmeter.api.keys import Role
    from tests.api.client import make_api

    cfg, _ = lab
    api = make_api(cfg, tmp_path / "api", Path(cfg.api.inventory))
    period = {"start": str(DAY // 1000), "end": str(NEXT // 1000)}
    assert (
        api.client_as(Role.evaluator).post("/api/v1/admin/periods", json=period).status_code == 403
    )
    client = api.client_as(Role.admin)
    response = client.post("/api/v1/admin/periods", json=period)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["state"] == "closed" and len(body["manifest_sha256"]) == 64
    assert verify(Path(body["archive"]), pinned)[0] == []
    again = client.post("/api/v1/admin/periods", json=period)
    assert again.status_code == 409 and "overlaps" in again.json()["detail"]
    listed = client.get("/api/v1/admin/periods").json()
    assert [p["manifest_sha256"] for p in listed] == [body["manifest_sha256"]]


def test_the_cli_closes_lists_and_verifies(lab: tuple[Config, Collector], tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from labmeter.cli.main import app

    cfg, _ = lab
    runner = CliRunner()
    key = tmp_path / "cli-key.pem"
    assert runner.invoke(app, ["period", "keygen", str(key)]).exit_code == 0
    assert runner.invoke(app, ["period", "keygen", str(key)]).exit_code == 1  # never overwritten
    toml = tmp_path / "server.toml"
    toml.write_text(
        f'[influx]\nurl = "{cfg.influx.url}"\ndatabase = "{cfg.influx.database}"\n'
        f'[api]\ninventory = "{cfg.api.inventory}"\n'
        f'[evidence]\narchive_dir = "{tmp_path / "cli-archive"}"\nsigning_key = "{key}"\n'
    )
    start, end = "2026-03-02T00:00:00+01:00", "2026-03-03T00:00:00+01:00"
    closed = runner.invoke(
        app, ["period", "close", "--start", start, "--end", end, "-c", str(toml)]
    )
    assert closed.exit_code == 0, closed.output
    digest = closed.stdout.strip().splitlines()[-1]
    listed = runner.invoke(app, ["period", "list", "-c", str(toml)])
    assert digest in listed.stdout and "(closed)" in listed.stdout
    package = next((tmp_path / "cli-archive").glob("period-*"))
    public = key.with_suffix(".pub.pem")
    ok = runner.invoke(app, ["period", "verify", str(package), "--public-key", str(public)])
    assert ok.exit_code == 0 and "OK" in ok.output, ok.output
    other = tmp_path / "other.pem"
    generate_key(other)
    wrong = runner.invoke(
        app, ["period", "verify", str(package), "--public-key", str(other.with_suffix(".pub.pem"))]
    )
    assert wrong.exit_code == 1 and "public_key.pem" in " ".join(wrong.output.split())


def test_reports_carry_their_fingerprint_the_closure_and_the_refusals(
    lab: tuple[Config, Collector], closed: Closed, influx: InfluxV1, uid: str, tmp_path: Path
) -> None:
    import hashlib
    import re
    import subprocess

    from labmeter.api.report.formats import Format, produce
    from labmeter.api.report.texts import Lang

    cfg, collector = lab
    inventory = Path(cfg.api.inventory)
    archived = orjson.loads((closed.folder / REPORT_JSON).read_bytes())
    fingerprint = archived["evidence"]["fingerprint"]
    assert fingerprint["inventory_sha256"] == hashlib.sha256(inventory.read_bytes()).hexdigest()
    assert fingerprint["closed"]["state"] == "closing"  # the package holds its own report
    assert fingerprint["settings"]["underused_below"] == 0.2
    now = build_report(cfg.influx, inventory, DAY, NEXT, "", NOW)
    assert now["evidence"]["fingerprint"]["closed"] == {
        "start_ms": DAY, "end_ms": NEXT, "site": "", "state": "closed",
        "manifest_sha256": closed.manifest_sha256,
    }  # fmt: skip
    # Refused while a later report's window runs: that report says so.
    before = collector.metrics.acked
    again = [m for m in _messages(uid, DAY, seed=4) if "/sample" in m[0]][:7]
    received_from = int(time.time() * 1000) - 1000
    publish_raw(cfg.mqtt.host, cfg.mqtt.port, again)
    wait_for(lambda: collector.metrics.acked == before + 7)
    later = build_report(
        cfg.influx, inventory, received_from, int(time.time() * 1000) + 60_000, "", NOW
    )
    assert later["evidence"]["refused"] == {"period_closed": 7}
    assert later["evidence"]["fingerprint"]["closed"] is None
    pdf = tmp_path / "later.pdf"
    pdf.write_bytes(produce(later, Format.pdf, Lang.it))
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True).stdout
    flat = " ".join(text.split())
    assert "7 in un periodo già chiuso" in flat
    block = "Responsabile del laboratorio Nome e cognome Data Firma"
    assert block in flat and flat.index(block) > flat.index("9. Conclusioni")
    after = flat[flat.index(block) + len(block) :].strip()
    assert re.fullmatch(r"\d+/\d+", after), after  # only the last page's number follows
    html = produce(now, Format.html, Lang.en).decode()
    assert closed.manifest_sha256 in html and fingerprint["inventory_sha256"] in html


def test_a_period_closed_with_bookings_holds_them_and_verifies_from_its_copies(
    lab: tuple[Config, Collector], uid: str, tmp_path: Path, pinned: Trust
) -> None:
    """The package holds the calendars the report reconciled with; a later edit of a live
    calendar leaves verify passing, a flipped byte in the archived copy names it."""
    cfg, _ = lab
    live = tmp_path / "calendars"
    live.mkdir()
    rows = live / "lab-a.csv"
    rows.write_text(
        "id,site,lab,devices,start,end,organisation,category,activity,commercial,reference\n"
        f"b1,{uid},lab-a,pc-01,2026-03-02 08:00,2026-03-02 12:00,Liceo Galilei,school,CAD,no,\n"
        f"b2,{uid},lab-a,cnc-01,2026-03-02 13:00,2026-03-02 15:00,Meccanica Srl,company,"
        "prototipo,sì,CONV-7\n",
        encoding="utf-8",
    )
    sources = live / "sources.yaml"
    sources.write_text("version: 1\ncalendars:\n  - {file: lab-a.csv}\n", encoding="utf-8")
    cfg = dataclasses.replace(cfg, bookings=dataclasses.replace(cfg.bookings, sources=str(sources)))
    closed = close_period(cfg, DAY, NEXT, now_ms=NOW)

    settings = orjson.loads((closed.folder / "settings.json").read_bytes())
    copied = [c["file"] for c in settings["bookings"]["calendars"]]
    assert copied == ["bookings/00-lab-a.csv"]
    assert (closed.folder / copied[0]).read_bytes() == rows.read_bytes()
    manifest = orjson.loads((closed.folder / "manifest.json").read_bytes())
    listed = {f["path"]: f["sha256"] for f in manifest["files"]}
    assert {"bookings/00-lab-a.csv", "bookings/sources.yaml"} <= set(listed)
    report = orjson.loads((closed.folder / REPORT_JSON).read_bytes())
    assert [b["uid"] for b in report["bookings"]["bookings"]] == ["b1", "b2"]

    # The live calendar is edited after the close: the package still verifies.
    rows.write_text(rows.read_text(encoding="utf-8").replace("Liceo Galilei", "Altro"))
    assert verify(closed.folder, pinned)[0] == []

    data = bytearray((closed.folder / copied[0]).read_bytes())
    data[len(data) // 2] ^= 0x01
    (closed.folder / copied[0]).write_bytes(bytes(data))
    problems, _ = verify(closed.folder, pinned)
    assert problems and any("bookings/00-lab-a.csv" in p for p in problems), problems


def test_a_real_package_edited_and_resealed_or_resigned_fails_verify(
    closed: Closed, pinned: Trust, tmp_path: Path
) -> None:
    """The PDF is what an evaluator reads and verify compares no figure of it: edited, then
    sealed again (unsigned, or by another key), the package used to pass a bare verify."""
    from labmeter.archive.manifest import PUBLIC_KEY, SIGNATURE, load_private_key, seal

    meta = {k: v for k, v in orjson.loads((closed.folder / "manifest.json").read_bytes()).items()}
    meta.pop("files")
    meta.pop("format")
    pdf = next((closed.folder / "report").glob("*.pdf"))
    pdf.write_bytes(pdf.read_bytes().replace(b"%%EOF", b"% figures changed\n%%EOF"))
    for seal_file in (SIGNATURE, PUBLIC_KEY):
        (closed.folder / seal_file).unlink()
    seal(closed.folder, meta, None)
    problems, _ = verify(closed.folder)
    assert problems and "unsigned" in problems[0], problems
    assert verify(closed.folder, pinned)[0]
    cited = Trust(allow_unsigned=True, manifest_sha256=closed.manifest_sha256)
    assert any(closed.manifest_sha256 in p for p in verify(closed.folder, cited)[0])
    other = tmp_path / "other.pem"
    generate_key(other)
    seal(closed.folder, meta, load_private_key(str(other)))
    problems, _ = verify(closed.folder)
    assert problems and "no trust anchor" in problems[0], problems
    problems, _ = verify(closed.folder, pinned)
    assert any("not the pinned key" in p for p in problems), problems


def test_a_closure_rewritten_in_the_database_is_named_by_list_and_verify(
    lab: tuple[Config, Collector], closed: Closed, pinned: Trust, influx: InfluxV1
) -> None:
    """Whoever holds InfluxDB's credentials moves a closed period's end: the archive
    folder's record of the close and the package tell."""
    from labmeter.archive.ledger import RECORD
    from labmeter.evidence.close import list_closures

    cfg, _ = lab
    closures, differ = list_closures(cfg)
    assert [c.manifest_sha256 for c in closures] == [closed.manifest_sha256] and differ == {}
    assert verify(closed.folder, pinned, config=cfg)[0] == []
    shorter = dataclasses.replace(closed.closure, end_ms=NEXT - 3_600_000)
    influx.write_lines([shorter.to_line()])
    _, differ = list_closures(cfg)
    assert closed.closure.id in differ and "the archive records" in differ[closed.closure.id]
    problems, _ = verify(closed.folder, pinned, config=cfg)
    assert any("InfluxDB's closure" in p for p in problems), problems
    # And a record rewritten with it (whoever holds both) still differs from the package.
    record = Path(cfg.evidence.archive_dir) / RECORD
    record.write_bytes(record.read_bytes().replace(closed.manifest_sha256.encode(), b"0" * 64))
    influx.write_lines([dataclasses.replace(closed.closure, manifest_sha256="0" * 64).to_line()])
    problems, _ = verify(closed.folder, pinned, config=cfg)
    assert any(RECORD in p for p in problems) and any("InfluxDB" in p for p in problems)


def _close_at_once(configs: list[Config], nows: list[int]) -> list[Closed | Exception]:
    """``close_period`` of the lab's day from each config at the same moment."""
    results: list[Closed | Exception] = []
    start = threading.Barrier(len(configs))

    def run(c: Config, now: int) -> None:
        start.wait()
        try:
            results.append(close_period(c, DAY, NEXT, now_ms=now))
        except EvidenceError as exc:
            results.append(exc)

    threads = [threading.Thread(target=run, args=a) for a in zip(configs, nows, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return results


def test_two_concurrent_closes_leave_one_package_and_one_closure(
    lab: tuple[Config, Collector], pinned: Trust, tmp_path: Path
) -> None:
    """Two closes of one day at once on one archive folder (the CLI and the API's admin
    route): one package is written and verifies, the other close fails saying why, and the
    database holds one closed closure. A close from another folder afterwards is refused."""
    from labmeter.evidence.close import list_closures

    cfg, _ = lab
    results = _close_at_once([cfg, cfg], [NOW, NOW])
    done = [r for r in results if isinstance(r, Closed)]
    failed = [r for r in results if isinstance(r, EvidenceError)]
    assert len(done) == 1 and len(failed) == 1, results
    assert "another close is running" in str(failed[0])
    assert verify(done[0].folder, pinned)[0] == []
    elsewhere = dataclasses.replace(
        cfg, evidence=dataclasses.replace(cfg.evidence, archive_dir=str(tmp_path / "archive-2"))
    )
    with pytest.raises(EvidenceError, match="overlaps the period closed"):
        close_period(elsewhere, DAY, NEXT, now_ms=NOW)
    packages = [p for a in ("archive", "archive-2") for p in (tmp_path / a).glob("period-*")]
    assert packages == [done[0].folder]
    closures, _ = list_closures(cfg)
    assert [(c.state, c.manifest_sha256) for c in closures] == [("closed", done[0].manifest_sha256)]


def test_two_closes_from_two_archive_folders_at_once_leave_one_package(
    lab: tuple[Config, Collector], pinned: Trust, tmp_path: Path
) -> None:
    """No shared lock file between two hosts: the closure is the lock. One close goes on,
    the other withdraws (or gives way) naming the other, and only one package is sealed."""
    from labmeter.evidence.close import list_closures
    from labmeter.periods import closures_query, parse_closures

    cfg, _ = lab
    configs = [
        dataclasses.replace(
            cfg, evidence=dataclasses.replace(cfg.evidence, archive_dir=str(tmp_path / name))
        )
        for name in ("host-a", "host-b")
    ]
    results = _close_at_once(configs, [NOW, NOW + 1])
    done = [r for r in results if isinstance(r, Closed)]
    assert len(done) == 1 and len(results) == 2, results
    assert "another close" in str(next(r for r in results if not isinstance(r, Closed)))
    packages = [p for h in ("host-a", "host-b") for p in (tmp_path / h).glob("period-*")]
    assert packages == [done[0].folder]
    assert verify(done[0].folder, pinned)[0] == []
    influx = InfluxV1(cfg.influx)
    try:
        every = parse_closures(influx.query(closures_query()), withdrawn=True)
    finally:
        influx.close()
    closed = [c for c in every if c.state == "closed"]
    assert [c.manifest_sha256 for c in closed] == [done[0].manifest_sha256]
    assert all(c.state in ("closed", "withdrawn") for c in every), every
    assert [c.state for c in list_closures(cfg)[0]] == ["closed"]


def test_the_inventory_is_read_once_for_the_report_the_copy_and_its_hash(
    lab: tuple[Config, Collector], pinned: Trust
) -> None:
    """The inventory edited while the close runs (after the report is built, before the
    package is sealed): the report, the package's copy and the recorded hash are all of the
    inventory as it was when the close began."""
    import hashlib

    cfg, _ = lab
    inventory = Path(cfg.api.inventory)
    original = inventory.read_bytes()
    edited = original.replace(b"cost: 1000", b"cost: 9999")
    assert edited != original

    def progress(stage: str, _done: float | None, _total: float | None) -> None:
        if stage.startswith("raw data") and inventory.read_bytes() == original:
            inventory.write_bytes(edited)

    closed = close_period(cfg, DAY, NEXT, progress=progress, now_ms=NOW)
    assert inventory.read_bytes() == edited  # it was edited during the close
    settings = orjson.loads((closed.folder / "settings.json").read_bytes())
    report = orjson.loads((closed.folder / REPORT_JSON).read_bytes())
    digest = hashlib.sha256(original).hexdigest()
    assert (closed.folder / settings["inventory"]["file"]).read_bytes() == original
    assert settings["inventory"]["sha256"] == digest
    assert report["evidence"]["fingerprint"]["inventory_sha256"] == digest
    assert verify(closed.folder, pinned)[0] == []


def test_a_closed_periods_report_comes_from_its_package_and_a_changed_byte_is_not_served(
    lab: tuple[Config, Collector], closed: Closed, tmp_path: Path
) -> None:
    """Exactly the closed period, in any format: the sealed report (not built again: its
    generation time is the close's), with the closure as a build says it and the manifest's
    hash in a header; utilisation per device and per lab too. A package whose report.json
    changed is not served: the report is built from the rollups."""
    from labmeter.api.closed import SEALED_HEADER
    from labmeter.api.keys import Role
    from tests.api.client import make_api

    cfg, _ = lab
    archived = orjson.loads((closed.folder / REPORT_JSON).read_bytes())
    client = make_api(cfg, tmp_path / "api", Path(cfg.api.inventory)).client_as(Role.evaluator)
    period = {"start": DAY // 1000, "end": NEXT // 1000}
    answer = client.get("/api/v1/report", params={**period, "format": "json"})
    assert answer.status_code == 200 and answer.headers[SEALED_HEADER] == closed.manifest_sha256
    body = answer.json()
    assert body["meta"]["generated_ms"] == archived["meta"]["generated_ms"]
    assert body["evidence"]["fingerprint"]["closed"] == {
        "start_ms": DAY, "end_ms": NEXT, "site": "", "state": "closed",
        "manifest_sha256": closed.manifest_sha256,
    }  # fmt: skip
    assert differences(archived, body) == []
    for fmt in ("csv", "xlsx", "html", "pdf"):
        rendered = client.get("/api/v1/report", params={**period, "format": fmt})
        assert rendered.status_code == 200 and rendered.headers[SEALED_HEADER]
    rows = client.get("/api/v1/utilisation", params=period)
    assert rows.headers[SEALED_HEADER] == closed.manifest_sha256
    assert [(r["device"], r["in_use_s"]) for r in rows.json()] == [
        (e["device"], e["in_use_s"]) for e in archived["equipment"]
    ]
    labs = client.get("/api/v1/utilisation", params={**period, "group_by": "lab"})
    assert (
        labs.headers[SEALED_HEADER]
        and labs.json()[0]["in_use_s"] == archived["labs"][0]["in_use_s"]
    )
    weekly = client.get("/api/v1/utilisation", params={**period, "every": "week"})
    assert weekly.status_code == 200 and SEALED_HEADER not in weekly.headers  # built
    later = client.get("/api/v1/report", params={"start": period["start"], "end": NEXT // 1000 + 1})
    assert SEALED_HEADER not in later.headers  # not exactly the period: built

    target = closed.folder / REPORT_JSON
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    fresh = make_api(cfg, tmp_path / "api2", Path(cfg.api.inventory)).client_as(Role.evaluator)
    built = fresh.get("/api/v1/report", params={**period, "format": "json"})
    assert built.status_code == 200 and SEALED_HEADER not in built.headers
    assert built.json()["meta"]["generated_ms"] != archived["meta"]["generated_ms"]
    assert differences(archived, built.json()) == []  # the same figures, from the rollups

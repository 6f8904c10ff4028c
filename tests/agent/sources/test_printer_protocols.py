"""The printers' own states mapped to the contract, the job history as fill spans, and the
sources' honest edges (a printer that reboots mid-job, backoff, silence, bad settings)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from labmeter.agent.backfill import FILLED_METRIC, Filled, Outage, fill_samples
from labmeter.agent.sources.bambu import protocol as bambu
from labmeter.agent.sources.moonraker import protocol as moonraker
from labmeter.agent.sources.moonraker.source import MoonrakerSource
from labmeter.agent.sources.octoprint import protocol as octoprint
from labmeter.agent.sources.octoprint.source import OctoPrintSource
from labmeter.agent.sources.printer import Backoff
from labmeter.agent.sources.prusalink import protocol as prusalink
from labmeter.agent.sources.prusalink.source import PrusaLinkSource
from labmeter.config import AgentConfig
from labmeter.contract import SUBSTATE_PATTERN
from labmeter.errors import ConfigError
from labmeter.simulators.devices.moonraker import MoonrakerPrinter
from labmeter.simulators.devices.printer import PrinterModel
from tests.agent.sources.printer_hour import Clock
from tests.helpers import wait_for

T = 1_764_000_000_000


def cfg(**options: Any) -> AgentConfig:
    return AgentConfig(pseudonym_secret="p" * 16, options=options)


@pytest.mark.parametrize(
    "word,state",
    [("PRINTING", "in_use"), ("PAUSED", "paused"), ("BUSY", "setup"), ("ATTENTION", "alarm"),
     ("ERROR", "alarm"), ("IDLE", "idle"), ("READY", "idle"), ("FINISHED", "idle"),
     ("STOPPED", "idle"), ("SOMETHING_NEW", None)],
)  # fmt: skip
def test_prusalink_states(word: str, state: str | None) -> None:
    snap = prusalink.snapshot({"printer": {"state": word, "target_nozzle": 0.0}}, None)
    assert (snap.state, snap.substate) == (state, word)


def test_prusalink_preheat_is_setup_and_a_job_is_named_by_its_file() -> None:
    idle = {"printer": {"state": "IDLE", "target_nozzle": 215.0, "target_bed": 60.0}}
    assert prusalink.snapshot(idle, None).state == "setup"
    printing = {"printer": {"state": "PRINTING"}, "job": {"id": 7, "progress": 12.0}}
    snap = prusalink.snapshot(printing, "part.bgcode")
    assert (snap.job, snap.metrics["progress_pct"]) == ("part.bgcode", 12.0)
    done = {"printer": {"state": "FINISHED"}, "job": {"id": 7}}  # the finished job keeps its id
    assert prusalink.snapshot(done, "part.bgcode").job is None


@pytest.mark.parametrize(
    "text,state",
    [("Printing", "in_use"), ("Printing from SD", "in_use"), ("Paused", "paused"),
     ("Pausing", "paused"), ("Starting", "setup"), ("Operational", "idle"),
     ("Offline", "off"), ("Offline after error", "alarm"), ("Error: Thermal runaway", "alarm"),
     ("Opening serial connection", None), ("Detecting baudrate", None)],
)  # fmt: skip
def test_octoprint_states(text: str, state: str | None) -> None:
    snap = octoprint.snapshot({"state": text, "job": {"file": {"name": "x.gcode"}}}, None)
    assert snap.state == state
    assert "Thermal" not in snap.substate  # an error's message is never kept


def test_octoprint_preheat_is_setup_and_a_finished_file_is_no_job() -> None:
    printer = {"temperature": {"tool0": {"actual": 180.0, "target": 210.0}, "bed": {}}}
    job = {"state": "Operational", "job": {"file": {"name": "last.gcode"}}}
    snap = octoprint.snapshot(job, printer)
    assert (snap.state, snap.job, snap.metrics["hotend_target"]) == ("setup", None, 210.0)


def ready(ps: dict[str, Any], idle: str = "Ready", target: float = 0.0) -> moonraker.Snapshot:
    return moonraker.objects({"print_stats": ps, "idle_timeout": {"state": idle},
                              "extruder": {"target": target}})  # fmt: skip


def test_moonraker_states() -> None:
    assert moonraker.klippy({"state": "shutdown"}).state == "alarm"  # type: ignore[union-attr]
    off = moonraker.klippy({"state": "error", "state_message": "mcu 'mcu': Unable to connect"})
    assert off is not None and (off.state, off.substate) == ("off", "klippy/error/mcu_absent")
    assert moonraker.klippy({"state": "error", "state_message": "Config error"}).state == "alarm"  # type: ignore[union-attr]
    assert moonraker.klippy({"state": "startup"}).state is None  # type: ignore[union-attr]
    assert moonraker.klippy({"state": "ready"}) is None
    job = {"state": "printing", "filename": "a.gcode"}
    assert ready({**job, "filament_used": 0.0}).state == "setup"  # before the first layer
    assert ready({**job, "filament_used": 12.5}).state == "in_use"
    assert ready({"state": "paused", "filename": "a.gcode"}).state == "paused"
    assert ready({"state": "standby"}).state == "idle"
    assert ready({"state": "complete"}, idle="Printing").state == "setup"  # a calibration macro
    assert ready({"state": "cancelled"}, target=200.0).state == "setup"  # preheated
    assert ready({"state": "error"}).state == "idle"  # a job failed; Klipper itself is ready


@pytest.mark.parametrize(
    "report,state",
    [({"gcode_state": "RUNNING", "stg_cur": 0}, "in_use"),
     ({"gcode_state": "RUNNING", "stg_cur": 2}, "setup"),
     ({"gcode_state": "RUNNING", "stg_cur": 1}, "setup"),
     ({"gcode_state": "PREPARE"}, "setup"),
     ({"gcode_state": "PAUSE", "stg_cur": 16, "print_error": 0}, "paused"),
     ({"gcode_state": "PAUSE", "stg_cur": 6, "print_error": 117473297}, "alarm"),
     ({"gcode_state": "FINISH"}, "idle"), ({"gcode_state": "FAILED"}, "idle"),
     ({"gcode_state": "IDLE", "bed_target_temper": 60}, "setup"),
     ({"gcode_state": "SOMETHING"}, None)],
)  # fmt: skip
def test_bambu_states(report: dict[str, Any], state: str | None) -> None:
    assert bambu.snapshot(report).state == state


def test_bambu_merges_deltas_into_one_picture() -> None:
    picture: dict[str, Any] = {}
    full = {"gcode_state": "RUNNING", "stg_cur": 0, "subtask_name": "x", "mc_percent": 5}
    assert bambu.merge(picture, {"print": {"command": "push_status", **full}})
    assert bambu.merge(picture, {"print": {"command": "push_status", "mc_percent": 6}})
    assert not bambu.merge(picture, {"info": {"command": "get_version"}})
    snap = bambu.snapshot(picture)
    assert (snap.state, snap.job, snap.metrics["progress_pct"]) == ("in_use", "x", 6.0)


def test_substates_fit_the_contract() -> None:
    import re

    for word in ("klippy/error/mcu_absent", "Offline after error", "PAUSE/stg6", "IDLE/stg-1"):
        assert re.fullmatch(SUBSTATE_PATTERN, word)
    assert re.fullmatch(SUBSTATE_PATTERN, moonraker.substate("weird\nstate$%"))


# --- the job history ---------------------------------------------------------------------------


def job(start_s: float, end_s: float | None, printed: float, status: str) -> dict[str, Any]:
    end = None if end_s is None else T / 1000 + end_s
    return {"start_time": T / 1000 + start_s, "end_time": end, "print_duration": printed,
            "status": status, "filename": "f.gcode"}  # fmt: skip


def test_history_fill_is_a_lower_bound_placed_at_each_jobs_end() -> None:
    outage = Outage(T + 1000_000, T + 5000_000)  # 1000 s .. 5000 s
    jobs = [
        job(1500, 2500, 900, "completed"),  # wholly inside: its printed seconds
        job(500, 1800, 1000, "completed"),  # began before: minus its 500 s before the outage
        job(100, 600, 400, "completed"),  # ended before the outage: nothing
        job(4500, None, 0, "in_progress"),  # running now: from the live print_stats
    ]
    live = {"state": "printing", "filename": "f.gcode", "print_duration": 480.0}
    spans = [s for s, _ in moonraker.history_fill(jobs, live, outage, T + 5010_000)]
    assert [(s.start_ms - T, s.end_ms - T, s.state) for s in spans] == [
        (1600_000, 2500_000, "in_use"),
        (1300_000, 1800_000, "in_use"),
        (4530_000, 5010_000, "in_use"),  # placed at now; the part after the outage is live
    ]
    paused = {"state": "paused", "filename": "f.gcode", "print_duration": 480.0}
    assert len(moonraker.history_fill(jobs, paused, outage, T + 5010_000)) == 2


def test_fill_samples_are_cut_like_live_ones_and_marked() -> None:
    outage = Outage(T + 30_000, T + 300_000)
    spans = [Filled(T + 90_000, T + 200_000, "in_use", "history/completed"),
             Filled(T + 150_000, T + 400_000, "in_use")]  # fmt: skip
    samples = fill_samples(spans, outage, 60, "printer3d", seq=41)
    assert [s.seq for s in samples] == [41, 42, 43, 44]
    assert [(s.start_ms - T, s.ts - T) for s in samples] == [
        (60_000, 120_000), (120_000, 180_000), (180_000, 240_000), (240_000, 300_000)]  # fmt: skip
    assert sum(s.state_s["in_use"] for s in samples) == 210.0  # overlap counted once
    assert all(s.metrics[FILLED_METRIC] == s.observed_s for s in samples)


# --- the sources' edges --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make,options,key",
    [(MoonrakerSource, {"url": "http://user:pw@printer.lab"}, "agent.options.url"),
     (OctoPrintSource, {"url": "http://printer.lab"}, "agent.options.api_key"),
     (PrusaLinkSource, {"url": "http://printer.lab"}, "agent.options.password"),
     (MoonrakerSource, {"url": "printer.lab"}, "agent.options.url"),
     (MoonrakerSource, {"url": "http://x", "job_names": "raw"}, "agent.options.job_names"),
     (OctoPrintSource, {"url": "http://x", "api_key": "k", "apikey": "k"}, "agent.options.apikey")],
)  # fmt: skip
def test_config_errors_name_the_key(make: Any, options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        make(cfg(**options), background=False)
    assert err.value.key == key


def test_secrets_are_never_echoed_in_config_errors() -> None:
    from labmeter.agent.sources.bambu.source import BambuSource

    with pytest.raises(ConfigError) as err:
        OctoPrintSource(cfg(url="http://x", api_key=["S3CR3T"]), background=False)
    assert "S3CR3T" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        MoonrakerSource(cfg(url="hxxp://user:S3CR3T@host"), background=False)
    assert "S3CR3T" not in str(err.value)
    # An access code written as a number is taken as its digits.
    source = BambuSource(
        cfg(host="127.0.0.1", port=1, serial="X", access_code=12345678), background=False
    )
    source.close()


def test_backoff_doubles_up_to_its_ceiling() -> None:
    backoff = Backoff(2.0, 30.0, seed=1)
    delays = [backoff.next_s() for _ in range(6)]
    assert all(lo <= d <= lo * 1.1 for d, lo in zip(delays, [2, 4, 8, 16, 30, 30], strict=True))
    backoff.reset()
    assert backoff.next_s() < 2.2


def test_a_printer_that_reboots_mid_job_is_counted_from_what_it_reports_after() -> None:
    clock = Clock(T)
    printer = MoonrakerPrinter(PrinterModel(clock=clock)).start()
    source = MoonrakerSource(cfg(url=printer.url), clock=clock, background=False)
    try:
        printer.apply("printing")
        clock.ms += 1000
        source.poller.step()
        assert source.poll().state == "in_use"
        printer.down()  # it reboots: no answer, and its job is lost
        clock.ms += 2000
        source.poller.step()
        reading = source.poll()
        assert reading.state is None and reading.since_s == 2.0  # from its last answer on
        printer.model.job = None
        printer.model.set("idle")
        printer.up()
        clock.ms += 5000
        source.poller.step()
        assert source.poll().state == "idle"
        events = [(e.type, e.data.get("reason")) for e in source.drain_events()]
        assert events == [("job_start", None), ("source_error", "unreachable"),
                          ("job_end", "standby")]  # fmt: skip
    finally:
        source.close()
        printer.stop()


def test_the_background_thread_backs_off_and_comes_back(tmp_path: Path) -> None:
    printer = MoonrakerPrinter(PrinterModel()).start()
    source = MoonrakerSource(cfg(url=printer.url, query_s=0.1, timeout_s=0.5, reconnect_max_s=0.8))
    try:
        wait_for(lambda: source.poll().state == "idle", 10)
        printer.down()
        wait_for(lambda: source.poll().state is None, 10)
        failures = source.watch.counters["failures"]
        time.sleep(2.0)
        # Backing off: 0.1, 0.2, 0.4, 0.8, 0.8 s: a handful of tries in 2 s, not twenty.
        assert 2 <= source.watch.counters["failures"] - failures <= 6
        printer.up()
        wait_for(lambda: source.poll().state == "idle", 10)
    finally:
        source.close()
        printer.stop()


def test_a_printer_emulator_runs_standalone_for_manual_trials() -> None:
    import os
    import signal
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "labmeter.simulators.devices", "moonraker", "0", "--speed", "10"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        words = proc.stdout.readline().split()  # "moonraker on http://127.0.0.1:PORT (key K)"
        url, key = words[2], words[-1].rstrip(")")
        source = MoonrakerSource(cfg(url=url, api_key=key, query_s=0.2))
        try:
            wait_for(lambda: source.poll().state == "idle", timeout=10)
            wait_for(lambda: source.poll().state == "setup", timeout=10)  # heating at 2 s
        finally:
            source.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


def test_moonraker_fills_a_job_that_ended_in_the_outage_and_says_so() -> None:
    clock = Clock(T)
    printer = MoonrakerPrinter(PrinterModel(clock=clock)).start()
    try:
        for at_s, phase in ((100, "heating"), (160, "printing"), (300, "paused"),
                            (330, "printing"), (400, "idle")):  # fmt: skip
            clock.ms = T + at_s * 1000
            printer.apply(phase)
        clock.ms = T + 500_000
        source = MoonrakerSource(cfg(url=printer.url), clock=clock, background=False)
        source.fill_outage(Outage(T + 50_000, T + 490_000))
        source.poller.step()
        found = source.drain_filled()
        events = source.drain_events()
        source.close()
    finally:
        printer.stop()
    assert found is not None
    outage, spans = found
    assert outage == Outage(T + 50_000, T + 490_000)
    # Printed 160-300 and 330-400 s: 210 s, placed at the job's end.
    assert [(s.start_ms - T, s.end_ms - T, s.substate) for s in spans] == [
        (190_000, 400_000, "history/completed")
    ]
    ends = [e for e in events if e.type == "job_end"]
    assert len(ends) == 1 and ends[0].ts_ms == T + 400_000
    assert ends[0].data["filled"] is True and ends[0].data["print_s"] == 210.0
    assert str(ends[0].data["job"]).startswith("j_")
    assert source.drain_filled() is None  # once

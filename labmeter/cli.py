"""``labmeter``: one CLI, a subcommand per role. It parses and delegates; nothing else."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from labmeter import config as config_mod
from labmeter.deploy_cli import deploy_app, grafana_app
from labmeter.errors import ConfigError, LabmeterError
from labmeter.period_cli import period_app

app = typer.Typer(help="labmeter: measured usage of lab equipment.", no_args_is_help=True)
influx_app = typer.Typer(help="InfluxDB set-up.", no_args_is_help=True)
app.add_typer(influx_app, name="influx")
app.add_typer(deploy_app, name="deploy")
app.add_typer(grafana_app, name="grafana")
app.add_typer(period_app, name="period")
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML config file", envvar="LABMETER_CONFIG")
]
MqttOpt = Annotated[str | None, typer.Option(help="mqtt://host:port or mqtts://host:port")]
InfluxOpt = Annotated[
    str | None, typer.Option(help="InfluxDB base URL, e.g. http://127.0.0.1:8086")
]


def _load(path: Path | None, **overrides: Any) -> config_mod.Config:
    try:
        return config_mod.load(path, {k.replace("__", "."): v for k, v in overrides.items()})
    except LabmeterError as exc:
        err.print(f"[red]config error:[/] {exc}")
        raise typer.Exit(2) from exc


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )


agent_app = typer.Typer(help="The edge agent: run it, or check what it detects.")
app.add_typer(agent_app, name="agent")


@agent_app.callback(invoke_without_command=True)
def agent(
    ctx: typer.Context,
    config: ConfigOpt = None,
    mqtt_url: MqttOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the edge agent on this PC or machine until stopped."""
    if ctx.invoked_subcommand is not None:
        return
    from labmeter.agent.runner import run_agent

    _logging(verbose)
    cfg = _load(config, mqtt__url=mqtt_url)
    try:
        run_agent(cfg, _stop_on_signals())
    except LabmeterError as exc:
        bad_config = isinstance(exc, ConfigError)
        err.print(f"[red]{'config' if bad_config else 'agent'} error:[/] {exc}")
        raise typer.Exit(2 if bad_config else 1) from exc


@agent_app.command("idle-helper")
def agent_idle_helper(
    folder: Annotated[Path, typer.Option("--dir", help="the agent's idle_dir")],
    poll_s: Annotated[float, typer.Option(min=0.2)] = 1.0,
) -> None:
    """Run in a user's desktop session: report its input idleness to the machine's agent."""
    from labmeter.agent.idle_helper import run_helper

    try:
        run_helper(folder, poll_s, _stop_on_signals())
    except LabmeterError as exc:
        err.print(f"[red]idle helper error:[/] {exc}")
        raise typer.Exit(1) from exc


@agent_app.command("check")
def agent_check(config: ConfigOpt = None) -> None:
    """Print what the agent detects here now; without a config, also what the config must say."""
    from labmeter.agent.check import run_check

    raise typer.Exit(run_check(_load(config), Console(), config))


@app.command()
def collector(
    config: ConfigOpt = None,
    mqtt_url: MqttOpt = None,
    influx_url: InfluxOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="subscriber processes on one shared subscription "
            "[default: one per core, at most 4]",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Subscribe to the broker and write every valid message to InfluxDB (ack after write)."""
    import gc

    from labmeter.collector.workers import default_workers, workers_in_use

    _logging(verbose)
    cfg = _load(config, mqtt__url=mqtt_url, influx__url=influx_url)
    stop = _stop_on_signals()
    count = workers or default_workers()
    if count > 1 or workers_in_use(cfg) > 1:  # also when sessions of more workers remain
        from labmeter.collector.workers import Workers

        parent = Workers(cfg, count, verbose=verbose)
        parent.start()
        parent.supervise(stop)
        return

    from labmeter.collector.service import Collector
    from labmeter.influx import InfluxV1, make_writer

    writer, reader = make_writer(cfg.influx), InfluxV1(cfg.influx)  # reads: InfluxQL /query
    service = Collector(cfg, writer, reader)
    gc.freeze()  # startup objects live forever: full collections in a drain skip them
    service.start()
    stop.wait()
    service.stop()
    writer.close()
    reader.close()


@app.command()
def api(
    config: ConfigOpt = None,
    influx_url: InfluxOpt = None,
    host: Annotated[str | None, typer.Option(help="listen address")] = None,
    port: Annotated[int | None, typer.Option(help="listen port")] = None,
) -> None:
    """Serve the read API (OpenAPI at /docs)."""
    import uvicorn

    from labmeter.api.main import create_app
    from labmeter.api.redact import log_config

    cfg = _load(config, influx__url=influx_url, api__host=host, api__port=port)
    # Access log on (who asked what, for journald), with every API key redacted from it.
    uvicorn.run(create_app(cfg), host=cfg.api.host, port=cfg.api.port, log_config=log_config())


@app.command()
def simulate(
    config: ConfigOpt = None,
    mqtt_url: MqttOpt = None,
    devices: Annotated[int, typer.Option(min=1, max=2000, help="simulated devices")] = 10,
    hours: Annotated[float, typer.Option(min=0.02, help="simulated hours, ending at --end")] = 4.0,
    end: Annotated[
        str | None, typer.Option(help="end of the lab, RFC 3339 or epoch seconds (default: now)")
    ] = None,
    inventory: Annotated[
        Path | None,
        typer.Option(
            help="inventory whose opening hours the lab's plan follows (default: "
            "Monday to Friday 08:30-18:30 in Rome)"
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="random seed: same seed and end, same lab")] = 1,
    speed: Annotated[
        float, typer.Option(min=0, help="time acceleration; 0 = as fast as possible")
    ] = 0,
    interval: Annotated[int, typer.Option(min=1, help="sample interval in seconds")] = 60,
    truth: Annotated[Path, typer.Option(help="where to write the ground truth JSON")] = Path(
        "truth.json"
    ),
) -> None:
    """Publish a simulated lab through the agent's real publishing path; write its ground truth."""
    from rich.progress import Progress

    from labmeter.api.timeparse import parse_time
    from labmeter.simulators import lab

    cfg = _load(config, mqtt__url=mqtt_url)
    try:
        end_ms = parse_time(end) if end else None
        opening = lab.inventory_opening(inventory) if inventory else None
    except (ValueError, LabmeterError) as exc:
        err.print(f"[red]simulate:[/] {exc}")
        raise typer.Exit(2) from exc
    stop = _stop_on_signals()
    with Progress(console=err) as bar:
        task = bar.add_task("simulating", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = lab.run(
            cfg.mqtt,
            devices=devices,
            hours=hours,
            seed=seed,
            speed=speed,
            interval_s=interval,
            truth_path=truth,
            stop=stop,
            progress=progress,
            end_ms=end_ms,
            opening=opening,
        )
    err.print(f"{len(result['devices'])} devices simulated; ground truth in {truth}")


@app.command()
def demo(
    devices: Annotated[int, typer.Option(min=1, max=200)] = 12,
    hours: Annotated[float, typer.Option(min=0.1, help="hours of history to backfill")] = 72.0,
    speed: Annotated[float, typer.Option(min=0, help="acceleration of the backfill")] = 7200.0,
    seed: int = 1,
    duration: Annotated[
        float | None, typer.Option(help="stop after this many seconds (default: until Ctrl-C)")
    ] = None,
) -> None:
    """Start mosquitto, influxd, a collector, the API and a simulated lab; stop all on Ctrl-C."""
    from labmeter.simulators.demo import run_demo

    try:
        run_demo(devices, hours, speed, seed, duration)
    except LabmeterError as exc:
        err.print(f"[red]demo cannot start:[/] {exc}")
        raise typer.Exit(1) from exc


@influx_app.command("init")
def influx_init(
    config: ConfigOpt = None,
    influx_url: InfluxOpt = None,
    retention_days: Annotated[
        int | None,
        typer.Option(
            help="days to keep data, 0 = forever (default: evidence.retention_years); shorter "
            "than the evidence retention only with evidence.archive_dir"
        ),
    ] = None,
) -> None:
    """1.x: the database and its retention policy. 2.x (influx.flavour = "v2"): the bucket
    with its retention, the DBRP mapping and a write token."""
    from labmeter.influx import InfluxV1, init_v2
    from labmeter.retention import apply_v1, retention_s

    cfg = _load(config, influx__url=influx_url)
    influx = InfluxV1(cfg.influx)
    try:
        seconds = retention_s(cfg, retention_days)
        if cfg.influx.flavour == "v2":
            token = init_v2(cfg.influx, seconds)
            err.print(
                f"bucket {cfg.influx.bucket!r} (retention {seconds // 86400 or 'forever'} days) "
                f"mapped to database {cfg.influx.database!r}"
            )
            print(token)  # the collector's write token: put it in influx.token
            return
        done = apply_v1(influx, seconds)
    except LabmeterError as exc:
        err.print(f"[red]influx init failed:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        influx.close()
    err.print(f"database {cfg.influx.database!r} ready at {cfg.influx.url}; {done}")


rollups_app = typer.Typer(help="The collector's rollups.", no_args_is_help=True)
app.add_typer(rollups_app, name="rollups")


@rollups_app.command("rebuild")
def rollups_rebuild(
    start: Annotated[str, typer.Option(help="RFC 3339 or epoch seconds")],
    end: Annotated[str, typer.Option(help="RFC 3339 or epoch seconds")],
    config: ConfigOpt = None,
) -> None:
    """Recompute daily rollups with collector.inventory (after its opening hours changed)."""
    from labmeter.api.timeparse import parse_time
    from labmeter.collector.rebuild import rebuild

    cfg = _load(config)
    try:
        start_ms, end_ms = parse_time(start), parse_time(end)
        if end_ms <= start_ms:
            raise ValueError("end must be after start")
        rebuild(cfg, start_ms, end_ms, err)
    except ValueError as exc:
        err.print(f"[red]rollups rebuild:[/] {exc}")
        raise typer.Exit(2) from exc
    except LabmeterError as exc:
        err.print(f"[red]rollups rebuild failed:[/] {exc}")
        raise typer.Exit(1) from exc


bookings_app = typer.Typer(help="Bookings (iCalendar files and feeds, CSV): check, fetch.")
app.add_typer(bookings_app, name="bookings")


@bookings_app.command("check")
def bookings_check(
    file: Path,
    inventory: Annotated[
        Path | None, typer.Option(help="inventory whose labs and devices bookings must name")
    ] = None,
    site: Annotated[str, typer.Option(help="site of events that do not say theirs")] = "",
    lab: Annotated[str, typer.Option(help="lab of events that do not say theirs")] = "",
    config: ConfigOpt = None,
) -> None:
    """Validate a calendar (.ics), a CSV of bookings or a sources file; file:line problems."""
    from labmeter.bookings_cli import check

    if inventory is None and config is not None:
        found = _load(config).api.inventory
        inventory = Path(found) if found else None
    raise typer.Exit(check(file, inventory, site, lab))


@bookings_app.command("fetch")
def bookings_fetch(config: ConfigOpt = None) -> None:
    """Fetch every feed of bookings.sources once (the API does it every refresh_min)."""
    from labmeter.bookings_cli import fetch

    raise typer.Exit(fetch(_load(config)))


inventory_app = typer.Typer(help="The inventory file: check it, import equipment from CSV.")
app.add_typer(inventory_app, name="inventory")
apikey_app = typer.Typer(help="API keys with roles (viewer, evaluator, admin), stored hashed.")
app.add_typer(apikey_app, name="apikey")


@inventory_app.command("check")
def inventory_check(file: Path) -> None:
    """Validate an inventory; each problem as file:line: message."""
    from labmeter.inventory_cli import check

    raise typer.Exit(check(file))


@inventory_app.command("import")
def inventory_import(
    csv_file: Path,
    into: Annotated[Path | None, typer.Option(help="inventory to merge into (rewritten)")] = None,
) -> None:
    """Equipment rows from a spreadsheet's CSV, as YAML on stdout or merged into --into."""
    from labmeter.inventory_cli import import_csv

    raise typer.Exit(import_csv(csv_file, into))


@apikey_app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="who or what uses the key")],
    role: Annotated[str, typer.Option(help="viewer | evaluator | admin")] = "viewer",
    config: ConfigOpt = None,
) -> None:
    """Create a key and print its token once (only its hash is stored)."""
    from labmeter.api.keys_cli import create

    raise typer.Exit(create(_load(config), name, role))


@apikey_app.command("list")
def apikey_list(config: ConfigOpt = None) -> None:
    """List keys (id, name, role, created, revoked)."""
    from labmeter.api.keys_cli import show

    raise typer.Exit(show(_load(config)))


@apikey_app.command("revoke")
def apikey_revoke(key_id: int, config: ConfigOpt = None) -> None:
    """Revoke a key by id."""
    from labmeter.api.keys_cli import revoke

    raise typer.Exit(revoke(_load(config), key_id))


@app.command()
def register(
    lab: Annotated[str, typer.Option(help="the lab's id")],
    day: Annotated[str | None, typer.Option(help="YYYY-MM-DD (local)")] = None,
    month: Annotated[str | None, typer.Option(help="YYYY-MM (local): a page per day")] = None,
    site: Annotated[
        str | None, typer.Option(help="the lab's site (if its id is not unique)")
    ] = None,
    format: Annotated[str, typer.Option(help="pdf | csv | json")] = "pdf",
    lang: Annotated[str, typer.Option(help="it | en")] = "it",
    out: Annotated[Path | None, typer.Option(help="output file (default: a dated name)")] = None,
    config: ConfigOpt = None,
    influx_url: InfluxOpt = None,
) -> None:
    """The lab register (Registro di utilizzo): every session of a day or month, to sign."""
    import time

    from labmeter.api.register_cli import RegisterFormat, build, filename, produce, resolve
    from labmeter.api.report.texts import Lang
    from labmeter.bookings_cli import open_bookings
    from labmeter.influx import InfluxV1
    from labmeter.inventory import load
    from labmeter.opening import OpeningHours

    cfg = _load(config, influx__url=influx_url)
    try:
        fmt, language = RegisterFormat(format), Lang(lang)
        inventory = load(cfg.api.inventory) if cfg.api.inventory else None
        opening = OpeningHours(inventory)
        req = resolve(opening, lab, site, day, month)
        books = open_bookings(cfg, inventory) if cfg.bookings.sources else None
    except (ValueError, LabmeterError) as exc:
        err.print(f"[red]register:[/] {exc}")
        raise typer.Exit(2) from exc
    influx = InfluxV1(cfg.influx)
    try:
        body = produce(build(influx, opening, req, books, int(time.time() * 1000)), fmt, language)
    finally:
        influx.close()
    path = out or Path(filename(req, fmt, language))
    path.write_bytes(body)
    err.print(f"{path} ({len(body):,} bytes)")


@app.command()
def report(
    start: Annotated[str, typer.Option(help="RFC 3339 or epoch seconds")],
    end: Annotated[str | None, typer.Option(help="RFC 3339 or epoch seconds; default now")] = None,
    format: Annotated[str, typer.Option(help="json | csv | xlsx | html | pdf")] = "pdf",
    lang: Annotated[str, typer.Option(help="it | en")] = "it",
    out: Annotated[Path | None, typer.Option(help="output file (default: a dated name)")] = None,
    site: str | None = None,
    lab: str | None = None,
    config: ConfigOpt = None,
    influx_url: InfluxOpt = None,
) -> None:
    """The evaluators' utilisation report (Rapporto di utilizzo) from InfluxDB and the inventory."""
    from labmeter.api.plan import Filters
    from labmeter.api.report.cli import run

    cfg = _load(config, influx__url=influx_url)
    raise typer.Exit(run(cfg, start, end, format, lang, out, Filters(site, lab)))

"""``labmeter report`` and ``labmeter register``: the evaluators' documents, with progress."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from labmeter.cli.common import ConfigOpt, InfluxOpt, err, load_config
from labmeter.errors import LabmeterError
from labmeter.timeparse import parse_time


def report(
    start: Annotated[str, typer.Option(help="RFC 3339 or epoch seconds")],
    end: Annotated[str | None, typer.Option(help="RFC 3339 or epoch seconds; default now")] = None,
    format: Annotated[str, typer.Option(help="json | csv | xlsx | html | pdf")] = "pdf",
    lang: Annotated[str, typer.Option(help="it | en")] = "it",
    out: Annotated[Path | None, typer.Option(help="output file (default: a dated name)")] = None,
    site: str | None = None,
    lab: str | None = None,
    scope: Annotated[
        str, typer.Option(help="site: the Rapporto di utilizzo; region: every site side by side")
    ] = "site",
    pilot_site: Annotated[
        str | None, typer.Option(help="region: the site that piloted the open-lab method")
    ] = None,
    change: Annotated[
        str | None, typer.Option(help="region: the method's start (baseline before, pilot after)")
    ] = None,
    baseline: Annotated[str | None, typer.Option(help="region: START..END before")] = None,
    pilot: Annotated[str | None, typer.Option(help="region: START..END after")] = None,
    min_coverage: Annotated[
        float, typer.Option(help="region: the coverage a site needs to be ranked")
    ] = 0.8,
    seed: Annotated[int, typer.Option(help="region: the bootstrap's seed")] = 1,
    resamples: Annotated[int, typer.Option(help="region: the bootstrap's resamples")] = 2000,
    config: ConfigOpt = None,
    influx_url: InfluxOpt = None,
) -> None:
    """The evaluators' utilisation report (Rapporto di utilizzo) from InfluxDB and the inventory;
    with --scope region, the region's view of every site."""
    from rich.progress import Progress

    from labmeter.api.plan import Filters
    from labmeter.api.report.formats import Format
    from labmeter.api.report.texts import Lang

    cfg = load_config(config, influx__url=influx_url)
    try:
        format_, lang_ = Format(format), Lang(lang)
        end_ms = parse_time(end) if end else int(time.time() * 1000)
        start_ms = parse_time(start)
        if scope not in ("site", "region"):
            raise ValueError(f"--scope {scope!r}: site or region")
        if scope == "region" and (site or lab):
            raise ValueError("--scope region covers every site: no --site or --lab")
        if scope == "site" and (pilot_site or change or baseline or pilot):
            raise ValueError("--pilot-site, --change, --baseline and --pilot need --scope region")
        from labmeter.api.region.make import PilotArgs

        args = PilotArgs(pilot_site, change, baseline, pilot, seed, resamples)
        args.spec(start_ms, end_ms)  # its errors before any work
    except ValueError as exc:
        err.print(f"[red]report:[/] {exc}")
        raise typer.Exit(2) from exc
    with Progress(console=err) as bar:
        task = bar.add_task("report", total=None)

        def progress(step: int, total: int, label: str) -> None:
            bar.update(task, total=total + 1, completed=step, description=label)

        if scope == "region":
            from labmeter.api.region.formats import filename, produce
            from labmeter.api.region.make import region_for

            try:
                region = region_for(cfg, start_ms, end_ms, args, min_coverage, progress)
            except ValueError as exc:  # e.g. a pilot site the inventory does not list
                bar.stop()
                err.print(f"[red]report:[/] {exc}")
                raise typer.Exit(2) from exc
            bar.update(task, description=f"rendering {format_.value}")
            body = produce(region, format_, lang_)
            name = filename(region, format_, lang_)
        else:
            from labmeter.api.report import formats
            from labmeter.api.report.make import report_for

            data = report_for(cfg, start_ms, end_ms, Filters(site, lab), progress)
            bar.update(task, description=f"rendering {format_.value}")
            body = formats.produce(data, format_, lang_)
            name = formats.filename(data, format_, lang_)
        bar.update(task, completed=bar.tasks[0].total)
    path = out or Path(name)
    path.write_bytes(body)
    err.print(f"{path} ({len(body):,} bytes)")


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
    from labmeter.api.register_formats import RegisterFormat, filename, make_register
    from labmeter.api.report.texts import Lang

    cfg = load_config(config, influx__url=influx_url)
    try:
        fmt, language = RegisterFormat(format), Lang(lang)
        req, body = make_register(cfg, lab, site, day, month, fmt, language)
    except (ValueError, LabmeterError) as exc:
        err.print(f"[red]register:[/] {exc}")
        raise typer.Exit(2) from exc
    path = out or Path(filename(req, fmt, language))
    path.write_bytes(body)
    err.print(f"{path} ({len(body):,} bytes)")

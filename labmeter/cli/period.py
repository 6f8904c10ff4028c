"""``labmeter period close|verify|list|keygen``: closed periods and their evidence packages."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from labmeter.cli.common import ConfigOpt, err, load_config, progress_bar
from labmeter.errors import LabmeterError
from labmeter.timeparse import parse_time

period_app = typer.Typer(
    help="Closed reporting periods: close one (evidence package), verify a package.",
    no_args_is_help=True,
)


@period_app.command("close")
def close(
    start: Annotated[str, typer.Option(help="first day: RFC 3339 local midnight or epoch s")],
    end: Annotated[str, typer.Option(help="end (exclusive): a local midnight")],
    site: Annotated[str, typer.Option(help="one site only (default: every site)")] = "",
    config: ConfigOpt = None,
) -> None:
    """Refuse new data in [start, end) and write its evidence package (admin)."""
    from labmeter.evidence.close import close_period

    cfg = load_config(config)
    try:
        start_ms, end_ms = parse_time(start), parse_time(end)
    except ValueError as exc:
        err.print(f"[red]period close:[/] {escape(str(exc))}")
        raise typer.Exit(2) from exc
    try:
        with progress_bar() as bar:
            task = bar.add_task("closing", total=None)

            def progress(stage: str, done: float | None, total: float | None) -> None:
                bar.update(task, description=stage, completed=done or 0, total=total)

            closed = close_period(cfg, start_ms, end_ms, site, progress)
    except LabmeterError as exc:
        err.print(f"[red]period close failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    err.print(
        f"closed {closed.closure}\npackage {closed.folder}\n"
        f"{closed.points:,} points archived in {closed.seconds:.1f} s"
    )
    print(closed.manifest_sha256)  # the manifest's SHA-256: cite it with the report


@period_app.command("verify")
def verify(
    archive: Annotated[Path, typer.Argument(help="an evidence package folder")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="the lab's published Ed25519 public key (PEM) that must have signed the "
            "package (default: evidence.public_key of --config)"
        ),
    ] = None,
    manifest_sha256: Annotated[
        str, typer.Option(help="the manifest's SHA-256 cited with the report: must match")
    ] = "",
    allow_unsigned: Annotated[
        bool,
        typer.Option(
            help="accept a package no pinned key signed: its hashes then show only that its "
            "files agree with its own manifest, which anyone who can write it can rewrite"
        ),
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Check hashes and signature against a trust anchor, restore into a fresh InfluxDB,
    rebuild and compare the report; exit 1 naming every file or figure that differs. With
    --config, also the closure its InfluxDB and archive folder record."""
    from labmeter.archive.manifest import UNSIGNED_MEANS, Trust
    from labmeter.evidence.verify import NOT_COMPARED
    from labmeter.evidence.verify import verify as run

    cfg = load_config(config) if config is not None else None
    if public_key is None and cfg is not None and cfg.evidence.public_key:
        public_key = Path(cfg.evidence.public_key)
    trust = Trust(public_key, allow_unsigned, manifest_sha256)
    try:
        with progress_bar() as bar:
            task = bar.add_task("verifying", total=None)

            def progress(stage: str, done: float | None, total: float | None) -> None:
                bar.update(task, description=stage, completed=done or 0, total=total)

            problems, signer = run(archive, trust, progress, config=cfg)
    except LabmeterError as exc:
        err.print(f"[red]period verify failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    for problem in problems:
        err.print(f"[red]FAIL[/] {escape(problem)}")
    if problems:
        err.print(f"[red]{len(problems)} problem(s)[/]: {archive} does not verify")
        raise typer.Exit(1)
    anchored = public_key is not None and signer.startswith("ed25519:")
    sealed = f"the signature of the pinned key {signer}" if anchored else f"[yellow]{signer}[/]"
    err.print(f"[green]OK[/] {archive}: every hash, {sealed} and every figure")
    if not anchored:
        err.print(f"[yellow]accepted with --allow-unsigned:[/] {escape(UNSIGNED_MEANS)}")
    if manifest_sha256:
        err.print(f"the manifest is the one cited: {manifest_sha256.strip().lower()}")
    if cfg is not None:
        err.print("the closure recorded in InfluxDB and in the archive folder names this package")
    for path, why in NOT_COMPARED.items():
        err.print(f"not compared: {'.'.join(path)}: {escape(why)}")


@period_app.command("list")
def list_periods(config: ConfigOpt = None) -> None:
    """Closed periods, oldest first, each checked against the archive folder's record of its
    close; exit 1 naming every closure that differs from it."""
    from labmeter.evidence.close import list_closures

    try:
        closures, differ = list_closures(load_config(config))
    except LabmeterError as exc:
        err.print(f"[red]period list failed:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    for c in closures:
        print(f"{c}\t{c.manifest_sha256 or '-'}\t{c.archive or '-'}")
    for cid, why in sorted(differ.items()):
        err.print(f"[red]closure {cid} differs:[/] {escape(why)}")
    if differ:
        raise typer.Exit(1)


@period_app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Argument(help="private key file to create (mode 600)")],
) -> None:
    """Create an Ed25519 signing key for evidence.signing_key (public key beside it)."""
    from labmeter.archive.manifest import generate_key

    try:
        public = generate_key(out)
    except LabmeterError as exc:
        err.print(f"[red]period keygen:[/] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    err.print(f"private key {out} (keep it secret), public key {public} (publish it)")

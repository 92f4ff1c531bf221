"""`tiezheng capture`: web pages as evidence packages, queued for sealing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console()
errors = Console(stderr=True)


def capture(
    urls: Annotated[list[str] | None, typer.Argument(help="Pages to capture, one package each.")] = None,
    url_file: Annotated[Path | None, typer.Option("--file", help="Read URLs from a file, one a line.")] = None,
    note: Annotated[str, typer.Option(help="A note stored in each manifest.")] = "",
    full_page: Annotated[bool, typer.Option("--full-page/--viewport", help="Screenshot the whole page.")] = True,
    wait: Annotated[str, typer.Option(help="networkidle, load, or seconds to wait after load.")] = "networkidle",
    scroll: Annotated[bool, typer.Option("--scroll/--no-scroll", help="Scroll to load lazy content.")] = True,
    allow_private: Annotated[bool, typer.Option(help="Allow loopback/private addresses (local test sites).")] = False,
    accept_error_status: Annotated[bool, typer.Option(help="Capture 4xx/5xx pages instead of failing.")] = False,
    concurrency: Annotated[int, typer.Option(help="Captures at once on the warm browser.")] = 2,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", envvar="TIEZHENG_DATA_DIR",
                                                  help="Data folder [default: ~/.tiezheng]")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per URL.")] = False,
) -> None:
    """Capture web pages (screenshot, source, DOM, WARC, network facts) and queue them for sealing."""
    from api.services import clock_references, operator_for, queue_for_sealing
    from api.settings import load_settings
    from evidence.capture import CaptureResult, capture_urls, read_url_file
    from evidence.capture_options import CaptureOptions
    from evidence.manifest import Requester

    settings = load_settings(data_dir)
    targets = list(urls or []) + (read_url_file(url_file) if url_file else [])
    if not targets:
        raise typer.BadParameter("give at least one URL, or --file")
    options = CaptureOptions(note=note, full_page=full_page, wait=float(wait) if _is_number(wait) else wait,
                             scroll=scroll, allow_private=allow_private, accept_error_status=accept_error_status,
                             concurrency=concurrency)
    progress = Progress(TextColumn("capturing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=errors, disable=as_json, transient=True)

    def done(result: CaptureResult) -> None:
        # Queue each package the moment it exists: a crash later loses nothing already captured.
        if result.package is not None:
            queue_for_sealing(settings, result.package.evidence_id, result.package.fingerprint, result.package.path)
        progress.advance(task)
        if as_json:
            print(json.dumps({**result.record(), "status": "pending" if result.ok else "failed"}), flush=True)
        elif result.package is not None:
            progress.console.print(f"[green]captured[/] {escape(result.url)} → {result.package.evidence_id}\n"
                                   f"  package {result.package.path}")
        else:
            progress.console.print(f"[red]failed[/] {escape(result.url)}: {escape(result.error or '')}")

    with progress, clock_references(settings) as clock:
        task = progress.add_task("capture", total=len(targets))
        results = capture_urls(targets, packages_dir=settings.packages_dir, operator=operator_for(settings),
                               requester=Requester.local(), options=options, on_result=done,
                               clock_references=clock)
    if not as_json:
        ok = sum(r.ok for r in results)
        console.print(f"{ok} of {len(results)} captured and pending; run `tiezheng seal` to seal them")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

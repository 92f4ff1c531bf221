"""`tiezheng capture`: web pages as evidence packages, queued for sealing."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

from api.cli.support import DataDir, JsonFlag, UserError, input_file, writable_settings
from api.service.errors import ServiceError
from api.service.settings import Settings

if TYPE_CHECKING:  # the capture stack (Playwright) loads only when a capture runs
    from evidence.capture import CaptureResult

console = Console()
errors = Console(stderr=True)

#: Option names in messages from evidence/ (shared with the API, which knows no flags) -> this CLI's flags.
FLAG_OF_SETTING = {"allow_private": "--allow-private", "accept_error_status": "--accept-error-status",
                   "no_video": "--no-video"}
_SETTING_NAMES = re.compile(r"\b(" + "|".join(FLAG_OF_SETTING) + r")\b")


def in_flags(message: str) -> str:
    """``message`` naming this CLI's flags instead of the capture options' field names."""
    return _SETTING_NAMES.sub(lambda match: FLAG_OF_SETTING[match.group(1)], message)


def checked_urls(urls: list[str]) -> list[str]:
    """The URLs, trimmed; a URL without a scheme is a UserError that suggests the https:// one."""
    checked = []
    for raw in urls:
        url = raw.strip()
        if "://" not in url:
            guess = "https://" + url.lstrip("/")
            raise UserError(f"{url!r} has no scheme", f"did you mean {guess}?")
        checked.append(url)
    return checked


def capture(
    urls: Annotated[list[str] | None, typer.Argument(
        metavar="URLS...", help="Pages to capture (http:// or https://), one package each.")] = None,
    url_file: Annotated[Path | None, typer.Option("--file", metavar="FILE",
                                                  help="Read URLs from a file, one a line.")] = None,
    note: Annotated[str, typer.Option(help="A note stored in each manifest.")] = "",
    full_page: Annotated[bool, typer.Option("--full-page/--viewport", help="Screenshot the whole page.")] = True,
    wait: Annotated[str, typer.Option(metavar="WHEN",
                                      help="networkidle, load, or seconds to wait after load.")] = "networkidle",
    scroll: Annotated[bool, typer.Option("--scroll/--no-scroll", help="Scroll to load lazy content.")] = True,
    allow_private: Annotated[bool, typer.Option("--allow-private",
                                                help="Allow loopback/private addresses (local test sites).")] = False,
    accept_error_status: Annotated[bool, typer.Option("--accept-error-status",
                                                      help="Capture 4xx/5xx pages instead of failing.")] = False,
    concurrency: Annotated[int, typer.Option(help="Captures at once on the warm browser.")] = 2,
    matter: Annotated[str | None, typer.Option(metavar="ID", help="File the captures under this matter.")] = None,
    subject: Annotated[str | None, typer.Option(help="The seller, account id or shop URL they are about.")] = None,
    steps: Annotated[str | None, typer.Option(
        "--steps", metavar="FILE|preset:NAME",
        help="Scripted steps to run before the screenshot: a JSON/YAML file, or preset:expand-comments, "
             "preset:load-more, preset:close-modal.")] = None,
    video: Annotated[bool, typer.Option("--video/--no-video",
                                        help="Record the session video (evidence/session.webm).")] = True,
    session: Annotated[str | None, typer.Option(
        metavar="NAME", help="Capture logged in with a stored session (`tiezheng session add`).")] = None,
    egress: Annotated[str | None, typer.Option(
        metavar="NAME", help="Capture through the egress proxy configured as TIEZHENG_EGRESS_<NAME>.")] = None,
    save_media: Annotated[bool, typer.Option(
        "--save-media", help="Also store every embedded image, audio and video as its own file.")] = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Capture web pages (screenshot, source, DOM, WARC, network facts) and queue them for sealing."""
    targets = checked_urls(list(urls or []))
    if url_file is not None:
        from api.service.pipeline import read_url_file

        try:
            targets += checked_urls(read_url_file(input_file(url_file, what="URL file")))
        except ServiceError as exc:
            raise UserError(str(exc), "give a UTF-8 text file with one URL a line") from None
    if not targets:
        raise UserError("no URL to capture", "give at least one URL, or --file FILE")
    # The bar shows at once, naming the step being waited on: loading, starting the browser, capturing.
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=errors, disable=as_json, transient=True)
    with progress:
        task = progress.add_task("opening the data dir…", total=len(targets))
        settings = writable_settings(data_dir)
        chosen = _chosen(settings, session=session, egress=egress, save_media=save_media)
        progress.update(task, description="loading the capture tools…", refresh=True)
        results = _capture_all(targets, settings, progress, task, as_json=as_json, options=dict(
            note=note, full_page=full_page, wait=float(wait) if _is_number(wait) else wait, scroll=scroll,
            allow_private=allow_private, accept_error_status=accept_error_status, concurrency=concurrency,
            matter=matter, subject=subject, video=video, steps=_steps(steps), **chosen))
    if not as_json:
        ok = sum(r.ok for r in results)
        console.print(f"{ok} of {len(results)} captured and pending; run `tiezheng seal` to seal them")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _chosen(settings: Settings, *, session: str | None, egress: str | None, save_media: bool) -> dict[str, Any]:
    """The options ``--session``, ``--egress`` and ``--save-media`` stand for; a UserError when one is unknown."""
    from api.service.local_sessions import capture_choice_options

    try:
        return capture_choice_options(settings, session_name=session, egress=egress, save_media=save_media)
    except ServiceError as exc:
        hint = ("set TIEZHENG_SESSION_KEY (32 random bytes, base64)" if "TIEZHENG_SESSION_KEY" in str(exc) else
                "see `tiezheng session list`" if "session" in str(exc) else "configure TIEZHENG_EGRESS_<NAME>")
        raise UserError(str(exc), hint) from None


def _capture_all(targets: list[str], settings: Settings, progress: Progress, task: TaskID, *, as_json: bool,
                 options: dict[str, Any]) -> list[CaptureResult]:
    from api.service import pipeline

    try:
        capture_options = pipeline.capture_options(**options)
    except ServiceError as exc:
        # "wait must be …" -> "--wait must be …": a bad option is named as the flag the user typed.
        message = re.sub(r"^([a-z_]+) must", lambda m: f"--{m.group(1).replace('_', '-')} must", str(exc))
        raise UserError(in_flags(message), "see `tiezheng capture --help`") from None

    def step(description: str) -> None:
        progress.update(task, description=description, refresh=True)

    def done(result: CaptureResult) -> None:
        if result.error is not None:  # messages name this CLI's flags (the evidence code names its options)
            result = dataclasses.replace(result, error=in_flags(result.error))
        progress.advance(task)
        if as_json:
            print(json.dumps({**result.record(), "status": "pending" if result.ok else "failed"}), flush=True)
        elif result.package is not None:
            progress.console.print(f"[green]captured[/] {escape(result.url)} → {result.package.evidence_id}\n"
                                   f"  package {result.package.path}")
        else:
            progress.console.print(f"[red]failed[/] {escape(result.url)}: {escape(result.error or '')}")

    try:
        return pipeline.capture_local(settings, targets, capture_options, on_step=step, on_result=done)
    except ServiceError as exc:
        hint = "see `tiezheng matter list`" if "matter" in str(exc) else "run `tiezheng doctor` for the details"
        raise UserError(str(exc), hint) from None


def _steps(spec: str | None) -> tuple[Any, ...]:
    if spec is None:
        return ()
    from api.service import pipeline

    try:
        return pipeline.load_steps(spec)
    except ServiceError as exc:
        raise UserError(f"--steps: {exc}", "see `tiezheng capture --help` for the step list format") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True

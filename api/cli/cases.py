"""`tiezheng matter …` and `tiezheng watch …`: the embedded CLI's cases and scheduled captures.

They work on the data dir's database as the tenant ``local`` (the requester its manifests name);
a running `tiezheng serve` runs the same watches, and `tiezheng watch run-due` runs them from cron.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from api.cli.support import DataDir, JsonFlag, UserError, writable_settings
from api.service.errors import ServiceError
from api.service.models import WatchPublic, WatchState

matter_app = typer.Typer(no_args_is_help=True, help="Matters: cases that group evidence and watches.")
watch_app = typer.Typer(no_args_is_help=True, help="Watches: pages captured again on a schedule.")
console = Console()
errors = Console(stderr=True)


@contextmanager
def _as_user_errors(hint: str) -> Iterator[None]:
    """A refusal of the service (an unknown matter, a bad interval) as one line with a hint."""
    try:
        yield
    except ServiceError as exc:
        raise UserError(str(exc), hint) from None


def _print_json(value: Any) -> None:
    print(json.dumps(value, default=str, ensure_ascii=False))


@matter_app.command("create")
def matter_create(title: Annotated[str, typer.Argument(metavar="TITLE", help="What the case is called.")],
                  reference: Annotated[str, typer.Option(help="Your or the court's case number.")] = "",
                  data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Open a matter; file evidence under it with --matter ID on capture, upload and watch add."""
    from api.service.local_cases import create_matter

    with _as_user_errors("give a title of 1 to 200 characters"):
        matter = create_matter(writable_settings(data_dir), title=title, reference=reference)
    if as_json:
        _print_json(matter.model_dump(mode="json"))
    else:
        console.print(f"[green]matter[/] {matter.id}  {escape(matter.title)}")


@matter_app.command("list")
def matter_list(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """List the matters, newest first."""
    from api.service.local_cases import list_matters

    found = list_matters(writable_settings(data_dir))
    if as_json:
        _print_json([m.model_dump(mode="json") for m in found])
        return
    if not found:
        console.print("no matters yet (`tiezheng matter create TITLE`)")
    for m in found:
        console.print(f"{m.id}  {escape(m.title)}  {escape(m.reference)}  log {m.log_length} line(s)")


@matter_app.command("show")
def matter_show(matter_id: Annotated[str, typer.Argument(metavar="ID")], data_dir: DataDir = None,
                as_json: JsonFlag = False) -> None:
    """Show a matter: its evidence, its watches and its hash-chained log (checked)."""
    from api.service.local_cases import show_matter

    with _as_user_errors("see `tiezheng matter list`"):
        view = show_matter(writable_settings(data_dir), matter_id)
    if as_json:
        _print_json({**view.matter.model_dump(mode="json"), "log": [e.model_dump(mode="json") for e in view.log],
                     "log_intact": view.log_intact, "watches": [w.model_dump(mode="json") for w in view.watches]})
        return
    m = view.matter
    console.print(f"[bold]{m.id}[/]  {escape(m.title)}" + (f"  ({escape(m.reference)})" if m.reference else ""))
    console.print(f"evidence: {len(m.evidence)}")
    for ref in m.evidence:
        console.print(f"  {ref}")
    for w in view.watches:
        console.print(f"watch {w.id}: {escape(w.url)} every {w.every_seconds} s, {w.state}")
    state = "[green]intact[/]" if view.log_intact else "[red]BROKEN[/]"
    console.print(f"log: {len(view.log)} line(s), hash chain {state}, head {m.log_head}")
    for e in view.log:
        console.print(f"  {e.seq:>3} {e.at:%Y-%m-%d %H:%M:%S} {e.action:<10} {escape(json.dumps(e.detail))}")


def timeline(matter_id: Annotated[str | None, typer.Argument(metavar="[MATTER]", help="The matter's id.")] = None,
             subject: Annotated[str | None, typer.Option(
                 help="Instead of a matter: every item about this seller, account or shop, across matters.")]
             = None,
             pdf: Annotated[Path | None, typer.Option(metavar="FILE", help="Write the bilingual PDF document here.")]
             = None,
             html: Annotated[Path | None, typer.Option(metavar="FILE", help="Write the HTML document here.")] = None,
             lang: Annotated[str, typer.Option(help="en or zh, for the terminal report.")] = "en",
             data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Verify a matter's evidence (or a subject's, across matters) as one timeline (TL1, TL2); write its document.

    Exits 0 when every package verifies and TL1/TL2 pass, 1 when a check fails, 3 when it cannot judge.
    """
    from api.service.local_cases import local_timeline
    from verifier.timeline_cli import render

    if (matter_id is None) == (subject is None):
        raise UserError("give a matter id or --subject, one of the two", "see `tiezheng matter list`")
    for target in (pdf, html):
        if target is not None and target.is_dir():
            raise UserError(f"{target} is a folder", "give the name of the file to write")
    with _as_user_errors("see `tiezheng matter list`"), \
            errors.status("verifying the matter's packages as a timeline…", spinner="dots"):
        found = local_timeline(writable_settings(data_dir), matter_id=matter_id, subject=subject)
    if as_json:
        _print_json({**found.report.to_json(), "without_package": list(found.without_package)})
    else:
        console.print(render(found.report, lang=lang))
        for ref in found.without_package:
            console.print(f"[yellow]no package yet[/] for {escape(ref)} (a capture still running, or failed)")
    if html is not None:
        html.write_text(found.html(), encoding="utf-8")
        errors.print(f"timeline document: {html}")
    if pdf is not None:
        pdf.write_bytes(found.pdf())
        errors.print(f"timeline document: {pdf}")
    raise typer.Exit(found.report.exit_code)


def _until(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UserError(f"--until {text!r} is not a date", "write 2027-01-31 or 2027-01-31T18:00") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _watch_line(w: WatchPublic) -> str:
    extra = f", matter {w.matter}" if w.matter else ""
    return (f"{w.id}  {escape(w.url)}  every {w.every_seconds} s, {w.state}{extra}, "
            f"next {w.next_slot:%Y-%m-%d %H:%M:%S} UTC")


@watch_app.command("add")
def watch_add(url: Annotated[str, typer.Argument(metavar="URL")],
              every: Annotated[str, typer.Option(help="Interval: 6h, 30m, 1d, or seconds.")],
              until: Annotated[str | None, typer.Option(metavar="DATE", help="Stop after this date (UTC).")] = None,
              matter: Annotated[str | None, typer.Option(metavar="ID", help="File each run under it.")] = None,
              subject: Annotated[str | None, typer.Option(help="Seller, account id or shop URL.")] = None,
              field: Annotated[list[str] | None, typer.Option(
                  metavar="NAME=CSS_SELECTOR", help="A key field to compare between runs; may repeat.")] = None,
              stream: Annotated[str | None, typer.Option(
                  metavar="TIME", help="A live stream: record it this long (30m) at each run, as `capture-stream` "
                                       "does.")] = None,
              data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Watch a page: capture it now and every interval; each run is sealed and chained to the last."""
    from api.service.local_cases import add_watch

    if "://" not in url:
        raise UserError(f"{url!r} has no scheme", "give an http:// or https:// URL")
    with _as_user_errors("see `tiezheng watch add --help`"):
        watch = add_watch(writable_settings(data_dir), url=url, every=every, until=_until(until), matter=matter,
                          subject=subject, fields=field, stream=stream)
    if as_json:
        _print_json(watch.model_dump(mode="json"))
    else:
        console.print(f"[green]watching[/] {_watch_line(watch)}")


@watch_app.command("list")
def watch_list(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """List the watches with their newest slots."""
    from api.service.local_cases import list_watches

    found = list_watches(writable_settings(data_dir))
    if as_json:
        _print_json([w.model_dump(mode="json") for w in found])
        return
    if not found:
        console.print("no watches (`tiezheng watch add URL --every 6h`)")
    for w in found:
        console.print(_watch_line(w))
        for s in w.slots:
            why = f" ({escape(s.reason)})" if s.reason else ""
            console.print(f"    {s.slot_time:%Y-%m-%d %H:%M:%S} {s.state}{why} {s.evidence_id or ''}")


def _set_state(watch_id: str, state: WatchState, data_dir: Any, verb: str) -> None:
    from api.service.local_cases import set_watch_state

    with _as_user_errors("see `tiezheng watch list`"):
        watch = set_watch_state(writable_settings(data_dir), watch_id, state)
    console.print(f"{verb} {watch.id}")


@watch_app.command("pause")
def watch_pause(watch_id: Annotated[str, typer.Argument(metavar="ID")], data_dir: DataDir = None) -> None:
    """Pause a watch; slots while paused are not runs."""
    _set_state(watch_id, WatchState.PAUSED, data_dir, "paused")


@watch_app.command("resume")
def watch_resume(watch_id: Annotated[str, typer.Argument(metavar="ID")], data_dir: DataDir = None) -> None:
    """Resume a paused watch at its next slot from now."""
    _set_state(watch_id, WatchState.ACTIVE, data_dir, "resumed")


@watch_app.command("remove")
def watch_remove(watch_id: Annotated[str, typer.Argument(metavar="ID")], data_dir: DataDir = None) -> None:
    """Stop a watch for good; its runs stay as evidence."""
    _set_state(watch_id, WatchState.REMOVED, data_dir, "removed")


@watch_app.command("run-due")
def watch_run_due(data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Run the watches' due slots now, here (for cron), and re-capture the URLs of notices whose
    response window has closed; seal them with `tiezheng seal`."""
    with errors.status("deciding the due slots…", spinner="dots"):
        from api.service.local_cases import RunResult, run_due

        settings = writable_settings(data_dir)

    def shown(result: RunResult) -> None:
        if as_json:
            _print_json(result.__dict__)
        elif result.evidence_id:
            console.print(f"[green]captured[/] {escape(result.url)} → {result.evidence_id}")
        else:
            console.print(f"[red]failed[/] {escape(result.url)}: {escape(result.error or result.status)}")

    outcome = run_due(settings, on_result=shown)
    if not as_json:
        rechecks = f", {outcome.rechecks} re-capture(s) after a notice's window closed" if outcome.rechecks else ""
        console.print(f"{outcome.queued - outcome.rechecks} slot(s) run{rechecks}, {outcome.missed} missed; "
                      "run `tiezheng seal` to seal the new packages")
    if any(r.error for r in outcome.runs):
        raise typer.Exit(1)

"""`tiezheng capture-stream`: record a live stream (HLS, DASH, progressive) as linked evidence packages."""

from __future__ import annotations

import json
import time as clock
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from api.cli.capture import checked_urls
from api.cli.support import DataDir, JsonFlag, UserError, writable_settings
from api.service.errors import ServiceError

if TYPE_CHECKING:
    from evidence.stream.recorder import Progress as StreamProgress
    from evidence.upload import BuiltPackage

console = Console()
errors = Console(stderr=True)


def capture_stream(
    url: Annotated[str | None, typer.Argument(metavar="URL", help="The stream: an HLS playlist (.m3u8), a DASH "
                                                                  "manifest (.mpd) or a media file.")] = None,
    duration: Annotated[str, typer.Option(metavar="TIME", help="How long to record: 30m, 1h30m, 90s.")] = "30m",
    at: Annotated[str | None, typer.Option(metavar="HH:MM", help="Start at this local time (waits till then).")] = None,
    matter: Annotated[str | None, typer.Option(metavar="ID", help="File the packages under this matter.")] = None,
    allow_private: Annotated[bool, typer.Option("--allow-private",
                                                help="Allow loopback/private addresses (local test streams).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Finish the recordings a stopped process left, "
                                                          "as parts linked to the ones already packaged.")] = False,
    data_dir: DataDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Record a live stream: every playlist and segment into the WARC, each segment's hash logged on
    arrival, an MP4 remuxed with ffmpeg; each part queued for sealing."""
    from api.service import streams

    if resume == (url is not None):
        raise UserError("give a stream URL, or --resume without one", "see `tiezheng capture-stream --help`")
    try:
        seconds = streams.parse_duration(duration)
        start = streams.parse_start(at, datetime.now().astimezone()) if at else None
    except ServiceError as exc:
        raise UserError(str(exc), "see `tiezheng capture-stream --help`") from None
    settings = writable_settings(data_dir)

    def part(built: BuiltPackage) -> None:
        if as_json:
            print(json.dumps({"evidence_id": built.evidence_id, "fingerprint": built.fingerprint.hex(),
                              "package": str(built.path), "status": "pending"}), flush=True)
        else:
            bar.console.print(f"[green]recorded[/] part → {built.evidence_id}\n  package {escape(str(built.path))}")

    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                   TimeElapsedColumn(), console=errors, disable=as_json, transient=True)
    with bar:
        task = bar.add_task("recording", total=seconds, detail="")

        def progress(p: StreamProgress) -> None:
            bar.update(task, completed=min(p.elapsed, p.duration),
                       detail=f"{p.elapsed:.0f}/{p.duration:.0f} s, {p.segments} segments, {p.gaps} gaps")

        try:
            if resume:
                built = streams.resume_local(settings, on_part=part, on_progress=progress)
            else:
                assert url is not None
                target = checked_urls([url])[0]
                if start is not None:
                    bar.update(task, description=f"waiting for {start:%H:%M}")
                    clock.sleep(max(0.0, (start - datetime.now().astimezone()).total_seconds()))
                    bar.update(task, description="recording")
                built = streams.record_local(settings, target, seconds, matter=matter, allow_private=allow_private,
                                             on_part=part, on_progress=progress)
        except ServiceError as exc:
            raise UserError(str(exc), "check the URL, or --allow-private for a local stream") from None
    if not as_json:
        console.print(f"{len(built)} part(s) recorded and pending; run `tiezheng seal` to seal them")

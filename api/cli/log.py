"""``tiezheng log``: append events to a log, publish its checkpoints, and export events with proofs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from api.cli.support import DataDir, JsonFlag, input_file
from api.cli.support import writable_settings as _settings

log_app = typer.Typer(no_args_is_help=True, help="Append-only event logs: append, checkpoint, export.")
console = Console()

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The log's name (created on first append).")]


@log_app.command("create")
def log_create(name: Annotated[str, typer.Argument(metavar="NAME", help="The new log's name.")],
               require: Annotated[str | None, typer.Option(
                   help="Comma-separated fields every event must carry (default: event_time, type, actor, "
                        "device_id, ip, session, payload); other fields are allowed.")] = None,
               data_dir: DataDir = None) -> None:
    """Create a log and declare the fields its events must carry (append creates one with the default)."""
    from api.service import log_pipeline

    settings = _settings(data_dir)
    fields = [f.strip() for f in require.split(",") if f.strip()] if require is not None else None
    log = log_pipeline.create(log_pipeline.log_engine(settings), name, fields)
    console.print(f"[green]created[/] log {log.name}: origin {log.origin}, events require "
                  f"{', '.join(json.loads(log.required_fields)) or 'no field'}")


@log_app.command("append")
def log_append(name: NameArg,
               file: Annotated[Path, typer.Argument(metavar="FILE.ndjson", help="One JSON event a line.")],
               data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Append the events of an NDJSON file; each gets its receipt once it is durably committed."""
    from api.service import log_pipeline

    settings = _settings(data_dir)
    receipts = log_pipeline.append_file(log_pipeline.log_engine(settings), name, input_file(file))
    if as_json:
        for receipt in receipts:
            print(json.dumps(receipt.to_json()))
        return
    console.print(f"[green]appended[/] {len(receipts)} event(s) to log {name}: leaf indexes "
                  f"{receipts[0].leaf_index}..{receipts[-1].leaf_index}\n"
                  "  run `tiezheng log checkpoint NAME`, then `tiezheng seal`, to anchor them")


@log_app.command("checkpoint")
def log_checkpoint(name: NameArg, data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Integrate what was appended and publish a signed checkpoint (queued for sealing)."""
    from api.service import log_pipeline

    settings = _settings(data_dir)
    checkpoint = log_pipeline.sequence(settings, log_pipeline.log_engine(settings), name)
    if checkpoint is None:
        console.print("nothing to integrate: the latest checkpoint holds every event")
        return
    if as_json:
        print(json.dumps({"size": checkpoint.size, "root": checkpoint.root, "evidence_id": checkpoint.evidence_id,
                          "note": checkpoint.note}))
        return
    console.print(f"[green]checkpoint[/] of size {checkpoint.size}, root {checkpoint.root}\n"
                  f"  queued for sealing as {checkpoint.evidence_id} (run `tiezheng seal`)")


@log_app.command("export")
def log_export(name: NameArg,
               filter_text: Annotated[str, typer.Option(
                   "--filter", help="e.g. 'type=like AND event_time in [2026-12-01T10:00Z,2026-12-01T11:00Z)'.")] = "",
               fields: Annotated[str | None, typer.Option(
                   help="Comma-separated fields to disclose; the others are replaced by salted hashes.")] = None,
               aggregates: Annotated[bool, typer.Option(
                   "--aggregates", help="Add events per hour per device and per IP, recomputable.")] = False,
               data_dir: DataDir = None, as_json: JsonFlag = False) -> None:
    """Write a log-export evidence package of the selected events, proven against an anchored checkpoint."""
    from api.service import log_pipeline

    settings = _settings(data_dir)
    chosen = [f.strip() for f in fields.split(",") if f.strip()] if fields is not None else None
    built = log_pipeline.export(settings, log_pipeline.log_engine(settings), name, filter_text, chosen,
                                aggregates=aggregates)
    if as_json:
        print(json.dumps({"evidence_id": built.evidence_id, "fingerprint": built.fingerprint.hex(),
                          "package": str(built.path), "status": "sealed"}))
        return
    console.print(f"[green]exported[/] {built.evidence_id}\n  package {built.path}\n"
                  f"  verify it with `tiezheng verify {built.path}`")

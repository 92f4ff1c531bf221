"""The event log's steps for one data dir: create, append, sequence and export (the CLI's and the demo's).

The service's routes call ``api.service.event_log`` with their own session and tenant; these wrap
it for the embedded defaults (SQLite in the data dir, tenant ``local``, the data dir's operator key).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.service.event_log import (
    CheckpointPolicy,
    EventLog,
    LogCheckpoint,
    LogError,
    Receipt,
    Sequencer,
    append,
    create_log,
    find_log,
    get_log,
    parse_filter,
    plan_export,
    sealed_proof_files,
)
from api.service.settings import Settings
from evidence.upload import BuiltPackage
from verifier.package import Requester

LOCAL_TENANT = "local"
#: Lines read per committed ingest batch from a file: one commit (one fsync) per batch.
FILE_BATCH_LINES = 1000


def log_engine(settings: Settings) -> Engine:
    from api.service.db import open_database

    return open_database(settings)


def sequencer_for(settings: Settings, engine: Engine, policy: CheckpointPolicy | None = None) -> Sequencer:
    from api.service.runtime import blob_store, operator_for

    operator = operator_for(settings)
    policy = policy or CheckpointPolicy(every_events=settings.log_checkpoint_events,
                                        every_seconds=settings.log_checkpoint_seconds)
    return Sequencer(engine=engine, blobs=blob_store(settings), sign=operator.signer.sign,
                     public_key=operator.public_key_raw, policy=policy)


def sequencer_loop(settings: Settings, engine: Engine, stop: threading.Event, poll_seconds: float = 1.0,
                   on_step: Callable[[str], None] | None = None) -> None:
    """Publish every log's due checkpoints until ``stop`` is set. Several may run: a lease per log
    lets one integrate it at a time. A failed pass is logged and retried on the next poll.
    ``on_step``: see ``Sequencer.on_step`` (a crash test's failpoint)."""
    sequencer = sequencer_for(settings, engine)
    sequencer.on_step = on_step
    while not stop.is_set():
        try:
            for checkpoint in sequencer.run_all():
                logging.getLogger(__name__).info("log %d: checkpoint %d published", checkpoint.log_id, checkpoint.size)
        except Exception:  # the loop outlives one bad pass; the next poll retries
            logging.getLogger(__name__).exception("log sequencer pass failed")
        stop.wait(poll_seconds)


def create(engine: Engine, name: str, required: Sequence[str] | None, tenant: str = LOCAL_TENANT) -> EventLog:
    """Create a log whose events must carry ``required`` (the default fields when None)."""
    with Session(engine) as session:
        if required is None:
            return create_log(session, tenant, name)
        return create_log(session, tenant, name, required)


def ensure_log(engine: Engine, name: str, tenant: str = LOCAL_TENANT) -> EventLog:
    with Session(engine) as session:
        return find_log(session, tenant, name) or create_log(session, tenant, name)


def append_file(engine: Engine, name: str, file: Path, tenant: str = LOCAL_TENANT,
                batch: int = FILE_BATCH_LINES) -> list[Receipt]:
    """Append an NDJSON file, ``batch`` lines per commit; creates the log on first use."""
    log_id = int(ensure_log(engine, name, tenant).id or 0)
    receipts: list[Receipt] = []
    with file.open("rb") as stream, Session(engine) as session:
        lines: list[bytes] = []
        for line in stream:
            if line.strip():
                lines.append(line)
            if len(lines) >= batch:
                receipts += append(session, log_id, lines)
                lines = []
        if lines:
            receipts += append(session, log_id, lines)
    if not receipts:
        raise LogError(f"{file.name} holds no events", code="event_invalid")
    return receipts


def sequence(settings: Settings, engine: Engine, name: str, tenant: str = LOCAL_TENANT) -> LogCheckpoint | None:
    """Integrate everything committed now and publish its checkpoints (a checkpoint at most every
    ``Sequencer.chunk`` events); return the last one, or None when nothing waited."""
    with Session(engine) as session:
        log = get_log(session, tenant, name)
        log_id, wanted = int(log.id or 0), log.next_index
    sequencer = sequencer_for(settings, engine)
    last = None
    while (published := sequencer.run_once(log_id, force=True)) is not None:
        last = published
        if published.size >= wanted:
            break
    return last


def anchored_ids(engine: Engine, evidence_ids: Sequence[str]) -> set[str]:
    """Which of these checkpoints' sealing items have their proofs attached."""
    from anchor.store import ItemState, SealItem

    with Session(engine) as session:
        rows = session.exec(select(SealItem.evidence_id).where(col(SealItem.evidence_id).in_(list(evidence_ids)),
                                                              SealItem.state == ItemState.ATTACHED)).all()
    return set(rows)


def export(settings: Settings, engine: Engine, name: str, filter_text: str, fields: Sequence[str] | None, *,
           aggregates: bool = False, tenant: str = LOCAL_TENANT, requester: Requester | None = None) -> BuiltPackage:
    """Write a log-export package of the events ``filter_text`` selects, disclosing ``fields`` (all when None)."""
    from api.service.pipeline import local_requester
    from api.service.runtime import blob_store, operator_for
    from evidence.log_export import LogExportInput, build_log_export

    event_filter = parse_filter(filter_text)
    with Session(engine) as session:
        log = get_log(session, tenant, name)
        ids = session.exec(select(LogCheckpoint.evidence_id).where(LogCheckpoint.log_id == log.id)).all()
        plan = plan_export(session, log, event_filter, fields, anchored=anchored_ids(engine, ids),
                           with_aggregates=aggregates)
        proof_files = sealed_proof_files(session, blob_store(settings), plan.anchored)
        origin = log.origin
    export_input = LogExportInput(
        origin=origin, records=plan.records, checkpoint=plan.checkpoint.note.encode(),
        checkpoint_time=plan.checkpoint.published_at, anchored_checkpoint=plan.anchored.note.encode(),
        anchored_time=plan.anchored.published_at, consistency=plan.consistency,
        proof_files=proof_files, filter_text=filter_text, fields=fields,
        aggregates=plan.aggregates)
    return build_log_export(export_input, packages_dir=settings.packages_dir, operator=operator_for(settings),
                            requester=requester or local_requester())

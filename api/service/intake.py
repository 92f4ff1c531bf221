"""Accepting evidence: nothing is acknowledged before it is durable.

An upload is packaged (evidence.upload.build_upload), its bytes stored in the blob store, and its
evidence row, sealing-store row and audit event committed in one transaction, all before the 202.
The tenant and key come from the request's ``Principal`` (looked up once, at authentication), so
an upload without an ``Idempotency-Key`` opens one database session after that.
A capture request commits its rows together with their queue messages (api/service/outbox.py); the relay
publishes them. With an ``Idempotency-Key`` (api/service/idempotency.py) the key's record commits in the
same transaction, and a retry answers with the ids of the first request.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.service import crud, idempotency, jobs, matters, outbox, pipeline
from api.service.capture_choices import CaptureChoices
from api.service.errors import ApiError
from api.service.idempotency import IdempotentRequest
from api.service.models import EvidenceKind
from api.service.pipeline import Filing
from api.service.security import Principal
from api.service.state import ServiceState
from evidence.manifest import new_evidence_id
from evidence.upload import UploadError, build_upload


@dataclass
class ReceivedFile:
    field: str
    filename: str
    path: Path
    size: int = 0


@dataclass(frozen=True)
class Acceptance:
    """What an accepting call answers: the evidence ids, and whether they replay an earlier request's."""

    evidence_ids: list[str]
    replayed: bool = False


def _replay(engine: Engine, who: Principal, request: IdempotentRequest | None) -> Acceptance | None:
    if request is None:
        return None
    with Session(engine) as session:
        found = idempotency.lookup(session, tenant_id=who.tenant_id, request=request)
    return None if found is None else Acceptance(found.evidence_ids, replayed=True)


#: SQLite lets one writer in at a time and makes the others sleep and retry (busy_timeout, in steps
#: of up to 100 ms). With dozens of uploads committing at once most of that time is spent asleep, so
#: upload commits queue instead: on a lock within the process, then on an flock of a file beside the
#: database across processes (``serve --workers``); the kernel wakes the next waiter at once. Other
#: writers (the sealer) still meet the busy timeout, but rarely. PostgreSQL needs none of this.
_sqlite_commit_lock = threading.Lock()
_lock_files: dict[str, int] = {}


@contextlib.contextmanager
def _commit_turn(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    with _sqlite_commit_lock:
        fd = _lock_files.get(database)
        if fd is None:
            fd = _lock_files[database] = os.open(f"{database}.commit-lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _commit(session: Session, engine: Engine, who: Principal, request: IdempotentRequest | None) -> Acceptance | None:
    """Commit; when a concurrent request with the same key won the race, roll back and return its answer."""
    try:
        with _commit_turn(engine):
            session.commit()
    except IntegrityError:
        session.rollback()
        replay = _replay(engine, who, request)
        if replay is None:
            raise
        return replay
    return None


def _check_matter(engine: Engine, who: Principal, matter: str | None) -> None:
    """Refuse (404) a matter that is not the caller's before any work is done."""
    if matter is not None:
        with Session(engine) as session:
            matters.get(session, tenant_id=who.tenant_id, matter_id=matter)


def accept_upload(state: ServiceState, who: Principal, files: Sequence[ReceivedFile], *, note: str,
                  client: str, request: IdempotentRequest | None = None, matter: str | None = None) -> Acceptance:
    """Package ``files`` as one upload evidence item and queue it for sealing (filed under ``matter``)."""
    if (replay := _replay(state.engine, who, request)) is not None:
        return replay
    _check_matter(state.engine, who, matter)
    try:
        # Built in this process's scratch folder, then kept only in the blob store: the blob is the
        # package (no other process reads a path), so one durable name is made, not two.
        built = build_upload([f.path for f in files], packages_dir=state.scratch, operator=state.operator,
                             requester=jobs.requester_named(who.tenant_name, who.key_prefix), note=note,
                             names=[f.filename for f in files], sync_folder=False)
    except UploadError as exc:
        raise ApiError(422, "invalid_upload", str(exc)) from None
    try:
        address = state.blobs.put_file(built.path)
    finally:
        built.path.unlink(missing_ok=True)
    with Session(state.engine) as session:
        pipeline.accept(session, built, Filing(
            tenant_id=who.tenant_id, api_key_id=who.api_key_id, kind=EvidenceKind.UPLOAD,
            title=", ".join(f.filename for f in files), note=note, package_sha256=address))
        if matter is not None:
            matters.file_evidence(session, tenant_id=who.tenant_id, matter_id=matter, evidence_ref=built.evidence_id)
        crud.record_audit(session, action="evidence.upload", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                          target=built.evidence_id, outcome=202, client=client,
                          detail={"files": len(files), "bytes": sum(f.size for f in files),
                                  "fingerprint": built.fingerprint.hex()})
        if request is not None:
            idempotency.remember(session, tenant_id=who.tenant_id, request=request, status_code=202,
                                 evidence_ids=[built.evidence_id])
        if (replay := _commit(session, state.engine, who, request)) is not None:
            return replay  # the twin request's package is the one kept; this blob is left unreferenced
    return Acceptance([built.evidence_id])


def accept_captures(state: ServiceState, who: Principal, urls: Sequence[str], *, note: str, client: str,
                    request: IdempotentRequest | None = None, matter: str | None = None,
                    subject: str | None = None, steps: Sequence[object] | None = None,
                    video: bool = True, choices: CaptureChoices | None = None) -> Acceptance:
    """Record one evidence row and one outbox message per URL, in one transaction, and wake the relay.

    With ``matter`` each capture is filed under it at once (and its manifest will say so). ``steps``
    are checked here, once, so a bad step list is a 422 and not a failed capture later.
    """
    if (replay := _replay(state.engine, who, request)) is not None:
        return replay
    _check_matter(state.engine, who, matter)
    script = pipeline.checked_steps_json(steps) if steps else None
    ids = [new_evidence_id() for _ in urls]
    with Session(state.engine) as session:
        chosen = choices.resolved(session, tenant_id=who.tenant_id) if choices else None
        for row_id, url in zip(ids, urls, strict=True):
            row = crud.accept_capture(session, tenant_id=who.tenant_id, api_key_id=who.api_key_id, row_id=row_id,
                                      url=url, note=note)
            row.subject, row.capture_steps, row.capture_video = subject or None, script, video
            if chosen is not None:
                session.flush()
                chosen.record(session, row_id=row_id)
            outbox.add_capture(session, row_id=row_id)
            if matter is not None:
                matters.file_evidence(session, tenant_id=who.tenant_id, matter_id=matter, evidence_ref=row_id)
        crud.record_audit(session, action="evidence.capture", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                          target=ids[0] if len(ids) == 1 else None, outcome=202, client=client,
                          detail={"evidence_ids": ids, "urls": [u[:200] for u in urls]})
        if request is not None:
            idempotency.remember(session, tenant_id=who.tenant_id, request=request, status_code=202,
                                 evidence_ids=ids)
        if (replay := _commit(session, state.engine, who, request)) is not None:
            return replay
    jobs.failpoint("api:accepted")  # crash tests: committed, not yet published
    state.pool.captures_committed()
    return Acceptance(ids)

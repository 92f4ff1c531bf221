"""Background jobs: plain functions of plain arguments (ids and Settings).

Nothing here depends on the in-process pool that runs them today, so a "scale-out" change can hand
the same functions to Celery or Dramatiq unchanged. Each job opens what it needs from the settings,
is idempotent (a retried or resumed job finds its work done and returns), and commits every state
change together with its audit event.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.service import crud, leases, packages, pipeline, watches
from api.service.blobs import CHUNK_BYTES, BlobStore
from api.service.db import open_database
from api.service.models import ApiKey, Evidence, EvidenceKind, Tenant
from api.service.pipeline import Filing
from api.service.runtime import blob_store, operator_for, service_clock_references
from api.service.scratch import claim
from api.service.security import hide_server_paths
from api.service.settings import Settings, load_settings
from verifier.package import Requester

if TYPE_CHECKING:
    from evidence.capture import WarmCapturer

log = logging.getLogger(__name__)

#: Fault injection for crash tests: ``TIEZHENG_FAILPOINT=<point>`` SIGKILLs the process at that point.
FAILPOINT_ENV = "TIEZHENG_FAILPOINT"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def database(settings: Settings) -> Engine:
    """One migrated engine per database URL and process, shared by the app and its jobs."""
    url = settings.database
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = open_database(settings)
        return engine


def forget_database(settings: Settings) -> None:
    with _engines_lock:
        engine = _engines.pop(settings.database, None)
    if engine is not None:
        engine.dispose()


def failpoint(point: str) -> None:
    """SIGKILL this process when ``TIEZHENG_FAILPOINT`` names ``point``, so a crash test lands between two steps.

    Points: ``api:accepted`` (capture rows and outbox committed, not published), ``capture:leased``,
    ``capture:built`` (package built, not recorded) and ``seal:<state>`` (api.service.workers.run_sealer).
    """
    if os.environ.get(FAILPOINT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def requester_for(session: Session, *, tenant_id: int, api_key_id: int | None) -> Requester:
    """The manifest's requester: the tenant, and the key that asked (its public prefix only)."""
    tenant = session.get(Tenant, tenant_id)
    key = session.get(ApiKey, api_key_id) if api_key_id is not None else None
    return requester_named(tenant.name if tenant else f"tenant {tenant_id}", key.prefix if key else None)


def requester_named(tenant_name: str, key_prefix: str | None) -> Requester:
    """The manifest's requester from names already at hand (an authenticated request has both)."""
    identity = f"{tenant_name} (API key {key_prefix})" if key_prefix else tenant_name
    return Requester(tenant=tenant_name, identity=identity)


_capturer: WarmCapturer | None = None
_capturer_lock = threading.Lock()


def warm_capturer() -> WarmCapturer:
    """One warm browser per process, shared by every capture job it runs (a cold start costs ~3 s).

    Capture (Playwright) loads on the first capture job, so an API process that only accepts never loads it.
    """
    global _capturer
    from evidence.capture import WarmCapturer

    with _capturer_lock:
        if _capturer is None:
            _capturer = WarmCapturer()
        return _capturer


def capture_job(row_id: str, settings: Settings | None = None) -> str:
    """Capture the URL of evidence ``row_id``, store the package and queue it for sealing.

    Returns the evidence status afterwards ("pending" once packaged, "failed" otherwise), or "skipped"
    when another worker holds the capture's lease (api/service/leases.py): a duplicate delivery is dropped.
    A capture that cannot run (no capture module, unreachable or blocked URL) fails its item with
    the reason.
    """
    settings = settings or load_settings()
    engine = database(settings)
    with Session(engine) as session:
        row = session.get(Evidence, row_id)
        if row is None:
            raise LookupError(f"no evidence {row_id}")
        if row.evidence_id is not None or row.error is not None:
            return "failed" if row.error else "pending"
        url, note, tenant_id, key_id = row.title, row.note, row.tenant_id, row.api_key_id
        script = {"steps": tuple(json.loads(row.capture_steps or "[]")), "video": row.capture_video}
        requester = requester_for(session, tenant_id=tenant_id, api_key_id=key_id)
        context = watches.run_context(session, row=row)
    owner, seconds = leases.new_owner(), settings.capture_lease_seconds
    if not leases.take(engine, row_id=row_id, owner=owner, seconds=seconds):
        # Another worker runs it (a redelivered or re-queued message), or it just finished: drop this one.
        log.info("capture %s is leased to another worker or done; message dropped", row_id)
        return "skipped"
    failpoint("capture:leased")
    with leases.LeaseKeeper(engine, row_id=row_id, owner=owner, seconds=seconds):
        return _run_capture(engine, settings, row_id=row_id, owner=owner, url=url, note=note, tenant_id=tenant_id,
                            key_id=key_id, requester=requester, context=context, script=script)


def _run_capture(engine: Engine, settings: Settings, *, row_id: str, owner: str, url: str, note: str,
                 tenant_id: int, key_id: int | None, requester: Requester, context: watches.RunContext,
                 script: dict[str, Any] | None = None) -> str:
    """The capture itself, run while ``owner`` holds its lease; its outcome commits only if it still does."""
    if not settings.capture_enabled:
        return _fail(engine, row_id, tenant_id, "web capture is turned off on this server "
                                                "(TIEZHENG_CAPTURE_ENABLED=false); upload the files instead",
                     owner=owner)
    if context.stream_seconds is not None:
        from api.service.stream_job import run_stream

        return run_stream(engine, settings, row_id=row_id, owner=owner, url=url, note=note, tenant_id=tenant_id,
                          key_id=key_id, requester=requester, context=context,
                          fail=lambda reason: _fail(engine, row_id, tenant_id, reason, owner=owner))
    from api.service.capture_choices import options_for
    from verifier.errors import TiezhengError

    try:
        with Session(engine) as session:
            # A stored session is opened only now, for this capture, and lives in memory only.
            chosen = options_for(session, tenant_id=tenant_id, row_id=row_id)
    except TiezhengError as exc:
        return _fail(engine, row_id, tenant_id, f"capture failed: {exc}", owner=owner)
    blobs = blob_store(settings)
    # With a remote store a built package is transient: it is built in this process's scratch folder,
    # which goes with the process however it dies (a SIGKILL between build and upload leaves no copy).
    build_dir = settings.packages_dir if isinstance(blobs, BlobStore) else claim(settings)
    try:
        from evidence.capture_options import CaptureOptions

        with _previous_package(settings, context.previous_package) as previous_package:
            # A watch run records a 404 as it is: a page that went away is what the watch is for.
            options = CaptureOptions(note=note, allow_private=settings.capture_allow_private,
                                     accept_error_status=context.watch_id is not None, matter=context.matter,
                                     subject=context.subject, previous=context.previous, watch=context.watch_id,
                                     previous_package=previous_package, key_fields=context.fields,
                                     **(script or {}), **chosen).validated()
            [result] = warm_capturer().capture_urls(
                [url], packages_dir=build_dir, operator=operator_for(settings), requester=requester,
                options=options, clock_references=service_clock_references(settings))
    except ImportError as exc:
        return _fail(engine, row_id, tenant_id, f"web capture is not available on this server ({exc}); "
                                                "upload the files instead", owner=owner)
    except Exception as exc:  # any capture failure belongs to this item, not to the worker
        log.warning("capture of evidence %s failed: %s", row_id, type(exc).__name__)
        return _fail(engine, row_id, tenant_id, f"capture failed: {exc}", owner=owner)
    if result.package is None:
        return _fail(engine, row_id, tenant_id, f"capture failed: {result.error}", owner=owner)
    evidence_id, fingerprint, path = result.package.evidence_id, result.package.fingerprint, result.package.path
    failpoint("capture:built")
    try:
        address = blobs.put_file(path)
        with Session(engine) as session:
            if not leases.release(session.connection(), row_id=row_id, owner=owner):
                return _lost(row_id)
            pipeline.accept(session, result.package, Filing(
                tenant_id=tenant_id, api_key_id=key_id, kind=EvidenceKind.WEB_CAPTURE, title=url, note=note,
                package_sha256=address, row_id=row_id))
            watches.record_run(session, row_id=row_id, fingerprint=fingerprint.hex())
            crud.record_audit(session, action="evidence.captured", actor="worker", tenant_id=tenant_id,
                              api_key_id=key_id, target=row_id,
                              detail={"evidence_id": evidence_id, "fingerprint": fingerprint.hex()})
            session.commit()
    finally:
        # With a remote store the bucket holds the package, or nobody will (a lost lease, a failed commit):
        # either way no host keeps a copy nobody reads.
        if not isinstance(blobs, BlobStore):
            path.unlink(missing_ok=True)
    return "pending"


@contextlib.contextmanager
def _previous_package(settings: Settings, address: str | None) -> Iterator[Path | None]:
    """A watch's previous package as a local file for change detection (a temporary copy from a remote
    blob store, removed after); None for a first run or a package the store no longer has."""
    if address is None:
        yield None
        return
    blobs = blob_store(settings)
    if isinstance(blobs, BlobStore):
        local = blobs.path(address)
        yield local if local.is_file() else None
        return
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=settings.tmp_dir, prefix=".previous.", suffix=".wacz") as copy:
        try:
            with blobs.open(address) as stream:
                shutil.copyfileobj(stream, copy, CHUNK_BYTES)
        except Exception as exc:  # the run goes on without a change record; its log says why
            log.warning("previous package %s not readable for change detection: %s", address[:16], exc)
            yield None
            return
        copy.flush()
        yield Path(copy.name)


def _lost(row_id: str) -> str:
    """The lease lapsed while capturing and another worker has the capture now: record nothing."""
    log.warning("capture %s: lease lost before its result was recorded; the result is dropped", row_id)
    return "skipped"


def _fail(engine: Engine, row_id: str, tenant_id: int, reason: str, *, owner: str) -> str:
    reason = hide_server_paths(reason)  # the tenant reads it: a browser or disk error may name host paths
    with Session(engine) as session:
        if not leases.release(session.connection(), row_id=row_id, owner=owner):
            return _lost(row_id)
        crud.fail_evidence(session, row_id=row_id, error=reason)
        watches.record_failure(session, row_id=row_id, reason=reason)
        crud.record_audit(session, action="evidence.failed", actor="worker", tenant_id=tenant_id, target=row_id,
                          outcome=500, detail={"reason": reason[:500]})
        session.commit()
    return "failed"


def record_sealed_job(settings: Settings | None = None, batch_id: str | None = None, *, again: bool = False) -> int:
    """Record the sha256 of each newly sealed package (one batch, or all); see ``packages.record_sealed``.

    ``again`` records every item of ``batch_id`` anew: a late anchor added a file to its packages.
    Returns the count.
    """
    settings = settings or load_settings()
    engine = database(settings)
    blobs = blob_store(settings)
    with Session(engine) as session:
        rows = crud.sealed_in(session, batch_id) if again and batch_id else \
            crud.unrecorded_sealed(session, batch_id=batch_id)
        todo = [e.id for e, _ in rows]
    for row_id in todo:
        packages.record_sealed(engine, blobs, row_id=row_id, again=again)
    return len(todo)


def record_sealed_again(settings: Settings, batch_id: str) -> int:
    """Record anew the sha256 of every sealed package of a batch a late anchor was just added to."""
    return record_sealed_job(settings, batch_id, again=True)

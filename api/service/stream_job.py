"""A stream watch's run: record the live stream for the watch's time, each part filed for the tenant.

``jobs.capture_job`` hands a run here when its watch records a stream. The first part answers the
run's row (its slot); later parts of the same recording (after the size limit) get rows of their
own. Each part's package goes to the blob store and is accepted, with the watch's chain moved to
it, in one transaction the moment it is packaged, so a crash later loses nothing recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.service import crud, leases, pipeline, watches
from api.service.blobs import BlobStore
from api.service.models import EvidenceKind
from api.service.pipeline import Filing
from api.service.runtime import blob_store, operator_for
from api.service.settings import Settings
from verifier.package import Requester

if TYPE_CHECKING:
    from evidence.stream.recording import Plan
    from evidence.upload import BuiltPackage

log = logging.getLogger(__name__)


def run_stream(engine: Engine, settings: Settings, *, row_id: str, owner: str, url: str, note: str, tenant_id: int,
               key_id: int | None, requester: Requester, context: watches.RunContext,
               fail: Callable[[str], str]) -> str:
    """Record the run's stream; returns "pending" once at least one part is accepted, else ``fail(reason)``."""
    from evidence.stream.session import Sink, record_stream

    assert context.stream_seconds is not None
    blobs = blob_store(settings)
    parts: list[BuiltPackage] = []

    def accept_part(built: BuiltPackage, plan: Plan) -> None:
        address = blobs.put_file(built.path)
        with Session(engine) as session:
            pipeline.accept(session, built, Filing(
                tenant_id=tenant_id, api_key_id=key_id, kind=EvidenceKind.STREAM, title=url,
                note=note or f"live stream recording, part {plan.part}", package_sha256=address,
                row_id=row_id if not parts else None))
            # The slot's fingerprint and the watch's chain move to the newest part: the next run links to it.
            watches.record_run(session, row_id=row_id, fingerprint=built.fingerprint.hex())
            crud.record_audit(session, action="evidence.captured", actor="worker", tenant_id=tenant_id,
                              api_key_id=key_id, target=row_id,
                              detail={"evidence_id": built.evidence_id, "fingerprint": built.fingerprint.hex(),
                                      "stream_part": plan.part})
            session.commit()
        parts.append(built)
        if not isinstance(blobs, BlobStore):
            built.path.unlink(missing_ok=True)

    sink = Sink(packages_dir=settings.packages_dir, operator=operator_for(settings), requester=requester,
                on_part=accept_part)
    try:
        record_stream(settings.root / "streams", sink, url=url, seconds=float(context.stream_seconds),
                      matter=context.matter, allow_private=settings.capture_allow_private,
                      previous=context.previous, watch=context.watch_id)
    except Exception as exc:  # a recording failure belongs to this run, not to the worker
        log.warning("stream recording of evidence %s failed: %s", row_id, type(exc).__name__)
        if not parts:
            return fail(f"stream recording failed: {exc}")
    with Session(engine) as session:
        leases.release(session.connection(), row_id=row_id, owner=owner)
        session.commit()
    return "pending"

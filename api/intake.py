"""Accepting evidence: nothing is acknowledged before it is durable.

An upload is packaged (evidence.upload.build_upload), its bytes stored in the blob store, and its
evidence row, sealing-store row and audit event committed in one transaction, all before the 202.
A capture request commits its rows first and then hands one job per URL to the worker pool; the
rows are what a restart resumes from.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from api import crud, jobs
from api.deps import Principal
from api.errors import ApiError
from api.models import EvidenceKind
from api.multipart_stream import ReceivedFile
from api.state import ServiceState
from evidence.manifest import new_evidence_id
from evidence.upload import UploadError, build_upload


def accept_upload(state: ServiceState, who: Principal, files: Sequence[ReceivedFile], *, note: str,
                  client: str) -> str:
    """Package ``files`` as one upload evidence item and queue it for sealing. Returns its id."""
    with Session(state.engine) as session:
        requester = jobs.requester_for(session, tenant_id=who.tenant_id, api_key_id=who.api_key_id)
    try:
        built = build_upload([f.path for f in files], packages_dir=state.settings.packages_dir,
                             operator=state.operator, requester=requester, note=note,
                             names=[f.filename for f in files])
    except UploadError as exc:
        raise ApiError(422, "invalid_upload", str(exc)) from None
    address = state.blobs.put_file(built.path)
    with Session(state.engine) as session:
        crud.accept_package(session, tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                            evidence_id=built.evidence_id, fingerprint=built.fingerprint, package_path=built.path,
                            package_sha256=address, kind=EvidenceKind.UPLOAD,
                            title=", ".join(f.filename for f in files), note=note)
        crud.record_audit(session, action="evidence.upload", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                          target=built.evidence_id, outcome=202, client=client,
                          detail={"files": len(files), "bytes": sum(f.size for f in files),
                                  "fingerprint": built.fingerprint.hex()})
        session.commit()
    return built.evidence_id


def accept_captures(state: ServiceState, who: Principal, urls: Sequence[str], *, note: str, client: str) -> list[str]:
    """Record one evidence row per URL (committed), then queue their capture jobs. Returns the ids."""
    ids = [new_evidence_id() for _ in urls]
    with Session(state.engine) as session:
        for row_id, url in zip(ids, urls, strict=True):
            crud.accept_capture(session, tenant_id=who.tenant_id, api_key_id=who.api_key_id, row_id=row_id, url=url,
                                note=note)
        crud.record_audit(session, action="evidence.capture", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                          target=ids[0] if len(ids) == 1 else None, outcome=202, client=client,
                          detail={"evidence_ids": ids, "urls": [u[:200] for u in urls]})
        session.commit()
    for row_id in ids:
        state.pool.capture(row_id)
    return ids

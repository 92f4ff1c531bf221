"""/v1/evidence: the caller's evidence only. Another tenant's id is answered exactly like a missing one."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response
from sqlmodel import Session

from anchor.store import SealItem
from api import crud, jobs
from api.deps import CurrentUser, SessionDep, StateDep
from api.errors import ApiError, not_found
from api.models import Evidence, EvidencePublic, EvidencesPublic, EvidenceStatus
from api.reports import certificate_pdf, verify
from api.responses import ERRORS, package_response
from api.state import ServiceState
from api.views import evidence_public

router = APIRouter(prefix="/evidence", tags=["evidence"], responses=ERRORS)

#: A screenshot bigger than this is not previewed (the package still holds it).
MAX_PREVIEW_BYTES = 20 << 20
SCREENSHOT_PATH = "evidence/screenshot.png"


def _owned(session: Session, who: CurrentUser, evidence_id: str) -> tuple[Evidence, SealItem | None]:
    found = crud.get_evidence(session, tenant_id=who.tenant_id, row_id=evidence_id)
    if found is None:
        raise not_found()
    return found


def current_package(state: ServiceState, evidence: Evidence, item: SealItem | None) -> tuple[Path, str]:
    """The newest bytes of the package: sealed once sealing attached proofs, else as accepted."""
    status = crud.status_of(evidence, item)
    if status is EvidenceStatus.SEALED and item is not None and evidence.sealed_sha256 is None:
        # The sealer finished before the record job ran: record it now (idempotent).
        address = jobs.record_sealed(state.engine, state.blobs, row_id=evidence.id, tenant_id=evidence.tenant_id,
                                     package_path=Path(item.package_path), batch_id=item.batch_id)
        return state.blobs.path(address), address
    stored = evidence.sealed_sha256 or evidence.package_sha256
    if stored is None:
        raise ApiError(409, "not_ready", "the package is not built yet; poll the evidence status")
    return state.blobs.path(stored), stored


@router.get("", response_model=EvidencesPublic, name="evidence.list", summary="List your evidence")
def list_evidence(session: SessionDep, who: CurrentUser,
                  status: Annotated[EvidenceStatus | None, Query(description="pending, sealed or failed")] = None,
                  q: Annotated[str | None, Query(max_length=200, description="search ids, titles, notes")] = None,
                  page: Annotated[int, Query(ge=1, le=1_000_000)] = 1) -> Any:
    rows, count, pages = crud.list_evidence(session, tenant_id=who.tenant_id, status=status, q=q, page=page)
    return EvidencesPublic(data=[evidence_public(e, s) for e, s in rows], count=count, page=page, pages=pages)


@router.get("/{evidence_id}", response_model=EvidencePublic, name="evidence.read",
            summary="One evidence item: status, fingerprint, batch, anchor, times")
def read_evidence(evidence_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> Any:
    evidence, item = _owned(session, who, evidence_id)
    return evidence_public(evidence, item, engine=state.engine)


@router.get("/{evidence_id}/package", name="evidence.package", summary="Download the .wacz package",
            responses={200: {"content": {"application/zip": {}}, "description": "the .wacz package"}})
def download_package(evidence_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> FileResponse:
    evidence, item = _owned(session, who, evidence_id)
    path, address = current_package(state, evidence, item)
    return package_response(path, address, f"{evidence.evidence_id or evidence.id}.wacz")


@router.get("/{evidence_id}/certificate.pdf", name="evidence.certificate", summary="Download the PDF certificate",
            responses={200: {"content": {"application/pdf": {}}, "description": "the verification certificate"}})
def download_certificate(evidence_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> FileResponse:
    evidence, item = _owned(session, who, evidence_id)
    if crud.status_of(evidence, item) is not EvidenceStatus.SEALED:
        raise ApiError(409, "not_sealed", "a certificate exists once the evidence is sealed")
    path, address = current_package(state, evidence, item)
    name = f"{evidence.evidence_id or evidence.id}"
    pdf = certificate_pdf(state.settings.root / "certificates", path, address, state.trust(), source=f"{name}.wacz")
    return FileResponse(pdf, media_type="application/pdf", filename=f"{name}-certificate.pdf")


@router.get("/{evidence_id}/report", name="evidence.report", summary="Verification report (JSON)")
def verification_report(evidence_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> Any:
    """The package's verification report now (offline), as ``tiezheng verify --json`` prints it."""
    evidence, item = _owned(session, who, evidence_id)
    path, _ = current_package(state, evidence, item)
    return verify(path, state.trust()).to_json()


@router.get("/{evidence_id}/screenshot", name="evidence.screenshot", summary="Screenshot preview",
            responses={200: {"content": {"image/png": {}}, "description": "the capture's screenshot"}})
def screenshot(evidence_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> Response:
    """The capture's screenshot, or the first uploaded image, for previews."""
    evidence, item = _owned(session, who, evidence_id)
    path, _ = current_package(state, evidence, item)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        candidates = [SCREENSHOT_PATH] if SCREENSHOT_PATH in names else [
            n for n in names if n.startswith("evidence/") and n.lower().endswith((".png", ".jpg", ".jpeg", ".webp"))]
        for name in candidates:
            info = archive.getinfo(name)
            if info.file_size <= MAX_PREVIEW_BYTES:
                media = "image/png" if name.lower().endswith(".png") else (
                    "image/webp" if name.lower().endswith(".webp") else "image/jpeg")
                return Response(archive.read(name), media_type=media, headers={"Cache-Control": "private, max-age=60"})
    raise ApiError(404, "no_screenshot", "this evidence has no screenshot or image to preview")

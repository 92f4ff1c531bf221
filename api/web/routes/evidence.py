"""/v1/evidence: the caller's evidence only. Another tenant's id is answered exactly like a missing one."""

from __future__ import annotations

import base64
import zipfile
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlmodel import Session

from api.service import crud
from api.service.blobs import BlobStore
from api.service.errors import ApiError, not_found
from api.service.models import Evidence, EvidencePublic, EvidencesPublic, EvidenceStatus
from api.service.packages import PackageBytes, current_package, digest, package_file
from api.service.reports import certificate_pdf, verify
from api.service.state import ServiceState
from api.service.views import evidence_public
from api.web.deps import CurrentUser, SessionDep, StateDep
from api.web.responses import ERRORS, AsciiJSONResponse, package_response

router = APIRouter(prefix="/evidence", tags=["evidence"], responses=ERRORS)

#: A screenshot bigger than this is not previewed (the package still holds it).
MAX_PREVIEW_BYTES = 20 << 20
SCREENSHOT_PATH = "evidence/screenshot.png"


def _owned(session: Session, who: CurrentUser, evidence_id: str) -> tuple[Evidence, Any]:
    found = crud.get_evidence(session, tenant_id=who.tenant_id, row_id=evidence_id)
    if found is None:
        raise not_found()
    return found


def _package_download(state: ServiceState, package: PackageBytes, filename: str) -> Response:
    """A local blob as a file; anything else (an S3 blob, a sealed package put together) streamed, with the
    same length, hash headers and file name."""
    if package.address is not None and isinstance(state.blobs, BlobStore):
        return package_response(state.blobs.path(package.address), package.address, filename)
    quoted = quote(filename)
    disposition = f'attachment; filename="{filename}"' if quoted == filename else \
        f"attachment; filename*=utf-8''{quoted}"
    headers = {"Content-Disposition": disposition, "Content-Length": str(package.size),
               "Cache-Control": "private, no-transform"}
    if package.sha256 is not None:
        digest = base64.b64encode(bytes.fromhex(package.sha256)).decode()
        headers |= {"ETag": f'"{package.sha256}"', "Repr-Digest": f"sha-256=:{digest}:"}
    return StreamingResponse(package.chunks(), media_type="application/zip", headers=headers)


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
def download_package(evidence_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> Response:
    evidence, item = _owned(session, who, evidence_id)
    package = current_package(state, session, evidence, item)
    return _package_download(state, package, f"{evidence.evidence_id or evidence.id}.wacz")


@router.get("/{evidence_id}/certificate.pdf", name="evidence.certificate", summary="Download the PDF certificate",
            responses={200: {"content": {"application/pdf": {}}, "description": "the verification certificate"}})
def download_certificate(evidence_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> FileResponse:
    evidence, item = _owned(session, who, evidence_id)
    if crud.status_of(evidence, item) is not EvidenceStatus.SEALED:
        raise ApiError(409, "not_sealed", "a certificate exists once the evidence is sealed")
    package = current_package(state, session, evidence, item)
    name = f"{evidence.evidence_id or evidence.id}"
    with package_file(state, package) as path:
        pdf = certificate_pdf(state.settings.root / "certificates", path, digest(package), state.trust(),
                              source=f"{name}.wacz", verify_url=state.settings.verify_url)
    return FileResponse(pdf, media_type="application/pdf", filename=f"{name}-certificate.pdf")


@router.get("/{evidence_id}/report", name="evidence.report", summary="Verification report (JSON)")
def verification_report(evidence_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> Any:
    """The package's verification report now (offline), as ``tiezheng verify --json`` prints it."""
    evidence, item = _owned(session, who, evidence_id)
    with package_file(state, current_package(state, session, evidence, item)) as path:
        return AsciiJSONResponse(verify(path, state.trust()).to_json())


@router.get("/{evidence_id}/screenshot", name="evidence.screenshot", summary="Screenshot preview",
            responses={200: {"content": {"image/png": {}}, "description": "the capture's screenshot"}})
def screenshot(evidence_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> Response:
    """The capture's screenshot, or the first uploaded image, for previews."""
    evidence, item = _owned(session, who, evidence_id)
    with package_file(state, current_package(state, session, evidence, item)) as path, zipfile.ZipFile(path) as archive:
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

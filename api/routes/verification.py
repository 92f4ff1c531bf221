"""POST /v1/verify: anyone (a court, the public) may check a package; no key needed.

The answer is the JSON report of ``tiezheng-verify --json`` (offline, with this service's trust),
whatever the verdict: ``verified``, ``failed`` or ``unusable`` (a malformed package is a finding,
not a server error). The body is size-limited and streamed to disk; verify_package refuses zip
bombs, path traversal and oversized members itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api.deps import StateDep, limit_anonymous
from api.models import ErrorResponse
from api.multipart_stream import ReceivedForm, receive_form
from api.reports import verify, write_pdf
from api.responses import AsciiJSONResponse
from api.state import ServiceState

router = APIRouter(prefix="/verify", tags=["verify"], dependencies=[Depends(limit_anonymous)])

VERIFY_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "a .wacz evidence package"}}}}}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "package over the size limit"},
    415: {"model": ErrorResponse, "description": "not multipart/form-data"},
    422: {"model": ErrorResponse, "description": "no file field"},
    429: {"model": ErrorResponse, "description": "rate limited"}}


async def _received(request: Request, state: ServiceState) -> ReceivedForm:
    return await receive_form(request, workdir=state.settings.tmp_dir, limit=state.settings.verify_max_bytes)


@router.post("", name="verify", summary="Verify a package (no key needed)", openapi_extra=VERIFY_BODY, responses={
    200: {"description": "the verification report (verdict verified, verified (offline), failed or unusable)"},
    **RESPONSES})
async def verify_upload(request: Request, state: StateDep) -> AsciiJSONResponse:
    form = await _received(request, state)
    try:
        report = await run_in_threadpool(verify, form.files[0].path, state.trust())
    finally:
        form.discard()
    request.state.audit_detail = {"verdict": report.verdict.value, "fingerprint": report.fingerprint}
    return AsciiJSONResponse(report.to_json(), headers={"X-Tiezheng-Verdict": report.verdict.value})


@router.post("/certificate.pdf", name="verify.certificate",
             summary="Verify a package and get the PDF certificate", openapi_extra=VERIFY_BODY, responses={
    200: {"content": {"application/pdf": {}}, "description": "the report as a PDF certificate"},
    501: {"model": ErrorResponse, "description": "no PDF renderer on this server"}, **RESPONSES})
async def verify_certificate(request: Request, state: StateDep) -> FileResponse:
    """The same verification, rendered as the PDF certificate."""
    form = await _received(request, state)
    try:
        upload = form.files[0]
        report = await run_in_threadpool(verify, upload.path, state.trust())
        pdf = form.folder / "certificate.pdf"
        await run_in_threadpool(lambda: write_pdf(report, pdf, source=upload.filename))
    except BaseException:
        form.discard()
        raise
    request.state.audit_detail = {"verdict": report.verdict.value, "fingerprint": report.fingerprint}
    return FileResponse(pdf, media_type="application/pdf", filename="tiezheng-verification.pdf",
                        background=BackgroundTask(form.discard))

"""POST /v1/verify: anyone (a court, the public) may check a package; no key needed.

The answer is the JSON report of ``tiezheng-verify --json`` (offline, with this service's trust),
whatever the verdict: ``verified``, ``failed`` or ``unusable`` (a malformed package is a finding,
not a server error). Anyone may call this, so each call has a budget: the body is size-limited
(413) and streamed to disk; verify_package refuses zip bombs, path traversal and oversized members
from the central directory before decompressing anything; at most ``verify_concurrency``
verifications run at once (503 ``busy`` with Retry-After, checked before the body is read and again
before verifying), each in a worker process stopped after ``verify_timeout_seconds`` (503
``verification_timeout``).
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from api.service.errors import ApiError
from api.service.models import ErrorResponse
from api.service.reports import write_pdf
from api.service.state import ServiceState
from api.service.verify_pool import VerifyBusy, VerifyCrashed, VerifyPool, VerifyTimeout
from api.web.deps import StateDep, limit_anonymous
from api.web.multipart_stream import ReceivedForm, receive_form
from api.web.responses import AsciiJSONResponse
from verifier.verdict import Report

router = APIRouter(prefix="/verify", tags=["verify"], dependencies=[Depends(limit_anonymous)])

VERIFY_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "string", "format": "binary", "description": "a .wacz evidence package"}}}}}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorResponse, "description": "package over the size limit"},
    415: {"model": ErrorResponse, "description": "not multipart/form-data"},
    422: {"model": ErrorResponse, "description": "no file field"},
    429: {"model": ErrorResponse, "description": "rate limited"},
    503: {"model": ErrorResponse, "description": "busy (see Retry-After), or over the time budget"}}
#: How long a client told "busy" should wait: about one ordinary verification.
BUSY_RETRY_SECONDS = 5
_POOL_LOCK = threading.Lock()


def _pool(request: Request, state: ServiceState) -> VerifyPool:
    """The app's one pool of verification workers, made on first use."""
    with _POOL_LOCK:
        pool = getattr(request.app.state, "verify_pool", None)
        if not isinstance(pool, VerifyPool):
            pool = VerifyPool(size=state.settings.verify_concurrency, timeout=state.settings.verify_timeout_seconds)
            request.app.state.verify_pool = pool
        return pool


def _busy() -> ApiError:
    return ApiError(503, "busy", f"the server is verifying as many packages as it allows; retry in "
                    f"{BUSY_RETRY_SECONDS} s", headers={"Retry-After": str(BUSY_RETRY_SECONDS)})


async def _received(request: Request, state: ServiceState) -> ReceivedForm:
    return await receive_form(request, workdir=state.scratch, limit=state.settings.verify_max_bytes)


async def _verify_received(request: Request, state: ServiceState) -> tuple[ReceivedForm, Report]:
    """Receive the package and verify it within the budget. The caller discards the form."""
    pool = _pool(request, state)
    if pool.full:
        raise _busy()
    form = await _received(request, state)
    try:
        path = form.files[0].path
        report = await run_in_threadpool(lambda: pool.verify(path, state.published_trust().text))
    except BaseException as exc:
        form.discard()
        if isinstance(exc, VerifyBusy):
            raise _busy() from None
        if isinstance(exc, VerifyTimeout):
            raise ApiError(503, "verification_timeout",
                           f"verifying this package took longer than {pool.timeout:g} s and was stopped; "
                           "verify it with tiezheng-verify on your own machine") from None
        if isinstance(exc, VerifyCrashed):
            raise ApiError(503, "verification_failed", "the verification worker stopped unexpectedly; "
                           "verify the package with tiezheng-verify on your own machine") from None
        raise
    return form, report


@router.post("", name="verify", summary="Verify a package (no key needed)", openapi_extra=VERIFY_BODY, responses={
    200: {"description": "the verification report (verdict verified, verified (offline), failed or unusable)"},
    **RESPONSES})
async def verify_upload(request: Request, state: StateDep) -> AsciiJSONResponse:
    form, report = await _verify_received(request, state)
    form.discard()
    request.state.audit_detail = {"verdict": report.verdict.value, "fingerprint": report.fingerprint}
    return AsciiJSONResponse(report.to_json(), headers={"X-Tiezheng-Verdict": report.verdict.value})


@router.post("/certificate.pdf", name="verify.certificate",
             summary="Verify a package and get the PDF certificate", openapi_extra=VERIFY_BODY, responses={
    200: {"content": {"application/pdf": {}}, "description": "the report as a PDF certificate"},
    501: {"model": ErrorResponse, "description": "no PDF renderer on this server"}, **RESPONSES})
async def verify_certificate(request: Request, state: StateDep) -> FileResponse:
    """The same verification, rendered as the PDF certificate."""
    form, report = await _verify_received(request, state)
    try:
        upload = form.files[0]
        pdf = form.folder / "certificate.pdf"
        await run_in_threadpool(lambda: write_pdf(report, pdf, source=upload.filename, package=upload.path,
                                                  verify_url=state.settings.verify_url))
    except BaseException:
        form.discard()
        raise
    request.state.audit_detail = {"verdict": report.verdict.value, "fingerprint": report.fingerprint}
    return FileResponse(pdf, media_type="application/pdf", filename="tiezheng-verification.pdf",
                        background=BackgroundTask(form.discard))

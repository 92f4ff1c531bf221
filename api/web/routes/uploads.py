"""POST /v1/uploads: files become one upload evidence item, durable before the 202."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.service.errors import ApiError
from api.service.idempotency import IdempotentRequest, digest, file_sha256, parse_key
from api.service.intake import ReceivedFile, accept_upload
from api.service.models import MAX_NOTE_CHARS, Accepted, ErrorResponse
from api.web.deps import CurrentUser, IdempotencyKey, StateDep, client_address
from api.web.multipart_stream import receive_form
from api.web.responses import ERRORS, mark_replay

router = APIRouter(prefix="/uploads", tags=["uploads"], responses=ERRORS)

#: The body is read by api.web.multipart_stream (streamed, size-limited), so OpenAPI is told its shape here.
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"}, "minItems": 1},
                   "note": {"type": "string", "maxLength": MAX_NOTE_CHARS},
                   "matter": {"type": "string", "maxLength": 40}}}}}}}


@router.post("", status_code=202, response_model=Accepted, name="evidence.upload",
             summary="Upload files as evidence", openapi_extra=UPLOAD_BODY,
             responses={400: {"model": ErrorResponse, "description":
                              "malformed or truncated multipart body, or a boundary over 70 characters"},
                        413: {"model": ErrorResponse, "description": "over the upload size limit"},
                        415: {"model": ErrorResponse, "description": "not multipart/form-data"}})
async def upload(request: Request, response: Response, who: CurrentUser, state: StateDep,
                 idempotency_key: IdempotencyKey = None) -> Any:
    """Package one or more ``file`` fields as one evidence item (manifest kind ``upload``) and queue it.

    The body streams to disk; over ``TIEZHENG_UPLOAD_MAX_BYTES`` it is refused with 413, and a body
    with broken framing or without its closing boundary with 400 (never sealed truncated). Each
    file's name is recorded as sent; on disk and in the package it gets a safe name of ours. The
    answer comes after the package, its row and its sealing entry are committed. With
    ``Idempotency-Key``, a retry of the same upload (same note, file names and bytes) answers the
    first evidence id. A ``matter`` field files the item under one of the tenant's matters (404 otherwise).
    """
    key = parse_key(idempotency_key)  # a malformed key is refused before the body is read
    form = await receive_form(request, workdir=state.scratch, limit=state.settings.upload_max_bytes)
    try:
        note = form.fields.get("note", "")
        if len(note) > MAX_NOTE_CHARS:
            raise ApiError(422, "invalid_request", f"note: at most {MAX_NOTE_CHARS} characters")
        matter = form.fields.get("matter") or None
        digest_note = note if matter is None else f"{note}\x00matter={matter}"
        idem = None if key is None else IdempotentRequest(key, await run_in_threadpool(upload_digest, form.files,
                                                                                       digest_note))
        accepted = await run_in_threadpool(accept_upload, state, who, form.files, note=note,
                                           client=client_address(request), request=idem, matter=matter)
    finally:
        await run_in_threadpool(form.discard)  # removing a folder may wait on the disk: not on the event loop
    mark_replay(request, response, accepted)
    return Accepted(evidence_ids=accepted.evidence_ids)


def upload_digest(files: list[ReceivedFile], note: str) -> str:
    """What an upload asked for: its note and each file's field, name and content hash, in order."""
    return digest("POST /v1/uploads", [note, *(f"{f.field}\0{f.filename}\0{file_sha256(f.path)}" for f in files)])

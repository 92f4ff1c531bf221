"""/v1/notices: a tenant's takedown notices. Another tenant's notice is answered exactly like a missing one.

Every route calls ``api.service.notices``; sending and importing run in the thread pool (SMTP, DNS).
A reply is posted as the raw message (``Content-Type: message/rfc822``), byte for byte as received.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.service import notices
from api.service.errors import ApiError
from api.service.notice_models import (
    NoticeCreate,
    NoticePublic,
    NoticeReplyPublic,
    NoticeSend,
    NoticeVersionPublic,
    NoticeWithdraw,
)
from api.web.deps import CurrentUser, StateDep, client_address
from api.web.responses import ERRORS

router = APIRouter(prefix="/notices", tags=["notices"], responses=ERRORS)

#: A reply is one e-mail; the importer's own limit (evidence.notices.reply.MAX_REPLY_BYTES).
MAX_REPLY_BYTES = 32 << 20


def _desk(state: StateDep) -> notices.NoticeDesk:
    return notices.NoticeDesk(settings=state.settings, engine=state.engine, operator=state.operator,
                              blobs=state.blobs)


@router.post("", status_code=201, response_model=NoticeVersionPublic, name="notices.draft", summary="Draft a notice")
async def draft(body: NoticeCreate, request: Request, who: CurrentUser, state: StateDep) -> Any:
    """Record a draft (nothing is sent) and answer what each rule set finds missing. With ``corrects``,
    a correction of a sent notice: a new version linked to the sealed one before it."""
    return await run_in_threadpool(notices.draft, _desk(state), notices.Caller.of_principal(who), body,
                                   client=client_address(request))


@router.get("/{notice_id}", response_model=NoticePublic, name="notices.show", summary="A notice")
async def show(notice_id: str, who: CurrentUser, state: StateDep) -> Any:
    """Every version (completeness per rule set, deadline, sealed package) and every reply."""
    return await run_in_threadpool(notices.show, _desk(state), notices.Caller.of_principal(who), notice_id)


@router.post("/{notice_id}/send", status_code=202, response_model=NoticeVersionPublic, name="notices.send",
             summary="Send a notice")
async def send(notice_id: str, body: NoticeSend, request: Request, who: CurrentUser, state: StateDep) -> Any:
    """Send the draft by SMTP, DKIM-signed, and seal exactly what went out (evidence of kind ``notice``).
    422 ``incomplete_notice`` names every missing element per rule set; nothing is sent then."""
    return await run_in_threadpool(notices.send, _desk(state), notices.Caller.of_principal(who), notice_id,
                                   to=body.to, allow_incomplete=body.allow_incomplete,
                                   client=client_address(request))


@router.post("/{notice_id}/withdraw", status_code=202, response_model=NoticeVersionPublic, name="notices.withdraw",
             summary="Withdraw a notice")
async def withdraw(notice_id: str, body: NoticeWithdraw, request: Request, who: CurrentUser, state: StateDep) -> Any:
    """Send and seal a withdrawal: a new version linked to the last sent one."""
    return await run_in_threadpool(notices.withdraw, _desk(state), notices.Caller.of_principal(who), notice_id,
                                   reason=body.reason, client=client_address(request))


@router.post("/{notice_id}/replies", status_code=202, response_model=NoticeReplyPublic, name="notices.reply",
             summary="Import a reply")
async def import_reply(notice_id: str, request: Request, who: CurrentUser, state: StateDep) -> Any:
    """Import a reply or delivery-status notification (the raw message as the body): its DKIM
    signature is checked and the message sealed with the key's DNS record (evidence of kind ``notice-reply``)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_REPLY_BYTES:
            raise ApiError(413, "too_large", f"a reply is at most {MAX_REPLY_BYTES} bytes")
    if not body:
        raise ApiError(422, "invalid_reply", "the body must be the reply message (message/rfc822)")
    return await run_in_threadpool(notices.reply, _desk(state), notices.Caller.of_principal(who), notice_id,
                                   bytes(body), client=client_address(request))

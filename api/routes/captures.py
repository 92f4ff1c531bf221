"""POST /v1/captures: web pages to capture; each URL becomes one evidence item, captured by a job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import CurrentUser, StateDep, client_address
from api.intake import accept_captures
from api.models import Accepted, CaptureCreate
from api.responses import ERRORS

router = APIRouter(prefix="/captures", tags=["captures"], responses=ERRORS)


@router.post("", status_code=202, response_model=Accepted, name="evidence.capture", summary="Capture web pages")
async def capture(body: CaptureCreate, request: Request, who: CurrentUser, state: StateDep) -> Any:
    """Accept URLs for capture. The ids answer at once; poll GET /v1/evidence/{id} for the status.

    An item fails (status ``failed`` with the reason) when its page cannot be captured: the host is
    unreachable, the address is private (SSRF guard), or capture is not installed on this server.
    """
    ids = await run_in_threadpool(accept_captures, state, who, body.urls, note=body.note,
                                  client=client_address(request))
    request.state.audited = True
    return Accepted(evidence_ids=ids)

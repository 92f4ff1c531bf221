"""POST /v1/captures: web pages to capture; each URL becomes one evidence item, captured by a job."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.service.capture_choices import CaptureChoices
from api.service.idempotency import IdempotentRequest, digest, parse_key
from api.service.intake import accept_captures
from api.service.models import Accepted, CaptureCreate
from api.web.deps import CurrentUser, IdempotencyKey, StateDep, client_address
from api.web.responses import ERRORS, mark_replay

router = APIRouter(prefix="/captures", tags=["captures"], responses=ERRORS)


@router.post("", status_code=202, response_model=Accepted, name="evidence.capture", summary="Capture web pages")
async def capture(body: CaptureCreate, request: Request, response: Response, who: CurrentUser, state: StateDep,
                  idempotency_key: IdempotencyKey = None) -> Any:
    """Accept URLs for capture. The ids answer at once; poll GET /v1/evidence/{id} for the status.

    An item fails (status ``failed`` with the reason) when its page cannot be captured: the host is
    unreachable, the address is private (SSRF guard), or capture is not installed on this server.
    With ``Idempotency-Key``, a retry of the same request answers the same ids (and
    ``Idempotent-Replayed: true``) instead of capturing again. ``matter`` files the captures under
    one of the tenant's matters (404 when it is not one); ``matter`` and ``subject`` go into each manifest.
    ``steps`` is a scripted step list run before the screenshot (422 with the reason when it is not
    valid); it is recorded in each manifest. ``video: false`` turns the session video off.
    ``session`` captures logged in with a stored session (``/v1/sessions``; 404 when not yours),
    ``egress`` through a configured egress proxy (422 when not configured), and ``save_media`` also
    stores every embedded image, audio and video as its own artifact.
    """
    key = parse_key(idempotency_key)
    idem = None if key is None else IdempotentRequest(key, digest(
        "POST /v1/captures", [json.dumps({"urls": body.urls, "note": body.note, "matter": body.matter,
                                          "subject": body.subject, "steps": body.steps, "video": body.video,
                                          "session": body.session, "egress": body.egress,
                                          "save_media": body.save_media}, sort_keys=True)]))
    choice = CaptureChoices(session=body.session, egress=body.egress, save_media=body.save_media)
    accepted = await run_in_threadpool(accept_captures, state, who, body.urls, note=body.note,
                                       client=client_address(request), request=idem, matter=body.matter,
                                       subject=body.subject, steps=body.steps, video=body.video, choices=choice)
    mark_replay(request, response, accepted)
    return Accepted(evidence_ids=accepted.evidence_ids)

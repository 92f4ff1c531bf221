"""/v1/logs/{name}: a tenant's append-only event logs (issue 16).

``POST events`` takes NDJSON and answers with one receipt per event once they are committed;
``checkpoint`` and ``tile/...`` serve the log in the C2SP tlog-tiles layout (the caller's key is
required: a log is its tenant's); ``POST exports`` writes a log-export evidence package.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.service import log_pipeline
from api.service.errors import ApiError
from api.service.event_log import append, get_log, latest_checkpoint, read_tile
from api.service.pipeline import requester
from api.web.deps import CurrentUser, SessionDep, StateDep
from api.web.responses import ERRORS

router = APIRouter(prefix="/logs", tags=["logs"], responses=ERRORS)

#: Largest NDJSON body: about 16,000 events of 2 KB; clients send more in several requests.
MAX_EVENTS_BODY = 32 << 20


class LogCreate(BaseModel):
    name: str = Field(min_length=1, max_length=63)
    required: list[str] | None = Field(default=None, description="Fields every event must carry; others allowed.")


class ExportRequest(BaseModel):
    filter: str = Field(default="", max_length=2000, description="e.g. type=like AND event_time in [A,B)")
    fields: list[str] | None = Field(default=None, description="Fields to disclose; the others as salted hashes.")
    aggregates: bool = False


@router.post("", status_code=201, name="logs.create", summary="Create a log and declare its events' fields")
def create_event_log(body: LogCreate, who: CurrentUser, state: StateDep) -> Any:
    log = log_pipeline.create(state.engine, body.name, body.required, who.tenant_name)
    return {"name": log.name, "origin": log.origin, "required": json.loads(log.required_fields)}


@router.post("/{name}/events", status_code=201, name="logs.append", summary="Append NDJSON events")
async def append_events(name: str, request: Request, who: CurrentUser, state: StateDep) -> Any:
    """Each event gets its sequence number and leaf index only after the whole request is committed."""
    declared = int(request.headers.get("content-length") or 0)
    if declared > MAX_EVENTS_BODY:
        raise ApiError(413, "body_too_large", f"at most {MAX_EVENTS_BODY} bytes of events a request")
    body = await request.body()
    if len(body) > MAX_EVENTS_BODY:
        raise ApiError(413, "body_too_large", f"at most {MAX_EVENTS_BODY} bytes of events a request")

    def commit() -> list[dict[str, Any]]:
        log = log_pipeline.ensure_log(state.engine, name, who.tenant_name)
        with Session(state.engine) as session:
            return [r.to_json() for r in append(session, int(log.id or 0), body.splitlines())]

    return {"receipts": await run_in_threadpool(commit)}


@router.get("/{name}/checkpoint", name="logs.checkpoint", summary="The latest signed checkpoint (C2SP)")
def read_checkpoint(name: str, session: SessionDep, who: CurrentUser) -> Response:
    checkpoint = latest_checkpoint(session, get_log(session, who.tenant_name, name))
    if checkpoint is None:
        raise ApiError(404, "no_checkpoint", "the log has published no checkpoint yet")
    return Response(checkpoint.note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"})


@router.get("/{name}/tile/{path:path}", name="logs.tile", summary="A tile or entry bundle (C2SP tlog-tiles)")
def read_log_tile(name: str, path: str, session: SessionDep, who: CurrentUser, state: StateDep) -> Response:
    data = read_tile(session, state.blobs, get_log(session, who.tenant_name, name), f"tile/{path}")
    # A full tile never changes; a partial one is replaced by a wider one, under another path.
    return Response(data, media_type="application/octet-stream",
                    headers={"Cache-Control": "public, max-age=31536000, immutable"})


@router.post("/{name}/exports", name="logs.export", summary="Export events with proofs as an evidence package")
def export_events(name: str, body: ExportRequest, who: CurrentUser, state: StateDep) -> Response:
    built = log_pipeline.export(state.settings, state.engine, name, body.filter, body.fields,
                                aggregates=body.aggregates, tenant=who.tenant_name,
                                requester=requester(who.tenant_name, f"API key {who.key_prefix}"))
    return FileResponse(built.path, media_type="application/zip", filename=f"{built.evidence_id}.wacz")

"""/v1/matters: the caller's cases. Another tenant's matter is answered exactly like a missing one (404)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from api.service import crud, matters
from api.service.errors import not_found
from api.service.matter_timeline import MatterTimeline
from api.service.matter_timeline import matter_timeline as build_matter_timeline
from api.service.matter_timeline import subject_timeline as build_subject_timeline
from api.service.models import MAX_SUBJECT_CHARS, FilingMove, MatterCreate, MatterLogPublic, MatterPublic
from api.web.deps import CurrentUser, SessionDep, StateDep, client_address
from api.web.responses import ERRORS, AsciiJSONResponse

router = APIRouter(prefix="/matters", tags=["matters"], responses=ERRORS)

DOCUMENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"


@router.post("", status_code=201, response_model=MatterPublic, name="matters.create", summary="Open a matter")
def create_matter(body: MatterCreate, request: Request, who: CurrentUser, session: SessionDep) -> Any:
    """Open a matter (a case) to file evidence and watches under. Its log starts with a ``created`` line."""
    matter = matters.create(session, tenant_id=who.tenant_id, title=body.title, reference=body.reference)
    crud.record_audit(session, action="matter.create", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                      target=matter.id, outcome=201, client=client_address(request))
    session.commit()
    return matters.public(session, matter)


@router.get("", response_model=list[MatterPublic], name="matters.list", summary="List your matters")
def list_matters(who: CurrentUser, session: SessionDep) -> Any:
    return [matters.public(session, m) for m in matters.list_for(session, tenant_id=who.tenant_id)]


@router.get("/{matter_id}", response_model=MatterPublic, name="matters.get", summary="One matter")
def get_matter(matter_id: str, who: CurrentUser, session: SessionDep) -> Any:
    """The matter with the ids of the evidence filed under it now."""
    matter = matters.get(session, tenant_id=who.tenant_id, matter_id=matter_id)
    return matters.public(session, matter, with_evidence=True)


@router.get("/{matter_id}/log", response_model=list[MatterLogPublic], name="matters.log", summary="A matter's log")
def matter_log(matter_id: str, who: CurrentUser, session: SessionDep) -> Any:
    """Every line of the matter's append-only log; each line's ``entry_sha256`` covers the one before."""
    return matters.log_public(matters.log_of(session, tenant_id=who.tenant_id, matter_id=matter_id))


@router.post("/{matter_id}/evidence", response_model=MatterPublic, name="matters.file",
             summary="File or move evidence under this matter")
def file_evidence(matter_id: str, body: FilingMove, request: Request, who: CurrentUser, session: SessionDep) -> Any:
    """File one of your evidence items under this matter, moving it from its current one if any.

    The sealed package is not changed (its manifest keeps the matter of capture time); both matters'
    logs record the move.
    """
    found = crud.get_evidence(session, tenant_id=who.tenant_id, row_id=body.evidence_id)
    if found is None:
        raise not_found()
    move = matters.move_evidence(session, tenant_id=who.tenant_id, evidence_ref=found[0].id, to_matter=matter_id,
                                 known=True)
    crud.record_audit(session, action="matter.file", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                      target=matter_id, client=client_address(request),
                      detail={"evidence": move.evidence_ref, "from": move.from_matter})
    session.commit()
    return matters.public(session, matters.get(session, tenant_id=who.tenant_id, matter_id=matter_id),
                          with_evidence=True)


FormatQuery = Annotated[Literal["json", "html", "pdf"], Query(
    description="json: the verification report; html or pdf: the bilingual document")]


def _timeline_answer(found: MatterTimeline, form: str, name: str) -> Response:
    if form == "html":
        # The document is self-contained (inline style, data: thumbnails); nothing in it may run.
        return HTMLResponse(found.html(), headers={"Content-Security-Policy": DOCUMENT_CSP})
    if form == "pdf":
        return Response(found.pdf(), media_type="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{name}-timeline.pdf"'})
    return AsciiJSONResponse({**found.report.to_json(), "without_package": list(found.without_package)})


TIMELINE_RESPONSES: dict[int | str, dict[str, Any]] = {200: {
    "content": {"application/json": {}, "text/html": {}, "application/pdf": {}},
    "description": "the `tiezheng-verify timeline --json` report, or its document"}}


@router.get("/{matter_id}/timeline", name="matters.timeline", summary="A matter's timeline, verified",
            responses=TIMELINE_RESPONSES)
def matter_timeline(matter_id: str, who: CurrentUser, session: SessionDep, state: StateDep,
                    format: FormatQuery = "json") -> Response:
    """Every package filed under the matter, verified now (offline) as one timeline: TL1 (each watch's
    captures form one chain) and TL2 (their order agrees with the TSA times), in time order."""
    # A sync route runs in the thread pool; verifying is CPU work, as /report's is.
    found = build_matter_timeline(session, state.blobs, state.settings, tenant_id=who.tenant_id,
                                  matter_id=matter_id, trust=state.trust())
    return _timeline_answer(found, format, matter_id)


subjects = APIRouter(prefix="/timeline", tags=["matters"], responses=ERRORS)


@subjects.get("", name="subjects.timeline", summary="A subject's timeline across matters, verified",
              responses=TIMELINE_RESPONSES)
def subject_timeline(who: CurrentUser, session: SessionDep, state: StateDep,
                     subject: Annotated[str, Query(min_length=1, max_length=MAX_SUBJECT_CHARS,
                                                   description="the seller, account id or shop URL")],
                     format: FormatQuery = "json") -> Response:
    """Every item of yours whose manifest names this subject, from every matter, as one verified timeline:
    a seller who comes back under a new store is shown beside the old one."""
    found = build_subject_timeline(session, state.blobs, state.settings, tenant_id=who.tenant_id, subject=subject,
                                   trust=state.trust())
    return _timeline_answer(found, format, "subject")

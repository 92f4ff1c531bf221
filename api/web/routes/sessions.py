"""/v1/sessions: the caller's stored browser sessions for logged-in captures.

The storage state goes in once and never comes out: the answers show the name, the declared
account, the state's sha256 and counts. Another tenant's session is answered like a missing one (404).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.service import browser_sessions, crud
from api.service.session_models import BrowserSessionCreate, BrowserSessionPublic
from api.web.deps import CurrentUser, SessionDep, client_address
from api.web.responses import ERRORS

router = APIRouter(prefix="/sessions", tags=["sessions"], responses=ERRORS)


@router.post("", status_code=201, response_model=BrowserSessionPublic, name="sessions.create",
             summary="Store a browser session")
def create_session(body: BrowserSessionCreate, request: Request, who: CurrentUser, session: SessionDep) -> Any:
    """Store a Playwright storage state (cookies and local storage) under ``name``, encrypted at rest.

    Name it in ``POST /v1/captures`` (``session``) to capture logged in as ``account``. Each such
    capture's manifest states the account and the state's sha256, and its S4 check warns that the
    session was supplied by the requester. 409 when the name is in use, and 409 ``session_key_missing``
    when the server has no session key configured.
    """
    state = browser_sessions.state_bytes(body.storage_state)
    row = browser_sessions.create(session, tenant_id=who.tenant_id, name=body.name, account=body.account,
                                  state=state)
    crud.record_audit(session, action="session.create", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                      target=body.name, outcome=201, client=client_address(request),
                      detail={"account": body.account[:200], "state_sha256": row.state_sha256})
    session.commit()
    return browser_sessions.public(row)


@router.get("", response_model=list[BrowserSessionPublic], name="sessions.list", summary="List your sessions")
def list_sessions(who: CurrentUser, session: SessionDep) -> Any:
    return [browser_sessions.public(r) for r in browser_sessions.list_for(session, tenant_id=who.tenant_id)]


@router.delete("/{name}", status_code=204, name="sessions.delete", summary="Remove a stored session")
def delete_session(name: str, request: Request, who: CurrentUser, session: SessionDep) -> Response:
    """Remove the session and its encrypted state. Captures already queued with it then fail."""
    browser_sessions.remove(session, tenant_id=who.tenant_id, name=name)
    crud.record_audit(session, action="session.delete", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                      target=name, outcome=204, client=client_address(request))
    session.commit()
    return Response(status_code=204)

"""/v1/watches: pages captured again on a schedule. Another tenant's watch answers like a missing one (404)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from api.service import crud, watches
from api.service.models import WatchCreate, WatchPublic, WatchState
from api.web.deps import CurrentUser, SessionDep, StateDep, client_address
from api.web.responses import ERRORS

router = APIRouter(prefix="/watches", tags=["watches"], responses=ERRORS)


@router.post("", status_code=201, response_model=WatchPublic, name="watches.create", summary="Watch a page")
def create_watch(body: WatchCreate, request: Request, who: CurrentUser, session: SessionDep,
                 state: StateDep) -> Any:
    """Capture ``url`` now and then every ``every`` (``6h``, ``30m``, ``1d``) until ``until``.

    Each run is a full capture and a sealed package whose manifest carries ``previous`` (the
    fingerprint of the watch's previous run), ``matter`` and ``subject``. A slot the scheduler could
    not run on time is recorded as ``missed``, never run late.
    """
    watch = watches.create(session, tenant_id=who.tenant_id, api_key_id=who.api_key_id, url=body.url,
                           every_seconds=watches.parse_every(body.every),
                           min_seconds=state.settings.watch_min_seconds, until=body.until, matter_id=body.matter,
                           subject=body.subject, fields=body.fields)
    crud.record_audit(session, action="watch.create", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                      target=watch.id, outcome=201, client=client_address(request),
                      detail={"url": body.url[:200], "every_seconds": watch.every_seconds})
    session.commit()
    return watches.public(watch)


@router.get("", response_model=list[WatchPublic], name="watches.list", summary="List your watches")
def list_watches(who: CurrentUser, session: SessionDep) -> Any:
    return [watches.public(w) for w in watches.list_for(session, tenant_id=who.tenant_id)]


@router.get("/{watch_id}", response_model=WatchPublic, name="watches.get", summary="One watch and its slots")
def get_watch(watch_id: str, who: CurrentUser, session: SessionDep) -> Any:
    """The watch with its newest slots: each ``queued``, ``done``, ``failed`` or ``missed`` (with why)."""
    watch = watches.get(session, tenant_id=who.tenant_id, watch_id=watch_id)
    return watches.public(watch, watches.slots_of(session, watch_id=watch.id))


def _set_state(watch_id: str, new: WatchState, request: Request, who: CurrentUser, session: SessionDep) -> Any:
    watch = watches.set_state(session, tenant_id=who.tenant_id, watch_id=watch_id, state=new)
    crud.record_audit(session, action=f"watch.{new.value}", tenant_id=who.tenant_id, api_key_id=who.api_key_id,
                      target=watch_id, client=client_address(request))
    session.commit()
    return watches.public(watch)


@router.post("/{watch_id}/pause", response_model=WatchPublic, name="watches.pause", summary="Pause a watch")
def pause_watch(watch_id: str, request: Request, who: CurrentUser, session: SessionDep) -> Any:
    return _set_state(watch_id, WatchState.PAUSED, request, who, session)


@router.post("/{watch_id}/resume", response_model=WatchPublic, name="watches.resume", summary="Resume a watch")
def resume_watch(watch_id: str, request: Request, who: CurrentUser, session: SessionDep) -> Any:
    """Resume at the next slot from now; the slots while paused are not runs and are not recorded."""
    return _set_state(watch_id, WatchState.ACTIVE, request, who, session)


@router.delete("/{watch_id}", status_code=204, name="watches.remove", summary="Remove a watch")
def remove_watch(watch_id: str, request: Request, who: CurrentUser, session: SessionDep) -> Response:
    """Stop the watch for good. Its runs stay: their packages are evidence."""
    _set_state(watch_id, WatchState.REMOVED, request, who, session)
    return Response(status_code=204)

"""GET /v1/batches/{id}: a batch the caller has evidence in (root, TSA times, anchor)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.service import crud
from api.service.errors import not_found
from api.service.models import BatchPublic
from api.service.views import batch_view
from api.web.deps import CurrentUser, SessionDep, StateDep
from api.web.responses import ERRORS

router = APIRouter(prefix="/batches", tags=["batches"], responses=ERRORS)


@router.get("/{batch_id}", response_model=BatchPublic, name="batch.read",
            summary="A batch: root, TSA times, anchor transaction")
def read_batch(batch_id: str, session: SessionDep, who: CurrentUser, state: StateDep) -> Any:
    """A batch holds many tenants' items; a tenant sees it only if one of them is its own."""
    if len(batch_id) > 40 or not crud.tenant_has_batch(session, tenant_id=who.tenant_id, batch_id=batch_id):
        raise not_found("batch")
    batch = batch_view(state.engine, batch_id)
    if batch is None:
        raise not_found("batch")
    return batch

"""Dependencies, as in the full-stack template: ``SessionDep``, ``CurrentUser``, ``StateDep``.

The caller of the API is a tenant, through one of its keys (``Authorization: Bearer tzk_...``).
Authentication also takes a token from the key's rate-limit bucket and notes the tenant and key
on the request, for the audit trail.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from api.service import crud, idempotency
from api.service.errors import ApiError
from api.service.models import utcnow
from api.service.security import Principal
from api.service.state import ServiceState

#: ``last_used_at`` is refreshed at most this often, so reads do not each cost a write.
LAST_USED_RESOLUTION = timedelta(minutes=5)

bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey",
                    description="An API key from `tiezheng tenants create NAME` (shown once).")


def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.service
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    with Session(state.engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _rate_limited(wait: float) -> ApiError:
    seconds = max(1, math.ceil(wait))
    return ApiError(429, "rate_limited", f"too many requests; retry in {seconds} s",
                    headers={"Retry-After": str(seconds)})


def limit_anonymous(request: Request, state: StateDep) -> None:
    """Rate-limit a call that carries no key, per client address."""
    wait = state.anonymous_limiter.take(f"ip:{client_address(request)}")
    if wait:
        raise _rate_limited(wait)


def get_current_user(request: Request, state: StateDep,
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Principal:
    """The calling tenant and key. Raises 401 (no, invalid or revoked key) or 429 (over the key's rate).

    Uses a session of its own, closed before the handler runs: an upload streaming its body must
    not hold a pooled database connection meanwhile (50 slow uploads would starve the pool). The
    key and its tenant come in one query; handlers take both from the ``Principal`` and never look
    them up again.
    """
    challenge = {"WWW-Authenticate": "Bearer"}
    if credentials is None:
        limit_anonymous(request, state)
        raise ApiError(401, "missing_api_key", "send an API key: Authorization: Bearer <key>", headers=challenge)
    with Session(state.engine) as session:
        check = crud.check_api_key(session, token=credentials.credentials, secret=state.key_secret)
        key = check.key
        if key is None or key.id is None:
            # Failed attempts draw on the address's bucket: guessing keys is rate-limited too.
            limit_anonymous(request, state)
            message = "this API key was revoked" if check.problem == "revoked_api_key" else "invalid API key"
            raise ApiError(401, check.problem or "invalid_api_key", message, headers=challenge)
        request.state.tenant_id, request.state.api_key_id = key.tenant_id, key.id
        wait = state.limiter.take(f"key:{key.id}")
        if wait:
            raise _rate_limited(wait)
        assert check.tenant_name is not None  # the query joins the tenant: a key has one
        principal = Principal(tenant_id=key.tenant_id, tenant_name=check.tenant_name, api_key_id=key.id,
                              key_prefix=key.prefix)
        now = utcnow()
        last = key.last_used_at
        if last is None or now - (last if last.tzinfo else last.replace(tzinfo=now.tzinfo)) > LAST_USED_RESOLUTION:
            key.last_used_at = now
            session.add(key)
            session.commit()
    return principal


CurrentUser = Annotated[Principal, Depends(get_current_user)]

#: The ``Idempotency-Key`` header as a route parameter (documented in OpenAPI); checked by
#: ``idempotency.parse_key``.
IdempotencyKey = Annotated[str | None, Header(alias=idempotency.HEADER, description=idempotency.KEY_DESCRIPTION)]

"""The audit trail: one row per API call, written after the answer, whoever called and however it went.

Calls that change state write their own event inside their transaction (so the change and its
record commit together) and mark the request ``audited``; this middleware records every other call:
reads, downloads, verifications, and every refusal (401, 404, 413, 429, ...). Rows hold the route
name, the target id, the outcome and the client address, never a key or a request body.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.service import crud

log = logging.getLogger(__name__)

AUDITED_PREFIX = "/v1/"


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(AUDITED_PREFIX):
            await self.app(scope, receive, send)
            return
        outcome = 500

        async def remember_status(message: Message) -> None:
            nonlocal outcome
            if message["type"] == "http.response.start":
                outcome = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, remember_status)
        finally:
            state: dict[str, Any] = scope.get("state", {})
            if not state.get("audited"):
                await anyio.to_thread.run_sync(_write, scope, outcome, state)


def _write(scope: Scope, outcome: int, state: dict[str, Any]) -> None:
    service = getattr(scope["app"].state, "service", None)
    if service is None:
        return
    route = scope.get("route")
    action = getattr(route, "name", None) or f"{scope['method']} (no route)"
    params = scope.get("path_params") or {}
    target = next((str(v) for k, v in params.items() if k in ("evidence_id", "batch_id")), None)
    client = scope.get("client")
    try:
        with Session(service.engine) as session:
            crud.record_audit(session, action=action, tenant_id=state.get("tenant_id"),
                              api_key_id=state.get("api_key_id"), target=target, outcome=outcome,
                              client=client[0] if client else None, detail=state.get("audit_detail"))
            session.commit()
    except Exception as exc:  # an audit write must not turn an answered request into an error
        log.error("audit write failed for %s: %s", action, type(exc).__name__)

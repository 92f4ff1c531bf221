"""Idempotency keys on the accepting endpoints (``Idempotency-Key`` header, per tenant).

A client that lost the answer to ``POST /v1/captures`` or ``/v1/uploads`` retries with the same key
and gets the same evidence ids and status code, never a second item. The key's record is written
in the transaction that accepts the request, so "accepted" and "remembered" commit together; two
concurrent requests with one key race on a unique constraint and the loser answers with the
winner's ids. A key reused for a different request (another endpoint or body) is refused with 422,
as the IETF draft on the header suggests. Records are kept: they are small, and a retry may come late.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import Session, select

from api.service.errors import ApiError
from api.service.models import IdempotencyRecord

HEADER = "Idempotency-Key"
#: Printable ASCII without spaces, as long as a UUID or a client's own scheme needs.
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
#: Described in the OpenAPI schema (the header parameter of each accepting endpoint, api/web/deps.py).
KEY_DESCRIPTION = ("A client-chosen key (1–255 printable ASCII characters, e.g. a UUID). A retry with the same "
                   "key and body returns the first answer; the same key with another body is refused (422).")

@dataclass(frozen=True)
class IdempotentRequest:
    """The key a request carried and the digest of what it asked for."""

    key: str
    digest: str


@dataclass(frozen=True)
class Replay:
    status_code: int
    evidence_ids: list[str]


def parse_key(value: str | None) -> str | None:
    """The header's key, or None when absent; 422 when malformed."""
    if value is None:
        return None
    if not KEY_PATTERN.fullmatch(value):
        raise ApiError(422, "invalid_request",
                       f"{HEADER}: 1 to 255 printable ASCII characters without spaces")
    return value


def digest(endpoint: str, parts: Iterable[str]) -> str:
    """sha256 over the endpoint and the request's canonical parts (each length-prefixed, so none runs into the next)."""
    hasher = hashlib.sha256()
    for part in (endpoint, *parts):
        data = part.encode()
        hasher.update(len(data).to_bytes(8, "big") + data)
    return hasher.hexdigest()


def file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def lookup(session: Session, *, tenant_id: int, request: IdempotentRequest) -> Replay | None:
    """The answer already given under this key, or None; 422 when the key was used for another request."""
    record = session.exec(select(IdempotencyRecord).where(IdempotencyRecord.tenant_id == tenant_id,
                                                          IdempotencyRecord.key == request.key)).first()
    if record is None:
        return None
    if record.request_sha256 != request.digest:
        raise ApiError(422, "idempotency_key_reused",
                       f"this {HEADER} was already used for a different request; use a new key for a new request")
    return Replay(record.status_code, list(json.loads(record.evidence_ids)))


def remember(session: Session, *, tenant_id: int, request: IdempotentRequest, status_code: int,
             evidence_ids: list[str]) -> None:
    """Record the answer, in the caller's transaction (the one that accepts the request)."""
    session.add(IdempotencyRecord(tenant_id=tenant_id, key=request.key, request_sha256=request.digest,
                                  status_code=status_code, evidence_ids=json.dumps(evidence_ids)))

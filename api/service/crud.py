"""Database operations. Keyword-only; every read of evidence takes ``tenant_id`` and filters on it.

Functions add to the session and leave the commit to the caller, so that an action, its rows in the
sealing store and its audit event commit together or not at all.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, case, func
from sqlmodel import Session, col, select

from anchor.store import ItemState, SealItem
from api.service.models import (
    ApiKey,
    AuditEvent,
    Evidence,
    EvidenceKind,
    EvidenceStatus,
    Tenant,
    utcnow,
)
from api.service.security import NewKey, key_matches, key_prefix

if TYPE_CHECKING:
    from api.service.pipeline import Filing
    from evidence.upload import BuiltPackage

#: Items per page of GET /v1/evidence.
PAGE_SIZE = 20
#: Longest search string; longer is cut (a LIKE over huge patterns is only load).
MAX_QUERY_CHARS = 200


# -- tenants and keys ------------------------------------------------------------------------------

def create_tenant(session: Session, *, name: str) -> Tenant:
    tenant = Tenant(name=name)
    session.add(tenant)
    session.flush()
    return tenant


def tenant_by_name(session: Session, *, name: str) -> Tenant | None:
    return session.exec(select(Tenant).where(Tenant.name == name)).first()


def add_api_key(session: Session, *, tenant_id: int, key: NewKey, label: str = "") -> ApiKey:
    row = ApiKey(tenant_id=tenant_id, prefix=key.prefix, key_hash=key.key_hash, label=label)
    session.add(row)
    session.flush()
    return row


def revoke_api_key(session: Session, *, prefix: str) -> ApiKey | None:
    """Mark the key revoked (idempotent). Returns None when no key has this prefix."""
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
    return row


def keys_of(session: Session, *, tenant_id: int) -> Sequence[ApiKey]:
    return session.exec(select(ApiKey).where(ApiKey.tenant_id == tenant_id).order_by(col(ApiKey.id))).all()


@dataclass(frozen=True)
class KeyCheck:
    """The outcome of presenting a key: the row when it matched, and why not otherwise."""

    key: ApiKey | None
    problem: str | None
    #: The key's tenant, read in the same query (the caller names it in the audit trail and manifests).
    tenant_name: str | None = None


_DUMMY_HASH = "0" * 64


def check_api_key(session: Session, *, token: str, secret: bytes) -> KeyCheck:
    prefix = key_prefix(token)
    # One query per request: the key and its tenant's name together.
    found = session.exec(select(ApiKey, Tenant.name).join(Tenant, col(Tenant.id) == col(ApiKey.tenant_id))
                         .where(ApiKey.prefix == prefix)).first() if prefix else None
    row, tenant_name = found if found else (None, None)
    # Compare even when there is no row, so a miss costs the same time as a wrong secret.
    matched = key_matches(token, row.key_hash if row else _DUMMY_HASH, secret)
    if row is None or not matched:
        return KeyCheck(None, "invalid_api_key")
    if row.revoked_at is not None:
        return KeyCheck(None, "revoked_api_key")
    return KeyCheck(row, None, tenant_name)


# -- evidence --------------------------------------------------------------------------------------

def record_package(session: Session, built: BuiltPackage, filing: Filing) -> Evidence:
    """The tenant's evidence row for a built package, in the caller's transaction (api.service.pipeline.accept)."""
    row = session.get(Evidence, filing.row_id) if filing.row_id else None
    if row is None:
        row = Evidence(id=filing.row_id or built.evidence_id, tenant_id=filing.tenant_id,
                       api_key_id=filing.api_key_id, kind=filing.kind, title=filing.title[:4000], note=filing.note)
    row.evidence_id = built.evidence_id
    row.fingerprint = built.fingerprint.hex()
    row.package_sha256 = filing.package_sha256
    row.packaged_at = utcnow()
    session.add(row)
    return row


def accept_capture(session: Session, *, tenant_id: int, api_key_id: int | None, row_id: str, url: str,
                   note: str) -> Evidence:
    """Record a capture request; a job builds the package later (``pipeline.accept`` with the filing's ``row_id``)."""
    row = Evidence(id=row_id, tenant_id=tenant_id, api_key_id=api_key_id, kind=EvidenceKind.WEB_CAPTURE,
                   title=url, note=note)
    session.add(row)
    return row


def fail_evidence(session: Session, *, row_id: str, error: str) -> Evidence | None:
    row = session.get(Evidence, row_id)
    if row is not None:
        row.error = error[:2000]
        session.add(row)
    return row


def _status() -> ColumnElement[str]:
    """Status as SQL: failed when the job failed, sealed when the seal item is attached, else pending."""
    return case((col(Evidence.error).is_not(None), EvidenceStatus.FAILED.value),
                (col(SealItem.state) == ItemState.ATTACHED.value, EvidenceStatus.SEALED.value),
                else_=EvidenceStatus.PENDING.value)


def _joined() -> Any:
    return (select(Evidence, SealItem)
            .outerjoin(SealItem, col(SealItem.evidence_id) == col(Evidence.evidence_id)))


def get_evidence(session: Session, *, tenant_id: int, row_id: str) -> tuple[Evidence, SealItem | None] | None:
    """The tenant's evidence by public id (or package evidence id), with its seal item; else None."""
    statement = _joined().where(col(Evidence.tenant_id) == tenant_id).where(
        (col(Evidence.id) == row_id) | (col(Evidence.evidence_id) == row_id))
    found = session.exec(statement).first()
    return None if found is None else (found[0], found[1])


def list_evidence(session: Session, *, tenant_id: int, status: EvidenceStatus | None = None, q: str | None = None,
                  page: int = 1, page_size: int = PAGE_SIZE) -> tuple[list[tuple[Evidence, SealItem | None]], int, int]:
    """One page of the tenant's evidence, newest first. Returns (rows, total count, page count)."""
    where: list[ColumnElement[bool]] = [col(Evidence.tenant_id) == tenant_id]
    if status is not None:
        where.append(_status() == status.value)
    if q:
        needle = q[:MAX_QUERY_CHARS]
        where.append(col(Evidence.id).icontains(needle, autoescape=True)
                     | col(Evidence.title).icontains(needle, autoescape=True)
                     | col(Evidence.note).icontains(needle, autoescape=True)
                     | col(Evidence.evidence_id).icontains(needle, autoescape=True)
                     | col(Evidence.fingerprint).icontains(needle, autoescape=True))
    counted = (select(func.count()).select_from(Evidence)
               .outerjoin(SealItem, col(SealItem.evidence_id) == col(Evidence.evidence_id)).where(*where))
    total = int(session.exec(counted).one())
    rows = session.exec(_joined().where(*where).order_by(col(Evidence.created_at).desc(), col(Evidence.id).desc())
                        .offset((page - 1) * page_size).limit(page_size)).all()
    return [(e, s) for e, s in rows], total, max(1, math.ceil(total / page_size))


def status_of(evidence: Evidence, item: SealItem | None) -> EvidenceStatus:
    if evidence.error is not None:
        return EvidenceStatus.FAILED
    if item is not None and item.state == ItemState.ATTACHED:
        return EvidenceStatus.SEALED
    return EvidenceStatus.PENDING


def tenant_has_batch(session: Session, *, tenant_id: int, batch_id: str) -> bool:
    """True when the tenant has at least one item in the batch: the only way it may see the batch."""
    statement = (select(func.count()).select_from(Evidence)
                 .join(SealItem, col(SealItem.evidence_id) == col(Evidence.evidence_id))
                 .where(col(Evidence.tenant_id) == tenant_id, col(SealItem.batch_id) == batch_id))
    return int(session.exec(statement).one()) > 0


def evidence_with_item(session: Session, *, row_id: str) -> tuple[Evidence, SealItem | None] | None:
    """Any tenant's evidence by its row id, with its seal item (a system job's lookup)."""
    found = session.exec(_joined().where(col(Evidence.id) == row_id)).first()
    return None if found is None else (found[0], found[1])


def sealed_in(session: Session, batch_id: str) -> list[tuple[Evidence, SealItem]]:
    """Every sealed evidence item of a batch (all tenants: a system job)."""
    statement = (select(Evidence, SealItem).join(SealItem, col(SealItem.evidence_id) == col(Evidence.evidence_id))
                 .where(col(SealItem.state) == ItemState.ATTACHED.value, col(SealItem.batch_id) == batch_id))
    return [(e, s) for e, s in session.exec(statement).all()]


def unrecorded_sealed(session: Session, *, batch_id: str | None = None) -> list[tuple[Evidence, SealItem]]:
    """Sealed evidence whose sealed package's sha256 is not recorded yet (all tenants: a system job)."""
    statement = (select(Evidence, SealItem).join(SealItem, col(SealItem.evidence_id) == col(Evidence.evidence_id))
                 .where(col(SealItem.state) == ItemState.ATTACHED.value, col(Evidence.sealed_sha256).is_(None)))
    if batch_id is not None:
        statement = statement.where(col(SealItem.batch_id) == batch_id)
    return [(e, s) for e, s in session.exec(statement).all()]


def tenant_of(session: Session, *, tenant_id: int) -> Tenant | None:
    return session.get(Tenant, tenant_id)


# -- audit -----------------------------------------------------------------------------------------

def record_audit(session: Session, *, action: str, tenant_id: int | None = None, api_key_id: int | None = None,
                 actor: str = "api", target: str | None = None, outcome: int = 200, client: str | None = None,
                 detail: dict[str, Any] | None = None, at: datetime | None = None) -> AuditEvent:
    event = AuditEvent(action=action, tenant_id=tenant_id, api_key_id=api_key_id, actor=actor,
                       target=None if target is None else target[:200], outcome=outcome,
                       client=None if client is None else client[:100],
                       detail=None if detail is None else json.dumps(detail, ensure_ascii=False)[:4000],
                       at=at or utcnow())
    session.add(event)
    return event


def audit_events(session: Session, *, tenant_id: int | None = None, limit: int = 100) -> Sequence[AuditEvent]:
    statement = select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(limit)
    if tenant_id is not None:
        statement = statement.where(AuditEvent.tenant_id == tenant_id)
    return session.exec(statement).all()

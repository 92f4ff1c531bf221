"""Matters: a tenant's case, the evidence filed under it, and its own hash-chained log.

Every change to a matter (created, evidence filed, moved in or out, a watch added) appends one line
to ``matter_log``. A line's hash covers its facts and the previous line's hash (the first line's
previous is 64 zeros), so a line changed or removed later breaks every hash after it; the
unique (matter, seq) pair and a compare-and-set on ``matter.log_head`` mean two writers can never
fork the log. Filing evidence never touches its sealed package: the package holds ``matter`` as
it was at capture time, and a later move is a fact of the matter log, not of the package.

Every function takes ``tenant_id`` and treats another tenant's matter as absent (404), like evidence.
Functions add to the caller's session; the caller commits, so a filing commits with its evidence.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, func, select

from api.service.errors import ApiError, not_found
from api.service.models import (
    Matter,
    MatterFiling,
    MatterLogEntry,
    MatterLogPublic,
    MatterPublic,
    Tenant,
    utcnow,
)
from verifier.canonical import canonical_json

#: The previous hash of a matter's first log line.
GENESIS = "0" * 64
MATTER_ID_RANDOM_BYTES = 8
MAX_TITLE_CHARS = 200
#: The tenant the embedded CLI files under: the same name its manifests give as requester.
LOCAL_TENANT = "local"


def new_matter_id() -> str:
    return f"mt-{secrets.token_hex(MATTER_ID_RANDOM_BYTES)}"


def entry_hash(*, matter_id: str, seq: int, at: str, action: str, detail: bytes, previous: str) -> str:
    """sha256 (hex) of one log line: the canonical JSON of its fields, the previous line's hash among them."""
    line = {"matter": matter_id, "seq": seq, "at": at, "action": action,
            "detail": json.loads(detail), "previous": previous}
    return hashlib.sha256(canonical_json(line)).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append_log(session: Session, matter: Matter, action: str, detail: dict[str, Any]) -> MatterLogEntry:
    """Append one line to ``matter``'s log, in the caller's transaction.

    Raises ApiError 409 when another writer appended first (the compare-and-set on the head lost):
    the caller's transaction must be rolled back and retried, never committed around a fork.
    """
    previous, seq = matter.log_head, matter.log_length
    at = utcnow()
    body = canonical_json(detail)
    digest = entry_hash(matter_id=matter.id, seq=seq, at=_iso(at), action=action, detail=body, previous=previous)
    moved = session.connection().execute(
        update(Matter).where(col(Matter.id) == matter.id, col(Matter.log_head) == previous,
                             col(Matter.log_length) == seq)
        .values(log_head=digest, log_length=seq + 1))
    if moved.rowcount != 1:
        raise ApiError(409, "conflict", "the matter changed meanwhile; try again")
    entry = MatterLogEntry(matter_id=matter.id, seq=seq, at=at, action=action, detail=body.decode(),
                           previous_sha256=previous, entry_sha256=digest)
    session.add(entry)
    # The row object mirrors what the UPDATE wrote, so a second append in this transaction chains on.
    set_committed_value(matter, "log_head", digest)
    set_committed_value(matter, "log_length", seq + 1)
    return entry


def create(session: Session, *, tenant_id: int, title: str, reference: str = "") -> Matter:
    title = title.strip()
    if not 1 <= len(title) <= MAX_TITLE_CHARS:
        raise ApiError(422, "invalid_request", f"title: 1 to {MAX_TITLE_CHARS} characters")
    matter = Matter(id=new_matter_id(), tenant_id=tenant_id, title=title, reference=reference[:200],
                    log_head=GENESIS, log_length=0)
    session.add(matter)
    session.flush()
    append_log(session, matter, "created", {"title": title, "reference": matter.reference})
    return matter


def get(session: Session, *, tenant_id: int, matter_id: str) -> Matter:
    """The tenant's matter. Raises ApiError 404 when absent or another tenant's (the same answer)."""
    matter = session.get(Matter, matter_id)
    if matter is None or matter.tenant_id != tenant_id:
        raise not_found("matter")
    return matter


def list_for(session: Session, *, tenant_id: int) -> Sequence[Matter]:
    return session.exec(select(Matter).where(Matter.tenant_id == tenant_id)
                        .order_by(col(Matter.created_at).desc(), col(Matter.id))).all()


def log_of(session: Session, *, tenant_id: int, matter_id: str) -> Sequence[MatterLogEntry]:
    get(session, tenant_id=tenant_id, matter_id=matter_id)
    return session.exec(select(MatterLogEntry).where(MatterLogEntry.matter_id == matter_id)
                        .order_by(col(MatterLogEntry.seq))).all()


def filed_under(session: Session, *, tenant_id: int, matter_id: str) -> list[str]:
    """The evidence refs filed under the matter now, oldest filing first."""
    get(session, tenant_id=tenant_id, matter_id=matter_id)
    return list(session.exec(select(MatterFiling.evidence_ref).where(
        MatterFiling.matter_id == matter_id, MatterFiling.tenant_id == tenant_id)
        .order_by(col(MatterFiling.filed_at), col(MatterFiling.evidence_ref))).all())


def count_filed(session: Session, *, matter_id: str) -> int:
    return int(session.exec(select(func.count()).select_from(MatterFiling)
                            .where(MatterFiling.matter_id == matter_id)).one())


def file_evidence(session: Session, *, tenant_id: int, matter_id: str, evidence_ref: str,
                  how: str = "filed", detail: dict[str, Any] | None = None) -> None:
    """File ``evidence_ref`` under the matter (a new item: at capture or upload) and log it."""
    matter = get(session, tenant_id=tenant_id, matter_id=matter_id)
    session.add(MatterFiling(evidence_ref=evidence_ref, tenant_id=tenant_id, matter_id=matter_id))
    append_log(session, matter, how, {"evidence": evidence_ref, **(detail or {})})


@dataclass(frozen=True)
class Move:
    evidence_ref: str
    from_matter: str | None
    to_matter: str


def move_evidence(session: Session, *, tenant_id: int, evidence_ref: str, to_matter: str,
                  known: bool) -> Move:
    """File existing evidence under ``to_matter``, logging the move in both matters' logs.

    ``known`` says the caller checked that the evidence is the tenant's (evidence lookups are the
    caller's: the embedded CLI's items have no evidence row). The sealed package is not touched.
    """
    if not known:
        raise not_found()
    target = get(session, tenant_id=tenant_id, matter_id=to_matter)
    filing = session.get(MatterFiling, evidence_ref)
    if filing is not None and filing.tenant_id != tenant_id:
        raise not_found()
    source = filing.matter_id if filing is not None else None
    if source == to_matter:
        return Move(evidence_ref, source, to_matter)
    if filing is None:
        session.add(MatterFiling(evidence_ref=evidence_ref, tenant_id=tenant_id, matter_id=to_matter))
        append_log(session, target, "filed", {"evidence": evidence_ref})
    else:
        old = get(session, tenant_id=tenant_id, matter_id=filing.matter_id)
        filing.matter_id, filing.filed_at = to_matter, utcnow()
        session.add(filing)
        append_log(session, old, "moved-out", {"evidence": evidence_ref, "to": to_matter})
        append_log(session, target, "moved-in", {"evidence": evidence_ref, "from": old.id})
    return Move(evidence_ref, source, to_matter)


def chain_intact(entries: Sequence[MatterLogEntry], *, matter_id: str) -> bool:
    """True when each line's hash recomputes and names the previous line's hash, from the genesis on."""
    previous = GENESIS
    for seq, entry in enumerate(entries):
        digest = entry_hash(matter_id=matter_id, seq=entry.seq, at=_iso(entry.at), action=entry.action,
                            detail=entry.detail.encode(), previous=entry.previous_sha256)
        if entry.seq != seq or entry.previous_sha256 != previous or digest != entry.entry_sha256:
            return False
        previous = digest
    return True


def local_tenant_id(session: Session) -> int:
    """The embedded CLI's tenant (made on first use), so its matters and watches live in the same tables."""
    tenant = session.exec(select(Tenant).where(Tenant.name == LOCAL_TENANT)).first()
    if tenant is None:
        tenant = Tenant(name=LOCAL_TENANT)
        session.add(tenant)
        session.flush()
    assert tenant.id is not None
    return tenant.id


def public(session: Session, matter: Matter, *, with_evidence: bool = False) -> MatterPublic:
    evidence = filed_under(session, tenant_id=matter.tenant_id, matter_id=matter.id) if with_evidence else []
    return MatterPublic(id=matter.id, title=matter.title, reference=matter.reference, created_at=matter.created_at,
                        log_head=matter.log_head, log_length=matter.log_length, evidence=evidence)


def log_public(entries: Sequence[MatterLogEntry]) -> list[MatterLogPublic]:
    return [MatterLogPublic(seq=e.seq, at=e.at, action=e.action, detail=json.loads(e.detail),
                            previous_sha256=e.previous_sha256, entry_sha256=e.entry_sha256) for e in entries]

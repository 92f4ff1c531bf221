"""Rows to public models: evidence with its seal item and batch, as the API shows them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Engine

from anchor.sealer import batch_status
from anchor.store import SealItem
from api.service.crud import status_of
from api.service.models import AnchorPublic, BatchPublic, Evidence, EvidencePublic, TimestampPublic


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back naive; every stored time is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def batch_public(status: dict[str, Any]) -> BatchPublic:
    anchor = status.get("anchor")
    return BatchPublic(id=status["id"], state=status["state"], tree_size=status["tree_size"], root=status["root"],
                       timestamps=[TimestampPublic(**t) for t in status.get("timestamps", [])],
                       anchor=AnchorPublic(**anchor) if anchor else None,
                       anchors=[AnchorPublic(**{k: a[k] for k in AnchorPublic.model_fields})
                                for a in status.get("anchors", []) if a["tx_hash"] and a["confirmations"] is not None])


def batch_view(engine: Engine, batch_id: str) -> BatchPublic | None:
    """A batch as the API shows it (root, TSA times, anchors), or None when there is no such batch."""
    status = batch_status(engine, batch_id)
    return batch_public(status) if status else None


def evidence_public(evidence: Evidence, item: SealItem | None, *, engine: Engine | None = None) -> EvidencePublic:
    """The public view; with ``engine``, the batch (root, TSA times, anchor) is read from the sealing store."""
    batch = None
    if engine is not None and item is not None and item.batch_id is not None:
        status = batch_status(engine, item.batch_id)
        batch = batch_public(status) if status else None
    return EvidencePublic(
        id=evidence.id, kind=evidence.kind, title=evidence.title, note=evidence.note,
        status=status_of(evidence, item), evidence_id=evidence.evidence_id, fingerprint=evidence.fingerprint,
        package_sha256=evidence.sealed_sha256 or evidence.package_sha256, error=evidence.error,
        batch_id=item.batch_id if item else None, leaf_index=item.leaf_index if item else None, batch=batch,
        created_at=aware(evidence.created_at) or evidence.created_at, packaged_at=aware(evidence.packaged_at),
        sealed_at=aware(item.sealed_at) if item else None)

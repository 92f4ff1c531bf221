"""One batch, several chains: the per-(batch, chain) anchor rows and the files they become.

Each configured chain anchors a batch on its own: its own signed transaction stored before its
broadcast, its own confirmation wait, its own offline proof and its own retries. The rows live in
``seal_anchor``; the sealer decides from them when the batch counts as sealed (``min_chains``).

Package files: the first anchor attached to a package (the first confirmed chain in configuration
order) is ``proof/anchor.json``, as in packages made before there were several chains, so every
verifier that reads one anchor still verifies the package. Each further anchor is
``proof/anchor-<chain_id>.json``. A package's ``proof/anchor.json`` never changes chain once
written: a later anchor only adds a file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from anchor.ethereum import anchor_root, resume_anchor
from anchor.store import AnchorState, BatchState, SealAnchor, SealBatch, utcnow
from verifier.anchor_proof import AnchorProofError, decode_transaction
from verifier.package import ANCHOR_PATH, anchor_path

#: Anchor rows whose proof is in hand (confirmed on chain, perhaps already in the packages).
DONE_STATES = (AnchorState.CONFIRMED, AnchorState.ATTACHED)


@dataclass(frozen=True)
class ChainEndpoint:
    rpc_url: str
    chain_id: int
    private_key: str = field(repr=False)
    confirmations: int = 1
    name: str = ""

    @property
    def label(self) -> str:
        return f"{self.name} ({self.chain_id})" if self.name else f"chain {self.chain_id}"


def anchor_rows(engine: Engine, batch_id: str) -> list[SealAnchor]:
    with Session(engine) as session:
        return list(session.exec(select(SealAnchor).where(SealAnchor.batch_id == batch_id)
                                 .order_by(col(SealAnchor.position))).all())


def ensure_anchor_rows(engine: Engine, batch: SealBatch, chains: Sequence[ChainEndpoint]) -> dict[int, SealAnchor]:
    """The batch's anchor row for each configured chain, created on first use, by chain id.

    A batch left mid-anchoring by a version with a single anchor has its signed transactions (and
    record) in the batch row: they seed the row of the chain they were signed for, so a restart after
    an upgrade still waits for that very transaction instead of anchoring a second time.
    """
    existing = {row.chain_id: row for row in anchor_rows(engine, batch.id)}
    missing = [(position, chain) for position, chain in enumerate(chains) if chain.chain_id not in existing]
    if missing:
        legacy_chain = None if existing else _legacy_chain_id(batch)
        with Session(engine) as session:
            for position, chain in missing:
                row = SealAnchor(batch_id=batch.id, chain_id=chain.chain_id, position=position)
                if legacy_chain == chain.chain_id:
                    row.anchor_txs = batch.anchor_txs
                    row.state = AnchorState.ANCHORING
                    if batch.anchor_record and batch.state in (BatchState.CONFIRMED, BatchState.ATTACHED):
                        row.anchor_record = batch.anchor_record
                        row.state = AnchorState.CONFIRMED
                session.add(row)
            session.commit()
        existing = {row.chain_id: row for row in anchor_rows(engine, batch.id)}
    return existing


def _legacy_chain_id(batch: SealBatch) -> int | None:
    if batch.anchor_record:
        return int(json.loads(batch.anchor_record)["chain_id"])
    signed = json.loads(batch.anchor_txs or "[]")
    if not signed:
        return None
    try:
        return decode_transaction(bytes.fromhex(signed[0]["raw_tx"].removeprefix("0x"))).chain_id
    except (AnchorProofError, ValueError, KeyError):
        return None


def update_anchor(engine: Engine, row_id: int | None, **values: Any) -> None:
    with Session(engine) as session:
        session.connection().execute(update(SealAnchor).where(col(SealAnchor.id) == row_id)
                                     .values(**values, updated_at=utcnow()))
        session.commit()


def note_signed(engine: Engine, batch_id: str, signed: dict[str, Any]) -> bool:
    """Log a signed tx in the batch's list of all its anchor txs (every chain) and move the batch to
    ``anchoring`` if it was ``timestamped``. Returns True when it moved."""
    with Session(engine) as session:
        batch = session.get(SealBatch, batch_id)
        if batch is None:
            return False
        batch.anchor_txs = json.dumps([*json.loads(batch.anchor_txs or "[]"), signed])
        moved = batch.state == BatchState.TIMESTAMPED
        if moved:
            batch.state = BatchState.ANCHORING
        batch.updated_at = utcnow()
        session.add(batch)
        session.commit()
    return moved


def record_anchor_failure(engine: Engine, row_id: int | None, error: Exception,
                          backoff: Callable[[int], timedelta]) -> None:
    with Session(engine) as session:
        row = session.get(SealAnchor, row_id)
        if row is None:
            return
        row.attempts += 1
        row.last_error = str(error)[:2000]
        row.next_attempt_at = utcnow() + backoff(row.attempts)
        session.add(row)
        session.commit()


def send_anchor(chain: ChainEndpoint, row: SealAnchor, root: bytes, tree_size: int, *, timeout: float,
                persist: Callable[[str, str], None]) -> dict[str, Any]:
    """Anchor on one chain, or finish the transaction(s) this row already stored. Raises AnchorError."""
    signed: list[dict[str, str]] = json.loads(row.anchor_txs or "[]")
    if signed:
        return resume_anchor(chain.rpc_url, [s["raw_tx"] for s in signed], private_key=chain.private_key,
                             confirmations=chain.confirmations, chain_id=chain.chain_id, timeout=timeout,
                             on_signed=persist)
    return anchor_root(chain.rpc_url, chain.private_key, root, tree_size, confirmations=chain.confirmations,
                       chain_id=chain.chain_id, timeout=timeout, on_signed=persist)


def late_anchor_rows(engine: Engine, chain_ids: Sequence[int], *, respect_backoff: bool) -> list[SealAnchor]:
    """Anchors still to finish or attach for batches that are already sealed by other chains."""
    with Session(engine) as session:
        rows = session.exec(
            select(SealAnchor).join(SealBatch, col(SealBatch.id) == col(SealAnchor.batch_id))
            .where(col(SealBatch.state) == BatchState.ATTACHED)
            .where(col(SealAnchor.state) != AnchorState.ATTACHED)
            .where(col(SealAnchor.chain_id).in_(list(chain_ids)))
            .order_by(col(SealAnchor.id))).all()
    now = utcnow()

    def waiting(row: SealAnchor) -> bool:
        due = row.next_attempt_at
        if due is None:
            return False
        return (due if due.tzinfo else due.replace(tzinfo=now.tzinfo)) > now

    return [row for row in rows if not (respect_backoff and waiting(row))]


def anchor_files(primary: dict[str, Any] | None, records: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """Name each anchor record's file: ``primary`` (the batch's first) is proof/anchor.json."""
    files = []
    primary_chain = primary.get("chain_id") if primary else None
    for record in sorted(records, key=lambda r: int(r["chain_id"])):
        name = ANCHOR_PATH if record["chain_id"] == primary_chain else anchor_path(int(record["chain_id"]))
        files.append((name, record))
    return files

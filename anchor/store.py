"""The sealing store: durable state of every accepted fingerprint and every batch.

Every state change is one committed transaction, so a process killed at any point restarts from
what the database says, and nothing accepted is lost. SQLite in the data dir by default;
any SQLAlchemy URL (PostgreSQL at scale) by configuration.

    item:  pending -> batched -> attached
    batch: batched -> timestamped -> anchoring -> confirmed -> attached
    anchor (one per batch and chain): pending -> anchoring -> confirmed -> attached

A batch is ``confirmed`` once ``min_chains`` of its anchors are; the others keep their own state
and are attached to the packages later, when they confirm.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Index, Text, UniqueConstraint, event, inspect, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Field, Session, SQLModel, col, create_engine, func, select


def utcnow() -> datetime:
    return datetime.now(UTC)


class ItemState(StrEnum):
    PENDING = "pending"
    BATCHED = "batched"
    ATTACHED = "attached"


class BatchState(StrEnum):
    BATCHED = "batched"
    TIMESTAMPED = "timestamped"
    ANCHORING = "anchoring"
    CONFIRMED = "confirmed"
    ATTACHED = "attached"


class AnchorState(StrEnum):
    PENDING = "pending"
    ANCHORING = "anchoring"
    CONFIRMED = "confirmed"
    ATTACHED = "attached"


#: Room left free in each page of ``seal_item`` on PostgreSQL, so that an item's last write (batched ->
#: attached) fits beside its row: a HOT update, which adds no index entry and costs a third as much.
ITEM_FILLFACTOR = 50
#: Pending items are those in no batch yet, in id order: the next batch reads the first ones from this
#: index alone, however many wait. Indexing them this way, and not by ``state``, leaves ``state`` and
#: ``sealed_at`` out of every index, which is what lets the attached mark be HOT.
UNBATCHED_INDEX = "ix_seal_item_unbatched"
#: The index on ``state`` of stores made before ``UNBATCHED_INDEX``: dropped when such a store is opened.
STATE_INDEX = "ix_seal_item_state"


class SealItem(SQLModel, table=True):
    __tablename__ = "seal_item"
    __table_args__ = (
        Index(UNBATCHED_INDEX, "id", postgresql_where=text("batch_id IS NULL"), sqlite_where=text("batch_id IS NULL")),
        {"postgresql_with": {"fillfactor": ITEM_FILLFACTOR}},
    )

    id: int | None = Field(default=None, primary_key=True)
    evidence_id: str = Field(unique=True, index=True, max_length=100)
    fingerprint: str = Field(max_length=64)
    #: The package file the single-user CLI keeps, where sealing writes the sealed package; empty in the
    #: service, whose packages are immutable blobs (no process reads another's files).
    package_path: str = ""
    state: str = Field(default=ItemState.PENDING, max_length=16)
    batch_id: str | None = Field(default=None, index=True, max_length=40)
    leaf_index: int | None = None
    accepted_at: datetime = Field(default_factory=utcnow)
    sealed_at: datetime | None = None


class SealBatch(SQLModel, table=True):
    __tablename__ = "seal_batch"

    id: str = Field(primary_key=True, max_length=40)
    state: str = Field(default=BatchState.BATCHED, index=True, max_length=16)
    tree_size: int
    root: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    #: JSON list of the valid tokens: [{"tsa", "url", "token" (base64), "chain_pem"}].
    timestamps: str | None = Field(default=None, sa_column=Column(Text))
    #: Every anchor transaction signed for this batch on any chain, as JSON [{"tx_hash", "raw_tx",
    #: "chain_id"}]: a log for audits. What a restart resends is in each chain's SealAnchor row (a
    #: store written before those rows existed is read from here once, see anchor.anchors).
    anchor_txs: str | None = Field(default=None, sa_column=Column(Text))
    #: JSON of proof/anchor.json (the first confirmed chain's anchor) once the batch is confirmed.
    anchor_record: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    next_attempt_at: datetime | None = None


class SealAnchor(SQLModel, table=True):
    """One batch's anchor on one chain: its own signed transactions, record, retries and state."""

    __tablename__ = "seal_anchor"
    __table_args__ = (UniqueConstraint("batch_id", "chain_id"),)

    id: int | None = Field(default=None, primary_key=True)
    batch_id: str = Field(index=True, max_length=40)
    chain_id: int
    #: Where the chain stands in the configuration: the first confirmed one goes to proof/anchor.json.
    position: int = 0
    state: str = Field(default=AnchorState.PENDING, index=True, max_length=16)
    #: As SealBatch.anchor_txs, for this chain only: stored before each broadcast.
    anchor_txs: str | None = Field(default=None, sa_column=Column(Text))
    anchor_record: str | None = Field(default=None, sa_column=Column(Text))
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    next_attempt_at: datetime | None = None
    updated_at: datetime = Field(default_factory=utcnow)


class SealItemProof(SQLModel, table=True):
    """Where one sealed item's own proof file (proof/proof.json) is in the blob store.

    Written (committed) before the item is marked attached, so a sealed item always has its row.
    """

    __tablename__ = "seal_item_proof"

    evidence_id: str = Field(primary_key=True, max_length=100)
    batch_id: str = Field(index=True, max_length=40)
    address: str = Field(max_length=64)


class SealBatchProof(SQLModel, table=True):
    """A batch's shared proof files in the blob store (tokens, TSA certificates, anchors).

    ``files`` is JSON ``[[name in the package, address], ...]`` in package order. A late anchor
    stores its file and replaces the list; objects are never changed.
    """

    __tablename__ = "seal_batch_proof"

    batch_id: str = Field(primary_key=True, max_length=40)
    files: str = Field(sa_column=Column(Text, nullable=False))
    updated_at: datetime = Field(default_factory=utcnow)


class Lease(SQLModel, table=True):
    """A named, expiring lock: the sealer holds one so that only one process anchors at a time."""

    __tablename__ = "lease"

    name: str = Field(primary_key=True, max_length=100)
    owner: str = Field(max_length=100)
    expires_at: datetime


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL lets the API read while the sealer writes; FULL sync makes each commit survive power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """Create an engine and the sealing tables. SQLite gets WAL and durable commits."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    SQLModel.metadata.create_all(engine)
    _upgrade_item_indexes(engine)
    return engine


def _upgrade_item_indexes(engine: Engine) -> None:
    """Give a store made before ``UNBATCHED_INDEX`` today's indexes and fill factor. Idempotent."""
    def upgraded() -> bool:
        names = {index["name"] for index in inspect(engine).get_indexes(SealItem.__tablename__)}
        return UNBATCHED_INDEX in names and STATE_INDEX not in names

    if upgraded():
        return
    try:
        with engine.begin() as connection:
            connection.execute(text(f"CREATE INDEX IF NOT EXISTS {UNBATCHED_INDEX} ON seal_item (id) "
                                    "WHERE batch_id IS NULL"))
            connection.execute(text(f"DROP INDEX IF EXISTS {STATE_INDEX}"))
            if engine.dialect.name == "postgresql":
                # New pages only: rows written from now on get the room, older ones keep theirs.
                connection.execute(text(f"ALTER TABLE seal_item SET (fillfactor = {ITEM_FILLFACTOR})"))
    except DBAPIError:
        # Two processes opening the same old store at once: the other one may have just done it.
        if not upgraded():
            raise


def sqlite_url(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def acquire_lease(engine: Engine, name: str, owner: str, ttl: timedelta,
                  *, is_dead: Callable[[str], bool] | None = None) -> bool:
    """Take or renew the lease ``name`` for ``owner``. Returns False when someone else holds it.

    A lease is free when it has expired, or when ``is_dead(holder)`` says its holder cannot be
    running any more (a crashed process on this host), so a restart need not wait for the expiry.
    Every change is a compare-and-set on the holder, safe across processes and databases.
    """
    now = utcnow()
    with Session(engine) as session:
        current = session.get(Lease, name)
        if current is None:
            session.add(Lease(name=name, owner=owner, expires_at=now + ttl))
            try:
                session.commit()
            except Exception:
                session.rollback()
                return False
            return True
        holder, expires = current.owner, current.expires_at
        if expires.tzinfo is None:
            expires = expires.replace(tzinfo=now.tzinfo)
        if holder != owner and expires >= now and not (is_dead and is_dead(holder)):
            return False
        result = session.execute(
            update(Lease)
            .where(col(Lease.name) == name)
            .where(col(Lease.owner) == holder)
            .values(owner=owner, expires_at=now + ttl)
        )
        session.commit()
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def crashed_here(holder: str) -> bool:
    """True when ``holder`` names a process on this host that no longer runs."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_lease(engine: Engine, name: str, owner: str) -> None:
    with Session(engine) as session:
        lease = session.get(Lease, name)
        if lease is not None and lease.owner == owner:
            session.delete(lease)
            session.commit()


def pending_item(evidence_id: str, fingerprint: bytes, package_path: Path | str = "") -> SealItem:
    """The row that makes a package pending; add it to a session and commit to accept it."""
    return SealItem(evidence_id=evidence_id, fingerprint=fingerprint.hex(), package_path=str(package_path))


def counts(engine: Engine) -> dict[str, int]:
    """Items per state, for status displays."""
    with Session(engine) as session:
        rows = session.exec(select(SealItem.state)).all()
    result: dict[str, int] = {}
    for state in rows:
        result[state] = result.get(state, 0) + 1
    return result


def batch_status(engine: Engine, batch_id: str) -> dict[str, Any] | None:
    """A batch as the CLI and API show it, with each chain's anchor (``anchor`` is the first's)."""
    with Session(engine) as session:
        batch = session.get(SealBatch, batch_id)
        rows = session.exec(select(SealAnchor).where(SealAnchor.batch_id == batch_id)
                            .order_by(col(SealAnchor.position))).all()
    if batch is None:
        return None
    anchor = json.loads(batch.anchor_record) if batch.anchor_record else None
    anchors = []
    for row in rows:
        record = json.loads(row.anchor_record) if row.anchor_record else {}
        anchors.append({"chain_id": row.chain_id, "state": row.state, "tx_hash": record.get("tx_hash"),
                        "block_number": record.get("block_number"), "block_time_utc": record.get("block_time_utc"),
                        "confirmations": record.get("node_reported", {}).get("confirmations"),
                        "attempts": row.attempts, "last_error": row.last_error})
    return {"id": batch.id, "state": batch.state, "tree_size": batch.tree_size, "root": batch.root,
            "timestamps": [{"tsa": t["tsa"], "gen_time": t["gen_time"]} for t in json.loads(batch.timestamps or "[]")],
            "anchor": None if anchor is None else {
                **{k: anchor[k] for k in ("chain_id", "tx_hash", "block_number", "block_time_utc")},
                "confirmations": anchor.get("node_reported", {}).get("confirmations")},
            "anchors": anchors,
            "attempts": batch.attempts, "last_error": batch.last_error}


def items_in(engine: Engine, states: Sequence[str]) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(SealItem)
                                .where(col(SealItem.state).in_(states))).one())

"""The durable sealing loop: pending fingerprints -> batch -> RFC 3161 tokens -> anchor -> proofs.

Every step is a state transition committed to the store before the next begins, so a process
killed anywhere restarts from the store and finishes each batch exactly once:

* closing a batch assigns items and fixes the root in one transaction;
* tokens are verified before they are stored, and at least ``min_tsa`` are needed;
* every configured chain anchors the batch on its own (``anchor.anchors``): each anchor
  transaction is stored before it is broadcast, and a restart waits for that very transaction
  (re-sending its raw bytes) instead of signing a new one;
* the batch is confirmed once ``min_chains`` anchors are; proofs are attached only then, as objects
  of their own beside the immutable packages (``anchor.attach``), and attaching is idempotent. The
  other chains keep retrying and their anchors are added when they confirm (the fingerprint never
  changes).

A TSA or RPC that is down makes the step fail with a recorded reason; the batch is retried with
exponential backoff and its items stay pending ("never report sealed without a confirmed anchor").
Only the holder of the ``sealer`` lease works, so two sealers never race for one batch or nonce.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from anchor.anchors import (
    DONE_STATES,
    ChainEndpoint,
    anchor_files,
    anchor_rows,
    ensure_anchor_rows,
    late_anchor_rows,
    note_signed,
    record_anchor_failure,
    send_anchor,
    update_anchor,
)
from anchor.attach import ProofStore, attach_batch
from anchor.item_updates import assign_leaves
from anchor.rpc import AnchorError
from anchor.store import (
    AnchorState,
    BatchState,
    ItemState,
    SealAnchor,
    SealBatch,
    SealItem,
    acquire_lease,
    batch_status,
    crashed_here,
    items_in,
    pending_item,
    release_lease,
    utcnow,
)
from anchor.tsa_client import TSAError, request_timestamp
from verifier import merkle
from verifier.errors import TiezhengError
from verifier.timestamp import verify_timestamp

__all__ = ["ChainEndpoint", "Sealer", "SealerConfig", "TSAEndpoint", "batch_status", "items_in"]

log = logging.getLogger(__name__)

LEASE_NAME = "sealer"
LEASE_TTL = timedelta(minutes=5)
RETRY_BASE = timedelta(seconds=2)
RETRY_MAX = timedelta(minutes=5)
#: Items assigned per statement, so one statement never carries a million of them.
ASSIGN_SLICE = 20_000


@dataclass(frozen=True)
class TSAEndpoint:
    name: str
    url: str
    roots: tuple[x509.Certificate, ...]
    #: The certificates we hold for this TSA, written beside each token as proof/tsa-<n>.pem.
    chain_pem: bytes = b""


@dataclass(frozen=True)
class SealerConfig:
    tsas: tuple[TSAEndpoint, ...]
    #: One chain (the single-chain form); ``chains`` lists several. Give one or the other.
    chain: ChainEndpoint | None = None
    min_tsa: int = 1
    batch_max_items: int = 100_000
    batch_max_age: timedelta = timedelta(seconds=60)
    tsa_timeout: float = 10.0
    tsa_attempts: int = 3
    anchor_timeout: float = 60.0
    #: False only for benchmarks that measure the batch pipeline without package files.
    attach_packages: bool = True
    chains: tuple[ChainEndpoint, ...] = ()
    #: Confirmed anchors a batch needs before it counts as sealed; the rest are attached later.
    min_chains: int = 1

    @property
    def anchor_chains(self) -> tuple[ChainEndpoint, ...]:
        return self.chains or ((self.chain,) if self.chain is not None else ())


class RetryLater(TiezhengError):
    """A step could not finish now (TSA or chain unavailable); the batch stays where it is."""


Transition = Callable[[str, str], None]


def _backoff(attempts: int) -> timedelta:
    delay: timedelta = RETRY_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, RETRY_MAX)


class Sealer:
    """Drives batches through the sealing states. Safe to run in several processes: one works."""

    def __init__(self, engine: Engine, config: SealerConfig, *, owner: str | None = None,
                 on_transition: Transition | None = None, proofs: ProofStore | None = None) -> None:
        if config.min_tsa < 1 or len(config.tsas) < config.min_tsa:
            raise ValueError(f"{len(config.tsas)} TSA(s) configured, {config.min_tsa} required")
        chain_ids = [c.chain_id for c in config.anchor_chains]
        if config.min_chains < 1 or len(chain_ids) < config.min_chains:
            raise ValueError(f"{len(chain_ids)} chain(s) configured, {config.min_chains} required")
        if len(set(chain_ids)) != len(chain_ids):
            raise ValueError(f"a chain id is configured twice: {chain_ids}")
        self.engine = engine
        self.config = config
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Called after each committed transition with (batch_id, new state); tests kill here.
        self.on_transition = on_transition
        # Where proof files are stored (the blob store). Without one, only package files get them.
        self.proofs = proofs

    # -- accepting work -------------------------------------------------------------------------

    def accept(self, evidence_id: str, fingerprint: bytes, package_path: Path | str = "") -> None:
        """Record a fingerprint as pending. Returns once the row is committed (durable)."""
        with Session(self.engine) as session:
            session.add(pending_item(evidence_id, fingerprint, package_path))
            session.commit()

    # -- the loop ------------------------------------------------------------------------------

    def run_once(self, *, force: bool = False) -> list[str]:
        """Finish unfinished batches, then close and seal a new one if due (or ``force``).

        Returns the ids of the batches that reached ``attached``. Raises nothing for a TSA or
        chain outage: the batch records the error and waits for its next attempt. Last, anchors
        still missing from sealed batches are retried and attached when they confirm.
        """
        if not self._lease():
            log.info("another sealer holds the lease; not sealing")
            return []
        try:
            done = []
            for batch_id in self._unfinished(respect_backoff=not force):
                if self.advance(batch_id) is BatchState.ATTACHED:
                    done.append(batch_id)
            while (new_batch := self.close_batch(force=force)) is not None:
                if self.advance(new_batch) is not BatchState.ATTACHED:
                    break
                done.append(new_batch)
            self.finish_late_anchors(respect_backoff=not force)
            return done
        finally:
            release_lease(self.engine, LEASE_NAME, self.owner)

    def run(self, stop: threading.Event, *, poll_seconds: float = 1.0) -> None:
        """Seal until ``stop`` is set: batches close on size or age."""
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("sealing pass failed; retrying")
            stop.wait(poll_seconds)

    def _unfinished(self, *, respect_backoff: bool) -> list[str]:
        with Session(self.engine) as session:
            rows = session.exec(select(SealBatch).where(SealBatch.state != BatchState.ATTACHED)
                                .order_by(col(SealBatch.created_at))).all()
        now = utcnow()
        return [b.id for b in rows if not (respect_backoff and b.next_attempt_at and b.next_attempt_at > now)]

    def close_batch(self, *, force: bool = False) -> str | None:
        """Put pending items into a new batch if the size or age rule (or ``force``) says so.

        The batch row, every item's assignment and the root commit together or not at all.
        """
        limit = self.config.batch_max_items
        # "batch_id IS NULL" finds pending items, in id order, through their partial index.
        is_pending = (col(SealItem.batch_id).is_(None), col(SealItem.state) == ItemState.PENDING)
        with Session(self.engine) as session:
            oldest = session.exec(select(func.min(SealItem.accepted_at)).where(*is_pending)).one()
            if oldest is None:
                return None
            pending = session.exec(select(func.count()).select_from(SealItem).where(*is_pending)).one()
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=utcnow().tzinfo)
            due = force or pending >= limit or utcnow() - oldest >= self.config.batch_max_age
            if not due:
                return None
            rows = session.exec(select(SealItem.id, SealItem.fingerprint).where(*is_pending)
                                .order_by(col(SealItem.id)).limit(limit)).all()
            leaves = merkle.leaf_hashes([bytes.fromhex(fp) for _, fp in rows])
            batch_id = f"b-{utcnow():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
            session.add(SealBatch(id=batch_id, tree_size=len(rows), root=merkle.root(leaves).hex()))
            session.flush()
            item_ids = [int(item_id) for item_id, _ in rows if item_id is not None]
            assigned = 0
            for start in range(0, len(item_ids), ASSIGN_SLICE):
                assigned += assign_leaves(session.connection(), batch_id, item_ids[start:start + ASSIGN_SLICE],
                                          first_leaf=start)
            if assigned != len(rows):
                # An item left "pending" after it was read: the root would not cover the batch. Nothing
                # is committed; the next pass closes a batch from what is pending then.
                session.rollback()
                raise RuntimeError(f"{len(rows) - assigned} item(s) left 'pending' while a batch closed")
            session.commit()
        self._transitioned(batch_id, BatchState.BATCHED)
        return batch_id

    def advance(self, batch_id: str) -> BatchState:
        """Run the batch's remaining steps. Returns the state it reached."""
        steps = {BatchState.BATCHED: self._timestamp, BatchState.TIMESTAMPED: self._anchor,
                 BatchState.ANCHORING: self._anchor, BatchState.CONFIRMED: self._attach}
        while True:
            batch = self._batch(batch_id)
            state = BatchState(batch.state)
            if state is BatchState.ATTACHED:
                return state
            try:
                steps[state](batch)
            except (RetryLater, AnchorError, TSAError) as exc:
                self._record_failure(batch_id, exc)
                return state
            self._lease()

    def _lease(self) -> bool:
        return acquire_lease(self.engine, LEASE_NAME, self.owner, LEASE_TTL, is_dead=crashed_here)

    # -- the steps -----------------------------------------------------------------------------

    def _timestamp(self, batch: SealBatch) -> None:
        root = bytes.fromhex(batch.root)
        tokens, problems = [], []
        for tsa in self.config.tsas:
            nonce = secrets.randbits(63)
            try:
                response = request_timestamp(tsa.url, root, nonce=nonce, timeout=self.config.tsa_timeout,
                                             attempts=self.config.tsa_attempts)
                info = verify_timestamp(response, root, list(tsa.roots), nonce=nonce)
            except (TSAError, TiezhengError) as exc:
                problems.append(f"{tsa.name}: {exc}")
                continue
            tokens.append({"tsa": tsa.name, "url": tsa.url, "token": base64.b64encode(response).decode(),
                           "chain_pem": tsa.chain_pem.decode(), "gen_time": info.gen_time.isoformat()})
        if len(tokens) < self.config.min_tsa:
            raise RetryLater(f"{len(tokens)} valid timestamp(s), {self.config.min_tsa} needed: {'; '.join(problems)}")
        self._update(batch.id, BatchState.BATCHED, state=BatchState.TIMESTAMPED, timestamps=json.dumps(tokens))

    def _anchor(self, batch: SealBatch) -> None:
        """Anchor on every chain not yet confirmed; the batch is confirmed once ``min_chains`` are."""
        chains = self.config.anchor_chains
        rows = ensure_anchor_rows(self.engine, batch, chains)
        problems = []
        for chain in chains:
            row = rows[chain.chain_id]
            if row.state in DONE_STATES:
                continue
            try:
                self._anchor_on(batch, chain, row)
            except AnchorError as exc:
                record_anchor_failure(self.engine, row.id, exc, _backoff)
                problems.append(f"{chain.label}: {exc}")
        wanted = {c.chain_id for c in chains}
        done = [r for r in anchor_rows(self.engine, batch.id) if r.state in DONE_STATES and r.chain_id in wanted]
        if len(done) < self.config.min_chains:
            raise RetryLater(f"{len(done)} confirmed anchor(s), {self.config.min_chains} needed: {'; '.join(problems)}")
        # The first confirmed chain in configuration order becomes proof/anchor.json.
        primary = min(done, key=lambda r: r.position)
        self._update(batch.id, BatchState(self._batch(batch.id).state), state=BatchState.CONFIRMED,
                     anchor_record=primary.anchor_record)

    def _anchor_on(self, batch: SealBatch, chain: ChainEndpoint, row: SealAnchor) -> None:
        signed: list[dict[str, str]] = json.loads(row.anchor_txs or "[]")

        def persist(tx_hash: str, raw_tx: str) -> None:
            # Committed before the broadcast: a crash after this line re-sends the same transaction.
            if any(s["tx_hash"] == tx_hash for s in signed):
                return
            signed.append({"tx_hash": tx_hash, "raw_tx": raw_tx})
            update_anchor(self.engine, row.id, state=AnchorState.ANCHORING, anchor_txs=json.dumps(signed))
            if note_signed(self.engine, batch.id, {"tx_hash": tx_hash, "raw_tx": raw_tx, "chain_id": chain.chain_id}):
                self._transitioned(batch.id, BatchState.ANCHORING)
            self._signal(batch.id, f"signed:{chain.chain_id}")

        record = send_anchor(chain, row, bytes.fromhex(batch.root), batch.tree_size,
                             timeout=self.config.anchor_timeout, persist=persist)
        update_anchor(self.engine, row.id, state=AnchorState.CONFIRMED, anchor_record=json.dumps(record),
                      last_error=None, next_attempt_at=None)
        self._signal(batch.id, f"confirmed:{chain.chain_id}")

    def _attach(self, batch: SealBatch) -> None:
        rows = [r for r in anchor_rows(self.engine, batch.id) if r.state in DONE_STATES]
        self._attach_proofs(batch, rows, resume=True)
        for row in rows:
            update_anchor(self.engine, row.id, state=AnchorState.ATTACHED)
        self._update(batch.id, BatchState.CONFIRMED, state=BatchState.ATTACHED)

    def finish_late_anchors(self, *, respect_backoff: bool = True) -> int:
        """Anchor sealed batches on the chains that missed them, and add those anchors to the packages.

        Returns how many late anchors were attached. A chain still down keeps its row for later.
        """
        chains = {c.chain_id: c for c in self.config.anchor_chains}
        attached = 0
        for row in late_anchor_rows(self.engine, list(chains), respect_backoff=respect_backoff):
            batch = self._batch(row.batch_id)
            if row.state not in DONE_STATES:
                try:
                    self._anchor_on(batch, chains[row.chain_id], row)
                except AnchorError as exc:
                    record_anchor_failure(self.engine, row.id, exc, _backoff)
                    log.warning("batch %s: anchor on %s still missing: %s", batch.id, chains[row.chain_id].label, exc)
                    continue
            rows = [r for r in anchor_rows(self.engine, batch.id) if r.state in DONE_STATES]
            self._attach_proofs(batch, rows, resume=False)
            update_anchor(self.engine, row.id, state=AnchorState.ATTACHED)
            self._signal(batch.id, f"attached:{row.chain_id}")
            attached += 1
            self._lease()
        return attached

    def _attach_proofs(self, batch: SealBatch, rows: Sequence[SealAnchor], *, resume: bool) -> None:
        """Write every item's proof files with the anchors of ``rows`` (see ``attach_batch``)."""
        primary: dict[str, Any] | None = json.loads(batch.anchor_record) if batch.anchor_record else None
        files = anchor_files(primary, [json.loads(r.anchor_record) for r in rows if r.anchor_record])
        attach_batch(self.engine, batch, files, store=self.proofs, write_packages=self.config.attach_packages,
                     resume=resume, renew_lease=self._lease)

    # -- bookkeeping ---------------------------------------------------------------------------

    def _batch(self, batch_id: str) -> SealBatch:
        with Session(self.engine) as session:
            batch = session.get(SealBatch, batch_id)
            if batch is None:
                raise KeyError(batch_id)
            return batch

    def _update(self, batch_id: str, expected: BatchState | None, **values: Any) -> None:
        """Commit new values for a batch, only if it is still in ``expected`` (None: any state)."""
        statement = update(SealBatch).where(col(SealBatch.id) == batch_id)
        if expected is not None:
            statement = statement.where(col(SealBatch.state) == expected)
        with Session(self.engine) as session:
            result = session.connection().execute(statement.values(**values, updated_at=utcnow(), last_error=None,
                                                                   next_attempt_at=None))
            if expected is not None and result.rowcount != 1:
                raise RuntimeError(f"batch {batch_id} left state {expected} under us")
            session.commit()
        if "state" in values and expected is not None:
            self._transitioned(batch_id, BatchState(values["state"]))

    def _signal(self, batch_id: str, event: str) -> None:
        """Report a per-chain step (``signed:<chain_id>``, ``confirmed:<chain_id>``, ``attached:<chain_id>``)."""
        if self.on_transition is not None:
            self.on_transition(batch_id, event)

    def _record_failure(self, batch_id: str, exc: Exception) -> None:
        with Session(self.engine) as session:
            batch = session.get(SealBatch, batch_id)
            if batch is None:
                return
            batch.attempts += 1
            batch.last_error = str(exc)[:2000]
            batch.next_attempt_at = utcnow() + _backoff(batch.attempts)
            state = batch.state
            session.add(batch)
            session.commit()
        log.warning("batch %s stays %s: %s", batch_id, state, exc)

    def _transitioned(self, batch_id: str, state: BatchState) -> None:
        if self.on_transition is not None:
            self.on_transition(batch_id, state.value)

"""The durable sealing loop: pending fingerprints -> batch -> RFC 3161 tokens -> anchor -> proofs.

Every step is a state transition committed to the store before the next begins, so a process
killed anywhere restarts from the store and finishes each batch exactly once:

* closing a batch assigns items and fixes the root in one transaction;
* tokens are verified before they are stored, and at least ``min_tsa`` are needed;
* the anchor transaction is stored before it is broadcast; a restart waits for that very
  transaction (re-sending its raw bytes) instead of signing a new one;
* proofs are attached only after the anchor is confirmed, each package rewritten atomically,
  and attaching is idempotent.

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
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import bindparam, func, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from anchor.attach import Token, attach
from anchor.ethereum import anchor_root, resume_anchor
from anchor.rpc import AnchorError
from anchor.store import (
    BatchState,
    ItemState,
    SealBatch,
    SealItem,
    acquire_lease,
    pending_item,
    release_lease,
    utcnow,
)
from anchor.tsa_client import TSAError, request_timestamp
from verifier import merkle
from verifier.errors import TiezhengError
from verifier.proof import InclusionProof
from verifier.timestamp import verify_timestamp

log = logging.getLogger(__name__)

LEASE_NAME = "sealer"
LEASE_TTL = timedelta(minutes=5)
RETRY_BASE = timedelta(seconds=2)
RETRY_MAX = timedelta(minutes=5)
#: Items attached per committed transaction: small enough that a crash redoes little.
ATTACH_COMMIT_EVERY = 200
#: Bulk updates go in slices so one statement never carries a million parameters.
ASSIGN_SLICE = 20_000
#: Ids per IN (...) list: under every database's parameter limit.
ID_SLICE = 1_000


@dataclass(frozen=True)
class TSAEndpoint:
    name: str
    url: str
    roots: tuple[x509.Certificate, ...]
    #: The certificates we hold for this TSA, written beside each token as proof/tsa-<n>.pem.
    chain_pem: bytes = b""


@dataclass(frozen=True)
class ChainEndpoint:
    rpc_url: str
    chain_id: int
    private_key: str = field(repr=False)
    confirmations: int = 1


@dataclass(frozen=True)
class SealerConfig:
    tsas: tuple[TSAEndpoint, ...]
    chain: ChainEndpoint
    min_tsa: int = 1
    batch_max_items: int = 100_000
    batch_max_age: timedelta = timedelta(seconds=60)
    tsa_timeout: float = 10.0
    tsa_attempts: int = 3
    anchor_timeout: float = 60.0
    #: False only for benchmarks that measure the batch pipeline without package files.
    attach_packages: bool = True


class RetryLater(TiezhengError):
    """A step could not finish now (TSA or chain unavailable); the batch stays where it is."""


Transition = Callable[[str, str], None]


def _backoff(attempts: int) -> timedelta:
    delay: timedelta = RETRY_BASE * (2 ** max(attempts - 1, 0))
    return min(delay, RETRY_MAX)


class Sealer:
    """Drives batches through the sealing states. Safe to run in several processes: one works."""

    def __init__(self, engine: Engine, config: SealerConfig, *, owner: str | None = None,
                 on_transition: Transition | None = None) -> None:
        if config.min_tsa < 1 or len(config.tsas) < config.min_tsa:
            raise ValueError(f"{len(config.tsas)} TSA(s) configured, {config.min_tsa} required")
        self.engine = engine
        self.config = config
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Called after each committed transition with (batch_id, new state); tests kill here.
        self.on_transition = on_transition

    # -- accepting work -------------------------------------------------------------------------

    def accept(self, evidence_id: str, fingerprint: bytes, package_path: Path | str) -> None:
        """Record a fingerprint as pending. Returns once the row is committed (durable)."""
        with Session(self.engine) as session:
            session.add(pending_item(evidence_id, fingerprint, package_path))
            session.commit()

    # -- the loop ------------------------------------------------------------------------------

    def run_once(self, *, force: bool = False) -> list[str]:
        """Finish unfinished batches, then close and seal a new one if due (or ``force``).

        Returns the ids of the batches that reached ``attached``. Raises nothing for a TSA or
        chain outage: the batch records the error and waits for its next attempt.
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
        with Session(self.engine) as session:
            oldest = session.exec(select(func.min(SealItem.accepted_at))
                                  .where(SealItem.state == ItemState.PENDING)).one()
            if oldest is None:
                return None
            pending = session.exec(select(func.count()).select_from(SealItem)
                                   .where(SealItem.state == ItemState.PENDING)).one()
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=utcnow().tzinfo)
            due = force or pending >= limit or utcnow() - oldest >= self.config.batch_max_age
            if not due:
                return None
            rows = session.exec(select(SealItem.id, SealItem.fingerprint)
                                .where(SealItem.state == ItemState.PENDING)
                                .order_by(col(SealItem.id)).limit(limit)).all()
            leaves = merkle.leaf_hashes([bytes.fromhex(fp) for _, fp in rows])
            batch_id = f"b-{utcnow():%Y%m%dT%H%M%S}-{secrets.token_hex(4)}"
            session.add(SealBatch(id=batch_id, tree_size=len(rows), root=merkle.root(leaves).hex()))
            session.flush()
            assignments = [{"item_id": item_id, "leaf": index} for index, (item_id, _) in enumerate(rows)]
            for start in range(0, len(assignments), ASSIGN_SLICE):
                session.connection().execute(
                    update(SealItem).where(col(SealItem.id) == bindparam("item_id"))
                    .where(col(SealItem.state) == ItemState.PENDING)
                    .values(state=ItemState.BATCHED, batch_id=batch_id, leaf_index=bindparam("leaf")),
                    assignments[start:start + ASSIGN_SLICE])
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
        return acquire_lease(self.engine, LEASE_NAME, self.owner, LEASE_TTL, is_dead=_crashed_here)

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
        chain = self.config.chain
        signed: list[dict[str, str]] = json.loads(batch.anchor_txs or "[]")

        def persist(tx_hash: str, raw_tx: str) -> None:
            # Committed before the broadcast: a crash after this line re-sends the same transaction.
            if any(s["tx_hash"] == tx_hash for s in signed):
                return
            signed.append({"tx_hash": tx_hash, "raw_tx": raw_tx})
            self._update(batch.id, None, state=BatchState.ANCHORING, anchor_txs=json.dumps(signed))
            self._transitioned(batch.id, BatchState.ANCHORING)

        if signed:
            record = resume_anchor(chain.rpc_url, [s["raw_tx"] for s in signed], private_key=chain.private_key,
                                   confirmations=chain.confirmations, chain_id=chain.chain_id,
                                   timeout=self.config.anchor_timeout, on_signed=persist)
        else:
            record = anchor_root(chain.rpc_url, chain.private_key, bytes.fromhex(batch.root), batch.tree_size,
                                 confirmations=chain.confirmations, chain_id=chain.chain_id,
                                 timeout=self.config.anchor_timeout, on_signed=persist)
        self._update(batch.id, BatchState.ANCHORING, state=BatchState.CONFIRMED, anchor_record=json.dumps(record))

    def _attach(self, batch: SealBatch) -> None:
        tokens = [Token(tsa=t["tsa"], token=base64.b64decode(t["token"]), chain_pem=t["chain_pem"].encode())
                  for t in json.loads(batch.timestamps or "[]")]
        anchor: dict[str, Any] = json.loads(batch.anchor_record or "{}")
        with Session(self.engine) as session:
            rows = session.exec(select(SealItem.id, SealItem.fingerprint, SealItem.package_path, SealItem.state)
                                .where(SealItem.batch_id == batch.id).order_by(col(SealItem.leaf_index))).all()
        fingerprints = [bytes.fromhex(fp) for _, fp, _, _ in rows]
        leaves = merkle.leaf_hashes(fingerprints)
        root = merkle.root(leaves)
        if root.hex() != batch.root:
            raise RuntimeError(f"batch {batch.id}: items no longer hash to the stored root")
        # Rewriting a package is slow, so commit often; bookkeeping alone can go in big slices.
        commit_every = ATTACH_COMMIT_EVERY if self.config.attach_packages else ASSIGN_SLICE
        done: list[int] = []
        for index, ((item_id, _, package, state), path) in enumerate(
                zip(rows, merkle.all_inclusion_proofs(leaves), strict=True)):
            if state == ItemState.ATTACHED or item_id is None:
                continue
            if self.config.attach_packages:
                proof = InclusionProof(batch_id=batch.id, leaf=fingerprints[index], leaf_index=index,
                                       tree_size=len(rows), inclusion_path=tuple(path), root=root)
                attach(Path(package), proof, tokens, anchor)
            done.append(item_id)
            if len(done) >= commit_every:
                self._mark_attached(done)
                done = []
                self._lease()
        self._mark_attached(done)
        self._update(batch.id, BatchState.CONFIRMED, state=BatchState.ATTACHED)

    def _mark_attached(self, item_ids: Sequence[int]) -> None:
        now = utcnow()
        with Session(self.engine) as session:
            for start in range(0, len(item_ids), ID_SLICE):
                session.connection().execute(
                    update(SealItem).where(col(SealItem.id).in_(item_ids[start:start + ID_SLICE]))
                    .values(state=ItemState.ATTACHED, sealed_at=now))
            session.commit()

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


def _crashed_here(holder: str) -> bool:
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


def batch_status(engine: Engine, batch_id: str) -> dict[str, Any] | None:
    """A batch as the CLI and API show it."""
    with Session(engine) as session:
        batch = session.get(SealBatch, batch_id)
    if batch is None:
        return None
    anchor = json.loads(batch.anchor_record) if batch.anchor_record else None
    return {"id": batch.id, "state": batch.state, "tree_size": batch.tree_size, "root": batch.root,
            "timestamps": [{"tsa": t["tsa"], "gen_time": t["gen_time"]} for t in json.loads(batch.timestamps or "[]")],
            "anchor": None if anchor is None else {
                **{k: anchor[k] for k in ("chain_id", "tx_hash", "block_number", "block_time_utc")},
                "confirmations": anchor.get("node_reported", {}).get("confirmations")},
            "attempts": batch.attempts, "last_error": batch.last_error}


def items_in(engine: Engine, states: Sequence[str]) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).select_from(SealItem)
                                .where(col(SealItem.state).in_(states))).one())

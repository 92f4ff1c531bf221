"""The outbox: queue messages committed with the rows they are about, and the relay that sends them.

Committing a capture row and then sending its queue message are two writes to two systems; a crash
between them would leave the capture accepted and never run. So the message is an ``outbox`` row
written in the capture's own transaction, and a relay thread in every API process publishes unsent
rows (to Redis at scale, to the in-process workers in the embedded mode) and marks them sent. A row
is published at least once; the capture lease (api/service/leases.py) makes a second delivery a no-op.

Several API processes may relay at once: a relay claims rows for ``CLAIM_SECONDS`` with one
conditional UPDATE whose sub-select takes ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite runs one
writer at a time, so the UPDATE alone is atomic there). Rows of a relay that died after claiming
are claimed again once the claim lapses.

The same thread sweeps: it queues again, through the outbox, every unfinished capture that no live
worker holds and that is not on its way to one: its lease lapsed (the worker died), it was never
published, or it was published ``STALE_SECONDS`` ago and never started (the queue lost it).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from api.service import crud
from api.service.models import Evidence, EvidenceKind, OutboxMessage, utcnow

log = logging.getLogger(__name__)

TOPIC_CAPTURE = "capture"
#: How long a relay owns the rows it claimed; a relay that died frees them after this.
CLAIM_SECONDS = 30.0
#: Rows per claim.
CLAIM_BATCH = 50
#: The relay wakes at once when a request commits messages, and at least this often otherwise.
POLL_SECONDS = 1.0
#: A capture published this long ago and still not started is queued again.
STALE_SECONDS = 15 * 60.0

#: Sends one message (topic, target); raises when the queue cannot take it.
Publish = Callable[[str, str], None]


def add_capture(session: Session, *, row_id: str) -> None:
    """The capture's queue message, in the caller's transaction (commit it with the capture row)."""
    session.add(OutboxMessage(topic=TOPIC_CAPTURE, target=row_id))


@dataclass(frozen=True)
class Claimed:
    id: int
    topic: str
    target: str


def claim(engine: Engine, *, limit: int = CLAIM_BATCH, now: datetime | None = None) -> list[Claimed]:
    """Claim up to ``limit`` unsent rows for this relay, oldest first."""
    now = now or utcnow()
    token = uuid.uuid4().hex
    until = now + timedelta(seconds=CLAIM_SECONDS)
    free = (col(OutboxMessage.sent_at).is_(None)
            & (col(OutboxMessage.claimed_until).is_(None) | (col(OutboxMessage.claimed_until) < now)))
    pick = (select(col(OutboxMessage.id)).where(free).order_by(col(OutboxMessage.id)).limit(limit)
            .with_for_update(skip_locked=True))
    with engine.begin() as connection:
        connection.execute(update(OutboxMessage).where(col(OutboxMessage.id).in_(pick), free)
                           .values(claimed_by=token, claimed_until=until))
        rows = connection.execute(select(col(OutboxMessage.id), col(OutboxMessage.topic), col(OutboxMessage.target))
                                  .where(col(OutboxMessage.claimed_by) == token)
                                  .order_by(col(OutboxMessage.id))).all()
    return [Claimed(int(str(i)), str(topic), str(target)) for i, topic, target in rows]


def mark_sent(engine: Engine, sent: list[Claimed], *, now: datetime | None = None) -> None:
    if not sent:
        return
    now = now or utcnow()
    with engine.begin() as connection:
        connection.execute(update(OutboxMessage).where(col(OutboxMessage.id).in_([m.id for m in sent]))
                           .values(sent_at=now))
        captures = [m.target for m in sent if m.topic == TOPIC_CAPTURE]
        connection.execute(update(Evidence).where(col(Evidence.id).in_(captures)).values(published_at=now))


def relay_once(engine: Engine, publish: Publish) -> int:
    """Publish what is unsent; returns how many were sent. A failed send stays claimed, then is retried."""
    claimed = claim(engine)
    sent: list[Claimed] = []
    for message in claimed:
        try:
            publish(message.topic, message.target)
        except Exception as exc:  # the queue is down: the row is retried once its claim lapses
            log.warning("outbox: could not publish %s %s: %s", message.topic, message.target, type(exc).__name__)
            break
        sent.append(message)
    mark_sent(engine, sent)
    return len(sent)


def sweep(engine: Engine, *, stale_seconds: float = STALE_SECONDS, everything: bool = False,
          now: datetime | None = None) -> list[str]:
    """Queue again the unfinished captures nobody runs (see the module's doc). Returns their ids.

    ``everything`` also takes captures published any time: after a restart of the embedded mode,
    whose in-process queue died with the process.
    """
    now = now or utcnow()
    pending = exists().where(col(OutboxMessage.target) == col(Evidence.id), col(OutboxMessage.sent_at).is_(None))
    due = (col(Evidence.lease_owner).is_not(None) | col(Evidence.published_at).is_(None)
           | (col(Evidence.published_at) < now - timedelta(seconds=stale_seconds)))
    candidates = (select(col(Evidence.id), col(Evidence.tenant_id), col(Evidence.lease_owner),
                         col(Evidence.published_at))
                  .where(col(Evidence.kind) == EvidenceKind.WEB_CAPTURE.value, col(Evidence.evidence_id).is_(None),
                         col(Evidence.error).is_(None),
                         col(Evidence.lease_until).is_(None) | (col(Evidence.lease_until) < now), ~pending)
                  .order_by(col(Evidence.created_at)).limit(500))
    if not everything:
        candidates = candidates.where(due)
    with engine.connect() as connection:
        found = connection.execute(candidates).all()
    requeued: list[str] = []
    for row_id, tenant_id, owner, published in found:
        with Session(engine) as session:
            # Conditional on what was read: of two sweepers, only one re-queues a capture.
            taken = session.connection().execute(
                update(Evidence).where(col(Evidence.id) == row_id,
                                       col(Evidence.lease_owner).is_not_distinct_from(owner),
                                       col(Evidence.published_at).is_not_distinct_from(published))
                .values(lease_owner=None, lease_until=None, published_at=now)).rowcount == 1
            if not taken:
                continue
            session.connection().execute(insert(OutboxMessage).values(topic=TOPIC_CAPTURE, target=row_id,
                                                                       created_at=now))
            reason = "lease lapsed" if owner else ("never published" if published is None else "not started")
            crud.record_audit(session, action="evidence.requeued", actor="sweeper", tenant_id=tenant_id,
                              target=row_id, detail={"reason": "restart" if everything and not owner else reason,
                                                     "previous_lease": owner})
            session.commit()
        requeued.append(row_id)
    if requeued:
        log.info("sweeper queued %d capture(s) again", len(requeued))
    return requeued


class Relay:
    """The relay and sweeper thread of one API process."""

    def __init__(self, engine: Engine, publish: Publish, *, sweep_seconds: float) -> None:
        self.engine, self.publish, self.sweep_seconds = engine, publish, sweep_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tiezheng-outbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def kick(self) -> None:
        """Messages were just committed: publish now rather than at the next poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(CLAIM_SECONDS)

    def _run(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            try:
                while relay_once(self.engine, self.publish) == CLAIM_BATCH:
                    pass
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + self.sweep_seconds
                    if sweep(self.engine):
                        continue  # publish what was just queued again
            except Exception as exc:  # the database is away: keep trying, never die
                log.warning("outbox relay: %s: %s", type(exc).__name__, exc)
                self._stop.wait(POLL_SECONDS)
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()

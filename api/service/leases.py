"""Capture leases: one worker runs a capture, and the database says which one and until when.

A worker takes the lease with one conditional UPDATE (the row is unfinished and its lease free,
lapsed, or already its own), so two deliveries of one message, or two workers, never both run it:
the loser acks and drops its message. The holder renews the lease while it captures; if it dies the
lease lapses and the sweeper (api/service/outbox.py) queues the capture again. The result is committed only
while the lease is still held (``release`` in the same transaction), so even a worker that stalled
past its lease cannot record a second package.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import timedelta
from types import TracebackType

from sqlalchemy import Connection, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from api.service.models import Evidence, utcnow

log = logging.getLogger(__name__)


def new_owner() -> str:
    """A lease owner id: host and process (for people reading the row), and a token for this one run."""
    return f"{socket.gethostname()[:100]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def take(engine: Engine, *, row_id: str, owner: str, seconds: float) -> bool:
    """Take the capture's lease; False when it is done, failed or held by another live worker."""
    now = utcnow()
    statement = (update(Evidence).where(col(Evidence.id) == row_id, col(Evidence.evidence_id).is_(None),
                                        col(Evidence.error).is_(None),
                                        col(Evidence.lease_owner).is_(None) | (col(Evidence.lease_owner) == owner)
                                        | col(Evidence.lease_until).is_(None) | (col(Evidence.lease_until) < now))
                 .values(lease_owner=owner, lease_until=now + timedelta(seconds=seconds)))
    with engine.begin() as connection:
        return connection.execute(statement).rowcount == 1


def renew(engine: Engine, *, row_id: str, owner: str, seconds: float) -> bool:
    """Push the lease's expiry on; False when it is no longer ours (it lapsed and another took it)."""
    statement = (update(Evidence).where(col(Evidence.id) == row_id, col(Evidence.lease_owner) == owner)
                 .values(lease_until=utcnow() + timedelta(seconds=seconds)))
    with engine.begin() as connection:
        return connection.execute(statement).rowcount == 1


def release(connection: Connection, *, row_id: str, owner: str) -> bool:
    """Drop the lease in the caller's transaction; False when it is not ours any more (then roll back)."""
    statement = (update(Evidence).where(col(Evidence.id) == row_id, col(Evidence.lease_owner) == owner)
                 .values(lease_owner=None, lease_until=None))
    return connection.execute(statement).rowcount == 1


class LeaseKeeper:
    """Renews a held lease every third of its length, in a thread, until the block ends."""

    def __init__(self, engine: Engine, *, row_id: str, owner: str, seconds: float) -> None:
        self.engine, self.row_id, self.owner, self.seconds = engine, row_id, owner, seconds
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{row_id[:20]}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                if not renew(self.engine, row_id=self.row_id, owner=self.owner, seconds=self.seconds):
                    self.lost = True
                    log.warning("lease on capture %s lapsed and was taken over", self.row_id)
                    return
            except Exception as exc:  # a database hiccup: try again at the next tick, the lease still runs
                log.warning("lease renewal for capture %s failed: %s", self.row_id, type(exc).__name__)

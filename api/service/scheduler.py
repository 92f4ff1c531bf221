"""The watch scheduler: every due slot is decided exactly once, as run or as missed, durably.

A watch's slots lie on a grid (its first slot plus n times its interval). ``schedule_due`` looks
at each active watch whose ``next_slot`` has come and, in one transaction, writes a row for every
slot from there to now and moves ``next_slot`` past them with a compare-and-set:

- the newest slot runs if it is at most ``grace`` late: its capture row (evidence) and the capture's
  outbox message commit with the slot row, so the run is queued exactly when the slot is recorded;
- older slots (the scheduler was down) and a slot whose late start exceeds the grace are ``missed``,
  recorded with the reason, never run late;
- a slot due while the watch's previous run is still unfinished is ``missed`` too (runs of one
  watch never overlap, so each run's ``previous`` is the run before it).

Two schedulers cannot both decide a slot: the unique (watch, slot_time) constraint rejects the
second row, and the compare-and-set on ``next_slot`` rejects the second transaction. The
``scheduler`` lease (the sealer's kind, anchor.store) only keeps a standby from doing that
wasted work. Embedded, ``Scheduler`` runs as a thread of ``tiezheng serve``; at scale
``tiezheng worker schedule`` runs it, and the outbox relay publishes the runs on the Dramatiq queue.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from anchor.store import acquire_lease, crashed_here, release_lease
from api.service import jobs, matters, notice_recheck, outbox
from api.service.errors import ApiError
from api.service.models import (
    Evidence,
    EvidenceKind,
    OutboxMessage,
    SlotState,
    Watch,
    WatchSlot,
    WatchState,
    utcnow,
)
from evidence.manifest import new_evidence_id
from verifier.errors import TiezhengError

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
LEASE_TTL = timedelta(seconds=30)
#: How often the leader looks for due slots (a slot may start up to this late).
TICK_SECONDS = 1.0
#: How late a slot may start and still run; later it is missed. Never more than the interval itself.
GRACE_SECONDS = 120.0
#: Watches decided per transaction.
CHUNK = 200
#: Missed slots written one row each per watch and tick; past this one row counts the rest.
MAX_MISSED_ROWS = 1000

REASON_DOWN = "the scheduler was not running at this time"
REASON_BUSY = "the previous run of this watch had not finished"


@dataclass(frozen=True)
class SlotPlan:
    """What to do with a watch's due slots (pure: see ``plan``)."""

    missed: list[datetime]
    #: Missed slots beyond ``MAX_MISSED_ROWS``, counted in the last missed row's reason.
    uncounted: int
    run: datetime | None
    next_slot: datetime
    #: Past ``until``: no slot is left.
    ended: bool


def plan(*, next_slot: datetime, every_seconds: int, now: datetime, until: datetime | None,
         grace_seconds: float = GRACE_SECONDS) -> SlotPlan:
    """Decide the slots from ``next_slot`` up to ``now``: the newest runs if on time, the rest are missed."""
    every = timedelta(seconds=every_seconds)
    last_possible = now if until is None else min(now, until)
    if next_slot > last_possible:
        return SlotPlan([], 0, None, next_slot, ended=until is not None and next_slot > until)
    count = (last_possible - next_slot) // every + 1
    newest = next_slot + (count - 1) * every
    grace = timedelta(seconds=min(grace_seconds, every_seconds))
    run = newest if now - newest <= grace else None
    missed_count = count - (1 if run is not None else 0)
    shown = min(missed_count, MAX_MISSED_ROWS)
    # The newest missed slots are the ones written; older ones beyond the cap are counted.
    first_shown = missed_count - shown
    missed = [next_slot + i * every for i in range(first_shown, missed_count)]
    following = newest + every
    return SlotPlan(missed, first_shown, run, following, ended=until is not None and following > until)


@dataclass
class Outcome:
    """What one pass decided: the capture rows queued, and how many slots were missed."""

    queued: list[str] = field(default_factory=list)
    missed: int = 0
    ended: int = 0
    #: Of ``queued``, the re-captures of notices whose response window closed (``notice_recheck``).
    rechecks: list[str] = field(default_factory=list)


def _busy(session: Session, watch_ids: Sequence[str]) -> set[str]:
    """The watches among ``watch_ids`` with a run still queued or running."""
    rows = session.exec(select(WatchSlot.watch_id).where(col(WatchSlot.watch_id).in_(watch_ids),
                                                         WatchSlot.state == SlotState.QUEUED.value)).all()
    return set(rows)


@dataclass
class _Rows:
    """The rows a chunk inserts, sent as one multi-row INSERT per table when the chunk is decided."""

    evidence: list[dict[str, object]] = field(default_factory=list)
    outbox: list[dict[str, object]] = field(default_factory=list)
    slots: list[dict[str, object]] = field(default_factory=list)

    def insert(self, session: Session) -> None:
        connection = session.connection()
        for table, values in ((Evidence, self.evidence), (OutboxMessage, self.outbox), (WatchSlot, self.slots)):
            if values:
                connection.execute(insert(table), values)


def _decide(session: Session, watch: Watch, now: datetime, busy: bool, outcome: Outcome, rows: _Rows) -> None:
    """Move the watch's ``next_slot`` (compare-and-set) and collect its slot rows and run, in the caller's
    transaction; ``rows.insert`` writes what was collected."""
    slot_plan = plan(next_slot=_aware(watch.next_slot), every_seconds=watch.every_seconds, now=now,
                     until=_aware(watch.until) if watch.until else None)
    slots: list[dict[str, object]] = [
        {"watch_id": watch.id, "slot_time": t, "state": SlotState.MISSED.value, "reason": REASON_DOWN,
         "evidence_ref": None, "recorded_at": now} for t in slot_plan.missed]
    if slots and slot_plan.uncounted:
        slots[0]["reason"] = f"{REASON_DOWN} (and {slot_plan.uncounted} earlier slots)"
    run_row: str | None = None
    if slot_plan.run is not None:
        if busy:
            slots.append({"watch_id": watch.id, "slot_time": slot_plan.run, "state": SlotState.MISSED.value,
                          "reason": REASON_BUSY, "evidence_ref": None, "recorded_at": now})
        else:
            run_row = new_evidence_id(now)
            slots.append({"watch_id": watch.id, "slot_time": slot_plan.run, "state": SlotState.QUEUED.value,
                          "reason": None, "evidence_ref": run_row, "recorded_at": now})
    connection = session.connection()
    if run_row is not None:
        # The run's capture row and queue message: the same rows POST /v1/captures writes.
        rows.evidence.append({
            "id": run_row, "tenant_id": watch.tenant_id, "api_key_id": watch.api_key_id,
            "kind": EvidenceKind.WEB_CAPTURE.value, "title": watch.url,
            "note": f"watch {watch.id}, slot {slot_plan.run:%Y-%m-%d %H:%M:%S} UTC", "subject": watch.subject,
            "created_at": now})
        rows.outbox.append({"topic": outbox.TOPIC_CAPTURE, "target": run_row, "created_at": now})
    rows.slots += slots
    moved = connection.execute(
        update(Watch).where(col(Watch.id) == watch.id, col(Watch.next_slot) == watch.next_slot,
                            col(Watch.state) == WatchState.ACTIVE.value)
        .values(next_slot=slot_plan.next_slot,
                state=WatchState.ENDED.value if slot_plan.ended else WatchState.ACTIVE.value))
    if moved.rowcount != 1:
        raise _Lost(watch.id)
    if run_row is not None and watch.matter_id is not None:
        slot_text = f"{slot_plan.run:%Y-%m-%dT%H:%M:%SZ}"
        matters.file_evidence(session, tenant_id=watch.tenant_id, matter_id=watch.matter_id, evidence_ref=run_row,
                              how="watch-run", detail={"watch": watch.id, "slot": slot_text})
    if run_row is not None:
        outcome.queued.append(run_row)
    outcome.missed += len(slot_plan.missed) + slot_plan.uncounted + (1 if busy and slot_plan.run else 0)
    outcome.ended += int(slot_plan.ended)


class _Lost(TiezhengError):
    """Another scheduler decided this watch's slots first (control flow: the loser rolls back)."""


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def schedule_due(engine: Engine, *, now: datetime | None = None, limit: int = 10 * CHUNK) -> Outcome:
    """Decide every due slot of up to ``limit`` watches, and queue the re-captures of notices whose
    response window closed; returns what was queued and missed.

    A chunk commits as one transaction; if another scheduler got to one of its watches first, the
    chunk is rolled back and its watches are decided one by one, the other scheduler's skipped.
    """
    now = now or utcnow()
    outcome = Outcome()
    with Session(engine) as session:
        due = list(session.exec(select(Watch.id).where(Watch.state == WatchState.ACTIVE.value,
                                                       col(Watch.next_slot) <= now)
                                .order_by(col(Watch.next_slot)).limit(limit)).all())
    for start in range(0, len(due), CHUNK):
        chunk = due[start:start + CHUNK]
        if not _decide_chunk(engine, chunk, now, outcome):
            for watch_id in chunk:
                _decide_chunk(engine, [watch_id], now, outcome)
    # After the grid's slots: a window whose watch just got a run waits for that run to finish.
    rechecks = notice_recheck.recheck_closed_windows(engine, now=now)
    outcome.queued += rechecks.queued
    outcome.rechecks += rechecks.queued
    if outcome.queued or outcome.missed:
        log.info("scheduler: %d run(s) queued, %d slot(s) missed", len(outcome.queued), outcome.missed)
    return outcome


def _decide_chunk(engine: Engine, watch_ids: list[str], now: datetime, outcome: Outcome) -> bool:
    """Decide ``watch_ids`` in one transaction. False (and nothing written) when another scheduler raced us."""
    attempt = Outcome()
    with Session(engine) as session:
        try:
            watches = session.exec(select(Watch).where(col(Watch.id).in_(watch_ids),
                                                       Watch.state == WatchState.ACTIVE.value,
                                                       col(Watch.next_slot) <= now)).all()
            busy = _busy(session, [w.id for w in watches])
            rows = _Rows()
            for watch in watches:
                _decide(session, watch, now, watch.id in busy, attempt, rows)
            rows.insert(session)
            session.commit()
        except (IntegrityError, _Lost, ApiError) as exc:
            session.rollback()
            log.info("scheduler: %s; another scheduler decided these slots", type(exc).__name__)
            return False
    jobs.failpoint("schedule:committed")  # crash tests: slots and runs committed, not yet published
    outcome.queued += attempt.queued
    outcome.missed += attempt.missed
    outcome.ended += attempt.ended
    return True


def new_owner() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Scheduler:
    """The leader loop: holds the ``scheduler`` lease, and while it does, decides due slots every tick."""

    def __init__(self, engine: Engine, *, on_queued: Callable[[list[str]], None] = lambda _: None,
                 tick_seconds: float = TICK_SECONDS) -> None:
        self.engine, self.on_queued, self.tick_seconds = engine, on_queued, tick_seconds
        self.owner = new_owner()
        self.leading = False
        self._renewed = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> Outcome | None:
        """One pass if this process leads (taking or renewing the lease); None when another leads."""
        # The lease is renewed once a third of it has passed, not every tick: a write a second is
        # SQLite's one writer slot taken for nothing.
        if not self.leading or time.monotonic() - self._renewed > LEASE_TTL.total_seconds() / 3:
            self.leading = acquire_lease(self.engine, LEASE_NAME, self.owner, LEASE_TTL, is_dead=crashed_here)
            self._renewed = time.monotonic()
        if not self.leading:
            return None
        outcome = schedule_due(self.engine)
        if outcome.queued:
            self.on_queued(outcome.queued)
        return outcome

    def run(self, stop: threading.Event | None = None) -> None:
        """Tick until ``stop`` (or ``self.stop()``); a database error is logged and retried next tick."""
        stop = stop or self._stop
        try:
            while not stop.is_set() and not self._stop.is_set():
                try:
                    self.tick()
                except Exception as exc:  # the database is away: keep the loop alive
                    log.warning("scheduler: %s: %s", type(exc).__name__, exc)
                stop.wait(self.tick_seconds)
        finally:
            if self.leading:
                release_lease(self.engine, LEASE_NAME, self.owner)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="tiezheng-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(LEASE_TTL.total_seconds())


def unfinished_runs(engine: Engine) -> list[str]:
    """Capture rows of queued slots whose package is not there yet, oldest slot first."""
    with Session(engine) as session:
        rows = session.exec(select(WatchSlot.evidence_ref)
                            .join(Evidence, col(Evidence.id) == col(WatchSlot.evidence_ref))
                            .where(WatchSlot.state == SlotState.QUEUED.value, col(Evidence.evidence_id).is_(None),
                                   col(Evidence.error).is_(None))
                            .order_by(col(WatchSlot.slot_time))).all()
    return [r for r in rows if r is not None]

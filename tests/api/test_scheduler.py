"""The watch scheduler's bookkeeping: each slot decided once, as run or missed, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from anchor.store import make_engine
from api.service import matters, scheduler, watches
from api.service.db import migrate
from api.service.models import OutboxMessage, SlotState, WatchSlot, WatchState
from tests.api.server import drop_postgres_database, postgres_database, postgres_where

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite" else postgres_database()
    if url is None:
        pytest.skip(f"PostgreSQL is not reachable at {postgres_where()} (set TIEZHENG_TEST_POSTGRES)")
    made = make_engine(url)
    migrate(made)
    try:
        yield made
    finally:
        made.dispose()
        if request.param == "postgresql":
            drop_postgres_database(url)


def _watch(engine: Engine, *, every: int = 60, until: datetime | None = None, matter: bool = False) -> str:
    with Session(engine) as session:
        tenant = matters.local_tenant_id(session)
        matter_id = matters.create(session, tenant_id=tenant, title="case").id if matter else None
        watch = watches.create(session, tenant_id=tenant, api_key_id=None, url="http://127.0.0.1:9/item",
                               every_seconds=every, min_seconds=1, until=until, matter_id=matter_id, now=T0)
        session.commit()
        return watch.id


def _slots(engine: Engine, watch_id: str) -> list[WatchSlot]:
    with Session(engine) as session:
        return list(session.exec(select(WatchSlot).where(WatchSlot.watch_id == watch_id)
                                 .order_by(col(WatchSlot.slot_time))).all())


def _finish_runs(engine: Engine, watch_id: str) -> None:
    """What a capture job reports when its package is accepted (api.service.jobs), without the browser."""
    with Session(engine) as session:
        for slot in _slots(engine, watch_id):
            if slot.state == SlotState.QUEUED and slot.evidence_ref:
                watches.record_run(session, row_id=slot.evidence_ref, fingerprint=f"{slot.id:064x}")
        session.commit()


def test_plan_runs_the_slot_due_now_and_records_the_ones_missed() -> None:
    on_time = scheduler.plan(next_slot=T0, every_seconds=60, now=T0 + timedelta(seconds=5), until=None)
    assert (on_time.run, on_time.missed, on_time.next_slot) == (T0, [], T0 + timedelta(seconds=60))
    # Down for ten minutes: the ten slots meanwhile are missed; the one due now runs.
    after = scheduler.plan(next_slot=T0, every_seconds=60, now=T0 + timedelta(minutes=10, seconds=3), until=None)
    assert after.run == T0 + timedelta(minutes=10)
    assert after.missed == [T0 + timedelta(minutes=m) for m in range(10)]
    # Reached late past the grace: even the newest slot is missed, never run late.
    late = scheduler.plan(next_slot=T0, every_seconds=3600, now=T0 + timedelta(minutes=30), until=None)
    assert late.run is None and late.missed == [T0] and late.next_slot == T0 + timedelta(hours=1)
    # Nothing due yet.
    early = scheduler.plan(next_slot=T0, every_seconds=60, now=T0 - timedelta(seconds=1), until=None)
    assert early.run is None and early.missed == [] and early.next_slot == T0
    # Past its until, the watch ends after its last slot.
    ending = scheduler.plan(next_slot=T0, every_seconds=60, now=T0 + timedelta(seconds=1),
                            until=T0 + timedelta(seconds=30))
    assert ending.run == T0 and ending.ended
    # A very long outage writes a bounded number of rows and counts the rest.
    huge = scheduler.plan(next_slot=T0, every_seconds=1, now=T0 + timedelta(days=1), until=None)
    assert len(huge.missed) == scheduler.MAX_MISSED_ROWS and huge.uncounted == 86400 - scheduler.MAX_MISSED_ROWS


def test_each_slot_is_decided_once_and_missed_slots_are_recorded(engine: Engine) -> None:
    watch_id = _watch(engine, matter=True)
    first = scheduler.schedule_due(engine, now=T0 + timedelta(seconds=1))
    assert len(first.queued) == 1
    assert scheduler.schedule_due(engine, now=T0 + timedelta(seconds=2)).queued == []  # same slot: not again
    _finish_runs(engine, watch_id)
    # Down from T0+1s to T0+5m: slots 1..4 missed, slot 5 runs.
    later = scheduler.schedule_due(engine, now=T0 + timedelta(minutes=5, seconds=1))
    assert len(later.queued) == 1 and later.missed == 4
    # The next slot comes while run 5 is unfinished: missed, so runs never overlap and `previous` never forks.
    busy = scheduler.schedule_due(engine, now=T0 + timedelta(minutes=6))
    assert busy.queued == [] and busy.missed == 1
    slots = _slots(engine, watch_id)
    assert [s.slot_time for s in slots] == [T0 + timedelta(minutes=m) for m in range(7)]
    assert [s.state for s in slots] == ["done", "missed", "missed", "missed", "missed", "queued", "missed"]
    assert slots[1].reason == scheduler.REASON_DOWN and slots[6].reason == scheduler.REASON_BUSY
    with Session(engine) as session:
        messages = session.exec(select(OutboxMessage.target)).all()
    assert sorted(messages) == sorted([slots[0].evidence_ref, slots[5].evidence_ref])


def test_two_schedulers_at_once_decide_each_slot_once(engine: Engine) -> None:
    ids = [_watch(engine, every=60) for _ in range(30)]
    start = threading.Barrier(4)
    outcomes: list[scheduler.Outcome] = []

    def one(now: datetime) -> None:
        start.wait()
        outcomes.append(scheduler.schedule_due(engine, now=now))

    for step in range(3):
        now = T0 + timedelta(minutes=step, seconds=1)
        threads = [threading.Thread(target=one, args=(now,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for watch_id in ids:
            _finish_runs(engine, watch_id)
    assert sum(len(o.queued) for o in outcomes) == 3 * len(ids)
    with Session(engine) as session:
        assert len(session.exec(select(OutboxMessage)).all()) == 3 * len(ids)
    for watch_id in ids:
        assert [s.state for s in _slots(engine, watch_id)] == ["done"] * 3


def test_a_watch_ends_at_its_until_and_a_paused_one_is_skipped(engine: Engine) -> None:
    ending = _watch(engine, every=60, until=T0 + timedelta(seconds=90))
    paused = _watch(engine, every=60)
    with Session(engine) as session:
        watches.set_state(session, tenant_id=matters.local_tenant_id(session), watch_id=paused,
                          state=WatchState.PAUSED)
        session.commit()
    scheduler.schedule_due(engine, now=T0 + timedelta(seconds=1))
    _finish_runs(engine, ending)
    outcome = scheduler.schedule_due(engine, now=T0 + timedelta(seconds=61))
    assert outcome.ended == 1
    assert scheduler.schedule_due(engine, now=T0 + timedelta(hours=1)).queued == []
    assert len(_slots(engine, ending)) == 2 and _slots(engine, paused) == []

"""The outbox relay, the sweeper and capture leases against a real database, several at once.

Several API processes relay and sweep the same database; these tests run several relays, sweepers
and lease takers at once (threads, each with its own connections) on SQLite and PostgreSQL and check
that every message is published exactly once, a lapsed capture is queued again once, and one lease
has one holder.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from anchor.store import make_engine
from api.service import crud, leases, outbox
from api.service.db import migrate
from api.service.models import AuditEvent, Evidence, OutboxMessage, utcnow
from tests.api.server import drop_postgres_database, postgres_database, postgres_where

CAPTURES = 120
RACERS = 4


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}" if request.param == "sqlite" else postgres_database()
    if url is None:
        pytest.skip(f"PostgreSQL is not reachable at {postgres_where()} (set TIEZHENG_TEST_POSTGRES)")
    engine = make_engine(url)
    migrate(engine)
    try:
        yield engine
    finally:
        engine.dispose()
        if request.param == "postgresql":
            drop_postgres_database(url)


def _accept(engine: Engine, count: int) -> list[str]:
    """``count`` capture rows with their outbox messages, committed together as the API does."""
    ids = [f"cap-{i:04d}" for i in range(count)]
    with Session(engine) as session:
        tenant = crud.create_tenant(session, name="acme")
        assert tenant.id is not None
        for row_id in ids:
            crud.accept_capture(session, tenant_id=tenant.id, api_key_id=None, row_id=row_id,
                                url=f"http://example.test/{row_id}", note="")
            outbox.add_capture(session, row_id=row_id)
        session.commit()
    return ids


def _race(target: object, count: int = RACERS) -> None:
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def run() -> None:
        start.wait()
        try:
            target()  # type: ignore[operator]
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


def test_relays_at_once_publish_each_message_once(engine: Engine) -> None:
    ids = _accept(engine, CAPTURES)
    published: list[str] = []
    lock = threading.Lock()

    def publish(topic: str, target: str) -> None:
        assert topic == outbox.TOPIC_CAPTURE
        with lock:
            published.append(target)

    def relay() -> None:
        while outbox.relay_once(engine, publish):
            pass

    _race(relay)
    assert sorted(published) == ids, [t for t, n in Counter(published).items() if n > 1]
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(OutboxMessage)
                            .where(col(OutboxMessage.sent_at).is_(None))).one()[0] == 0
        assert session.exec(select(func.count()).select_from(Evidence)
                            .where(col(Evidence.published_at).is_(None))).one()[0] == 0


def test_failed_publish_is_retried_after_the_claim_lapses(engine: Engine) -> None:
    (row_id,) = _accept(engine, 1)

    def down(topic: str, target: str) -> None:
        raise ConnectionError("queue down")

    assert outbox.relay_once(engine, down) == 0
    sent: list[str] = []
    assert outbox.relay_once(engine, lambda topic, target: sent.append(target)) == 0  # still claimed
    later = utcnow() + timedelta(seconds=outbox.CLAIM_SECONDS + 1)
    claimed = outbox.claim(engine, now=later)
    assert [m.target for m in claimed] == [row_id]


def test_one_lease_holder_and_no_result_after_losing_it(engine: Engine) -> None:
    (row_id,) = _accept(engine, 1)
    owners = [leases.new_owner() for _ in range(RACERS)]
    won: list[str] = []

    def take_one() -> None:
        owner = owners.pop()
        if leases.take(engine, row_id=row_id, owner=owner, seconds=30):
            won.append(owner)

    _race(take_one)
    assert len(won) == 1
    holder = won[0]
    assert leases.renew(engine, row_id=row_id, owner=holder, seconds=30)
    other = leases.new_owner()
    assert not leases.take(engine, row_id=row_id, owner=other, seconds=30)
    # The holder stalls past its lease; another worker takes over; the stalled one may not record.
    with engine.begin() as connection:
        connection.execute(update(Evidence).where(col(Evidence.id) == row_id)
                           .values(lease_until=utcnow() - timedelta(seconds=1)))
    assert leases.take(engine, row_id=row_id, owner=other, seconds=30)
    assert not leases.renew(engine, row_id=row_id, owner=holder, seconds=30)
    with engine.begin() as connection:
        assert not leases.release(connection, row_id=row_id, owner=holder)
        assert leases.release(connection, row_id=row_id, owner=other)


def test_sweepers_at_once_requeue_a_lapsed_capture_once(engine: Engine) -> None:
    ids = _accept(engine, 3)
    assert outbox.relay_once(engine, lambda topic, target: None) == 3
    lapsed, running, fresh = ids
    dead = leases.new_owner()
    assert leases.take(engine, row_id=lapsed, owner=dead, seconds=30)
    assert leases.take(engine, row_id=running, owner=leases.new_owner(), seconds=30)
    with engine.begin() as connection:
        connection.execute(update(Evidence).where(col(Evidence.id) == lapsed)
                           .values(lease_until=utcnow() - timedelta(seconds=1)))
    found: list[str] = []
    _race(lambda: found.extend(outbox.sweep(engine)))
    assert found == [lapsed]  # the running one has a live lease; the fresh one was just published
    with Session(engine) as session:
        unsent = session.exec(select(OutboxMessage).where(col(OutboxMessage.sent_at).is_(None))).all()
        assert [m[0].target for m in unsent] == [lapsed]
        events = session.exec(select(AuditEvent).where(AuditEvent.action == "evidence.requeued")).all()
        assert len(events) == 1 and "lease lapsed" in (events[0][0].detail or "")
        row = session.get(Evidence, lapsed)
        assert row is not None and row.lease_owner is None
    assert outbox.sweep(engine) == []  # its message is pending: nothing to do until it is sent
    # A capture published long ago and never started (the queue lost its message) is queued again;
    # the running one (live lease) and the one just published again are not.
    assert outbox.relay_once(engine, lambda topic, target: None) == 1
    with engine.begin() as connection:
        connection.execute(update(Evidence).where(col(Evidence.id) == fresh)
                           .values(published_at=utcnow() - timedelta(seconds=outbox.STALE_SECONDS + 1)))
    assert outbox.sweep(engine) == [fresh]


def test_embedded_restart_requeues_what_its_threads_lost(engine: Engine) -> None:
    """The in-process queue dies with the process: at start, every unfinished capture nobody holds goes again."""
    queued, leased, done = _accept(engine, 3)
    assert outbox.relay_once(engine, lambda topic, target: None) == 3
    assert outbox.sweep(engine) == []  # published just now: on its way, as far as a periodic sweep knows
    assert leases.take(engine, row_id=leased, owner=leases.new_owner(), seconds=30)
    with engine.begin() as connection:
        connection.execute(update(Evidence).where(col(Evidence.id) == done).values(error="capture failed: gone"))
    assert outbox.sweep(engine, everything=True) == [queued]


def test_captures_accepted_before_the_upgrade_are_queued(engine: Engine) -> None:
    """A capture row from before the outbox existed (revision 0001) was never published: the sweeper sends it."""
    from alembic import command

    from api.service.db import alembic_config

    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    with engine.begin() as connection:
        connection.execute(text("insert into tenant (name, created_at) values ('old', :t)"), {"t": utcnow()})
        connection.execute(text("insert into evidence (id, tenant_id, kind, title, note, created_at) values "
                                "('old-capture', 1, 'web-capture', 'http://example.test/', '', :t)"), {"t": utcnow()})
    migrate(engine)
    assert outbox.sweep(engine) == ["old-capture"]
    sent: list[str] = []
    assert outbox.relay_once(engine, lambda topic, target: sent.append(target)) == 1
    assert sent == ["old-capture"]

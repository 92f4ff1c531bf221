"""Two `tiezheng worker schedule` processes on PostgreSQL and Redis: exactly one leads, the other stands by.

The leader decides the slots and relays their runs to the Redis capture queue; the standby writes
nothing. SIGKILLed, the leader is replaced at once by the standby (the lease names a dead process on
this host), and the slot grid goes on without a slot twice or one lost. No capture worker runs here,
so after its first run each watch's slots are recorded missed (the run is still queued): what is
checked is the scheduler's bookkeeping, not capture.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from anchor.store import Lease, make_engine
from api.service import matters, watches
from api.service.db import migrate
from api.service.models import OutboxMessage, WatchSlot
from tests.api.server import BIN, drop_postgres_database, postgres_database, postgres_where

#: A Redis database of its own, so no other test's workers see these messages.
REDIS_URL = "redis://127.0.0.1:6379/12"
EVERY_SECONDS = 1
WATCHES = 5

pytestmark = pytest.mark.slow


@pytest.fixture
def database() -> Iterator[str]:
    url = postgres_database()
    if url is None:
        pytest.skip(f"PostgreSQL is not reachable at {postgres_where()} (set TIEZHENG_TEST_POSTGRES)")
    try:
        yield url
    finally:
        drop_postgres_database(url)


@pytest.fixture
def redis_url() -> str:
    redis = pytest.importorskip("redis")
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    redis.Redis.from_url(REDIS_URL).flushdb()
    return REDIS_URL


def _scheduler(tmp_path: Path, name: str, database: str, redis_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "TIEZHENG_DATA_DIR": str(tmp_path / "data"), "TIEZHENG_DATABASE_URL": database,
           "TIEZHENG_REDIS_URL": redis_url}
    with (tmp_path / f"{name}.log").open("ab") as log:
        return subprocess.Popen([str(BIN / "tiezheng"), "worker", "schedule"], env=env, stdout=log,
                                stderr=subprocess.STDOUT)


def _leader(engine: Engine) -> int | None:
    with Session(engine) as session:
        lease = session.get(Lease, "scheduler")
    return int(lease.owner.split(":")[1]) if lease is not None else None


def _wait_for(check: object, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_two_schedulers_one_leads_and_the_standby_takes_over(tmp_path: Path, database: str, redis_url: str) -> None:
    import redis

    engine = make_engine(database)
    migrate(engine)
    with Session(engine) as session:
        tenant = matters.local_tenant_id(session)
        ids = [watches.create(session, tenant_id=tenant, api_key_id=None, url=f"http://127.0.0.1:9/item/{i}",
                              every_seconds=EVERY_SECONDS, min_seconds=1).id for i in range(WATCHES)]
        session.commit()
    first, second = (_scheduler(tmp_path, name, database, redis_url) for name in ("one", "two"))
    processes = {first.pid: first, second.pid: second}
    try:
        _wait_for(lambda: _leader(engine) in processes)
        leader = _leader(engine)
        assert leader is not None
        time.sleep(4)
        assert _leader(engine) == leader, "the lead changed hands while both ran"
        processes[leader].send_signal(signal.SIGKILL)
        processes[leader].wait()
        standby = next(pid for pid in processes if pid != leader)
        _wait_for(lambda: _leader(engine) == standby)
        time.sleep(3)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(20)
    with Session(engine) as session:
        for watch_id in ids:
            slots = session.exec(select(WatchSlot).where(WatchSlot.watch_id == watch_id)
                                 .order_by(col(WatchSlot.slot_time))).all()
            times = [s.slot_time for s in slots]
            assert len(times) >= 6
            assert all(b - a == timedelta(seconds=EVERY_SECONDS) for a, b in itertools.pairwise(times)), times
            assert [s.state for s in slots].count("queued") == 1
        messages = session.exec(select(OutboxMessage)).all()
    engine.dispose()
    # Each watch's one run went to the queue once, relayed by whichever scheduler led.
    assert len(messages) == WATCHES and all(m.sent_at is not None for m in messages)
    queued = redis.Redis.from_url(redis_url).hlen("tiezheng:tiezheng-capture.msgs")
    assert queued == WATCHES

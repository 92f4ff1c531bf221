"""Scheduling overhead: 1,000 watches due in the same minute, on SQLite and PostgreSQL.

For each backend, on a fresh database: ``--watches`` watches (default 1,000) are created with their
first slot in the same minute, half of them under a matter (each run is then also filed and
logged in the matter's hash chain). One ``schedule_due`` pass decides them all: one slot row, one
capture row and one outbox message per watch, committed in chunks of ``scheduler.CHUNK`` watches.
It measures the pass's wall time, per-watch time, and the SQL statements it sent (counted with an
engine event, so the figure is what the database sees), then the same pass once more when nothing
is due (the idle cost of a tick). Publishing to Redis is not in the figure: the outbox relay does
that after the commit, as for any accepted capture (benchmarks/api_load.py measures it).
Prints a table and, last, one line of JSON. PostgreSQL is skipped when unreachable.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from anchor.store import make_engine
from api.service import matters, scheduler, watches
from api.service.db import migrate
from api.service.models import utcnow

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class StatementCounter:
    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._one)

    def _one(self, *_: Any) -> None:
        self.count += 1


def _seed(engine: Engine, count: int) -> None:
    due = utcnow() - timedelta(seconds=1)
    with Session(engine) as session:
        tenant = matters.local_tenant_id(session)
        cases = [matters.create(session, tenant_id=tenant, title=f"case {i}").id for i in range(count // 50 or 1)]
        for i in range(count):
            watches.create(session, tenant_id=tenant, api_key_id=None, url=f"https://shop.example/item/{i}",
                           every_seconds=6 * 3600, min_seconds=1, matter_id=cases[i % len(cases)] if i % 2 else None,
                           subject=f"seller {i % 97}", now=due)
        session.commit()


def measure(url: str, count: int) -> dict[str, Any]:
    engine = make_engine(url)
    migrate(engine)
    _seed(engine, count)
    counter = StatementCounter(engine)
    started = time.perf_counter()
    outcome = scheduler.schedule_due(engine, limit=count)
    elapsed = time.perf_counter() - started
    statements = counter.count
    counter.count = 0
    idle_started = time.perf_counter()
    scheduler.schedule_due(engine, limit=count)
    idle = time.perf_counter() - idle_started
    engine.dispose()
    assert len(outcome.queued) == count, outcome
    return {"watches": count, "seconds": round(elapsed, 3), "ms_per_watch": round(1000 * elapsed / count, 3),
            "statements": statements, "statements_per_watch": round(statements / count, 2),
            "idle_tick_ms": round(1000 * idle, 2), "idle_statements": counter.count}


def _postgres() -> str | None:
    try:
        import psycopg

        with psycopg.connect(POSTGRES_ADMIN, autocommit=True, connect_timeout=3) as conn:
            conn.execute("DROP DATABASE IF EXISTS tiezheng_bench_schedule WITH (FORCE)")
            conn.execute("CREATE DATABASE tiezheng_bench_schedule")
    except Exception:
        return None
    return POSTGRES_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + \
        "/tiezheng_bench_schedule"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--watches", type=int, default=1000)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="tiezheng-schedule-") as folder:
        results["sqlite"] = measure(f"sqlite:///{Path(folder) / 'db.sqlite'}", args.watches)
    pg = _postgres()
    results["postgresql"] = measure(pg, args.watches) if pg else {"skipped": "PostgreSQL not reachable"}
    print(f"{'backend':<11} {'watches':>7} {'pass s':>7} {'ms/watch':>9} {'stmts':>6} {'stmts/watch':>11} "
          f"{'idle ms':>8}")
    for name, r in results.items():
        if "skipped" in r:
            print(f"{name:<11} skipped: {r['skipped']}")
            continue
        print(f"{name:<11} {r['watches']:>7} {r['seconds']:>7} {r['ms_per_watch']:>9} {r['statements']:>6} "
              f"{r['statements_per_watch']:>11} {r['idle_tick_ms']:>8}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

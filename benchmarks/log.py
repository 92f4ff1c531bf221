"""Event logs (issue 16), measured as ratios in one run.

    python benchmarks/log.py [--events 20000] [--batches 1,10,100] [--size 2048] [--integrate 1000000]
                             [--export 10000] [--database-url URL | --no-postgres] [--json]

1. **Ingest**: ``--events`` events of about ``--size`` bytes, ``--batch`` per request, through the
   service's ``append`` (parse, salt, per-field commitments, leaf hash, one committed transaction,
   receipts), on SQLite (FULL sync) and on PostgreSQL when reachable. The baseline appends the same
   NDJSON bytes to a file with one fsync per batch: the same durability cadence with nothing else.
   DESIGN.md §8: ingest within 3x of that baseline.
2. **Integrate**: ``--integrate`` small events are committed, then one sequencer run builds their
   tiles (blob store), root, signed checkpoint and sealing item; its time is reported.
3. **Export**: the log is sealed (embedded TSA and devnet), then ``--export`` events are exported
   with inclusion proofs, the consistency proof and the checkpoint's proofs.
4. **Verify**: ``tiezheng-verify``'s checks on that export, offline.

Everything runs on this machine in a temporary data dir; PostgreSQL gets a database of its own,
dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, text
from sqlmodel import Session

from api.service import log_pipeline
from api.service.db import open_database
from api.service.event_log import EventLog, LogEvent, append, create_log
from api.service.settings import Settings
from verifier import merkle
from verifier.event_log import commit_event

#: Alternating runs per ingest measurement; the median is reported.
ROUNDS = 3
#: Event i happens i seconds after this.
START = datetime(2026, 12, 1, 10, tzinfo=UTC)
DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def events(count: int, size: int, start: int = 0) -> list[bytes]:
    """NDJSON lines of about ``size`` bytes: a burst of likes from a few devices and addresses."""
    lines = []
    for i in range(start, start + count):
        when = (START + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {"event_time": when, "type": "like" if i % 3 else "view",
                 "actor": f"user{i % 97}", "device_id": f"device-{i % 5}", "ip": f"203.0.113.{i % 7}",
                 "session": f"s{i % 13}", "payload": {"post": i % 1000, "pad": ""}}
        base = len(json.dumps(event))
        event["payload"]["pad"] = "x" * max(0, size - base - 1)
        lines.append(json.dumps(event).encode() + b"\n")
    return lines


def baseline(lines: list[bytes], batch: int, folder: Path) -> float:
    """Seconds to append ``lines`` to a file, fsync'd once per ``batch`` lines."""
    path = folder / "baseline.ndjson"
    started = time.perf_counter()
    with path.open("ab") as out:
        for offset in range(0, len(lines), batch):
            out.write(b"".join(lines[offset:offset + batch]))
            out.flush()
            os.fsync(out.fileno())
    return time.perf_counter() - started


def ingest(engine: Any, lines: list[bytes], batch: int) -> float:
    """Seconds to append ``lines`` through the service, one committed request per ``batch``."""
    with Session(engine) as session:
        log = create_log(session, "bench", f"ingest-{uuid.uuid4().hex[:8]}")
        log_id = int(log.id or 0)
    started = time.perf_counter()
    with Session(engine) as session:
        for offset in range(0, len(lines), batch):
            receipts = append(session, log_id, lines[offset:offset + batch])
            assert len(receipts) == min(batch, len(lines) - offset)
    return time.perf_counter() - started


def postgres_engine(url: str) -> tuple[Any, str] | None:
    """A fresh database on the PostgreSQL at ``url`` (dropped by ``drop_postgres``), or None."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    name = f"tz_bench_log_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # unreachable or refused: reported, and the run goes on without it
        print(f"PostgreSQL skipped: {type(exc).__name__}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return None
    finally:
        admin.dispose()
    return url.rsplit("/", 1)[0] + "/" + name, name


def drop_postgres(url: str, name: str) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def fill(engine: Any, log_id: int, count: int) -> None:
    """Commit ``count`` small events straight into the table: the integration is what is timed."""
    chunk = 50_000
    for start in range(0, count, chunk):
        rows = []
        for i, line in enumerate(events(min(count, start + chunk) - start, 200, start), start):
            body = line.decode().strip()
            salt = os.urandom(16)
            event = json.loads(body)
            entry = commit_event(event, salt)
            rows.append({"log_id": log_id, "leaf_index": i, "salt": salt.hex(), "body": body,
                         "event_time": datetime.fromisoformat(event["event_time"]),
                         "entry": entry.decode(), "leaf": merkle.leaf_hash(entry).hex()})
        with Session(engine) as session:
            session.execute(insert(LogEvent), rows)
            log = session.get(EventLog, log_id)
            assert log is not None
            log.next_index = min(count, start + chunk)
            session.add(log)
            session.commit()


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"events": args.events, "size": args.size, "ingest": []}
    with tempfile.TemporaryDirectory(prefix="tiezheng-bench-log-") as tmp:
        folder = Path(tmp)
        lines = events(args.events, args.size)
        settings = Settings(data_dir=folder / "data")
        engine = open_database(settings)
        backends = [("sqlite", engine)]
        created = None if args.no_postgres else postgres_engine(args.database_url)
        if created is not None:
            backends.append(("postgres", open_database(Settings(data_dir=folder / "pg", database_url=created[0]))))
        try:
            for batch in (int(b) for b in args.batches.split(",")):
                # Fewer events for small batches: one fsync each is slow on every backend alike.
                sample = lines[:min(len(lines), batch * 200)]
                row: dict[str, Any] = {"batch": batch, "events": len(sample)}
                # fsync latency on a shared disk drifts by several times within a minute: the runs
                # alternate, and each rate is the median of ROUNDS.
                rates: dict[str, list[float]] = {"baseline": [], **{name: [] for name, _ in backends}}
                for _ in range(ROUNDS):
                    rates["baseline"].append(len(sample) / baseline(sample, batch, folder))
                    for name, backend in backends:
                        rates[name].append(len(sample) / ingest(backend, sample, batch))
                row["baseline_events_per_s"] = statistics.median(rates["baseline"])
                for name, _ in backends:
                    row[f"{name}_events_per_s"] = statistics.median(rates[name])
                    row[f"{name}_ratio"] = row["baseline_events_per_s"] / row[f"{name}_events_per_s"]
                results["ingest"].append(row)
        finally:
            if created is not None:
                backends[-1][1].dispose()
                drop_postgres(args.database_url, created[1])
        if args.integrate:
            with Session(engine) as session:
                log = create_log(session, "local", "big")
                log_id = int(log.id or 0)
            fill(engine, log_id, args.integrate)
            sequencer = log_pipeline.sequencer_for(settings, engine)
            started = time.perf_counter()
            checkpoint = None
            while checkpoint is None or checkpoint.size < args.integrate:
                checkpoint = sequencer.run_once(log_id, force=True)
                assert checkpoint is not None
            results["integrate_events"] = args.integrate
            results["integrate_s"] = time.perf_counter() - started
            if args.export:
                export_and_verify(settings, engine, args.export, results)
    return results


def export_and_verify(settings: Settings, engine: Any, count: int, results: dict[str, Any]) -> None:
    from api.service.pipeline import seal_pending
    from api.service.runtime import local_trust
    from verifier.verify import verify_package

    outcome = seal_pending(settings, on_step=lambda _: None)
    assert outcome.left == 0, "sealing left items pending"
    # Events 0..count-1 fall in the first count seconds after START (the filter reads their times).
    end = (START + timedelta(seconds=count)).strftime("%Y-%m-%dT%H:%M:%SZ")
    window = f"event_time in [{START.strftime('%Y-%m-%dT%H:%M:%SZ')},{end})"
    started = time.perf_counter()
    built = log_pipeline.export(settings, engine, "big", window, None)
    results["export_s"] = time.perf_counter() - started
    results["export_bytes"] = built.path.stat().st_size
    trust = local_trust(settings)
    started = time.perf_counter()
    report = verify_package(built.path, trust)
    results["verify_s"] = time.perf_counter() - started
    results["verify_verdict"] = report.verdict.value
    results["export_events"] = next(r.reason for r in report.checks if r.id == "L1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--batches", default="1,10,100", help="Events per committed request, comma-separated.")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--integrate", type=int, default=1_000_000)
    parser.add_argument("--export", type=int, default=10_000)
    parser.add_argument("--database-url", default=os.environ.get("TIEZHENG_TEST_POSTGRES", DEFAULT_POSTGRES))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"ingest of events of ~{args.size} B (events/s; ratio = baseline / backend, target <= 3):")
    for row in results["ingest"]:
        line = (f"  {row['batch']:>4} per commit, {row['events']:>6} events: "
                f"file+fsync {row['baseline_events_per_s']:>8.0f}")
        for name in ("sqlite", "postgres"):
            if f"{name}_events_per_s" in row:
                line += f"  {name} {row[f'{name}_events_per_s']:>7.0f} ({row[f'{name}_ratio']:.1f}x)"
        print(line)
    if "integrate_s" in results:
        print(f"integrate {results['integrate_events']} events: {results['integrate_s']:.1f} s")
    if "export_s" in results:
        print(f"export ({results['export_events']}): {results['export_s']:.1f} s, {results['export_bytes']} bytes")
        print(f"verify: {results['verify_s']:.2f} s, {results['verify_verdict']}")


if __name__ == "__main__":
    main()

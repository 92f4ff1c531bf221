"""The embedded CLI's matters and watches: the ``local`` tenant's, in the data dir's own database.

`tiezheng matter …` and `tiezheng watch …` call these; `tiezheng serve` runs the same watches
(the scheduler in its worker pool) and shows them under the tenant named ``local``. `watch run-due`
is the cron form: decide the due slots, run their captures here, and leave sealing to `tiezheng seal`
(or a running service).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from api.service import jobs, matters, scheduler, watches
from api.service.models import (
    Evidence,
    MatterLogPublic,
    MatterPublic,
    OutboxMessage,
    WatchPublic,
    WatchState,
    utcnow,
)
from api.service.settings import Settings

if TYPE_CHECKING:
    from api.service.matter_timeline import MatterTimeline


def database(settings: Settings) -> Engine:
    """The data dir's database with the service's tables current."""
    return jobs.database(settings)


def create_matter(settings: Settings, *, title: str, reference: str = "") -> MatterPublic:
    with Session(database(settings)) as session:
        matter = matters.create(session, tenant_id=matters.local_tenant_id(session), title=title,
                                reference=reference)
        session.commit()
        return matters.public(session, matter)


def list_matters(settings: Settings) -> list[MatterPublic]:
    with Session(database(settings)) as session:
        found = matters.list_for(session, tenant_id=matters.local_tenant_id(session))
        return [matters.public(session, m) for m in found]


@dataclass(frozen=True)
class MatterView:
    matter: MatterPublic
    log: list[MatterLogPublic]
    #: The log's hash chain recomputes from its first line to ``log_head``.
    log_intact: bool
    watches: list[WatchPublic] = field(default_factory=list)


def show_matter(settings: Settings, matter_id: str) -> MatterView:
    with Session(database(settings)) as session:
        tenant = matters.local_tenant_id(session)
        matter = matters.get(session, tenant_id=tenant, matter_id=matter_id)
        entries = matters.log_of(session, tenant_id=tenant, matter_id=matter_id)
        intact = matters.chain_intact(entries, matter_id=matter_id) and (
            not entries or entries[-1].entry_sha256 == matter.log_head)
        return MatterView(matters.public(session, matter, with_evidence=True), matters.log_public(entries), intact,
                          [watches.public(w) for w in watches.list_for(session, tenant_id=tenant)
                           if w.matter_id == matter_id])


def add_watch(settings: Settings, *, url: str, every: str, until: datetime | None = None,
              matter: str | None = None, subject: str | None = None,
              fields: list[str] | None = None, stream: str | None = None) -> WatchPublic:
    """A new watch; with ``stream`` (``30m``), each run records the live stream at ``url`` that long."""
    stream_seconds = None
    if stream is not None:
        from api.service.streams import parse_duration

        stream_seconds = round(parse_duration(stream))
    with Session(database(settings)) as session:
        watch = watches.create(session, tenant_id=matters.local_tenant_id(session), api_key_id=None, url=url,
                               every_seconds=watches.parse_every(every), min_seconds=settings.watch_min_seconds,
                               until=until, matter_id=matter, subject=subject,
                               fields=watches.parse_fields(fields or []), stream_seconds=stream_seconds)
        session.commit()
        return watches.public(watch)


def list_watches(settings: Settings) -> list[WatchPublic]:
    with Session(database(settings)) as session:
        tenant = matters.local_tenant_id(session)
        return [watches.public(w, watches.slots_of(session, watch_id=w.id, limit=5))
                for w in watches.list_for(session, tenant_id=tenant)]


def set_watch_state(settings: Settings, watch_id: str, state: WatchState) -> WatchPublic:
    with Session(database(settings)) as session:
        watch = watches.set_state(session, tenant_id=matters.local_tenant_id(session), watch_id=watch_id,
                                  state=state)
        session.commit()
        return watches.public(watch)


@dataclass(frozen=True)
class RunResult:
    row_id: str
    url: str
    status: str
    evidence_id: str | None
    fingerprint: str | None
    error: str | None


@dataclass(frozen=True)
class DueRun:
    queued: int
    missed: int
    runs: list[RunResult]
    #: Of ``queued``, re-captures of notices whose response window closed.
    rechecks: int = 0


def run_due(settings: Settings, *, on_result: Callable[[RunResult], None] = lambda _: None,
            now: datetime | None = None) -> DueRun:
    """Decide every due slot as of ``now`` (default: the clock) and run the queued captures in this
    process, one after another, with the re-captures of notices whose response window closed.

    Runs queued earlier and never finished (a `run-due` that died) run too. Their outbox messages
    are marked sent once run, so a service started later does not hand them to a worker again
    (it would find them done anyway: a capture job is idempotent). A notice's re-capture of a URL no
    watch follows has no slot: if this process dies before running it, `tiezheng serve` runs it from the outbox.
    """
    engine = database(settings)
    outcome = scheduler.schedule_due(engine, now=now)
    results = []
    for row_id in dict.fromkeys([*scheduler.unfinished_runs(engine), *outcome.rechecks]):
        status = jobs.capture_job(row_id, settings)
        with Session(engine) as session:
            row = session.get(Evidence, row_id)
            assert row is not None
            session.connection().execute(update(OutboxMessage).where(col(OutboxMessage.target) == row_id,
                                                                      col(OutboxMessage.sent_at).is_(None))
                                         .values(sent_at=utcnow()))
            session.commit()
            result = RunResult(row_id, row.title, status, row.evidence_id, row.fingerprint, row.error)
        on_result(result)
        results.append(result)
    return DueRun(len(outcome.queued), outcome.missed, results, len(outcome.rechecks))


def follow_now(settings: Settings, *, url: str, runs: int, every_seconds: int, matter_title: str,
               subject: str | None = None, fields: list[str] | None = None,
               before_run: Callable[[int], None] = lambda _: None,
               max_slots: int = 20) -> tuple[WatchPublic, list[RunResult]]:
    """A new watch of ``url`` under a new matter, run here until ``runs`` runs finished (the demo's watch).

    Each slot is decided by the scheduler as any other (``run_due``); ``before_run(i)`` is called before
    the i-th run's slot, so a caller can change the page between runs. Gives up after ``max_slots``.
    """
    import time

    engine = database(settings)
    with Session(engine) as session:
        tenant = matters.local_tenant_id(session)
        matter = matters.create(session, tenant_id=tenant, title=matter_title)
        watch = watches.create(session, tenant_id=tenant, api_key_id=None, url=url, every_seconds=every_seconds,
                               min_seconds=1, matter_id=matter.id, subject=subject,
                               fields=watches.parse_fields(fields or []))
        session.commit()
        watch_id = watch.id
    finished: list[RunResult] = []
    for _ in range(max_slots):
        if len(finished) == runs:
            break
        before_run(len(finished))
        with Session(engine) as session:
            due = watches.get(session, tenant_id=tenant, watch_id=watch_id).next_slot
        time.sleep(max(0.0, (_aware(due) - utcnow()).total_seconds()))
        finished += [r for r in run_due(settings).runs if r.url == url]
    with Session(engine) as session:
        watch = watches.set_state(session, tenant_id=tenant, watch_id=watch_id, state=WatchState.PAUSED)
        session.commit()
        return watches.public(watch, watches.slots_of(session, watch_id=watch_id)), finished


def _aware(moment: datetime) -> datetime:
    from datetime import UTC

    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def write_packages(settings: Settings, row_ids: list[str], folder: Path) -> list[Path]:
    """Each run's newest package (sealed, once its proofs are attached) as ``folder/<evidence id>.wacz``,
    put together from the blob store as a download is. Raises LookupError for a run with no package."""
    from api.service import crud, packages
    from api.service.runtime import blob_store

    blobs = blob_store(settings)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with Session(database(settings)) as session:
        for row_id in row_ids:
            found = crud.evidence_with_item(session, row_id=row_id)
            package = None if found is None else packages.current(session, blobs, *found)
            if found is None or package is None or found[0].evidence_id is None:
                raise LookupError(f"run {row_id} has no package")
            target = folder / f"{found[0].evidence_id}.wacz"
            with target.open("wb") as out:
                for chunk in package.chunks():
                    out.write(chunk)
            written.append(target)
    return written


def local_timeline(settings: Settings, *, matter_id: str | None = None, subject: str | None = None) -> MatterTimeline:
    """`tiezheng timeline MATTER` (or `--subject S`): verified as a timeline, with this data dir's trust."""
    from api.service.matter_timeline import matter_timeline, subject_timeline
    from api.service.runtime import blob_store, local_trust
    from verifier.trust import default_trust

    trust = default_trust().merged(local_trust(settings))
    with Session(database(settings)) as session:
        tenant = matters.local_tenant_id(session)
        if subject is not None:
            return subject_timeline(session, blob_store(settings), settings, tenant_id=tenant, subject=subject,
                                    trust=trust)
        assert matter_id is not None
        return matter_timeline(session, blob_store(settings), settings, tenant_id=tenant, matter_id=matter_id,
                               trust=trust)

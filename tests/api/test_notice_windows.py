"""When a notice's window closes, the scheduler queues a fresh capture of its URLs, once, crash-safe.

A URL the notice's matter watches becomes an extra run of that watch (chained to its last capture);
a URL no watch follows a capture of its own filed under the matter. The runs and the notice's
``recheck_at`` commit in one transaction, so a window is handed over exactly once.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session, col, select

from api.service import matters, watches
from api.service.models import Evidence, MatterFiling, OutboxMessage, SlotState, WatchSlot
from api.service.notice_models import NoticeVersion
from api.service.notice_recheck import recheck_closed_windows
from api.service.notices import NoticeDesk, closed_windows
from api.service.scheduler import schedule_due
from api.service.settings import load_settings
from evidence.notices.model import SealedRef
from tests.evidence.notices.conftest import complete_notice

WATCHED = "https://shop.example/item/1"
UNWATCHED = "https://shop.example/item/2"
#: 2026-12-11 00:30 in China (still the 10th in UTC): windows that ended on the 10th are closed.
MORNING_AFTER = datetime(2026, 12, 10, 16, 30, tzinfo=UTC)


def _sent(notice_id: str, version: int, due: str, matter: str | None, action: str = "notice",
          urls: tuple[str, ...] = (WATCHED,)) -> NoticeVersion:
    infringing = tuple(SealedRef(f"tz-{i}", "b" * 64, url=url) for i, url in enumerate(urls))
    record = complete_notice(notice_id=notice_id, infringing=infringing, matter=matter or "").to_json()
    return NoticeVersion(id=f"{notice_id}.v{version}", notice_id=notice_id, version=version, matter=matter,
                         action=action, status="sent", record=json.dumps(record), recipient="ip@platform.example",
                         due=due, sent_at=datetime(2026, 11, 25, tzinfo=UTC))


def _desk_with_watch(tmp_path: Path) -> tuple[NoticeDesk, str, str]:
    desk = NoticeDesk.local(load_settings(tmp_path / "data"))
    with Session(desk.engine) as session:
        tenant = matters.local_tenant_id(session)
        matter = matters.create(session, tenant_id=tenant, title="Owner v. Shop").id
        watch = watches.create(session, tenant_id=tenant, api_key_id=None, url=WATCHED, every_seconds=30 * 86400,
                               min_seconds=600, matter_id=matter, now=MORNING_AFTER - timedelta(days=20))
        # The watch's first run is done; its next grid slot is ten days after the window closed.
        watch.next_slot = MORNING_AFTER + timedelta(days=10)
        watch.last_fingerprint = "c" * 64
        session.add(watch)
        session.commit()
        return desk, matter, watch.id


def test_a_closed_window_runs_the_matters_watch_once(tmp_path: Path) -> None:
    desk, matter, watch_id = _desk_with_watch(tmp_path)
    with Session(desk.engine) as session:
        session.add(_sent("nt-a", 1, "2026-12-10", matter, urls=(WATCHED, UNWATCHED)))
        session.add(_sent("nt-b", 1, "2026-12-11", matter))  # its last day is today: still open
        session.add(_sent("nt-c", 1, "2026-12-05", matter))
        session.add(_sent("nt-c", 2, "2026-12-09", matter, action="withdrawal"))
        session.commit()

    outcome = schedule_due(desk.engine, now=MORNING_AFTER)
    assert len(outcome.rechecks) == 2 and outcome.queued == outcome.rechecks
    with Session(desk.engine) as session:
        (slot,) = session.exec(select(WatchSlot).where(WatchSlot.watch_id == watch_id)).all()
        assert slot.state == SlotState.QUEUED.value and slot.evidence_ref in outcome.rechecks
        assert slot.reason == "notice nt-a v1: response window closed 2026-12-10"
        rows = {r.title: r for r in session.exec(select(Evidence).where(col(Evidence.id).in_(outcome.rechecks)))}
        assert set(rows) == {WATCHED, UNWATCHED}
        assert rows[WATCHED].id == slot.evidence_ref and rows[WATCHED].note.startswith(f"watch {watch_id}, ")
        filed = session.exec(select(MatterFiling).where(col(MatterFiling.evidence_ref).in_(outcome.rechecks))).all()
        assert {f.matter_id for f in filed} == {matter} and len(filed) == 2
        messages = session.exec(select(OutboxMessage.target).where(col(OutboxMessage.target).in_(outcome.rechecks)))
        assert sorted(messages.all()) == sorted(outcome.rechecks)
        marked = {r.id: r.recheck_at for r in session.exec(select(NoticeVersion))}
        # nt-c v1 was withdrawn: marked, nothing captured; the withdrawal itself ends the window.
        assert marked["nt-a.v1"] and marked["nt-c.v1"] and marked["nt-c.v2"] and marked["nt-b.v1"] is None
        log = [entry.action for entry in matters.log_of(session, tenant_id=matters.local_tenant_id(session),
                                                         matter_id=matter)]
        assert log.count("notice-recheck") == 2

    # Once: the next pass (and a later day) queues nothing more for nt-a; nt-b closes the day after.
    assert schedule_due(desk.engine, now=MORNING_AFTER + timedelta(minutes=1)).rechecks == []
    with Session(desk.engine) as session:
        assert closed_windows(session, today=MORNING_AFTER.date() + timedelta(days=1)) == []
    # nt-b closes the day after, but the watch's run for nt-a has not finished: it waits its turn.
    later = recheck_closed_windows(desk.engine, now=MORNING_AFTER + timedelta(days=1))
    assert later.windows == [] and later.queued == [] and later.waiting == 1


def test_a_window_waits_while_its_watch_has_a_run_queued(tmp_path: Path) -> None:
    desk, matter, watch_id = _desk_with_watch(tmp_path)
    with Session(desk.engine) as session:
        session.add(WatchSlot(watch_id=watch_id, slot_time=MORNING_AFTER - timedelta(hours=1),
                              state=SlotState.QUEUED.value, evidence_ref="run-1"))
        session.add(_sent("nt-a", 1, "2026-12-10", matter))
        session.commit()
    waiting = recheck_closed_windows(desk.engine, now=MORNING_AFTER)
    assert waiting.queued == [] and waiting.waiting == 1
    with Session(desk.engine) as session:
        assert session.get(NoticeVersion, "nt-a.v1").recheck_at is None  # type: ignore[union-attr]
        slot = session.exec(select(WatchSlot).where(WatchSlot.evidence_ref == "run-1")).one()
        slot.state = SlotState.DONE.value
        session.add(slot)
        session.commit()
    ran = recheck_closed_windows(desk.engine, now=MORNING_AFTER + timedelta(seconds=1))
    assert len(ran.queued) == 1 and ran.waiting == 0


def test_a_window_handed_over_by_another_scheduler_is_not_queued_twice(tmp_path: Path) -> None:
    desk, matter, _ = _desk_with_watch(tmp_path)
    with Session(desk.engine) as session:
        session.add(_sent("nt-a", 1, "2026-12-10", matter))
        session.commit()
        # Another scheduler marked it between this one's read and its write: the compare-and-set rolls back.
        pending = closed_windows(session, today=MORNING_AFTER.date() + timedelta(days=1))
        assert [version for version, _ in pending] == ["nt-a.v1"]
        row = session.get(NoticeVersion, "nt-a.v1")
        assert row is not None
        row.recheck_at = MORNING_AFTER
        session.add(row)
        session.commit()
    from api.service import notice_recheck

    with Session(desk.engine) as session:
        try:
            notice_recheck._hand_over(session, "nt-a.v1", pending[0][1], MORNING_AFTER)
        except notice_recheck._Taken:
            session.rollback()
        else:
            raise AssertionError("a window handed over twice")
    with Session(desk.engine) as session:
        assert session.exec(select(Evidence)).all() == []

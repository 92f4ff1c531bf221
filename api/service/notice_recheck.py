"""When a notice's response window closes, the matter's watch captures the notice's URLs again.

The platform had its window to act (E-Commerce Law Art. 42; 15 days or the rule's 20 working days);
what the page shows the day after is the evidence of whether it did. So each closed window queues one
fresh capture of every URL the notice named:

- a URL the notice's matter watches gets an extra run of that watch (a slot at the moment the window
  was found closed, outside the watch's grid), so the capture is chained to the watch's last one
  (``previous``) and its change record says whether the content is still there or removed;
- a URL no watch of the matter follows gets a capture of its own, filed under the matter.

Exactly once, and crash-safe: one transaction per window writes the runs (slot, capture row and outbox
message, as the scheduler writes a run) and sets the notice version's ``recheck_at`` with a
compare-and-set. A crash before the commit leaves the window to the next pass; after it, the runs are
queued like any other. A second scheduler's compare-and-set finds ``recheck_at`` set and rolls back.
A window whose watch still has a run queued waits for the next pass: runs of one watch never overlap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.service import crud, matters, outbox
from api.service.errors import ApiError
from api.service.models import Evidence, EvidenceKind, SlotState, Watch, WatchSlot, WatchState
from api.service.notice_models import NoticeVersion
from api.service.notices import ClosedWindow, closed_windows
from evidence.manifest import new_evidence_id
from evidence.notices.deadline import CHINA_STANDARD_TIME
from verifier.errors import TiezhengError

log = logging.getLogger(__name__)

#: Matter log entry (``how``) of a re-capture a closed window queued.
FILED_AS = "notice-recheck"


@dataclass
class Rechecks:
    """What one pass queued: capture rows (``evidence.id``) and the notice versions they answer."""

    queued: list[str] = field(default_factory=list)
    windows: list[ClosedWindow] = field(default_factory=list)
    #: Windows left for the next pass: a watch of theirs has a run still queued.
    waiting: int = 0


class _Busy(TiezhengError):
    """A watch the window would run has a run queued (control flow: roll back, try again next pass)."""


class _Taken(TiezhengError):
    """Another scheduler handed this window over first (control flow: roll back)."""


def recheck_closed_windows(engine: Engine, *, now: datetime) -> Rechecks:
    """Queue the re-captures of every window closed before ``now``'s day (China Standard Time), once each."""
    today = now.astimezone(CHINA_STANDARD_TIME).date()
    outcome = Rechecks()
    with Session(engine) as session:
        pending = closed_windows(session, today=today)
    for version_id, window in pending:
        with Session(engine) as session:
            try:
                queued = _hand_over(session, version_id, window, now)
                session.commit()
            except _Busy:
                session.rollback()
                outcome.waiting += 1
                continue
            except (_Taken, IntegrityError, ApiError) as exc:
                session.rollback()
                log.info("notice recheck of %s: %s", version_id, type(exc).__name__)
                continue
        if window is not None:
            outcome.windows.append(window)
            outcome.queued += queued
    if outcome.queued:
        log.info("notices: %d closed window(s), %d re-capture(s) queued", len(outcome.windows), len(outcome.queued))
    return outcome


def _hand_over(session: Session, version_id: str, window: ClosedWindow | None, now: datetime) -> list[str]:
    """Write the window's runs and mark it handed over, in the caller's transaction; returns the capture rows.
    ``window`` None: a version corrected or withdrawn since; it is only marked."""
    queued: list[str] = []
    if window is not None:
        tenant = window.tenant_id if window.tenant_id is not None else matters.local_tenant_id(session)
        reason = f"notice {window.notice_id} v{window.version}: response window closed {window.due}"
        for url in dict.fromkeys(window.urls):
            queued.append(_recapture(session, tenant, window, url, reason, now))
        crud.record_audit(session, action="notice.recheck", tenant_id=window.tenant_id, actor="scheduler",
                          target=version_id, outcome=202, detail={"captures": queued, "due": window.due})
    marked = session.connection().execute(
        update(NoticeVersion).where(col(NoticeVersion.id) == version_id, col(NoticeVersion.recheck_at).is_(None))
        .values(recheck_at=now))
    if marked.rowcount != 1:
        raise _Taken(version_id)
    return queued


def _watch_of(session: Session, tenant: int, matter: str | None, url: str) -> Watch | None:
    """The newest watch of ``url`` in the matter (any of the tenant's when the notice has no matter), not removed."""
    query = select(Watch).where(Watch.tenant_id == tenant, Watch.url == url,
                                col(Watch.state) != WatchState.REMOVED.value)
    if matter is not None:
        query = query.where(Watch.matter_id == matter)
    return session.exec(query.order_by(col(Watch.created_at).desc())).first()


def _recapture(session: Session, tenant: int, window: ClosedWindow, url: str, reason: str, now: datetime) -> str:
    watch = _watch_of(session, tenant, window.matter, url)
    row_id = new_evidence_id(now)
    detail = {"notice": window.notice_id, "version": window.version, "due": window.due}
    if watch is not None:
        queued = session.exec(select(WatchSlot.id).where(WatchSlot.watch_id == watch.id,
                                                         WatchSlot.state == SlotState.QUEUED.value)).first()
        if queued is not None:
            raise _Busy(watch.id)
        session.add(Evidence(id=row_id, tenant_id=tenant, api_key_id=watch.api_key_id,
                             kind=EvidenceKind.WEB_CAPTURE.value, title=url, note=f"watch {watch.id}, {reason}",
                             subject=watch.subject, created_at=now))
        session.add(WatchSlot(watch_id=watch.id, slot_time=now, state=SlotState.QUEUED.value, reason=reason,
                              evidence_ref=row_id, recorded_at=now))
        detail["watch"] = watch.id
    else:
        session.add(Evidence(id=row_id, tenant_id=tenant, kind=EvidenceKind.WEB_CAPTURE.value, title=url,
                             note=reason, created_at=now))
    outbox.add_capture(session, row_id=row_id)
    matter = watch.matter_id if watch is not None and watch.matter_id else window.matter
    if matter is not None:
        matters.file_evidence(session, tenant_id=tenant, matter_id=matter, evidence_ref=row_id, how=FILED_AS,
                              detail=detail)
    session.flush()
    return row_id


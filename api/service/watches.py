"""Watches: a page captured again on a schedule, each run a full, sealed capture chained to the last.

A watch is a URL, an interval, and what goes into every run's manifest: its ``matter``, its
``subject`` and ``previous`` (the fingerprint of the watch's newest package). The scheduler
(api/service/scheduler.py) turns due slots into capture rows; the capture job asks ``run_context``
what to put in the manifest and reports back with ``record_run`` / ``record_failure`` in the same
transaction as its package. A watch's runs never overlap (the scheduler records a slot as missed
while the previous run is unfinished), so ``previous`` always names the run before: one chain, no fork.

Every function takes ``tenant_id``; another tenant's watch answers as absent (404).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from api.service import matters
from api.service.errors import ApiError, not_found
from api.service.models import (
    MAX_SUBJECT_CHARS,
    Evidence,
    MatterFiling,
    SlotState,
    Watch,
    WatchPublic,
    WatchSlot,
    WatchSlotPublic,
    WatchState,
    utcnow,
)

WATCH_ID_RANDOM_BYTES = 8
#: The longest recording one run of a stream watch may make.
MAX_STREAM_SECONDS = 24 * 3600
#: Key fields per watch, and how long a name or selector may be (they go into change.json).
MAX_FIELDS = 20
MAX_FIELD_NAME_CHARS = 60
MAX_SELECTOR_CHARS = 500
#: The longest interval: a year.
MAX_EVERY_SECONDS = 366 * 86400
#: Slots shown with a watch.
SLOTS_SHOWN = 50
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def new_watch_id() -> str:
    return f"wt-{secrets.token_hex(WATCH_ID_RANDOM_BYTES)}"


def parse_every(text: str) -> int:
    """Seconds in "6h", "30m", "1d", "2w", "90s" or "90". Raises ApiError 422 otherwise."""
    found = re.fullmatch(r"\s*(\d{1,7})\s*([smhdw]?)\s*", text.lower())
    if not found:
        raise ApiError(422, "invalid_request", f"every: {text[:20]!r} is not an interval like 6h, 30m, 1d or 90s")
    return int(found.group(1)) * _UNITS[found.group(2) or "s"]


def parse_fields(pairs: Sequence[str]) -> dict[str, str]:
    """NAME=CSS_SELECTOR pairs (the CLI's ``--field``) as a dict. Raises ApiError 422 for a malformed one."""
    fields: dict[str, str] = {}
    for pair in pairs:
        name, sep, selector = pair.partition("=")
        if not sep:
            raise ApiError(422, "invalid_request", f"field {pair[:60]!r}: write NAME=CSS_SELECTOR")
        fields[name.strip()] = selector.strip()
    return fields


def _checked_fields(fields: dict[str, str]) -> dict[str, str]:
    if len(fields) > MAX_FIELDS:
        raise ApiError(422, "invalid_request", f"fields: at most {MAX_FIELDS}")
    for name, selector in fields.items():
        if not _FIELD_NAME.fullmatch(name) or len(name) > MAX_FIELD_NAME_CHARS:
            raise ApiError(422, "invalid_request", f"field name {name[:60]!r}: letters, digits, _ . - only, "
                                                   f"at most {MAX_FIELD_NAME_CHARS}")
        if not selector or len(selector) > MAX_SELECTOR_CHARS:
            raise ApiError(422, "invalid_request", f"field {name}: a CSS selector of 1 to {MAX_SELECTOR_CHARS} "
                                                   "characters")
    try:  # the selectors as change detection will read them; it comes with the capture extra
        from evidence.page_text import FieldSpecError, parse_key_fields
    except ImportError:
        return fields
    try:
        parse_key_fields(fields)
    except FieldSpecError as exc:
        raise ApiError(422, "invalid_request", f"fields: {exc}") from None
    return fields


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def create(session: Session, *, tenant_id: int, api_key_id: int | None, url: str, every_seconds: int,
           min_seconds: int, until: datetime | None = None, matter_id: str | None = None,
           subject: str | None = None, fields: dict[str, str] | None = None,
           now: datetime | None = None, stream_seconds: int | None = None) -> Watch:
    """A new active watch whose first slot is now. Raises ApiError 422 (bad values) or 404 (matter)."""
    now = now or utcnow()
    if not min_seconds <= every_seconds <= MAX_EVERY_SECONDS:
        raise ApiError(422, "invalid_request", f"every: between {min_seconds} s and {MAX_EVERY_SECONDS // 86400} "
                                               "days (the server's TIEZHENG_WATCH_MIN_SECONDS sets the shortest)")
    if until is not None and _aware(until) <= now:
        raise ApiError(422, "invalid_request", "until: must be in the future")
    if subject is not None and len(subject) > MAX_SUBJECT_CHARS:
        raise ApiError(422, "invalid_request", f"subject: at most {MAX_SUBJECT_CHARS} characters")
    if stream_seconds is not None and not 0 < stream_seconds <= min(every_seconds, MAX_STREAM_SECONDS):
        # Runs of one watch never overlap: a recording ends before the next slot.
        raise ApiError(422, "invalid_request", f"stream: between 1 s and the interval (at most "
                                               f"{MAX_STREAM_SECONDS // 3600} hours)")
    checked = _checked_fields(dict(fields or {}))
    watch = Watch(id=new_watch_id(), tenant_id=tenant_id, api_key_id=api_key_id, url=url,
                  every_seconds=every_seconds, until=until, matter_id=matter_id, subject=subject or None,
                  fields=json.dumps(checked, sort_keys=True), next_slot=now, created_at=now,
                  stream_seconds=stream_seconds)
    if matter_id is not None:
        matter = matters.get(session, tenant_id=tenant_id, matter_id=matter_id)
        session.add(watch)
        session.flush()
        matters.append_log(session, matter, "watch-added", {"watch": watch.id, "url": url,
                                                            "every_seconds": every_seconds})
    else:
        session.add(watch)
        session.flush()
    return watch


def get(session: Session, *, tenant_id: int, watch_id: str) -> Watch:
    watch = session.get(Watch, watch_id)
    if watch is None or watch.tenant_id != tenant_id or watch.state == WatchState.REMOVED:
        raise not_found("watch")
    return watch


def list_for(session: Session, *, tenant_id: int) -> Sequence[Watch]:
    return session.exec(select(Watch).where(Watch.tenant_id == tenant_id, Watch.state != WatchState.REMOVED.value)
                        .order_by(col(Watch.created_at).desc(), col(Watch.id))).all()


def set_state(session: Session, *, tenant_id: int, watch_id: str, state: WatchState,
              now: datetime | None = None) -> Watch:
    """Pause, resume or remove. A resumed watch starts at its next slot from now: the paused ones are not runs."""
    watch = get(session, tenant_id=tenant_id, watch_id=watch_id)
    if state == WatchState.ACTIVE and watch.state == WatchState.PAUSED:
        watch.next_slot = next_slot_after(watch, now or utcnow())
    if watch.state != WatchState.ENDED or state == WatchState.REMOVED:
        watch.state = state.value
    session.add(watch)
    return watch


def next_slot_after(watch: Watch, moment: datetime) -> datetime:
    """The first slot of the watch's grid (from its current next slot) at or after ``moment``."""
    start = _aware(watch.next_slot)
    if moment <= start:
        return start
    steps = -(-(moment - start) // timedelta(seconds=watch.every_seconds))
    return start + steps * timedelta(seconds=watch.every_seconds)


def slots_of(session: Session, *, watch_id: str, limit: int = SLOTS_SHOWN) -> Sequence[WatchSlot]:
    return session.exec(select(WatchSlot).where(WatchSlot.watch_id == watch_id)
                        .order_by(col(WatchSlot.slot_time).desc()).limit(limit)).all()


def public(watch: Watch, slots: Sequence[WatchSlot] = ()) -> WatchPublic:
    return WatchPublic(id=watch.id, url=watch.url, every_seconds=watch.every_seconds, until=watch.until,
                       matter=watch.matter_id, subject=watch.subject, fields=json.loads(watch.fields),
                       state=watch.state, next_slot=watch.next_slot, last_fingerprint=watch.last_fingerprint,
                       created_at=watch.created_at, stream_seconds=watch.stream_seconds,
                       slots=[WatchSlotPublic(slot_time=s.slot_time, state=s.state, reason=s.reason,
                                              evidence_id=s.evidence_ref, fingerprint=s.fingerprint) for s in slots])


# -- what a run carries, and what it reports --------------------------------------------------------

@dataclass(frozen=True)
class RunContext:
    """What a capture puts into its manifest beyond the URL: its matter, subject, and the watch's chain."""

    matter: str | None = None
    subject: str | None = None
    #: The previous package's fingerprint (hex); None for a watch's first run and for plain captures.
    previous: str | None = None
    #: Blob address of the previous run's package: what change detection compares the run with.
    previous_package: str | None = None
    watch_id: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    #: A stream watch's run: record the stream for this many seconds instead of capturing a page.
    stream_seconds: int | None = None


def run_context(session: Session, *, row: Evidence) -> RunContext:
    """The manifest fields of capture row ``row``: from its watch slot if it is a run, else its own filing."""
    slot = session.exec(select(WatchSlot).where(WatchSlot.evidence_ref == row.id)).first()
    filing = session.get(MatterFiling, row.id)
    matter = filing.matter_id if filing is not None else None
    if slot is None:
        return RunContext(matter=matter, subject=row.subject)
    watch = session.get(Watch, slot.watch_id)
    if watch is None:
        return RunContext(matter=matter, subject=row.subject)
    previous_package = None
    if watch.last_fingerprint is not None:
        previous_package = session.exec(
            select(Evidence.package_sha256).join(WatchSlot, col(WatchSlot.evidence_ref) == col(Evidence.id))
            .where(WatchSlot.watch_id == watch.id, WatchSlot.fingerprint == watch.last_fingerprint)).first()
    return RunContext(matter=matter or watch.matter_id, subject=watch.subject, previous=watch.last_fingerprint,
                      previous_package=previous_package, watch_id=watch.id, fields=json.loads(watch.fields),
                      stream_seconds=watch.stream_seconds)


def record_run(session: Session, *, row_id: str, fingerprint: str) -> None:
    """A run's package is accepted (caller's transaction): its slot is done and it is the chain's new head."""
    slot = session.exec(select(WatchSlot).where(WatchSlot.evidence_ref == row_id)).first()
    if slot is None:
        return
    session.connection().execute(update(WatchSlot).where(col(WatchSlot.id) == slot.id)
                                 .values(state=SlotState.DONE.value, fingerprint=fingerprint))
    session.connection().execute(update(Watch).where(col(Watch.id) == slot.watch_id)
                                 .values(last_fingerprint=fingerprint))


def record_failure(session: Session, *, row_id: str, reason: str) -> None:
    """A run failed (caller's transaction): its slot says so; the chain's head stays the last package."""
    session.connection().execute(update(WatchSlot).where(col(WatchSlot.evidence_ref) == row_id)
                                 .values(state=SlotState.FAILED.value, reason=reason[:200]))

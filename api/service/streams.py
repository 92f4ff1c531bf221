"""Live-stream recordings of the embedded CLI: plan, record, resume, and queue each part for sealing.

A recording's parts are accepted one by one (``pipeline.accept_local``) the moment each is
packaged, so a crash later loses nothing already recorded. Recordings live in the data dir's
``streams/`` folder; ``resume_local`` picks up every recording a killed process left unfinished.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from api.service.errors import ServiceError
from api.service.pipeline import accept_local, check_local_matter, local_requester
from api.service.runtime import engine_for, operator_for
from api.service.settings import Settings

if TYPE_CHECKING:
    from evidence.stream.recorder import Progress
    from evidence.stream.recording import Plan
    from evidence.upload import BuiltPackage

#: The longest one recording may be asked to run.
MAX_SECONDS = 24 * 3600
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float:
    """Seconds in ``30m``, ``1h30m``, ``90s`` or ``90``. Raises ServiceError."""
    match = _DURATION.match(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ServiceError(f"duration {text!r} is not like 30m, 1h30m, 90s or 90")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if not 0 < total <= MAX_SECONDS:
        raise ServiceError(f"duration must be more than 0 and at most {MAX_SECONDS // 3600} hours")
    return total


def parse_start(text: str, now: datetime) -> datetime:
    """The next local time ``HH:MM`` (today, or tomorrow when it has passed). Raises ServiceError."""
    try:
        wanted = time.fromisoformat(text.strip())
    except ValueError:
        raise ServiceError(f"--at {text!r} is not a time like 23:00") from None
    start = now.replace(hour=wanted.hour, minute=wanted.minute, second=wanted.second, microsecond=0)
    return start if start > now else start + timedelta(days=1)


def streams_dir(settings: Settings) -> Path:
    return settings.root / "streams"


def _sink(settings: Settings, on_part: Callable[[BuiltPackage], None],
          on_progress: Callable[[Progress], None]) -> object:
    from evidence.stream.session import Sink

    def accepted(built: BuiltPackage, plan: Plan) -> None:
        # A part re-offered after a kill between accepting it and marking it done is accepted once.
        if not _accepted(settings, built.evidence_id):
            accept_local(settings, built, matter=plan.matter)
        on_part(built)

    return Sink(packages_dir=settings.packages_dir, operator=operator_for(settings), requester=local_requester(),
                on_part=accepted, on_progress=on_progress)


def _accepted(settings: Settings, evidence_id: str) -> bool:
    from sqlmodel import Session, select

    from anchor.store import SealItem

    with Session(engine_for(settings)) as session:
        return session.exec(select(SealItem.id).where(SealItem.evidence_id == evidence_id)).first() is not None


def record_local(settings: Settings, url: str, seconds: float, *, matter: str | None = None,
                 allow_private: bool = False, on_part: Callable[[BuiltPackage], None] = lambda _: None,
                 on_progress: Callable[[Progress], None] = lambda _: None) -> list[BuiltPackage]:
    """Record ``url`` for ``seconds``; each part is queued for sealing as it is packaged.

    Raises ServiceError when the stream cannot be read at all or the matter is unknown.
    """
    from evidence.capture_errors import CaptureError
    from evidence.stream.session import Sink, record_stream

    if matter is not None:
        check_local_matter(settings, matter)
    sink = _sink(settings, on_part, on_progress)
    assert isinstance(sink, Sink)
    try:
        return record_stream(streams_dir(settings), sink, url=url, seconds=seconds, matter=matter,
                             allow_private=allow_private)
    except CaptureError as exc:
        raise ServiceError(str(exc)) from None


def resume_local(settings: Settings, *, on_part: Callable[[BuiltPackage], None] = lambda _: None,
                 on_progress: Callable[[Progress], None] = lambda _: None) -> list[BuiltPackage]:
    """Finish every recording a stopped process left: package its killed part, then record on to
    the planned end as linked parts. Raises ServiceError when a stream cannot be read again."""
    from evidence.capture_errors import CaptureError
    from evidence.stream.recording import unfinished
    from evidence.stream.session import Sink, resume_recording

    sink = _sink(settings, on_part, on_progress)
    assert isinstance(sink, Sink)
    built: list[BuiltPackage] = []
    for folder in unfinished(streams_dir(settings)):
        try:
            built += resume_recording(folder, sink)
        except CaptureError as exc:
            raise ServiceError(f"{folder.name}: {exc}") from None
    return built

"""The embedded CLI's browser sessions: the same encrypted table, as the data dir's tenant ``local``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import Session

from api.service import browser_sessions, jobs, matters
from api.service.capture_choices import local_options
from api.service.errors import ServiceError
from api.service.session_models import BrowserSessionPublic
from api.service.settings import Settings
from evidence.browser_session import MAX_STATE_BYTES
from evidence.capture_errors import CaptureError


def add_session(settings: Settings, *, name: str, account: str, file: Path) -> BrowserSessionPublic:
    """Store the storage state in ``file`` as session ``name``. Raises ServiceError."""
    try:
        if file.stat().st_size > MAX_STATE_BYTES:
            raise ServiceError(f"{file} is over {MAX_STATE_BYTES} bytes; a storage state is much smaller")
        state = file.read_bytes()
    except OSError as exc:
        raise ServiceError(f"cannot read {file}: {exc.strerror or exc}") from None
    with Session(jobs.database(settings)) as session:
        row = browser_sessions.create(session, tenant_id=matters.local_tenant_id(session), name=name,
                                      account=account, state=state)
        session.commit()
        return browser_sessions.public(row)


def list_sessions(settings: Settings) -> list[BrowserSessionPublic]:
    with Session(jobs.database(settings)) as session:
        rows = browser_sessions.list_for(session, tenant_id=matters.local_tenant_id(session))
        return [browser_sessions.public(r) for r in rows]


def remove_session(settings: Settings, name: str) -> None:
    with Session(jobs.database(settings)) as session:
        browser_sessions.remove(session, tenant_id=matters.local_tenant_id(session), name=name)
        session.commit()


def capture_choice_options(settings: Settings, *, session_name: str | None, egress: str | None,
                           save_media: bool) -> dict[str, Any]:
    """Capture options for a local capture's ``--session``, ``--egress`` and ``--save-media``.
    Raises ServiceError (an unknown session or egress, no session key)."""
    if session_name is None and egress is None:
        return {"save_media": save_media}
    try:
        with Session(jobs.database(settings)) as session:
            return local_options(session, tenant_id=matters.local_tenant_id(session), session_name=session_name,
                                 egress=egress, save_media=save_media)
    except CaptureError as exc:
        raise ServiceError(str(exc)) from None

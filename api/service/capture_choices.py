"""What a capture may choose beyond its URL: a stored session, an egress, saved media.

The service checks the choice when it accepts the request (the session must be the tenant's own,
the egress configured), keeps it beside the evidence row (``CaptureChoice``), and the capture job
turns it into capture options when it runs (``options_for``), opening the session only then. The
embedded CLI does the same for its local tenant in one step (``local_options``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from api.service import browser_sessions
from api.service.errors import ApiError
from api.service.session_models import CaptureChoice
from evidence.capture_errors import CaptureError
from evidence.egress import configured_egress


def checked_egress(name: str) -> None:
    """Raise ApiError 422 unless egress ``name`` is configured on this server."""
    try:
        configured_egress(name)
    except CaptureError as exc:
        raise ApiError(422, "unknown_egress", str(exc)) from None


@dataclass(frozen=True)
class ResolvedChoices:
    session_id: int | None
    session_name: str | None
    egress: str | None
    save_media: bool

    def record(self, session: Session, *, row_id: str) -> None:
        if self.session_id is None and self.egress is None and not self.save_media:
            return
        session.add(CaptureChoice(evidence_row_id=row_id, session_id=self.session_id, session_name=self.session_name,
                                  egress=self.egress, save_media=self.save_media))


@dataclass(frozen=True)
class CaptureChoices:
    session: str | None = None
    egress: str | None = None
    save_media: bool = False

    def resolved(self, session: Session, *, tenant_id: int) -> ResolvedChoices:
        """Check the choices for ``tenant_id``. Raises ApiError (404 for a session not the tenant's,
        422 for an egress not configured, 409 for sessions without a server key)."""
        session_id = None
        if self.session is not None:
            browser_sessions.session_key()
            session_id = browser_sessions.get(session, tenant_id=tenant_id, name=self.session).id
        if self.egress is not None:
            checked_egress(self.egress)
        return ResolvedChoices(session_id=session_id, session_name=self.session, egress=self.egress,
                               save_media=self.save_media)


def options_for(session: Session, *, tenant_id: int, row_id: str) -> dict[str, Any]:
    """The capture options (``session``, ``egress``, ``save_media``) chosen for evidence row ``row_id``.

    Raises ApiError when a chosen session was removed or cannot be opened, CaptureError when the
    egress is no longer configured: the capture then fails with that reason, it never runs without them.
    """
    choice = session.get(CaptureChoice, row_id)
    if choice is None:
        return {}
    options: dict[str, Any] = {"save_media": choice.save_media}
    if choice.session_id is not None:
        options["session"] = browser_sessions.for_capture(session, tenant_id=tenant_id, session_id=choice.session_id)
    elif choice.session_name is not None:
        # ``browser_sessions.remove`` unlinks queued choices: they fail rather than run logged out.
        raise ApiError(409, "session_removed", f"session {choice.session_name!r}, chosen for this capture, "
                                               "was removed")
    if choice.egress is not None:
        options["egress"] = configured_egress(choice.egress)
    return options


def local_options(session: Session, *, tenant_id: int, session_name: str | None, egress: str | None,
                  save_media: bool) -> dict[str, Any]:
    """Capture options for the embedded CLI's own capture. Raises ApiError / CaptureError."""
    options: dict[str, Any] = {"save_media": save_media}
    if session_name is not None:
        row = browser_sessions.get(session, tenant_id=tenant_id, name=session_name)
        assert row.id is not None
        options["session"] = browser_sessions.for_capture(session, tenant_id=tenant_id, session_id=row.id)
    if egress is not None:
        options["egress"] = configured_egress(egress)
    return options
